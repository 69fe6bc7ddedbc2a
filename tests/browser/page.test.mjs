// The page end to end in headless Debian Chromium (playwright-core, never a downloaded browser),
// against `nook serve` with a bundle trained by the test pipeline (scripts/browser-tests.sh sets
// NOOK_PAGE_URL, NOOK_BIN and NOOK_BUNDLE), and again against nginx with the deploy guide's
// configuration (NOOK_SERVER=nginx: the checks that need nook's own binary are skipped there).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launch } from './browser.mjs';

const url = process.env.NOOK_PAGE_URL;
const skip = !url && 'NOOK_PAGE_URL not set';
const server = process.env.NOOK_SERVER || 'nook';
// Checks that start their own `nook serve` run once, in the nook serve pass.
const nookOnly = skip || (server !== 'nook' && `needs nook serve (this pass serves with ${server})`);
const artifacts = process.env.NOOK_ARTIFACTS || 'out/browser-tests';

async function ready(page, target = url) {
  const start = Date.now();
  await page.goto(target);
  await page.waitForFunction(() => /^(ready|could not)/.test(document.getElementById('status').textContent), null, { timeout: 120_000 });
  assert.match(await page.textContent('#status'), /^ready/, await page.textContent('#error'));
  await page.waitForSelector('#recs li');
  return Date.now() - start;
}

async function likeByTitle(page, title) {
  await page.fill('#search', title);
  const first = page.locator('#search-results li').first();
  await first.waitFor();
  await page.waitForFunction((t) => {
    const li = document.querySelector('#search-results li');
    return li && li.querySelector('.title').textContent.toLowerCase().startsWith(t.toLowerCase());
  }, title);
  const id = await first.getAttribute('data-id');
  await first.locator('button.like').click();
  return id;
}

const shownIds = (page) => page.$$eval('#recs li', (lis) => lis.map((li) => li.dataset.id));

async function waitForRecs(page, predicate, arg) {
  await page.waitForFunction(predicate, arg, { timeout: 30_000 });
}

// The list once it has stopped changing: a like re-ranks, and the list from the like before can
// already satisfy a condition while the latest ranking is still on its way.
async function settledIds(page) {
  let last = await shownIds(page);
  for (let i = 0; i < 40; i++) {
    await page.waitForTimeout(250);
    const now = await shownIds(page);
    if (JSON.stringify(now) === JSON.stringify(last)) return now;
    last = now;
  }
  return last;
}

test('loads, says ready, and three likes give ten recommendations, none liked', { skip }, async () => {
  const { page, errors, close } = await launch();
  try {
    await ready(page);
    const liked = [];
    for (const title of ['Star Wars', 'Toy Story', 'Fargo']) liked.push(await likeByTitle(page, title));
    await waitForRecs(page, (ids) => {
      const shown = [...document.querySelectorAll('#recs li')].map((li) => li.dataset.id);
      return shown.length === 10 && shown.every((id) => !ids.includes(id))
        && [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent.startsWith('because you liked'));
    }, liked);
    const shown = await shownIds(page);
    assert.equal(shown.length, 10);
    for (const id of liked) assert.ok(!shown.includes(id), `liked item ${id} was recommended`);
    assert.match(await page.textContent('#recs-info'), /ranked \d+ items on this device in \d+ ms/);

    // Dislike the top recommendation: it leaves the list.
    const top = page.locator('#recs li').first();
    const disliked = await top.getAttribute('data-id');
    await top.locator('button.dislike').click();
    await waitForRecs(page, (id) => ![...document.querySelectorAll('#recs li')].some((li) => li.dataset.id === id)
      && document.querySelectorAll('#recs li').length === 10, disliked);

    fs.mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'page.png'), fullPage: true });
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});

