// nook in the browser: private recommendations computed on the visitor's device.
//
//   import { Nook } from 'nook-client';
//   const nook = await Nook.load('/bundle/', { onProgress });
//   const { items, skipped } = await nook.recommend({ likes, dislikes, query, k: 10 });
//   const more = await nook.similar(itemId, { k: 10 });
//   const hits = await nook.search('star wa');
//   nook.dispose();
//
// Everything runs in a Web Worker (the wasm engine, the bundle, the GPU); this module only
// passes plain objects to it and turns failures into NookError subclasses with a `code`.

/** Any failure of nook; `code` says which kind (see the subclasses). */
export class NookError extends Error {
  constructor(message, code, options) {
    super(message, options);
    this.name = 'NookError';
    this.code = code;
  }
}

/** The bundle could not be fetched (`code: 'network'`) or is corrupt, tampered with or
 * mismatched (`code: 'bundle'`). */
export class BundleError extends NookError {
  constructor(message, code = 'bundle', options) {
    super(message, code, options);
    this.name = 'BundleError';
  }
}

/** A request nook cannot answer: malformed (`code: 'request'`) or naming an item the catalogue
 * does not hold where one is required (`code: 'unknown_item'`, e.g. `similar`). */
export class RequestError extends NookError {
  constructor(message, code = 'request', options) {
    super(message, code, options);
    this.name = 'RequestError';
  }
}

/** The instance was disposed (`code: 'disposed'`). */
export class DisposedError extends NookError {
  constructor(message = 'this Nook was disposed', options) {
    super(message, 'disposed', options);
    this.name = 'DisposedError';
  }
}

function toError({ message, code }) {
  if (code === 'bundle' || code === 'network') return new BundleError(message, code);
  if (code === 'request' || code === 'unknown_item') return new RequestError(message, code);
  if (code === 'disposed') return new DisposedError(message);
  return new NookError(message, code || 'internal');
}

// Runs the engine in a module Worker beside this file.
class WorkerChannel {
  constructor(onEvent) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'nook' });
    this.pending = new Map();
    this.next = 1;
    this.worker.onmessage = ({ data }) => {
      if (data.event) return onEvent(data.event, data.detail);
      const waiting = this.pending.get(data.id);
      if (!waiting) return;
      this.pending.delete(data.id);
      if (data.error) waiting.reject(toError(data.error)); else waiting.resolve(data.value);
    };
    // A worker that fails to start (a script error, a blocked module) rejects everything pending.
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      this.fail(new NookError(`the nook worker failed: ${e.message || 'could not start'}`, 'internal'));
    };
  }

  call(op, args) {
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args });
    });
  }

  fail(error) {
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }

  close() {
    this.worker.terminate();
    this.fail(new DisposedError());
  }
}

// Runs the engine on this thread (`worker: false`): for pages that cannot start module workers.
class LocalChannel {
  constructor(onEvent) {
    this.engine = import('./engine.js').then(({ Engine }) => new Engine(onEvent));
  }

  async call(op, args) {
    const engine = await this.engine;
    try {
      return await engine.call(op, args);
    } catch (err) {
      throw toError({ message: String(err && err.message ? err.message : err), code: err && err.code });
    }
  }

  close() {
    this.engine.then((e) => e.dispose());
  }
}

/**
 * A loaded bundle. Events (it is an EventTarget): `update` when a newer bundle from the same
 * address has been verified and taken over (`event.detail`: `{bundleId, previous, manifest,
 * items, backend}`), `updateerror` when one was found but could not be used (the current bundle
 * stays).
 */
export class Nook extends EventTarget {
  #channel;
  #info;
  #disposed = false;

  constructor(channel, info) {
    super();
    this.#channel = channel;
    this.#info = info;
  }

