// The engine behind `Nook`: owns the wasm client (nook-core compiled to WebAssembly) and answers
// operations on it. It runs inside the package's Web Worker (worker.js), or on the page's own
// thread with `Nook.load(url, { worker: false })`. All ranking, embedding and verification is
// nook-core's; this file only sequences loading, updates and calls.

// The smallest module using relaxed SIMD (one `i32x4.relaxed_dot_i8x16_i7x16_add_s` on constant
// zeros): it validates exactly where the relaxed-SIMD build can run.
const ZEROS = [0xfd, 0x0c, ...new Array(16).fill(0)];
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00,
  0x0a, 0x3d, 0x01, 0x3b, 0x00, ...ZEROS, ...ZEROS, ...ZEROS, 0xfd, 0x93, 0x02, 0x0b,
]);

/** Whether this browser runs wasm relaxed SIMD (the service worker asks too). */
export function hasRelaxedSimd() {
  try {
    return WebAssembly.validate(RELAXED_PROBE);
  } catch {
    return false;
  }
}

// How many Web Workers the threaded build should start, or 0 for a single-thread build. Workers
// sharing wasm memory need a cross-origin isolated page (COOP/COEP; `nook serve` sends both) and
// a caller that may block (the engine's own worker: the page's main thread may not wait on a
// lock). 'auto' takes the device's cores, at most 4: one query's products are too small to share
// further. Never more threads than cores: the pool's threads spin between a query's products, so
// a thread without a core of its own only takes time from the others.
function threadsFor(simd, threads) {
  if (simd === 'simd128' || threads === 1) return 0;
  const inWorker = typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope;
  if (!globalThis.crossOriginIsolated || !inWorker || !hasRelaxedSimd()) return 0;
  const cores = navigator.hardwareConcurrency || 1;
  const n = Math.min(threads === 'auto' ? 4 : threads, cores);
  return n > 1 ? n : 0;
}

// Three builds of the same client, alike but for the encoder's integer kernel and threads:
// pkg-threads/ (relaxed SIMD on a pool of workers) where the page is cross-origin isolated,
// pkg-relaxed/ (relaxed SIMD: 16 byte products per instruction) where the browser has it, pkg/
// (SIMD128) elsewhere or when the page asks for it. All compute the same exact integer sums and
// the same float sums in the same order: they embed and rank alike, to the bit.
let ready = null;
function wasm(simd, threads) {
  ready ??= (async () => {
    const pool = threadsFor(simd, threads);
    if (pool > 0) {
      try {
        const mod = await import('./pkg-threads/nook_wasm.js');
        await mod.default();
        await mod.initThreadPool(pool);
        return { NookClient: mod.NookClient, simd: 'relaxed', threads: mod.threadCount() };
      } catch (err) {
        console.warn(`nook: the threaded build did not start (${err.message || err}); using one thread`);
      }
    }
    if (simd !== 'simd128' && hasRelaxedSimd()) {
      try {
        const mod = await import('./pkg-relaxed/nook_wasm.js');
        await mod.default();
        return { NookClient: mod.NookClient, simd: 'relaxed', threads: 1 };
      } catch (err) {
        // A build that validates the probe but will not start (a site that did not deploy
        // pkg-relaxed/, a browser bug): the plain build ranks identically.
        console.warn(`nook: the relaxed-SIMD build did not start (${err.message || err}); using SIMD128`);
      }
    }
    const mod = await import('./pkg/nook_wasm.js');
    await mod.default();
    return { NookClient: mod.NookClient, simd: 'simd128', threads: 1 };
  })();
  return ready;
}

// The fields of a result as the package returns them (camelCase, as JavaScript reads).
function item(r) {
  return {
    id: r.id, title: r.title, year: r.year ?? null, genres: r.genres || [], score: r.score,
    reason: r.reason, reasonKind: r.reason_kind, because: r.because ?? null,
  };
}

function meta(m) {
  return { id: m.id, title: m.title, year: m.year ?? null, genres: m.genres || [] };
}

function ids(value, what) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw Object.assign(new Error(`${what} must be an array of item ids`), { code: 'request' });
  return value.map(String);
}

