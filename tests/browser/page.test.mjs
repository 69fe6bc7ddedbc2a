// The page in headless Debian Chromium (playwright-core, never a downloaded browser): it loads,
// says "ready" without console errors, and three likes give ten recommendations, none of them liked.
// NOOK_PAGE_URL points at `nook serve` (scripts/browser-tests.sh starts it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch } from './browser.mjs';

const url = process.env.NOOK_PAGE_URL;

test('three likes give ten recommendations, none liked', { skip: !url && 'NOOK_PAGE_URL not set' }, async () => {
  const { context, page, errors, close } = await launch();
  try {
    await page.goto(url);
    await page.waitForFunction(() => /^(ready|error)/.test(document.getElementById('status').textContent), null, { timeout: 120_000 });
    assert.match(await page.textContent('#status'), /^ready/);

    const liked = [];
    for (const title of ['Star Wars', 'Toy Story', 'Fargo']) {
      await page.fill('#search', title);
      const first = page.locator('#search-results li').first();
      await first.waitFor();
      liked.push(await first.getAttribute('data-id'));
      await first.locator('button.like').click();
    }
    await page.waitForFunction(
      (ids) => {
        const shown = [...document.querySelectorAll('#recs li')].map((li) => li.dataset.id);
        return shown.length === 10 && shown.every((id) => !ids.includes(id))
          && [...document.querySelectorAll('#recs .reason')].some((r) => r.textContent.startsWith('because you liked'));
      },
      liked,
      { timeout: 30_000 },
    );
    const shown = await page.$$eval('#recs li', (lis) => lis.map((li) => li.dataset.id));
    assert.equal(shown.length, 10);
    for (const id of liked) assert.ok(!shown.includes(id), `liked item ${id} was recommended`);
    assert.deepEqual(errors, [], 'no console errors');
    await context.storageState(); // the page is still alive
  } finally {
    await close();
  }
});
