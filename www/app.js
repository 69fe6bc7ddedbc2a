// The page: a consumer of nook's browser package (./nook/, built from wasm-client/ by
// scripts/build-wasm.sh) like any other site. It renders with textContent only (titles are data,
// never markup) and keeps the person's likes and dislikes in this browser's localStorage —
// nowhere else.
import { Nook, LocalHistory, parseHistory } from './nook/index.js';

const $ = (id) => document.getElementById(id);
const store = new LocalHistory('nook.history.v1');
let storageOk = true;
let history = readHistory();
let nook = null;
let lastSkipped = { likes: [], dislikes: [] };

function readHistory() {
  try {
    const h = store.load();
    if (h.unreadable) showError('The history stored in this browser could not be read; it was kept aside and a new one started.');
    return h;
  } catch {
    storageOk = false;
    return { likes: [], dislikes: [], items: {} };
  }
}

function saveHistory() {
  try {
    history = store.save(history);
  } catch {
    storageOk = false;
    showError('This browser does not let the page store data: your likes will be forgotten when you leave.');
  }
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
}

function itemRow(item, extra) {
  const li = document.createElement('li');
  li.dataset.id = item.id;
  const text = document.createElement('span');
  text.className = 'title';
  text.textContent = item.year ? `${item.title} (${item.year})` : item.title;
  if (item.genres && item.genres.length) {
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = item.genres.join(', ');
    text.appendChild(meta);
  }
  for (const e of extra || []) text.appendChild(e);
  li.appendChild(text);
  li.appendChild(vote(item, 'like', 'Like'));
  li.appendChild(vote(item, 'dislike', 'Dislike'));
  li.appendChild(moreLikeThis(item));
  return li;
}

function vote(item, kind, label) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = kind;
  b.textContent = label;
  const list = kind === 'like' ? history.likes : history.dislikes;
  b.setAttribute('aria-label', `${label} ${item.title}`);
  b.setAttribute('aria-pressed', String(list.includes(item.id)));
  b.addEventListener('click', () => toggle(item, kind));
  return b;
}

function moreLikeThis(item) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'more';
  b.textContent = 'More like this';
  b.setAttribute('aria-label', `More like ${item.title}`);
  b.addEventListener('click', () => showSimilar(item));
  return b;
}

function toggle(item, kind) {
  const [list, other] = kind === 'like' ? [history.likes, history.dislikes] : [history.dislikes, history.likes];
  const at = list.indexOf(item.id);
  if (at >= 0) list.splice(at, 1); else list.push(item.id); // likes stay oldest first
  const o = other.indexOf(item.id);
  if (o >= 0) other.splice(o, 1);
  history.items[item.id] = { title: item.title, year: item.year ?? null };
  saveHistory();
  renderHistory();
  for (const b of document.querySelectorAll(`li[data-id="${CSS.escape(item.id)}"] button`)) {
    if (b.classList.contains('more')) continue;
    const l = b.classList.contains('like') ? history.likes : history.dislikes;
    b.setAttribute('aria-pressed', String(l.includes(item.id)));
  }
  refresh();
}

function renderHistory() {
  const gone = new Set([...lastSkipped.likes, ...lastSkipped.dislikes]);
  const rows = [];
  for (const [kind, ids] of [['liked', history.likes], ['disliked', history.dislikes]]) {
    for (const id of ids) {
      const li = document.createElement('li');
      const t = history.items[id];
      li.textContent = `${kind}: ${t && t.title ? t.title : id}${gone.has(id) ? ' (not in the current catalogue)' : ''}`;
      rows.push(li);
    }
  }
  if (!rows.length) {
    const li = document.createElement('li');
    li.textContent = 'Nothing stored yet.';
    rows.push(li);
  }
  $('history').replaceChildren(...rows);
}