export class Engine {
  constructor(emit) {
    this.emit = emit; // (event, detail) => void
    this.client = null;
    this.prefer = 'auto';
    this.simd = null;
    this.threads = 1;
    this.updating = null;
  }

  describe(timings = {}) {
    const c = this.client;
    return {
      manifest: c.manifest(), bundleId: c.bundleId(), items: c.itemCount(), backend: c.backend(), simd: this.simd,
      threads: this.threads,
      fromCache: c.fromCache(), timings,
    };
  }

  async load({ url, backend = 'auto', simd = 'auto', threads = 'auto', update = true }) {
    // Where the load's time goes, step by step (milliseconds), for the page and its developer.
    let mark = performance.now();
    const timings = {};
    const step = (name) => {
      const now = performance.now();
      timings[name] = (timings[name] || 0) + (now - mark);
      mark = now;
    };
    const { NookClient, simd: build, threads: pool } = await wasm(simd, threads);
    this.simd = build;
    this.threads = pool;
    step('wasm');
    this.prefer = backend;
    const progress = (loaded, total, file) => this.emit('progress', { loaded, total, file });
    this.client = await NookClient.load(url, progress);
    const inside = Object.fromEntries(this.client.loadTimings());
    const bundleMs = performance.now() - mark;
    Object.assign(timings, inside);
    timings.other = Math.max(0, bundleMs - Object.values(inside).reduce((a, b) => a + b, 0));
    mark = performance.now();
    this.emit('progress', { loaded: 1, total: 1, file: 'choosing the ranking backend' });
    await this.client.initBackend(backend);
    step('backend');
    if (update) this.updating = this.checkForUpdate().catch((err) => this.emit('update-error', { message: String(err.message || err), code: err.code }));
    return this.describe(timings);
  }

  // A newer bundle at the same address is fetched and verified while the current one keeps
  // answering, then takes over; listeners get an 'update' event.
  async checkForUpdate() {
    const current = this.client;
    const next = await current.checkForUpdate((loaded, total, file) => this.emit('update-progress', { loaded, total, file }));
    if (!next || this.client !== current) return false;
    await next.initBackend(this.prefer);
    const previous = current.bundleId();
    this.client = next;
    current.releaseGpu();
    current.free();
    this.emit('update', { ...this.describe(), previous });
    return true;
  }

  async call(op, args) {
    if (op === 'load') return this.load(args);
    if (!this.client) throw Object.assign(new Error('no bundle loaded'), { code: 'internal' });
    const c = this.client;
    switch (op) {
      case 'recommend': {
        const r = args || {};
        const request = {
          likes: ids(r.likes, 'likes'), dislikes: ids(r.dislikes, 'dislikes'), query: r.query ?? null,
          k: r.k ?? 10, diversity: r.diversity ?? 0, query_weight: r.queryWeight ?? null,
        };
        const start = performance.now();
        const out = await c.recommendAsync(request);
        return { items: out.items.map(item), skipped: out.skipped, ms: performance.now() - start, backend: c.backend(), bundleId: c.bundleId() };
      }
      case 'similar': {
        const start = performance.now();
        const out = c.similar(String(args.id), args.k ?? 10, ids(args.exclude, 'exclude'));
        return { items: out.map(item), ms: performance.now() - start, bundleId: c.bundleId() };
      }
      case 'search':
        return c.search(String(args.text ?? ''), args.limit ?? 20).map(meta);
      case 'items': {
        const found = c.items(ids(args.ids, 'ids'));
        return Object.fromEntries(Object.entries(found).map(([id, m]) => [id, meta(m)]));
      }
      case 'embed':
        return c.embed(String(args.text ?? ''));
      case 'checkForUpdate':
        return this.checkForUpdate();
      case 'dispose':
        this.dispose();
        return true;
      default:
        throw Object.assign(new Error(`unknown operation ${op}`), { code: 'internal' });
    }
  }

  dispose() {
    if (this.client) {
      this.client.releaseGpu();
      this.client.free();
      this.client = null;
    }
  }
}

// Errors cross the worker boundary as plain objects.
export function errorData(err) {
  return { message: String(err && err.message ? err.message : err), code: (err && err.code) || 'internal' };
}
