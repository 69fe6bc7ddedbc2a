// A million items in the browser: a synthetic 1M-item bundle (cf 64, text 64 + 64 query columns, int8; the test
// bundle's items repeated by `nook bench scale-bundle`) loads and ranks in headless Chromium within
// the memory budget documented in the README. scripts/browser-tests.sh sets NOOK_BIN and
// NOOK_BUNDLE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const nook = process.env.NOOK_BIN;
const source = process.env.NOOK_BUNDLE;
const skip = !(nook && source) && 'NOOK_BIN and NOOK_BUNDLE not set';
const artifacts = process.env.NOOK_ARTIFACTS || 'out/browser-tests';
const ITEMS = 1_000_000;
// The budget (README, "A million items"): wasm memory and peak JS heap, with headroom over what
// this machine measured (≈ 0.6 GiB wasm, ≈ 0.3 GiB JS heap).
const WASM_BUDGET = 1.0 * 2 ** 30;
const HEAP_BUDGET = 0.75 * 2 ** 30;

test('a 1M-item int8 bundle loads and ranks in the browser within the memory budget', { skip, timeout: 600_000 }, async () => {
  fs.mkdirSync(artifacts, { recursive: true });
  const bundle = path.join(artifacts, 'bundle-1m');
  execFileSync(nook, ['bench', 'scale-bundle', '--from', source, '--items', String(ITEMS), '--out', bundle, '--log', 'warn']);
  const www = fs.mkdtempSync(path.join(artifacts, 'www-scale-'));
  fs.cpSync('www', www, { recursive: true });
  fs.cpSync('tests/browser/scale', path.join(www, 'scale'), { recursive: true });
  const server = spawn(nook, ['serve', '--bundle', bundle, '--www', www, '--port', '0', '--log', 'warn']);
  const base = await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => { const m = /serving on (\S+)/.exec(String(d)); if (m) resolve(m[1]); });
    server.on('exit', (code) => reject(new Error(`nook serve exited with ${code}`)));
  });
  const { page, errors, close } = await launch({ args: ['--enable-precise-memory-info'] });
  try {
    // A page that fails to start (a module that does not load) fails the test at once.
    const broken = new Promise((_, reject) => {
      page.on('pageerror', (e) => reject(new Error(`the scale page failed: ${e}`)));
      page.on('console', (m) => { if (m.type() === 'error') reject(new Error(`the scale page failed: ${m.text()}`)); });
    });
    await page.goto(`${base}scale/scale.html`);
    await Promise.race([page.waitForFunction(() => window.results, null, { timeout: 540_000 }), broken]);
    const r = await page.evaluate(() => window.results);
    assert.ok(!r.error, r.error);
    const mib = (b) => (b / 2 ** 20).toFixed(0);
    const line = `${r.items} items: load ${r.loadMs.toFixed(0)} ms, rank ${r.rankMs.toFixed(0)} ms, wasm memory ${mib(r.wasmBytes)} MiB, peak JS heap ${mib(r.peakHeapBytes)} MiB`;
    console.log(line);
    fs.writeFileSync(path.join(artifacts, 'scale-memory.txt'), `${line}\n`);
    assert.equal(r.items, ITEMS);
    assert.equal(r.ids.length, 10);
    for (const id of ['s1', 's50', 's7']) assert.ok(!r.ids.includes(id), `${id} (liked or disliked) was recommended`);
    assert.ok(r.peakHeapBytes > 0, 'the JS heap was measured');
    assert.ok(r.wasmBytes <= WASM_BUDGET, `wasm memory ${mib(r.wasmBytes)} MiB over the budget ${mib(WASM_BUDGET)} MiB`);
    assert.ok(r.peakHeapBytes <= HEAP_BUDGET, `peak JS heap ${mib(r.peakHeapBytes)} MiB over the budget ${mib(HEAP_BUDGET)} MiB`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
    server.kill();
    fs.rmSync(www, { recursive: true, force: true });
    fs.rmSync(bundle, { recursive: true, force: true });
  }
});
