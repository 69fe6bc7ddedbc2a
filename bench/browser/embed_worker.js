// The threaded build's query embedding for bench/browser_bench.mjs, timed inside a Web Worker as
// the package runs it: there rayon's caller waits on `Atomics.wait`; on a page's main thread it
// would spin on a core its pool needs. Posts the same fields as bench.js's embedding part.
import { QUERIES, REPEATS, median } from './queries.js';

self.onmessage = async ({ data: { threads, bundle } }) => {
  try {
    const mod = await import('../nook/pkg-threads/nook_wasm.js');
    const wasm = await mod.default();
    // As the package does: never more threads than cores (its pool spins between products).
    await mod.initThreadPool(Math.min(threads, navigator.hardwareConcurrency || 1));
    const client = await mod.NookClient.load(bundle, null);
    const results = { build: 'pkg-threads', threads: mod.threadCount(), embed: {}, vectors: {} };
    // Shared by the pool's workers: one copy of the weights however many threads run.
    results.wasmMemoryMb = wasm.memory.buffer.byteLength / 1e6;
    for (const [name, text] of Object.entries(QUERIES)) {
      results.vectors[name] = Array.from(client.embed(text));
      const times = [];
      for (let i = 0; i < REPEATS; i++) {
        const t = performance.now();
        client.embed(text);
        times.push(performance.now() - t);
      }
      results.embed[name] = median(times);
    }
    self.postMessage(results);
  } catch (e) {
    self.postMessage({ error: String(e && e.stack || e) });
  }
};