  /**
   * Fetches (or takes from the browser's cache), verifies and opens the bundle at `url` (a
   * directory written by `nook export`, e.g. '/bundle/'). Options: `onProgress({loaded, total,
   * file})`; `backend`: 'auto' (default: the faster of WebGPU and the CPU), 'gpu' or 'cpu';
   * `worker`: false runs on this thread; `update`: false skips looking for a newer bundle;
   * `simd`: 'auto' (default: the relaxed-SIMD build where the browser has it) or 'simd128' (the
   * build every browser runs; the two rank identically, relaxed SIMD embeds queries faster);
   * `threads`: 'auto' (default: where the page is cross-origin isolated, the threaded build on up
   * to 4 of the device's cores) or a number (at most that many, never more than the device's
   * cores; 1: one thread). Every build ranks identically.
   */
  static async load(url, options = {}) {
    const { onProgress, backend = 'auto', simd = 'auto', threads = 'auto', worker = true, update = true } = options;
    if (!['auto', 'gpu', 'cpu'].includes(backend)) throw new RequestError(`backend must be 'auto', 'gpu' or 'cpu', got ${backend}`);
    if (!['auto', 'simd128'].includes(simd)) throw new RequestError(`simd must be 'auto' or 'simd128', got ${simd}`);
    if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1 && threads <= 64)) {
      throw new RequestError(`threads must be 'auto' or a whole number from 1 to 64, got ${threads}`);
    }
    const base = new URL(String(url), globalThis.location?.href);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    let nook = null;
    const early = [];
    const onEvent = (event, detail) => {
      if (event === 'progress') return onProgress?.(detail);
      if (nook) nook.#event(event, detail); else early.push([event, detail]);
    };
    const channel = worker ? new WorkerChannel(onEvent) : new LocalChannel(onEvent);
    try {
      const info = await channel.call('load', { url: base.href, backend, simd, threads, update });
      nook = new Nook(channel, info);
      for (const [event, detail] of early) nook.#event(event, detail);
      return nook;
    } catch (err) {
      channel.close();
      throw err;
    }
  }

  #event(event, detail) {
    if (event === 'update') {
      this.#info = detail;
      this.dispatchEvent(new CustomEvent('update', { detail }));
    } else if (event === 'update-error') {
      this.dispatchEvent(new CustomEvent('updateerror', { detail: toError(detail) }));
    }
  }

  #call(op, args) {
    if (this.#disposed) return Promise.reject(new DisposedError());
    return this.#channel.call(op, args);
  }

  /** The bundle's manifest: dataset, model, dimensions, scoring weights, metrics, files. */
  get manifest() { return this.#info.manifest; }
  /** SHA-256 of the manifest (which lists every file's SHA-256): changes with any change. */
  get bundleId() { return this.#info.bundleId; }
  /** Number of items in the catalogue. */
  get itemCount() { return this.#info.items; }
  /** The ranking backend in use, e.g. 'CPU, wasm SIMD' or 'WebGPU (…)'. */
  get backend() { return this.#info.backend; }
  /**
   * The wasm build running: 'relaxed' (relaxed SIMD) or 'simd128'. (Without a worker, the page's
   * first load picks the build for every later one.)
   */
  get simd() { return this.#info.simd; }
  /**
   * How many threads embed a query: more than 1 where the page is cross-origin isolated and the
   * threaded build started, else 1.
   */
  get threads() { return this.#info.threads; }
  /** Whether the bundle came from the browser's cache (a second visit) rather than the network. */
  get fromCache() { return this.#info.fromCache; }
  /**
   * Where this bundle's load spent its time, in milliseconds per step: `wasm` (starting the
   * engine), `cache read` and `network` (every file's SHA-256 is checked as its bytes arrive),
   * `cache write`, `build` (catalogue, tokenizer, encoder), `backend` (choosing the CPU or
   * WebGPU), `other`. Steps a load did not take are absent; a bundle that arrived by update has
   * none.
   */
  get loadTimings() { return { ...this.#info.timings }; }

  /**
   * Recommendations for a person: `{likes, dislikes}` (item ids, likes oldest first), `query`
   * (free text, embedded on this device), `k` (10), `diversity` (0..1), `queryWeight` (how much
   * the words count; default the bundle's). Resolves to `{items, skipped, ms, backend}`; ids the
   * catalogue does not hold are left out and listed in `skipped.likes` / `skipped.dislikes`.
   */
  async recommend(request = {}) {
    const out = await this.#call('recommend', request);
    this.#info.backend = out.backend;
    return out;
  }

  /** "More like this": the `k` items most like item `id` (`{items, ms}`), never `exclude`d ids. */
  similar(id, { k = 10, exclude = [] } = {}) {
    return this.#call('similar', { id, k, exclude });
  }

  /** Items whose title matches `text`, best first: `[{id, title, year, genres}]`. */
  search(text, { limit = 20 } = {}) {
    return this.#call('search', { text, limit });
  }

  /** Metadata of those `ids` the catalogue holds: `{[id]: {id, title, year, genres}}`. */
  items(ids) {
    return this.#call('items', { ids });
  }

  /** The query embedding of `text` (a unit-length Float32Array), computed on this device. */
  embed(text) {
    return this.#call('embed', { text });
  }

  /** Looks for a newer bundle now (one check runs after every load); resolves to whether one took over. */
  checkForUpdate() {
    return this.#call('checkForUpdate');
  }

  /** Frees the worker, the bundle's memory and GPU resources. Later calls reject with DisposedError. */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#channel.close();
  }
}

export { parseHistory, LocalHistory, HistoryError, HISTORY_FORMAT } from './history.js';
