// Benchmark (by hand): nook in headless Chromium — query embedding against Transformers.js (wasm,
// q8, same weights), top-10 ranking (WebGPU, wasm SIMD, plain JS), bundle load time cold and warm.
// Prints tables.
//   node bench/browser_bench.mjs BUNDLE_DIR [ONNX_DIR]      (after scripts/build-wasm.sh)
// ONNX_DIR (default out/onnx/all-MiniLM-L6-v2) comes from bench/onnx_export.py.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { launch } from '../tests/browser/browser.mjs';

const bundle = process.argv[2];
const onnx = process.argv[3] || 'out/onnx/all-MiniLM-L6-v2';
if (!bundle) { console.error('usage: node bench/browser_bench.mjs BUNDLE_DIR [ONNX_DIR]'); process.exit(2); }
if (!fs.existsSync(path.join(onnx, 'onnx/model_quantized.onnx'))) {
  console.error(`${onnx}/onnx/model_quantized.onnx missing: bench/.venv-st/bin/python bench/onnx_export.py assets/models/all-MiniLM-L6-v2 ${onnx}`);
  process.exit(2);
}
const tjsModules = 'bench/transformersjs/node_modules';
if (!fs.existsSync(tjsModules)) execFileSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: 'bench/transformersjs', stdio: 'inherit' });

