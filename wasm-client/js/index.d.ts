// Types of the nook browser package (index.js).

export type ErrorCode = 'bundle' | 'network' | 'request' | 'unknown_item' | 'disposed' | 'internal';

export class NookError extends Error {
  constructor(message: string, code: ErrorCode, options?: ErrorOptions);
  readonly code: ErrorCode;
}
/** The bundle could not be fetched (`network`) or is corrupt, tampered with or mismatched (`bundle`). */
export class BundleError extends NookError {}
/** A malformed request (`request`), or an unknown item where one is required (`unknown_item`). */
export class RequestError extends NookError {}
/** The instance was disposed (`disposed`). */
export class DisposedError extends NookError {}

export interface Progress {
  loaded: number;
  total: number;
  file: string;
}

export interface LoadOptions {
  onProgress?: (progress: Progress) => void;
  /** 'auto' (default) keeps the faster of WebGPU and the CPU on this device. */
  backend?: 'auto' | 'gpu' | 'cpu';
  /** false runs on the page's own thread instead of a Web Worker. Default true. */
  worker?: boolean;
  /**
   * 'auto' (default) runs the relaxed-SIMD build where the browser has it; 'simd128' the build
   * every browser runs. Both rank identically.
   */
  simd?: 'auto' | 'simd128';
  /**
   * 'auto' (default): where the page is cross-origin isolated (COOP/COEP) and runs relaxed SIMD,
   * the threaded build on up to 4 of the device's cores; a number asks for at most that many,
   * never more than the device's cores (1: one thread). Every build ranks identically.
   */
  threads?: 'auto' | number;
  /** false skips looking for a newer bundle after loading. Default true. */
  update?: boolean;
}

export interface ItemMeta {
  id: string;
  title: string;
  year: number | null;
  genres: string[];
}

export interface RecommendedItem extends ItemMeta {
  score: number;
  /** "because you liked …", "matches your search", "similar to …", "popular". */
  reason: string;
  reasonKind: 'liked' | 'search' | 'similar' | 'popular';
  /** The item behind a 'liked' or 'similar' reason. */
  because: string | null;
}

export interface RecommendRequest {
  /** Liked item ids, oldest first. */
  likes?: string[];
  dislikes?: string[];
  /** Free text, embedded on this device. */
  query?: string | null;
  /** How many results (1..1000). Default 10. */
  k?: number;
  /** 0 (default) ranks by relevance alone; up to 1 favours variety. */
  diversity?: number;
  /** How much the query counts (0..20); default the bundle's. */
  queryWeight?: number | null;
}

export interface Skipped {
  likes: string[];
  dislikes: string[];
}

export interface Recommendations {
  items: RecommendedItem[];
  /** Ids of the request the catalogue does not hold (left out, never an error). */
  skipped: Skipped;
  ms: number;
  backend: string;
  bundleId: string;
}

export interface Similar {
  items: RecommendedItem[];
  ms: number;
  bundleId: string;
}

export interface Manifest {
  format: string;
  version: number;
  dataset: string;
  model: string;
  n_items: number;
  cf_dim: number;
  text_dim: number;
  quant: 'int8' | 'f16' | 'f32';
  scoring: { query_weight: number; [key: string]: unknown };
  text_fields?: string[];
  metrics: { model: string; split: string; metric: string; value: number }[];
  files: Record<string, { sha256: string; bytes: number }>;
  [key: string]: unknown;
}

export interface UpdateDetail {
  bundleId: string;
  previous: string;
  manifest: Manifest;
  items: number;
  backend: string;
}

export class Nook extends EventTarget {
  static load(url: string | URL, options?: LoadOptions): Promise<Nook>;
  readonly manifest: Manifest;
  readonly bundleId: string;
  readonly itemCount: number;
  readonly backend: string;
  /** The wasm build running: 'relaxed' (relaxed SIMD) or 'simd128'. */
  readonly simd: 'relaxed' | 'simd128';
  /** How many threads embed a query (1 unless the threaded build runs). */
  readonly threads: number;
  readonly fromCache: boolean;
  /** Milliseconds per step of this bundle's load (`wasm`, `cache read`, `network` (both include
   * verifying the bytes), `cache write`, `build`, `backend`, `other`); steps the load did not take
   * are absent. */
  readonly loadTimings: Record<string, number>;
  recommend(request?: RecommendRequest): Promise<Recommendations>;
  similar(id: string, options?: { k?: number; exclude?: string[] }): Promise<Similar>;
  search(text: string, options?: { limit?: number }): Promise<ItemMeta[]>;
  items(ids: string[]): Promise<Record<string, ItemMeta>>;
  embed(text: string): Promise<Float32Array>;
  checkForUpdate(): Promise<boolean>;
  dispose(): void;
  addEventListener(type: 'update', listener: (event: CustomEvent<UpdateDetail>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'updateerror', listener: (event: CustomEvent<NookError>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}

export { parseHistory, LocalHistory, HistoryError, HISTORY_FORMAT, History } from './history.js';
