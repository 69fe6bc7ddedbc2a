// Scale test page (driven by tests/browser/scale.test.mjs): loads the bundle served at /bundle/
// with the wasm client, ranks once, and reports time and memory — the wasm linear memory (which
// never shrinks, so its final size is its peak) and the JS heap's peak, sampled every 20 ms
// (precise with Chromium's --enable-precise-memory-info). Results land in window.results.
import init, { NookClient } from '../nook/pkg/nook_wasm.js';

let peakHeap = 0;
const sample = () => { if (performance.memory) peakHeap = Math.max(peakHeap, performance.memory.usedJSHeapSize); };

async function run() {
  const timer = setInterval(sample, 20);
  const wasm = await init();
  const t0 = performance.now();
  const client = await NookClient.load(new URL('/bundle/', location.href).href, null);
  const loadMs = performance.now() - t0;
  const request = { likes: ['s1', 's50'], dislikes: ['s7'], query: 'a quiet film about lighthouse keepers', k: 10, diversity: 0 };
  const t1 = performance.now();
  const recs = client.recommend(request).items;
  const rankMs = performance.now() - t1;
  sample();
  clearInterval(timer);
  window.results = {
    items: client.itemCount(), loadMs, rankMs, ids: recs.map((r) => r.id),
    wasmBytes: wasm.memory.buffer.byteLength, peakHeapBytes: peakHeap,
  };
  document.getElementById('out').textContent = JSON.stringify(window.results, null, 2);
}

run().catch((e) => { window.results = { error: String(e && e.stack || e) }; });