// Ids the catalogue no longer holds (an update withdrew them) stay in the history and count
// again if a later catalogue brings them back; the person is told, not silently shortchanged.
function showSkipped(skipped) {
  lastSkipped = skipped;
  const parts = [];
  const n = (count, what) => `${count} of your ${what} ${count === 1 ? 'title is' : 'titles are'}`;
  if (skipped.likes.length) parts.push(n(skipped.likes.length, 'liked'));
  if (skipped.dislikes.length) parts.push(n(skipped.dislikes.length, 'disliked'));
  $('notice').hidden = parts.length === 0;
  $('notice').textContent = parts.length
    ? `${parts.join(' and ')} no longer in the catalogue. They stay in your history and count again if they come back.`
    : '';
  renderHistory();
}

let searchTimer = 0;
$('search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const results = await nook.search($('search').value, { limit: 20 });
    $('search-results').replaceChildren(...results.map((item) => itemRow(item)));
  }, 100);
});

let queryTimer = 0;
$('query').addEventListener('input', () => {
  clearTimeout(queryTimer);
  queryTimer = setTimeout(refresh, 250);
});

// What the typed words are compared with: the bundle records the item fields its text came
// from, so a person knows, e.g., that a catalogue of titles and genres cannot match a plot.
function describeQueryFields(fields) {
  if (!fields.length) return;
  const list = fields.length > 1 ? `${fields.slice(0, -1).join(', ')} and ${fields[fields.length - 1]}` : fields[0];
  $('query-fields').textContent = `Your words are matched against each item's ${list}.`;
}

// The bundle ships the query weight chosen on its benchmark; the slider starts there.
function showQueryWeight() {
  const w = Number($('query-weight').value);
  $('query-weight-value').textContent = w === 0 ? '0 (ignored)' : `${w.toFixed(2)}×`;
}

$('query-weight').addEventListener('input', () => {
  showQueryWeight();
  if ($('query').value.trim()) refresh();
});

$('diversity').addEventListener('input', () => {
  $('diversity-value').textContent = Number($('diversity').value).toFixed(1);
  refresh();
});

$('clear-history').addEventListener('click', () => {
  history = { likes: [], dislikes: [], items: {} };
  try { store.clear(); } catch { /* nothing stored */ }
  renderHistory();
  for (const b of document.querySelectorAll('button[aria-pressed="true"]')) b.setAttribute('aria-pressed', 'false');
  refresh();
});