// The peer's page on its own plain static server (no CSP: Transformers.js is not written for one).
const peerRoot = fs.mkdtempSync('/tmp/nook-bench-tjs-');
fs.cpSync('bench/browser', peerRoot, { recursive: true });
fs.cpSync(path.join(tjsModules, '@huggingface/transformers/dist'), path.join(peerRoot, 'tjs'), { recursive: true });
fs.mkdirSync(path.join(peerRoot, 'ort'));
for (const f of fs.readdirSync(path.join(tjsModules, 'onnxruntime-web/dist'))) {
  if (/\.(wasm|mjs)$/.test(f)) fs.copyFileSync(path.join(tjsModules, 'onnxruntime-web/dist', f), path.join(peerRoot, 'ort', f));
}
fs.cpSync(onnx, path.join(peerRoot, 'models/all-MiniLM-L6-v2'), { recursive: true });
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const peer = http.createServer((req, res) => {
  const file = path.join(peerRoot, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  if (process.env.NOOK_BENCH_DEBUG) console.error(req.method, req.url);
  if (!file.startsWith(peerRoot) || !fs.existsSync(file) || !fs.statSync(file).isFile()) { res.writeHead(404); res.end(); return; }
  // Cross-origin isolated, as nook's page is under `nook serve`: onnxruntime-web needs it for threads.
  res.writeHead(200, {
    'Content-Type': types[path.extname(file)] || 'application/octet-stream',
    'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp',
  });
  fs.createReadStream(file).pipe(res);
});
await new Promise((resolve) => peer.listen(0, '127.0.0.1', resolve));
const peerBase = `http://127.0.0.1:${peer.address().port}/`;
const cosine = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) / Math.sqrt(a.reduce((s, x) => s + x * x, 0) * b.reduce((s, x) => s + x * x, 0));
const root = fs.mkdtempSync('/tmp/nook-bench-www-');
fs.cpSync('www', root, { recursive: true });
fs.cpSync('bench/browser', path.join(root, 'bench'), { recursive: true });
const nook = process.env.NOOK_BIN || 'target/release/nook';
const server = spawn(nook, ['serve', '--bundle', bundle, '--www', root, '--port', '0', '--log', 'warn']);
const base = await new Promise((resolve) => server.stdout.on('data', (d) => { const m = /serving on (\S+)/.exec(String(d)); if (m) resolve(m[1]); }));
console.log(`CPU: ${os.cpus()[0].model} (${os.cpus().length} cores); ${new Date().toISOString().slice(0, 10)}`);
const { page, close } = await launch({ args: ['--enable-unsafe-webgpu'] });
try {
  const runOnce = async (query = '') => {
    await page.goto(`${base}bench/bench.html${query}`);
    await page.waitForFunction(() => window.results, null, { timeout: 600_000 });
    return page.evaluate(() => window.results);
  };
  const cold = await runOnce();
  const warm = await runOnce(); // bundle files now come from the Cache API
  const simd128 = await runOnce('?simd=simd128&embed-only'); // the build for browsers without relaxed SIMD
  for (const name of Object.keys(warm.vectors)) {
    const same = warm.vectors[name].every((v, i) => v === simd128.vectors[name][i]);
    if (!same) throw new Error(`${name}: the relaxed-SIMD and SIMD128 builds embed differently`);
  }
  if (cold.error) throw new Error(cold.error);
  console.log(`bundle load (fetch + verify + build), cold: ${cold.loadMs.toFixed(0)} ms, warm (Cache API): ${warm.loadMs.toFixed(0)} ms`);
  await page.goto(`${peerBase}tjs.html`);
  await page.waitForFunction(() => window.results, null, { timeout: 600_000 });
  const tjs = await page.evaluate(() => window.results);
  if (tjs.error) throw new Error(`Transformers.js: ${tjs.error}`);
  console.log(`\nquery embedding, median of 30 (one thread each; Transformers.js model load ${tjs.loadMs.toFixed(0)} ms)`);
  console.log('cosine: nook\'s vector against the peer\'s (≈0.97 for a bundle with the frozen encoder: the peer\'s q8 rounding; lower for a fine-tuned one)');
  console.log('nook: the relaxed-SIMD build (what this browser loads), and the SIMD128 build (browsers without relaxed SIMD; same vectors, checked)');
  console.log(`${'query tokens'.padEnd(13)} ${'nook ms'.padStart(8)} ${'SIMD128 ms'.padStart(11)} ${'Transformers.js ms'.padStart(19)} ${'nook speed-up'.padStart(14)} ${'SIMD128 speed-up'.padStart(17)} ${'cosine'.padStart(7)}`);
  for (const name of Object.keys(warm.embed)) {
    const cos = warm.vectors[name].length === tjs.vectors[name].length ? cosine(warm.vectors[name], tjs.vectors[name]).toFixed(4) : 'n/a';
    const [nook, base128, peer] = [warm.embed[name], simd128.embed[name], tjs.embed[name]];
    console.log(`${name.padEnd(13)} ${nook.toFixed(2).padStart(8)} ${base128.toFixed(2).padStart(11)} ${peer.toFixed(2).padStart(19)} ${(peer / nook).toFixed(2).padStart(13)}x ${(peer / base128).toFixed(2).padStart(16)}x ${cos.padStart(7)}`);
  }
  console.log(`nook wasm memory after loading the bundle: ${warm.wasmMemoryMb.toFixed(1)} MB`);

  // Both on several threads: nook's threaded build (what a cross-origin isolated page loads) and
  // onnxruntime-web's workers; 2 (this machine's cores, if it has 2) and 4.
  for (const n of [...new Set([Math.min(os.cpus().length, 4), 4])].filter((k) => k > 1)) {
    const threaded = await runOnce(`?threads=${n}`);
    if (threaded.error) throw new Error(threaded.error);
    for (const name of Object.keys(warm.vectors)) {
      if (!warm.vectors[name].every((v, i) => v === threaded.vectors[name][i])) throw new Error(`${name}: the threaded build embeds differently`);
    }
    await page.goto(`${peerBase}tjs.html?threads=${n}`);
    await page.waitForFunction(() => window.results, null, { timeout: 600_000 });
    const peerN = await page.evaluate(() => window.results);
    if (peerN.error) throw new Error(`Transformers.js: ${peerN.error}`);
    console.log(`\n${n} threads asked of each (nook: ${threaded.threads} workers, never more than cores, in a worker as the package runs, same vectors as one thread: checked, wasm memory ${threaded.wasmMemoryMb.toFixed(1)} MB; Transformers.js cross-origin isolated: ${peerN.isolated}; this machine: ${os.cpus().length} cores)`);
    console.log(`${'query tokens'.padEnd(13)} ${'nook ms'.padStart(8)} ${'Transformers.js ms'.padStart(19)} ${'nook speed-up'.padStart(14)} ${'nook vs 1 thread'.padStart(17)}`);
    for (const name of Object.keys(threaded.embed)) {
      const [nook, peer] = [threaded.embed[name], peerN.embed[name]];
      console.log(`${name.padEnd(13)} ${nook.toFixed(2).padStart(8)} ${peer.toFixed(2).padStart(19)} ${(peer / nook).toFixed(2).padStart(13)}x ${(warm.embed[name] / nook).toFixed(2).padStart(16)}x`);
    }
  }
  console.log('');

  // Where nook's query-embedding time goes: a CPU profile of 50 embeddings of 64 tokens, self time by function.
  await page.goto(`${base}bench/bench.html?profile`);
  await page.waitForFunction(() => window.embedLoop, null, { timeout: 600_000 });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  await cdp.send('Profiler.start');
  await page.evaluate(() => window.embedLoop(64, 50));
  const { profile } = await cdp.send('Profiler.stop');
  const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName || '(anonymous)']));
  const self = new Map();
  profile.samples.forEach((id, i) => { const f = byNode.get(id); self.set(f, (self.get(f) || 0) + (profile.timeDeltas[i] || 0)); });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log('nook query embedding (64 tokens), CPU profile, self time:');
  for (const [f, t] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`  ${(100 * t / total).toFixed(1).padStart(5)}%  ${f.slice(0, 110)}`);
  }
  console.log('');
  console.log(`${'items'.padStart(8)} ${'dim'.padStart(4)} ${'JS loop ms'.padStart(11)} ${'wasm SIMD ms'.padStart(13)} ${'WebGPU ms'.padStart(10)} ${'SIMD vs JS'.padStart(11)}  adapter`);
  for (const r of warm.rank) {
    console.log(`${String(r.n).padStart(8)} ${String(r.dim).padStart(4)} ${r.jsMs.toFixed(2).padStart(11)} ${r.wasmMs.toFixed(2).padStart(13)} ${(r.gpuMs ?? NaN).toFixed(2).padStart(10)} ${(r.jsMs / r.wasmMs).toFixed(1).padStart(10)}x  ${r.adapter}`);
  }
} finally {
  await close();
  server.kill();
  peer.close();
}
