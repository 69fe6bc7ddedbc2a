// A person's history (likes and dislikes) as the page keeps it: in this browser's localStorage,
// nowhere else. Ids are kept even when the current bundle lacks them: a catalogue update may
// withdraw an item and a later one bring it back, so nook skips such ids when ranking and says so,
// and never deletes them for the person.

export const HISTORY_FORMAT = 'nook-history';
/** Largest history file accepted. */
export const MAX_HISTORY_BYTES = 1 << 20;
/** Most likes plus dislikes a history may hold. */
export const MAX_HISTORY_ITEMS = 10_000;
/** Longest item id accepted. */
export const MAX_ID_LENGTH = 256;

/** A history that cannot be used; `code` is 'history', the message says what is wrong. */
export class HistoryError extends Error {
  constructor(message) {
    super(message);
    this.name = 'HistoryError';
    this.code = 'history';
  }
}

function idList(value, field) {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new HistoryError(`${field} must be a list of item ids`);
  const seen = new Set();
  value.forEach((id, i) => {
    if (typeof id !== 'string') throw new HistoryError(`${field}[${i}] must be an item id as a string, found ${JSON.stringify(id)}`);
    if (id.length === 0 || id.length > MAX_ID_LENGTH) throw new HistoryError(`${field}[${i}] must be 1 to ${MAX_ID_LENGTH} characters long`);
    if (seen.has(id)) throw new HistoryError(`${field} lists ${JSON.stringify(id)} twice`);
    seen.add(id);
  });
  return value.slice();
}

function titles(value, known) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new HistoryError('items must be an object of {id: {title, year}}');
  const out = {};
  for (const [id, t] of Object.entries(value)) {
    if (!known.has(id)) continue; // titles of items no longer liked or disliked are not kept
    if (!t || typeof t !== 'object' || typeof t.title !== 'string') throw new HistoryError(`items[${JSON.stringify(id)}] must have a title string`);
    if (t.year !== undefined && t.year !== null && !Number.isInteger(t.year)) throw new HistoryError(`items[${JSON.stringify(id)}].year must be a whole number`);
    out[id] = { title: t.title.slice(0, 500), year: t.year ?? null };
  }
  return out;
}

/**
 * Checks a history (an exported file's text, or an object) and returns `{likes, dislikes,
 * items}`; throws HistoryError saying what is wrong. `file: true` also requires the export's
 * `format` and `version` fields.
 */
export function parseHistory(input, { file = true } = {}) {
  let data = input;
  if (typeof input === 'string') {
    if (new Blob([input]).size > MAX_HISTORY_BYTES) throw new HistoryError(`the file is larger than ${MAX_HISTORY_BYTES} bytes`);
    try {
      data = JSON.parse(input);
    } catch (err) {
      throw new HistoryError(`not JSON (${err.message})`);
    }
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new HistoryError('not a nook history (expected a JSON object)');
  if (file) {
    if (data.format !== HISTORY_FORMAT) throw new HistoryError(`not a nook history file (format is ${JSON.stringify(data.format)}, expected "${HISTORY_FORMAT}")`);
    if (data.version !== 1) throw new HistoryError(`history version ${JSON.stringify(data.version)} is not supported (this page reads version 1)`);
  }
  const likes = idList(data.likes, 'likes');
  const dislikes = idList(data.dislikes, 'dislikes');
  const both = likes.find((id) => dislikes.includes(id));
  if (both !== undefined) throw new HistoryError(`${JSON.stringify(both)} is both liked and disliked`);
  if (likes.length + dislikes.length > MAX_HISTORY_ITEMS) throw new HistoryError(`more than ${MAX_HISTORY_ITEMS} items`);
  return { likes, dislikes, items: titles(data.items, new Set([...likes, ...dislikes])) };
}

/** The history in `localStorage` under `key`. */
export class LocalHistory {
  constructor(key = 'nook.history.v1', storage = globalThis.localStorage) {
    this.key = key;
    this.storage = storage;
  }

  /**
   * The stored history (empty when there is none). A stored value that does not parse is left
   * where it is (copied to `key + '.unreadable'` before anything overwrites it) and an empty
   * history is returned with `unreadable: true`.
   */
  load() {
    const raw = this.storage.getItem(this.key);
    if (raw === null) return { likes: [], dislikes: [], items: {} };
    try {
      return parseHistory(raw, { file: false });
    } catch {
      if (this.storage.getItem(`${this.key}.unreadable`) === null) this.storage.setItem(`${this.key}.unreadable`, raw);
      return { likes: [], dislikes: [], items: {}, unreadable: true };
    }
  }

  /** Stores `history` (checked first: what does not parse is never stored). */
  save(history) {
    const clean = parseHistory(history, { file: false });
    this.storage.setItem(this.key, JSON.stringify(clean));
    return clean;
  }

  clear() {
    this.storage.removeItem(this.key);
  }

  /** The history as an export file's text (what `parseHistory` reads back). */
  static toFile(history) {
    const { likes, dislikes, items } = parseHistory(history, { file: false });
    return JSON.stringify({ format: HISTORY_FORMAT, version: 1, likes, dislikes, items }, null, 2);
  }
}
