// A catalogue update under a returning visitor: the server moves from bundle A to bundle B (another
// seed, and three of the visitor's liked films withdrawn), then back. The page must keep working,
// say what it skipped, keep the history whole, and count the films again when they return.
// scripts/browser-tests.sh sets NOOK_BIN, NOOK_BUNDLE (A) and NOOK_BUNDLE_B.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const bin = process.env.NOOK_BIN;
const bundleA = process.env.NOOK_BUNDLE;
const bundleB = process.env.NOOK_BUNDLE_B;
const artifacts = process.env.NOOK_ARTIFACTS || 'out/browser-tests';
const skip = !(bin && bundleA && bundleB && (process.env.NOOK_SERVER || 'nook') === 'nook') && 'needs NOOK_BIN, NOOK_BUNDLE and NOOK_BUNDLE_B';

// Publishes `source` at `dir` the way the deploy guide says: copied beside, then renamed in.
function publish(source, dir) {
  const next = `${dir}.next`;
  fs.rmSync(next, { recursive: true, force: true });
  fs.cpSync(source, next, { recursive: true });
  fs.rmSync(`${dir}.old`, { recursive: true, force: true });
  if (fs.existsSync(dir)) fs.renameSync(dir, `${dir}.old`);
  fs.renameSync(next, dir);
}

const status = (page) => page.textContent('#status');

async function ready(page) {
  await page.waitForFunction(() => /^(ready|could not)/.test(document.getElementById('status').textContent), null, { timeout: 120_000 });
  assert.match(await status(page), /^ready/, await page.textContent('#error'));
  await page.waitForSelector('#recs li');
}

async function like(page, title) {
  await page.fill('#search', title);
  await page.waitForFunction((t) => document.querySelector('#search-results li .title')?.textContent.startsWith(t), title);
  const first = page.locator('#search-results li').first();
  const id = await first.getAttribute('data-id');
  await first.locator('button.like').click();
  return id;
}

test('a returning visitor survives a catalogue update and gets withdrawn likes back when they return', { skip, timeout: 300_000 }, async () => {
  const dir = path.resolve(artifacts, 'swap/bundle');
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  publish(bundleA, dir);
  const server = spawn(bin, ['serve', '--bundle', dir, '--www', 'www', '--port', '0', '--log', 'warn']);
  const base = await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => { const m = /serving on (\S+)/.exec(String(d)); if (m) resolve(m[1]); });
    server.on('exit', (code) => reject(new Error(`nook serve exited ${code}`)));
  });
  const { page, errors, close } = await launch();
  try {
    await page.goto(base);
    await ready(page);
    const idA = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).files['items.json'].sha256;
    const liked = [];
    for (const title of ['Star Wars', 'Toy Story', 'Fargo', 'Return of the Jedi']) liked.push(await like(page, title));
    await page.waitForFunction(() => [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent === 'because you liked Star Wars'));
    assert.ok(await page.evaluate(() => document.getElementById('notice').hidden), 'nothing skipped with bundle A');

    // The server moves to B, without Star Wars, Fargo and Return of the Jedi.
    publish(bundleB, dir);
    await page.reload();
    await ready(page); // bundle A from the cache at once, B fetched and verified meanwhile
    await page.waitForFunction(() => document.getElementById('status').textContent.includes('catalogue updated'), null, { timeout: 120_000 });
    await page.waitForFunction(() => !document.getElementById('notice').hidden);
    assert.match(await page.textContent('#notice'), /^3 of your liked titles are no longer in the catalogue/);
    await page.waitForFunction(() => document.querySelectorAll('#recs li').length === 10);
    const shown = await page.$$eval('#recs li', (lis) => lis.map((li) => li.dataset.id));
    for (const id of liked) assert.ok(!shown.includes(id), `liked ${id} recommended`);
    assert.ok(await page.$$eval('#recs .reason', (r) => r.some((e) => e.textContent === 'because you liked Toy Story')), 'the remaining like still counts');
    const kept = await page.evaluate(() => JSON.parse(localStorage.getItem('nook.history.v1')).likes);
    assert.deepEqual(kept, liked, 'the stored history keeps every like');
    assert.match(await page.textContent('#history'), /liked: Star Wars \(not in the current catalogue\)/);
    assert.match(await page.textContent('#recs-info'), /ranked 1679 items/);
    // The cache holds B's files, not A's stale items.json.
    const keys = await page.evaluate(async () => (await (await caches.open('nook-bundle-v1')).keys()).map((r) => r.url));
    assert.ok(!keys.some((k) => k.includes(`items.json?sha256=${idA}`)), `A's items.json was pruned: ${keys}`);

    // A later reload starts from B (cached): the notice is there at once.
    await page.reload();
    await ready(page);
    await page.waitForFunction(() => !document.getElementById('notice').hidden);
    assert.ok(!(await status(page)).includes('catalogue updated'), 'no update when nothing changed');

    // Back to A: the withdrawn films count again.
    publish(bundleA, dir);
    await page.reload();
    await ready(page);
    await page.waitForFunction(() => document.getElementById('status').textContent.includes('catalogue updated'), null, { timeout: 120_000 });
    await page.waitForFunction(() => document.getElementById('notice').hidden
      && [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent === 'because you liked Star Wars'));
    assert.match(await page.textContent('#recs-info'), /ranked 1682 items/);
    assert.doesNotMatch(await page.textContent('#history'), /not in the current catalogue/);
    fs.mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'update.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await close();
    server.kill();
  }
});
