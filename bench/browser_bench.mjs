// Benchmark (by hand): nook in headless Chromium — query embedding, top-10 ranking (WebGPU, wasm
// SIMD, plain JS), bundle load time cold and warm. Prints a table.
//   node bench/browser_bench.mjs BUNDLE_DIR      (after scripts/build-wasm.sh)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch } from '../tests/browser/browser.mjs';

const bundle = process.argv[2];
if (!bundle) { console.error('usage: node bench/browser_bench.mjs BUNDLE_DIR'); process.exit(2); }
const root = fs.mkdtempSync('/tmp/nook-bench-www-');
fs.cpSync('www', root, { recursive: true });
fs.cpSync('bench/browser', path.join(root, 'bench'), { recursive: true });
const nook = process.env.NOOK_BIN || 'target/release/nook';
const server = spawn(nook, ['serve', '--bundle', bundle, '--www', root, '--port', '0', '--log', 'warn']);
const base = await new Promise((resolve) => server.stdout.on('data', (d) => { const m = /serving on (\S+)/.exec(String(d)); if (m) resolve(m[1]); }));
const { page, close } = await launch({ args: ['--enable-unsafe-webgpu'] });
try {
  const runOnce = async () => {
    await page.goto(`${base}bench/bench.html`);
    await page.waitForFunction(() => window.results, null, { timeout: 600_000 });
    return page.evaluate(() => window.results);
  };
  const cold = await runOnce();
  const warm = await runOnce(); // bundle files now come from the Cache API
  if (cold.error) throw new Error(cold.error);
  console.log(`bundle load (fetch + verify + build), cold: ${cold.loadMs.toFixed(0)} ms, warm (Cache API): ${warm.loadMs.toFixed(0)} ms`);
  console.log(`query embedding, median of 50: short (≤16 tokens) ${warm.embed.short.toFixed(1)} ms, long (~40 tokens) ${warm.embed.long.toFixed(1)} ms`);
  console.log(`${'items'.padStart(8)} ${'dim'.padStart(4)} ${'JS loop ms'.padStart(11)} ${'wasm SIMD ms'.padStart(13)} ${'WebGPU ms'.padStart(10)} ${'SIMD vs JS'.padStart(11)}  adapter`);
  for (const r of warm.rank) {
    console.log(`${String(r.n).padStart(8)} ${String(r.dim).padStart(4)} ${r.jsMs.toFixed(2).padStart(11)} ${r.wasmMs.toFixed(2).padStart(13)} ${(r.gpuMs ?? NaN).toFixed(2).padStart(10)} ${(r.jsMs / r.wasmMs).toFixed(1).padStart(10)}x  ${r.adapter}`);
  }
} finally {
  await close();
  server.kill();
}
