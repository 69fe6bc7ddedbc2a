// The page: talks to the worker, renders with textContent only (titles are data, never markup),
// and keeps the person's likes and dislikes in this browser's localStorage — nowhere else.
const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const STORE = 'nook.history.v1';
let storageOk = true;
const history = loadHistory();
let nextId = 1;
const pending = new Map();
let info = { items: 0, backend: 'CPU' };

function emptyHistory() {
  return { likes: [], dislikes: [], items: {} };
}

function cleanHistory(h) {
  const ids = (v) => (Array.isArray(v) ? [...new Set(v.map(String))] : []);
  const items = h && typeof h.items === 'object' && h.items ? h.items : {};
  return { likes: ids(h && h.likes), dislikes: ids(h && h.dislikes), items };
}

function loadHistory() {
  try {
    return cleanHistory(JSON.parse(localStorage.getItem(STORE) || '{}'));
  } catch {
    storageOk = false;
    return emptyHistory();
  }
}

function saveHistory() {
  try {
    localStorage.setItem(STORE, JSON.stringify(history));
  } catch {
    storageOk = false;
    showError('This browser does not let the page store data: your likes will be forgotten when you leave.');
  }
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
}

function ask(type, payload) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ type, id, ...payload });
  });
}

worker.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'progress') {
    $('progress').value = msg.total ? msg.loaded / msg.total : 0;
    $('status').textContent = `loading ${msg.file} (${(msg.loaded / 1e6).toFixed(1)} of ${(msg.total / 1e6).toFixed(1)} MB)`;
  } else if (msg.type === 'ready') {
    info = { items: msg.items, backend: msg.backend, dataset: msg.manifest.dataset };
    $('loading').classList.add('ready');
    $('status').textContent = `ready — ${msg.items} items from ${msg.manifest.dataset}, ranked with ${msg.backend}`;
    describeQueryFields(msg.manifest.text_fields || []);
    $('query-weight').value = msg.manifest.scoring.query_weight;
    showQueryWeight();
    for (const el of ['search', 'query', 'query-weight', 'diversity', 'clear-history', 'export-history', 'import-history']) $(el).disabled = false;
    if (!storageOk) showError('This browser does not let the page store data: your likes will be forgotten when you leave.');
    renderHistory();
    refresh();
  } else if (msg.type === 'error' && !pending.has(msg.id)) {
    $('status').textContent = 'could not load the model';
    showError(`The model could not be loaded: ${msg.message}`);
  } else if (pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.type === 'error') reject(new Error(msg.message)); else resolve(msg);
  }
};
worker.onerror = (e) => showError(`The recommender stopped: ${e.message}`);

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
    const l = b.classList.contains('like') ? history.likes : history.dislikes;
    b.setAttribute('aria-pressed', String(l.includes(item.id)));
  }
  refresh();
}

function renderHistory() {
  const rows = [];
  for (const [kind, ids] of [['liked', history.likes], ['disliked', history.dislikes]]) {
    for (const id of ids) {
      const li = document.createElement('li');
      const t = history.items[id];
      li.textContent = `${kind}: ${t && t.title ? t.title : id}`;
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

let searchTimer = 0;
$('search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const { results } = await ask('search', { text: $('search').value, limit: 20 });
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
  Object.assign(history, emptyHistory());
  try { localStorage.removeItem(STORE); } catch { /* nothing stored */ }
  renderHistory();
  for (const b of document.querySelectorAll('button[aria-pressed="true"]')) b.setAttribute('aria-pressed', 'false');
  refresh();
});

$('export-history').addEventListener('click', () => {
  const data = { format: 'nook-history', version: 1, likes: history.likes, dislikes: history.dislikes, items: history.items };
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = 'nook-history.json';
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
});

$('import-history').addEventListener('click', () => $('import-file').click());
$('import-file').addEventListener('change', async () => {
  const file = $('import-file').files[0];
  if (!file) return;
  try {
    const data = JSON.parse(await file.text());
    if (data.format !== 'nook-history') throw new Error('not a nook history file');
    Object.assign(history, cleanHistory(data));
    saveHistory();
    renderHistory();
    refresh();
  } catch (err) {
    showError(`Could not import ${file.name}: ${err.message}`);
  }
  $('import-file').value = '';
});

let generation = 0;
async function refresh() {
  const mine = ++generation;
  const request = {
    likes: history.likes,
    dislikes: history.dislikes,
    query: $('query').value.trim() || null,
    k: 10,
    diversity: Number($('diversity').value),
    query_weight: Number($('query-weight').value),
  };
  try {
    const { results, ms, backend: used } = await ask('recommend', { request });
    if (mine !== generation) return; // a newer request superseded this one
    info.backend = used;
    $('recs-info').textContent = `ranked ${info.items} items on this device in ${ms.toFixed(0)} ms (${info.backend})`;
    const top = results.length ? Math.max(...results.map((r) => r.score)) : 1;
    const bottom = results.length ? Math.min(...results.map((r) => r.score)) : 0;
    $('recs').replaceChildren(...results.map((r) => {
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

// The app shell is kept by a service worker so a second visit works offline.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').catch((err) => console.warn(`nook: no offline copy of the page (${err.message})`));
}

// ?backend=cpu|gpu|auto (default auto: a short calibration picks the faster one).
const backend = new URLSearchParams(location.search).get('backend') || 'auto';
worker.postMessage({ type: 'load', url: new URL('bundle/', location.href).href, backend });