test('a query changes the list and results say they match it', { skip }, async () => {
  const { page, errors, close } = await launch();
  try {
    await ready(page);
    await likeByTitle(page, 'Star Wars');
    await waitForRecs(page, () => document.querySelectorAll('#recs .reason').length === 10
      && [...document.querySelectorAll('#recs .reason')].every((r) => r.textContent.startsWith('because')));
    const before = await shownIds(page);
    await page.fill('#query', 'zombies and horror');
    await waitForRecs(page, () => [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent === 'matches your search'));
    const after = await shownIds(page);
    assert.notDeepEqual(after, before, 'the query changed the list');
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('with three likes a typed mood fills at least half the list, and "how much should your words count" steers it', { skip }, async () => {
  const { page, errors, close } = await launch();
  try {
    await ready(page);
    // The demo bundle's text is title, year and genres: the page says so.
    assert.match(await page.textContent('#query-fields'), /matched against each item's title, year and genres/);
    for (const title of ['Star Wars', 'Toy Story', 'Fargo']) await likeByTitle(page, title);
    await waitForRecs(page, () => document.querySelectorAll('#recs .reason').length === 10
      && [...document.querySelectorAll('#recs .reason')].every((r) => r.textContent.startsWith('because')));
    const historyOnly = await settledIds(page);
    const horror = () => page.$$eval('#recs li .meta', (m) => m.filter((e) => /\bHorror\b/.test(e.textContent)).length);
    assert.ok(await horror() < 5, 'the likes alone are not horror films');

    await page.fill('#query', 'a scary horror movie');
    await waitForRecs(page, () => [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent === 'matches your search'));
    // The list may still be settling as the reasons appear: give it a moment to show five,
    // then report how many it shows.
    await page.waitForFunction(() => [...document.querySelectorAll('#recs li .meta')].filter((e) => /\bHorror\b/.test(e.textContent)).length >= 5,
      null, { timeout: 10_000 }).catch(() => {});
    const matching = await horror();
    assert.ok(matching >= 5, `only ${matching} of 10 recommendations are horror films`);

    // Words weighed at 0 leave the history's list; weighed more, they take more of it.
    await page.$eval('#query-weight', (el) => { el.value = '0'; el.dispatchEvent(new Event('input')); });
    await waitForRecs(page, (ids) => JSON.stringify([...document.querySelectorAll('#recs li')].map((li) => li.dataset.id)) === JSON.stringify(ids), historyOnly);
    assert.equal(await page.textContent('#query-weight-value'), '0 (ignored)');
    await page.$eval('#query-weight', (el) => { el.value = '6'; el.dispatchEvent(new Event('input')); });
    await waitForRecs(page, (n) => [...document.querySelectorAll('#recs li .meta')].filter((e) => /\bHorror\b/.test(e.textContent)).length >= n, matching);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('history survives a reload, exports exactly the likes, imports them back, and deletes', { skip }, async () => {
  const { page, errors, close } = await launch();
  try {
    await ready(page);
    const liked = [await likeByTitle(page, 'Toy Story'), await likeByTitle(page, 'Heat')];
    await page.reload();
    await ready(page, page.url());
    const kept = await page.evaluate(() => JSON.parse(localStorage.getItem('nook.history.v1')).likes);
    assert.deepEqual(kept, liked);
    assert.match(await page.textContent('#history'), /liked: Toy Story/);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-history')]);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nook-export-')), 'history.json');
    await download.saveAs(file);
    const exported = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(exported.likes, liked, 'export holds exactly the liked ids');
    assert.deepEqual(exported.dislikes, []);

    await page.click('#clear-history');
    await waitForRecs(page, () => [...document.querySelectorAll('#recs .reason')].every((r) => r.textContent === 'popular'));
    assert.equal(await page.evaluate(() => localStorage.getItem('nook.history.v1')), null, 'storage is empty');
    assert.match(await page.textContent('#history'), /Nothing stored yet/);

    await page.setInputFiles('#import-file', file);
    await waitForRecs(page, () => [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent.startsWith('because you liked')));
    assert.deepEqual(await page.evaluate(() => JSON.parse(localStorage.getItem('nook.history.v1')).likes), liked);

    // Bad files are refused with a reason, and what is stored stays exactly as it was.
    const stored = await page.evaluate(() => localStorage.getItem('nook.history.v1'));
    const bad = [
      [{ format: 'nook-history', version: 1, likes: [50], dislikes: [] }, /likes\[0\] must be an item id as a string/],
      [{ format: 'nook-history', version: 1, likes: ['50'], dislikes: ['50'] }, /"50" is both liked and disliked/],
      [{ likes: ['50'] }, /not a nook history file/],
      ['{"format": "nook-history", "likes": [', /not JSON/],
      [{ format: 'nook-history', version: 1, likes: ['x'.repeat(1 << 20)] }, /larger than/],
    ];
    for (const [content, reason] of bad) {
      const badFile = path.join(path.dirname(file), 'bad.json');
      fs.writeFileSync(badFile, typeof content === 'string' ? content : JSON.stringify(content));
      await page.setInputFiles('#import-file', badFile);
      await page.waitForFunction(() => !document.getElementById('error').hidden);
      assert.match(await page.textContent('#error'), reason);
      assert.match(await page.textContent('#error'), /Your stored history was not changed/);
      assert.equal(await page.evaluate(() => localStorage.getItem('nook.history.v1')), stored, 'storage unchanged');
      await page.evaluate(() => { document.getElementById('error').hidden = true; });
    }
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('privacy: after loading, liking, querying and ranking make no network request', { skip }, async () => {
  const { context, page, errors, close } = await launch();
  const requests = [];
  context.on('request', (r) => requests.push({ url: r.url(), body: r.postData(), after: loaded }));
  let loaded = false;
  try {
    await ready(page);
    loaded = true;
    const query = 'quiet films about lighthouse keepers';
    const liked = [await likeByTitle(page, 'Star Wars'), await likeByTitle(page, 'Fargo')];
    await page.fill('#query', query);
    await waitForRecs(page, () => [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent === 'matches your search'));
    await page.locator('#recs li button.dislike').first().click();
    await page.fill('#diversity', '0.5');
    await page.waitForTimeout(500);
    // The worker's own fetches are observed (so silence afterwards means something).
    assert.ok(requests.some((r) => r.url.endsWith('/bundle/manifest.json')), 'bundle fetches were seen');
    const late = requests.filter((r) => r.after);
    assert.deepEqual(late.map((r) => r.url), [], 'no request after the bundle loaded');
    for (const r of requests) {
      assert.equal(r.body ?? null, null, `${r.url} carried a body`);
      assert.ok(!decodeURIComponent(r.url).includes(query) && !r.url.includes('lighthouse'), `${r.url} carries the query`);
      for (const id of liked) assert.ok(!new RegExp(`[=/&?]${id}([&/?#]|$)`).test(new URL(r.url).pathname + new URL(r.url).search), `${r.url} names liked item ${id}`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('keyboard only: search, like and read recommendations', { skip }, async () => {
  const { page, errors, close } = await launch();
  try {
    await ready(page);
    for (let i = 0; i < 30 && await page.evaluate(() => document.activeElement.id) !== 'search'; i++) await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'search', 'the search box is reachable with Tab');
    await page.keyboard.type('Star Wars');
    await page.waitForFunction(() => document.querySelector('#search-results li .title')?.textContent.startsWith('Star Wars'));
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'like', 'Tab reaches the first Like button');
    await page.keyboard.press('Enter');
    await waitForRecs(page, () => [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent === 'because you liked Star Wars'));
    const labels = await page.$$eval('#recs li button.like', (bs) => bs.map((b) => b.getAttribute('aria-label')));
    assert.equal(labels.length, 10);
    assert.ok(labels.every((l) => l.startsWith('Like ')), 'every control is labelled');
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('hostile titles render as inert text', { skip: nookOnly }, async () => {
  const bin = process.env.NOOK_BIN;
  const source = process.env.NOOK_BUNDLE;
  assert.ok(bin && source, 'NOOK_BIN and NOOK_BUNDLE are set by scripts/browser-tests.sh');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nook-xss-'));
  fs.cpSync(source, dir, { recursive: true });
  const items = JSON.parse(fs.readFileSync(path.join(dir, 'items.json'), 'utf8'));
  const payloads = ['<img src=x onerror="window.__pwned=1">', '<script>window.__pwned=2</script>', '"><svg onload=window.__pwned=3>'];
  items.slice(0, 60).forEach((item, i) => { item.title = `${payloads[i % 3]} ${item.title}`; item.genres = ['<b>bold</b>']; });
  const bytes = Buffer.from(JSON.stringify(items));
  fs.writeFileSync(path.join(dir, 'items.json'), bytes);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  manifest.files['items.json'] = { sha256: crypto.createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
  // Re-sealed as the exporter does: the id is the SHA-256 of the manifest with an empty id.
  manifest.id = '';
  const unsealed = JSON.stringify(manifest);
  const id = crypto.createHash('sha256').update(unsealed).digest('hex');
  fs.writeFileSync(path.join(dir, 'manifest.json'), unsealed.replace('"id":""', `"id":"${id}"`));

  const server = spawn(bin, ['serve', '--bundle', dir, '--www', 'www', '--port', '0', '--log', 'warn']);
  const base = await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => { const m = /serving on (\S+)/.exec(String(d)); if (m) resolve(m[1]); });
    server.on('exit', (code) => reject(new Error(`nook serve exited ${code}`)));
  });
  const { page, errors, close } = await launch();
  try {
    await ready(page, base);
    await page.fill('#search', 'img');
    await page.waitForSelector('#search-results li');
    await page.locator('#search-results li button.like').first().click();
    await page.waitForTimeout(500);
    const titles = await page.$$eval('#search-results .title, #recs .title', (els) => els.map((e) => e.textContent));
    assert.ok(titles.some((t) => t.includes('<img src=x')), 'the payload is shown as text');
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no payload ran');
    const history = await page.$eval('#history', (el) => el.textContent);
    assert.ok(history.includes('<img src=x') || history.includes('<script>') || history.includes('<svg'), `the liked payload is listed as text in the history: ${history}`);
    // Under the CSP an injected handler could not run anyway, so the DOM is what can fail here:
    // no element, and no handler attribute, may come from a title anywhere on the page.
    const injected = await page.evaluate(() => document.querySelectorAll('img, svg, b, main script, #history script, [onerror], [onload]').length);
    assert.equal(injected, 0, 'no element was created from a title (search, recommendations, history)');
    assert.deepEqual(errors.filter((e) => !e.includes('Content Security Policy')), []);
  } finally {
    await close();
    server.kill();
  }
});

test('a second visit shows recommendations quickly', { skip: nookOnly }, async () => {
  const { page, close } = await launch();
  try {
    await ready(page);
    const ms = await ready(page, url);
    // The page records where the load's time went; a second visit reads (and verifies) the
    // bundle from the cache and downloads none of it.
    const timings = JSON.parse(await page.$eval('#status', (e) => e.dataset.loadTimings));
    const steps = Object.entries(timings).map(([s, t]) => `${s} ${t.toFixed(0)} ms`).join(', ');
    console.log(`# second visit: first recommendations ${ms} ms after opening the page (in the worker: ${steps})`);
    for (const step of ['wasm', 'cache read', 'build', 'backend']) assert.ok(timings[step] >= 0, `load timings lack ${step}: ${steps}`);
    assert.equal(timings.network, undefined, `the second visit downloaded bundle files: ${steps}`);
    assert.match(await page.getAttribute('#status', 'title'), /^loaded in wasm \d+ ms, cache read \d+ ms/);
    fs.mkdirSync(artifacts, { recursive: true });
    fs.writeFileSync(path.join(artifacts, 'second-visit-ms.txt'), `${ms}\n`);
  } finally {
    await close();
  }
});

test('second visit works offline from the caches, and a corrupted cache entry is replaced', { skip }, async () => {
  const { context, page, errors, close } = await launch();
  try {
    await ready(page);
    // The service worker has cached the page's files (install done, activated) before going on.
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    await page.reload();
    await ready(page, page.url());
    assert.ok(await page.evaluate(() => navigator.serviceWorker.controller !== null), 'the page is controlled by the service worker');
    const shell = await page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith('nook-app-')));
    assert.equal(shell.length, 1, `one versioned set of the page's files: ${shell}`);
    const keys = await page.evaluate(async () => (await (await caches.open('nook-bundle-v1')).keys()).map((r) => r.url));
    assert.ok(keys.some((k) => k.includes('/bundle/items.json?sha256=')), `bundle files are cached: ${keys}`);

    await context.setOffline(true);
    await page.reload();
    await ready(page, page.url());
    await likeByTitle(page, 'Star Wars');
    await waitForRecs(page, () => [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent === 'because you liked Star Wars'));
    await context.setOffline(false);

    // Corrupt the cached items.json: the next load notices, drops it and fetches it again.
    const key = keys.find((k) => k.includes('/bundle/items.json?sha256='));
    await page.evaluate(async (k) => (await caches.open('nook-bundle-v1')).put(k, new Response('[{"id":"evil","title":"tampered"}]')), key);
    const warnings = [];
    page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
    await page.reload();
    await ready(page, page.url());
    assert.ok(warnings.some((w) => w.includes('cached items.json failed verification')), `warnings: ${warnings}`);
    const repaired = await page.evaluate(async (k) => (await (await caches.open('nook-bundle-v1')).match(k)).text(), key);
    assert.ok(!repaired.includes('tampered') && repaired.length > 1000, 'the cache holds the genuine file again');
    assert.deepEqual(errors.filter((e) => !e.includes('ERR_INTERNET_DISCONNECTED') && !e.includes('Failed to load resource')), []);
  } finally {
    await close();
  }
});

test('the threaded, relaxed-SIMD and SIMD128 builds embed and rank identically, and the page runs the fastest', { skip }, async () => {
  const { page, errors, close } = await launch();
  try {
    await ready(page);
    const got = await page.evaluate(async () => {
      const { Nook } = await import('./nook/index.js');
      const out = { isolated: globalThis.crossOriginIsolated, cores: navigator.hardwareConcurrency };
      const runs = { auto: {}, relaxed: { threads: 1 }, simd128: { simd: 'simd128' } };
      for (const [name, options] of Object.entries(runs)) {
        const nook = await Nook.load('bundle/', { ...options, update: false });
        out[name] = {
          simd: nook.simd,
          threads: nook.threads,
          backend: nook.backend,
          // Long enough (~60 tokens) that the threaded build splits the products and the heads.
          vectors: await Promise.all([
            'a scary horror movie', 'romantic comedy in paris', 'x',
            'a slow, quiet film about two estranged brothers who drive across the country to bury their father, '
              + 'arguing about the past, meeting strangers in diners and motels, and learning to forgive',
          ].map((q) => nook.embed(q).then(Array.from))),
          recs: await nook.recommend({ likes: ['50', '1', '181'], query: 'space adventure with robots', k: 20 }),
        };
        nook.dispose();
      }
      return out;
    });
    assert.ok(got.isolated, 'nook serve makes the page cross-origin isolated (COOP/COEP)');
    assert.equal(got.auto.simd, 'relaxed', 'Chromium has relaxed SIMD: the page runs that build');
    assert.equal(got.auto.threads, Math.min(got.cores, 4), `the threaded build on the device's cores (${got.cores})`);
    assert.ok(got.auto.threads > 1, 'this machine has more than one core');
    assert.match(got.auto.backend, /relaxed SIMD|WebGPU/);
    assert.deepEqual([got.relaxed.simd, got.relaxed.threads], ['relaxed', 1]);
    assert.deepEqual([got.simd128.simd, got.simd128.threads], ['simd128', 1]);
    for (const other of ['relaxed', 'simd128']) {
      assert.deepEqual(got.auto.vectors, got[other].vectors, `the same query vectors to the bit (threads vs ${other})`);
      assert.deepEqual(got.auto.recs.items, got[other].recs.items, `the same recommendations and scores (threads vs ${other})`);
    }
    assert.equal(got.auto.vectors[0].length > 0, true);
    // The service worker keeps only the build this browser runs.
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    await page.waitForFunction(async () => (await caches.keys()).some((k) => k.startsWith('nook-app-')), null, { timeout: 30_000 });
    const cached = await page.evaluate(async () => {
      const name = (await caches.keys()).find((k) => k.startsWith('nook-app-'));
      return (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname);
    });
    assert.ok(cached.some((p) => p.endsWith('/nook/pkg-relaxed/nook_wasm_bg.wasm')), `cached: ${cached}`);
    assert.ok(cached.some((p) => p.endsWith('/nook/pkg-threads/nook_wasm_bg.wasm')), `cached: ${cached}`);
    assert.ok(cached.some((p) => p.endsWith('/workerHelpers.js')), `the threads' worker script is cached: ${cached}`);
    assert.ok(!cached.some((p) => p.includes('/nook/pkg/')), `the unused build is not cached: ${cached}`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

// Loads the package on a site that did not deploy one of its builds (`folder` answers 404) and
// ranks: which build ran, how many threads, how many results, and the console's warnings.
async function withoutBuild(folder, options) {
  // No service worker: its fetches would pass the route below by.
  const { context, page, close } = await launch({ serviceWorkers: 'block' });
  try {
    const warnings = [];
    page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
    await context.route(`**/nook/${folder}/**`, (route) => route.fulfill({ status: 404, body: 'not here' }));
    await ready(page);
    const got = await page.evaluate(async (opts) => {
      const { Nook } = await import('./nook/index.js');
      const nook = await Nook.load('bundle/', { update: false, ...opts });
      const recs = await nook.recommend({ likes: ['50'], query: 'space adventure', k: 5 });
      const out = { simd: nook.simd, threads: nook.threads, n: recs.items.length };
      nook.dispose();
      return out;
    }, options);
    return { got, warnings };
  } finally {
    await close();
  }
}

test('a site without the threaded build falls back to one thread and still ranks', { skip }, async () => {
  // The package's worker asks for pkg-threads/ (the page is cross-origin isolated).
  const { got, warnings } = await withoutBuild('pkg-threads', {});
  assert.deepEqual(got, { simd: 'relaxed', threads: 1, n: 5 });
  assert.ok(warnings.some((w) => w.includes('threaded build did not start')), `warnings: ${warnings}`);
});

test('a site without the relaxed-SIMD build falls back to the plain one and still ranks', { skip }, async () => {
  const { got, warnings } = await withoutBuild('pkg-relaxed', { worker: false });
  assert.deepEqual(got, { simd: 'simd128', threads: 1, n: 5 });
  assert.ok(warnings.some((w) => w.includes('relaxed-SIMD build did not start')), `warnings: ${warnings}`);
});

test('with storage full, the page works from the network and keeps no partial set of its files', { skip }, async () => {
  const { context, page, errors, close } = await launch();
  try {
    // A quota of 64 KiB: every cache.put of the page's files (the wasm alone is megabytes) and of
    // the bundle rejects with a QuotaExceededError.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin, quotaSize: 64 * 1024 });
    const warnings = [];
    page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
    await ready(page);
    // The install either fails or is still going; either way it must end without a set.
    await page.waitForFunction(async () => {
      const reg = await navigator.serviceWorker.getRegistration();
      return !reg || (!reg.installing && !reg.waiting && !reg.active);
    }, null, { timeout: 60_000, polling: 250 });
    const shell = await page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith('nook-app-')));
    assert.deepEqual(shell, [], 'a set that could not be stored whole is not kept in part');
    assert.ok(warnings.some((w) => w.includes('could not cache')), `the client said the bundle was not cached: ${warnings}`);
    // And a reload still works, from the network, with the same person's history.
    await likeByTitle(page, 'Star Wars');
    await page.reload();
    await ready(page, page.url());
    assert.match(await page.textContent('#history'), /Star Wars/);
    assert.deepEqual(errors.filter((e) => !/quota|Quota/.test(e)), []);
  } finally {
    await close();
  }
});

test('"more like this" lists similar titles, never the item itself', { skip }, async () => {
  const { page, errors, close } = await launch();
  try {
    await ready(page);
    await page.fill('#search', 'Star Wars');
    await page.waitForFunction(() => document.querySelector('#search-results li .title')?.textContent.startsWith('Star Wars'));
    const id = await page.locator('#search-results li').first().getAttribute('data-id');
    await page.locator('#search-results li button.more').first().click();
    await page.waitForFunction(() => document.querySelectorAll('#similar li').length === 10);
    assert.match(await page.textContent('#similar-heading'), /^More like Star Wars/);
    const similar = await page.$$eval('#similar li', (lis) => lis.map((li) => li.dataset.id));
    assert.ok(!similar.includes(id), 'the item itself is not listed');
    const reasons = await page.$$eval('#similar .title', (t) => t.length);
    assert.equal(reasons, 10);
    // Sequels and the same audience's films: Return of the Jedi or The Empire Strikes Back.
    const titles = await page.$$eval('#similar .title', (t) => t.map((e) => e.textContent));
    assert.ok(titles.some((t) => /Return of the Jedi|Empire Strikes Back/.test(t)), `similar to Star Wars: ${titles}`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('every response carries the security headers and the right MIME type', { skip }, async () => {
  const expect = [
    ['', /^text\/html/], ['app.js', /^(text|application)\/javascript/], ['nook/index.js', /^(text|application)\/javascript/],
    ['nook/pkg/nook_wasm_bg.wasm', /^application\/wasm$/], ['bundle/manifest.json', /^application\/json/],
    ['style.css', /^text\/css/], ['no-such-file', null],
  ];
  for (const [file, type] of expect) {
    const r = await fetch(new URL(file, url));
    if (type) assert.equal(r.status, 200, file); else assert.equal(r.status, 404, file);
    if (type) assert.match(r.headers.get('content-type'), type, file);
    const csp = r.headers.get('content-security-policy') || '';
    assert.match(csp, /default-src 'self'/, `${file}: CSP`);
    assert.ok(!/https?:/.test(csp), `${file}: no third-party origin in the CSP`);
    assert.equal(r.headers.get('cross-origin-opener-policy'), 'same-origin', `${file}: COOP`);
    assert.equal(r.headers.get('cross-origin-embedder-policy'), 'require-corp', `${file}: COEP`);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', `${file}: nosniff`);
    await r.arrayBuffer();
  }
  const post = await fetch(url, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('x-content-type-options'), 'nosniff', 'a refused method still carries the headers');
});
