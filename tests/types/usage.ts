// Compiled (never run) by scripts/browser-tests.sh with `tsc --strict --noEmit`: the package's
// types (wasm-client/js/index.d.ts) describe how a site uses it, and reject misuse.
import { Nook, NookError, RequestError, parseHistory, LocalHistory, type Recommendations } from '../../wasm-client/js/index.js';

async function site(): Promise<void> {
  const nook = await Nook.load('/bundle/', { onProgress: ({ loaded, total, file }) => console.log(loaded / total, file), backend: 'auto' });
  const recs: Recommendations = await nook.recommend({ likes: ['1'], dislikes: [], query: 'space opera', k: 10, diversity: 0.3, queryWeight: 1.5 });
  const first: string = recs.items[0].reasonKind;
  const skipped: string[] = recs.skipped.likes;
  const more = await nook.similar('1', { k: 5, exclude: ['2'] });
  const hits = await nook.search('star', { limit: 5 });
  const year: number | null = hits[0].year;
  const vector: Float32Array = await nook.embed('words');
  const cacheMs: number | undefined = nook.loadTimings['cache read'];
  nook.addEventListener('update', (e) => console.log(e.detail.bundleId, e.detail.previous));
  const h = parseHistory('{}');
  new LocalHistory().save(h);
  try {
    await nook.similar('x');
  } catch (e) {
    if (e instanceof RequestError && e.code === 'unknown_item') console.log(e.message);
    if (e instanceof NookError) console.log(e.code);
  }
  // @ts-expect-error: ids are strings
  await nook.recommend({ likes: [1] });
  // @ts-expect-error: no such backend
  await Nook.load('/b/', { backend: 'tpu' });
  const threaded = await Nook.load('/b/', { threads: 2, simd: 'auto' });
  const threads: number = threaded.threads;
  // @ts-expect-error: threads is 'auto' or a number
  await Nook.load('/b/', { threads: 'many' });
  console.log(first, skipped, more.items.length, vector.length, year, nook.itemCount, nook.manifest.n_items, threads);
  nook.dispose();
}

void site;
