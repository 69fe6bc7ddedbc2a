// Browser benchmark page (driven by bench/browser_bench.mjs): query embedding with nook's wasm
// encoder; top-10 over synthetic tables with nook WebGPU, nook wasm SIMD and a plain JavaScript
// loop over a Float32Array. Results land in window.results. `?simd=simd128` runs the SIMD128
// build instead of the relaxed-SIMD one; `?threads=N` only embeds, with the threaded build on N
// Web Workers (the page is cross-origin isolated under `nook serve`).
import { QUERIES, REPEATS, median } from './queries.js';

const params = new URLSearchParams(location.search);
const threads = Number(params.get('threads') || 1);
const build = params.get('simd') === 'simd128' ? 'pkg' : 'pkg-relaxed';
const { default: init, NookClient, RankBench } = await import(`../nook/${build}/nook_wasm.js`);

// The threaded build embeds in a worker (embed_worker.js), as the package runs it.
function threaded() {
  const worker = new Worker(new URL('./embed_worker.js', import.meta.url), { type: 'module' });
  worker.postMessage({ threads, bundle: new URL('../bundle/', location.href).href });
  return new Promise((resolve) => { worker.onmessage = ({ data }) => resolve(data); });
}

function jsTop10(table, n, dim, query) {
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let acc = 0;
    const base = i * dim;
    for (let j = 0; j < dim; j++) acc += table[base + j] * query[j];
    scores[i] = acc;
  }
  const best = [];
  for (let i = 0; i < n; i++) {
    if (best.length < 10 || scores[i] > best[best.length - 1][0]) {
      best.push([scores[i], i]);
      best.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      if (best.length > 10) best.pop();
    }
  }
  return best;
}

async function run() {
  const results = { build, embed: {}, vectors: {}, rank: [] };
  const t0 = performance.now();
  const wasm = await init();
  const client = await NookClient.load(new URL('../bundle/', location.href).href, null);
  results.loadMs = performance.now() - t0;
  // The wasm instance's memory once the bundle is loaded: the encoder's weights live here.
  results.wasmMemoryMb = wasm.memory.buffer.byteLength / 1e6;
  if (params.has('profile')) {
    // The harness profiles this loop alone (Chrome DevTools Protocol), after loading.
    window.embedLoop = (tokens, n) => { for (let i = 0; i < n; i++) client.embed(QUERIES[tokens]); };
    window.results = results;
    return;
  }
  for (const [name, text] of Object.entries(QUERIES)) {
    results.vectors[name] = Array.from(client.embed(text));
    const times = [];
    for (let i = 0; i < REPEATS; i++) { const t = performance.now(); client.embed(text); times.push(performance.now() - t); }
    results.embed[name] = median(times);
  }
  if (params.has('embed-only')) {
    window.results = results;
    return;
  }
  for (const n of [10000, 100000]) {
    const dim = 64;
    const bench = new RankBench(n, dim);
    const table = bench.table();
    const queries = [];
    for (let q = 0; q < 9; q++) queries.push(Float32Array.from({ length: dim }, (_, j) => Math.sin(q * 7 + j)));
    jsTop10(table, n, dim, queries[0]);
    const js = median(queries.map((q) => { const t = performance.now(); jsTop10(table, n, dim, q); return performance.now() - t; }));
    const wasm = bench.cpuMs(9);
    let gpu = null, adapter = null;
    try { adapter = await bench.initGpu(); await bench.gpuMs(2); gpu = await bench.gpuMs(9); } catch (e) { adapter = `unavailable: ${e}`; }
    results.rank.push({ n, dim, jsMs: js, wasmMs: wasm, gpuMs: gpu, adapter });
  }
  window.results = results;
  document.getElementById('out').textContent = JSON.stringify(results, null, 2);
}

if (threads > 1) threaded().then((r) => { window.results = r; });
else run().catch((e) => { window.results = { error: String(e) }; });
