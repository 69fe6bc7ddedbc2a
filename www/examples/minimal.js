// nook on a plain page: the browser package, nothing else. Likes live in this tab only.
import { Nook } from '../nook/index.js';

const $ = (id) => document.getElementById(id);
const likes = [];

function list(el, items, onPick) {
  el.replaceChildren(...items.map((item) => {
    const li = document.createElement('li');
    li.dataset.id = item.id;
    li.textContent = `${item.title}${item.year ? ` (${item.year})` : ''}${item.reason ? ` — ${item.reason}` : ''}`;
    if (onPick) {
      const b = document.createElement('button');
      b.textContent = 'Like';
      b.onclick = () => onPick(item);
      li.append(' ', b);
    }
    return li;
  }));
}

const nook = await Nook.load('../bundle/', {
  onProgress: ({ loaded, total }) => { $('status').textContent = `loading ${Math.round((100 * loaded) / total)}%`; },
});
$('status').textContent = `ready: ${nook.itemCount} items, ranked on this device (${nook.backend})`;
$('search').disabled = false;

async function like(item) {
  likes.push(item.id);
  const recs = await nook.recommend({ likes, k: 10, diversity: 0.3 });
  list($('recs'), recs.items, like);
  const more = await nook.similar(item.id, { k: 5, exclude: likes });
  $('more-heading').textContent = `More like ${item.title}`;
  list($('more'), more.items);
}

$('search').addEventListener('input', async () => {
  list($('hits'), await nook.search($('search').value, { limit: 5 }), like);
});

list($('recs'), (await nook.recommend({ k: 10 })).items, like);
window.nook = nook; // for the browser test
