// Types of the history helpers (history.js).

export const HISTORY_FORMAT: 'nook-history';
export const MAX_HISTORY_BYTES: number;
export const MAX_HISTORY_ITEMS: number;
export const MAX_ID_LENGTH: number;

export interface History {
  likes: string[];
  dislikes: string[];
  /** Titles of the items in the history, for showing them when the catalogue lacks them. */
  items: Record<string, { title: string; year: number | null }>;
  /** Set by LocalHistory.load when the stored value could not be read (it is kept aside). */
  unreadable?: boolean;
}

export class HistoryError extends Error {
  readonly code: 'history';
}

export function parseHistory(input: string | object, options?: { file?: boolean }): History;

export class LocalHistory {
  constructor(key?: string, storage?: Storage);
  load(): History;
  save(history: History): History;
  clear(): void;
  static toFile(history: History): string;
}
