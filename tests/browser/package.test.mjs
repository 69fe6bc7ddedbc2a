// The browser package as a site gets it: `npm pack` of wasm-client/dist, installed from the tarball
// into a fresh folder, imported by the minimal example page (www/examples/minimal.*) in headless
// Chromium: ready, recommend, "more like this", search, typed errors, dispose.
// scripts/browser-tests.sh builds the package and sets NOOK_BIN and NOOK_BUNDLE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launch } from './browser.mjs';

const bin = process.env.NOOK_BIN;
const bundle = process.env.NOOK_BUNDLE;
const skip = !(bin && bundle && (process.env.NOOK_SERVER || 'nook') === 'nook') && 'needs NOOK_BIN and NOOK_BUNDLE';
const dist = 'wasm-client/dist';

// Chromium's dedicated-worker threads alive in its renderer processes (Linux /proc).
function workerThreads() {
  let n = 0;
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        if (fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').startsWith('DedicatedWorker')) n++;
      }
    } catch {
      // A process or thread that ended while being read.
    }
  }
  return n;
}

test('the npm tarball installs into a plain site and its example page works', { skip, timeout: 300_000 }, async () => {
  assert.ok(fs.existsSync(path.join(dist, 'package.json')), 'scripts/build-wasm.sh built the package');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nook-site-'));
  const packed = JSON.parse(execFileSync('npm', ['pack', path.resolve(dist), '--json', '--pack-destination', root], { encoding: 'utf8' }));
  const tarball = path.join(root, packed[0].filename);
  const files = packed[0].files.map((f) => f.path);
  for (const f of ['index.js', 'index.d.ts', 'worker.js', 'engine.js', 'history.js', 'pkg/nook_wasm.js', 'pkg/nook_wasm_bg.wasm', 'pkg-relaxed/nook_wasm.js', 'pkg-relaxed/nook_wasm_bg.wasm', 'pkg-threads/nook_wasm.js', 'pkg-threads/nook_wasm_bg.wasm']) {
    assert.ok(files.includes(f), `the tarball holds ${f}: ${files}`);
  }
  assert.ok(files.some((f) => f.startsWith('pkg-threads/snippets/') && f.endsWith('/workerHelpers.js')), `the tarball holds the pool's worker script: ${files}`);
  const site = path.join(root, 'site');
  fs.mkdirSync(site);
  fs.writeFileSync(path.join(site, 'package.json'), JSON.stringify({ name: 'a-site', private: true }));
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: site });
  const installed = JSON.parse(fs.readFileSync(path.join(site, 'node_modules/nook-client/package.json'), 'utf8'));
  assert.equal(installed.name, 'nook-client');
  // The example as a site would write it, importing the installed package.
  const js = fs.readFileSync('www/examples/minimal.js', 'utf8');
  assert.ok(js.split('\n').length < 60, 'the minimal example stays under 60 lines');
  fs.writeFileSync(path.join(site, 'minimal.js'), js.replace("'../nook/index.js'", "'./node_modules/nook-client/index.js'").replace("'../bundle/'", "'./bundle/'"));
  fs.copyFileSync('www/examples/minimal.html', path.join(site, 'index.html'));

  const server = spawn(bin, ['serve', '--bundle', bundle, '--www', site, '--port', '0', '--log', 'warn']);
  const base = await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => { const m = /serving on (\S+)/.exec(String(d)); if (m) resolve(m[1]); });
    server.on('exit', (code) => reject(new Error(`nook serve exited ${code}`)));
  });
  const { page, errors, close } = await launch();
  try {
    await page.goto(base);
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('ready'), null, { timeout: 120_000 });
    // The engine runs in a Web Worker; nook serve makes the page cross-origin isolated, so the
    // engine starts the threaded build's pool beside it (one worker per core, at most 4).
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const workers = page.workers().map((w) => new URL(w.url()).pathname);
    assert.equal(workerThreads(), 1 + Math.min(cores, 4), 'one thread per worker in the renderer');
    assert.equal(workers.filter((w) => w.endsWith('/nook-client/worker.js')).length, 1, `the engine's worker: ${workers}`);
    assert.equal(workers.filter((w) => w.endsWith('/workerHelpers.js')).length, Math.min(cores, 4), `the pool: ${workers}`);
    await page.waitForFunction(() => document.querySelectorAll('#recs li').length === 10);
    await page.fill('#search', 'star wa');
    await page.waitForFunction(() => document.querySelector('#hits li')?.textContent.startsWith('Star Wars'));
    await page.locator('#hits li button').first().click();
    await page.waitForFunction(() => [...document.querySelectorAll('#recs li')].some((li) => li.textContent.includes('because you liked Star Wars')));
    await page.waitForFunction(() => document.querySelectorAll('#more li').length === 5);
    assert.match(await page.textContent('#more-heading'), /More like Star Wars/);
    const more = await page.$$eval('#more li', (lis) => lis.map((li) => li.dataset.id));
    const recs = await page.$$eval('#recs li', (lis) => lis.map((li) => li.dataset.id));
    assert.ok(!more.includes('50') && !recs.includes('50'), 'the liked item is never shown');

    // The package's contract, from the page: plain objects, typed errors, dispose.
    const contract = await page.evaluate(async () => {
      const m = await import('./node_modules/nook-client/index.js');
      const nook = window.nook;
      const out = {};
      const r = await nook.recommend({ likes: ['50', 'withdrawn-id'], dislikes: ['gone'], k: 3 });
      out.recommend = { n: r.items.length, keys: Object.keys(r.items[0]).sort(), skipped: r.skipped };
      try { await nook.similar('withdrawn-id'); } catch (e) { out.unknown = { name: e.name, code: e.code, typed: e instanceof m.RequestError && e instanceof m.NookError }; }
      try { await nook.recommend({ k: 0 }); } catch (e) { out.badK = { code: e.code, message: e.message }; }
      out.embed = (await nook.embed('space opera')).length;
      nook.dispose();
      try { await nook.search('star'); } catch (e) { out.disposed = { name: e.name, code: e.code, typed: e instanceof m.DisposedError }; }
      try { await m.Nook.load('/no-bundle-here/'); } catch (e) { out.missing = { name: e.name, code: e.code }; }
      return out;
    });
    assert.equal(contract.recommend.n, 3);
    assert.deepEqual(contract.recommend.keys, ['because', 'genres', 'id', 'reason', 'reasonKind', 'score', 'title', 'year']);
    assert.deepEqual(contract.recommend.skipped, { likes: ['withdrawn-id'], dislikes: ['gone'] });
    assert.deepEqual(contract.unknown, { name: 'RequestError', code: 'unknown_item', typed: true });
    assert.equal(contract.badK.code, 'request');
    assert.match(contract.badK.message, /k must be between 1 and/);
    assert.equal(contract.embed, 384);
    assert.deepEqual(contract.disposed, { name: 'DisposedError', code: 'disposed', typed: true });
    assert.deepEqual(contract.missing, { name: 'BundleError', code: 'network' });
    await page.waitForFunction(() => true);
    // Playwright does not report the end of a worker that started workers of its own (the
    // engine's pool), so the renderer's worker threads are counted instead; they end within a
    // couple of seconds of terminate().
    let left = workerThreads();
    for (let i = 0; i < 100 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      left = workerThreads();
    }
    assert.equal(left, 0, 'dispose() ended the engine\'s worker and its pool (and the failed load\'s)');
    assert.deepEqual(errors.filter((e) => !e.includes('404')), []);
  } finally {
    await close();
    server.kill();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