$('export-history').addEventListener('click', () => {
  const url = URL.createObjectURL(new Blob([LocalHistory.toFile(history)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = 'nook-history.json';
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
});

$('import-history').addEventListener('click', () => $('import-file').click());
$('import-file').addEventListener('change', async () => {
  const file = $('import-file').files[0];
  $('import-file').value = '';
  if (!file) return;
  let imported;
  try {
    imported = parseHistory(await file.text()); // checked whole before anything is stored
  } catch (err) {
    showError(`Could not import ${file.name}: ${err.message}. Your stored history was not changed.`);
    return;
  }
  $('error').hidden = true;
  history = imported;
  saveHistory();
  renderHistory();
  refresh();
});

async function showSimilar(item) {
  $('similar-heading').textContent = `More like ${item.title}`;
  $('similar-panel').hidden = false;
  try {
    const rated = [...history.likes, ...history.dislikes];
    const { items } = await nook.similar(item.id, { k: 10, exclude: rated });
    $('similar').replaceChildren(...items.map((r) => itemRow(r)));
  } catch (err) {
    $('similar').replaceChildren();
    showError(`Could not find titles like ${item.title}: ${err.message}`);
  }
  $('similar-heading').focus();
}

$('close-similar').addEventListener('click', () => { $('similar-panel').hidden = true; });

let generation = 0;
async function refresh() {
  if (!nook) return;
  const mine = ++generation;
  const request = {
    likes: history.likes,
    dislikes: history.dislikes,
    query: $('query').value.trim() || null,
    k: 10,
    diversity: Number($('diversity').value),
    queryWeight: Number($('query-weight').value),
  };
  try {
    const { items, skipped, ms, backend } = await nook.recommend(request);
    if (mine !== generation) return; // a newer request superseded this one
    showSkipped(skipped);
    $('recs-info').textContent = `ranked ${nook.itemCount} items on this device in ${ms.toFixed(0)} ms (${backend})`;
    const top = items.length ? Math.max(...items.map((r) => r.score)) : 1;
    const bottom = items.length ? Math.min(...items.map((r) => r.score)) : 0;
    $('recs').replaceChildren(...items.map((r) => {
      const bar = document.createElement('span');
      bar.className = 'score';
      bar.title = `score ${r.score.toFixed(3)}`;
      const fill = document.createElement('span');
      fill.style.width = `${top > bottom ? 20 + 80 * (r.score - bottom) / (top - bottom) : 100}%`;
      bar.appendChild(fill);
      const reason = document.createElement('span');
      reason.className = 'reason';
      reason.textContent = r.reason;
      return itemRow(r, [bar, reason]);
    }));
  } catch (err) {
    $('recs-info').textContent = `error: ${err.message}`;
  }
}

function describeBundle() {
  $('status').textContent = `ready — ${nook.itemCount} items from ${nook.manifest.dataset}, ranked with ${nook.backend}`;
  const steps = Object.entries(JSON.parse($('status').dataset.loadTimings || '{}'));
  $('status').title = steps.length ? `loaded in ${steps.map(([s, ms]) => `${s} ${ms.toFixed(0)} ms`).join(', ')}` : '';
}

async function start() {
  // ?backend=cpu|gpu|auto (default auto: a short calibration picks the faster one).
  const backend = new URLSearchParams(location.search).get('backend') || 'auto';
  try {
    nook = await Nook.load(new URL('bundle/', location.href), {
      backend,
      onProgress: ({ loaded, total, file }) => {
        $('progress').value = total ? loaded / total : 0;
        $('status').textContent = `loading ${file} (${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB)`;
      },
    });
  } catch (err) {
    $('status').textContent = 'could not load the model';
    showError(`The model could not be loaded: ${err.message}`);
    return;
  }
  // A new catalogue was published: it was fetched and verified in the background and now ranks.
  nook.addEventListener('update', () => {
    describeBundle();
    $('status').textContent += ' (catalogue updated)';
    refresh();
  });
  nook.addEventListener('updateerror', (e) => console.warn(`nook: a newer bundle could not be used: ${e.detail.message}`));
  $('loading').classList.add('ready');
  // Where loading spent its time, for whoever looks (hover the status line).
  $('status').dataset.loadTimings = JSON.stringify(nook.loadTimings);
  describeBundle();
  describeQueryFields(nook.manifest.text_fields || []);
  $('query-weight').value = nook.manifest.scoring.query_weight;
  showQueryWeight();
  for (const el of ['search', 'query', 'query-weight', 'diversity', 'clear-history', 'export-history', 'import-history']) $(el).disabled = false;
  if (!storageOk) showError('This browser does not let the page store data: your likes will be forgotten when you leave.');
  renderHistory();
  refresh();
}

// The page's files are kept by a service worker so a second visit works offline. A new version
// of the page waits until the person chooses to load it (never mixed with the old one).
async function offlineCopy() {
  if (!('serviceWorker' in navigator)) return;
  try {
    const reg = await navigator.serviceWorker.register('sw.js', { updateViaCache: 'none' });
    const offer = (worker) => {
      if (!worker || !navigator.serviceWorker.controller) return;
      $('app-update').hidden = false;
      $('app-update-button').onclick = () => {
        navigator.serviceWorker.addEventListener('controllerchange', () => location.reload());
        worker.postMessage('skip-waiting');
      };
    };
    offer(reg.waiting);
    reg.addEventListener('updatefound', () => {
      const w = reg.installing;
      w?.addEventListener('statechange', () => { if (w.state === 'installed') offer(w); });
    });
  } catch (err) {
    console.warn(`nook: no offline copy of the page (${err.message})`);
  }
}

offlineCopy();
start();
