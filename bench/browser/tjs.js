// The peer for nook's query embedding (driven by bench/browser_bench.mjs): Transformers.js with
// its wasm backend and q8 weights — the same all-MiniLM-L6-v2 converted to ONNX on this machine
// (bench/onnx_export.py) — mean pooling and normalisation as sentence-transformers does. One
// thread, or `?threads=N` (the harness serves this page cross-origin isolated, so onnxruntime-web
// can start its workers). Results land in window.results.
import { pipeline, env } from './tjs/transformers.js';
import { QUERIES, REPEATS, median } from './queries.js';

async function run() {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = '/models/'; // a path, not a URL: Transformers.js only probes local files by path
  env.backends.onnx.wasm.wasmPaths = new URL('./ort/', location.href).href;
  env.backends.onnx.wasm.numThreads = Number(new URLSearchParams(location.search).get('threads') || 1);
  const t0 = performance.now();
  const extractor = await pipeline('feature-extraction', 'all-MiniLM-L6-v2', { dtype: 'q8', device: 'wasm' });
  const results = { loadMs: performance.now() - t0, embed: {}, vectors: {}, isolated: crossOriginIsolated };
  for (const [name, text] of Object.entries(QUERIES)) {
    const first = await extractor(text, { pooling: 'mean', normalize: true });
    results.vectors[name] = Array.from(first.data);
    const times = [];
    for (let i = 0; i < REPEATS; i++) {
      const t = performance.now();
      await extractor(text, { pooling: 'mean', normalize: true });
      times.push(performance.now() - t);
    }
    results.embed[name] = median(times);
  }
  window.results = results;
  document.getElementById('out').textContent = JSON.stringify(results.embed, null, 2);
}

run().catch((e) => { window.results = { error: String(e && e.stack || e) }; });
