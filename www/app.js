// The page: talks to the worker, renders with textContent only (titles are data, never markup),
// and keeps the person's likes and dislikes in this browser's localStorage.
const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const STORE = 'nook.history.v1';
const history = loadHistory();
let nextId = 1;
const pending = new Map();
const titles = new Map(); // id -> item, for items seen in search or results

function loadHistory() {
  try {
    const h = JSON.parse(localStorage.getItem(STORE) || '{}');
    return { likes: Array.isArray(h.likes) ? h.likes.map(String) : [], dislikes: Array.isArray(h.dislikes) ? h.dislikes.map(String) : [], items: h.items || {} };
  } catch {
    return { likes: [], dislikes: [], items: {} };
  }
}

function saveHistory() {
  localStorage.setItem(STORE, JSON.stringify(history));
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
    $('loading').classList.add('ready');
    $('status').textContent = `ready — ${msg.items} items from ${msg.manifest.dataset}`;
    for (const el of ['search', 'query', 'clear-history']) $(el).disabled = false;
    renderHistory();
    refresh();
  } else if (msg.type === 'error' && !pending.has(msg.id)) {
    $('status').textContent = `error: ${msg.message}`;
    $('status').classList.add('error');
  } else if (pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.type === 'error') reject(new Error(msg.message)); else resolve(msg);
  }
};

function itemRow(item, extra) {
  titles.set(item.id, { id: item.id, title: item.title, year: item.year });
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
  if (extra) text.appendChild(extra);
  li.appendChild(text);
  li.appendChild(vote(item, 'like', 'Like', 'Like'));
  li.appendChild(vote(item, 'dislike', 'Dislike', 'Dislike'));
  return li;
}

function vote(item, kind, text, label) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = kind;
  b.textContent = text;
  const list = kind === 'like' ? history.likes : history.dislikes;
  b.setAttribute('aria-label', `${label} ${item.title}`);
  b.setAttribute('aria-pressed', String(list.includes(item.id)));
  b.addEventListener('click', () => toggle(item, kind));
  return b;
}

function toggle(item, kind) {
  const [list, other] = kind === 'like' ? [history.likes, history.dislikes] : [history.dislikes, history.likes];
  const at = list.indexOf(item.id);
  if (at >= 0) list.splice(at, 1); else list.push(item.id);
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
  const ul = $('history');
  ul.replaceChildren();
  for (const [kind, ids] of [['liked', history.likes], ['disliked', history.dislikes]]) {
    for (const id of ids) {
      const li = document.createElement('li');
      const t = history.items[id];
      li.textContent = `${kind}: ${t ? t.title : id}`;
      ul.appendChild(li);
    }
  }
}

let searchTimer = 0;
$('search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const { results } = await ask('search', { text: $('search').value, limit: 20 });
    $('search-results').replaceChildren(...results.map((item) => itemRow(item)));
  }, 120);
});

let queryTimer = 0;
$('query').addEventListener('input', () => {
  clearTimeout(queryTimer);
  queryTimer = setTimeout(refresh, 300);
});

$('clear-history').addEventListener('click', () => {
  history.likes.length = 0;
  history.dislikes.length = 0;
  history.items = {};
  localStorage.removeItem(STORE);
  renderHistory();
  refresh();
});

let generation = 0;
async function refresh() {
  const mine = ++generation;
  const request = { likes: history.likes, dislikes: history.dislikes, query: $('query').value || null, k: 10 };
  try {
    const { results, ms } = await ask('recommend', { request });
    if (mine !== generation) return; // a newer request superseded this one
    $('recs-info').textContent = `ranked on this device in ${ms.toFixed(0)} ms`;
    $('recs').replaceChildren(...results.map((r) => {
      const reason = document.createElement('span');
      reason.className = 'reason';
      reason.textContent = r.reason;
      return itemRow(r, reason);
    }));
  } catch (err) {
    $('recs-info').textContent = `error: ${err.message}`;
  }
}

worker.postMessage({ type: 'load', url: new URL('bundle/', location.href).href });
