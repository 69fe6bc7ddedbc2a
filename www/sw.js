// The page's service worker: keeps the page's files so a second visit works offline, as one
// versioned set. shell.js (written by scripts/build-wasm.sh) lists the files and a version that
// hashes their contents; a new version is fetched whole, checked against that hash and cached
// beside the old one, and takes over only when no page of the old version is open (or the page
// asks, after the person chose to reload). So a page, its JavaScript and its wasm always come
// from the same build, online or offline, and a failed or partial download (a full quota, a
// dropped connection) leaves the previous version in use. Bundle files are not handled here: the
// wasm client keeps them in the Cache API itself, verified against the manifest's SHA-256.
importScripts('./shell.js');

const SHELL = self.NOOK_SHELL;
const PREFIX = 'nook-app-';
const CACHE = `${PREFIX}${SHELL.version}`;
const FILES = new Set(SHELL.files);

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// The version is the first 16 hex digits of the SHA-256 of `sha256sum`'s output over the files
// (every file but "./", which is index.html again).
async function versionOf(bodies) {
  let listing = '';
  for (const [file, body] of bodies) if (file !== './') listing += `${await sha256Hex(body)}  ${file}\n`;
  return (await sha256Hex(new TextEncoder().encode(listing))).slice(0, 16);
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const responses = await Promise.all(SHELL.files.map(async (file) => {
      const response = await fetch(new Request(file, { cache: 'no-cache' }));
      if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
      return [file, response];
    }));
    const bodies = await Promise.all(responses.map(async ([file, r]) => [file, await r.clone().arrayBuffer()]));
    const got = await versionOf(bodies);
    if (got !== SHELL.version) throw new Error(`the server's files are version ${got}, shell.js says ${SHELL.version}: not caching a mixed set`);
    const cache = await caches.open(CACHE);
    try {
      for (const [file, response] of responses) await cache.put(file, response);
    } catch (err) {
      await caches.delete(CACHE); // never keep part of a set
      throw err;
    }
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

// The page asks for this after the person chose to load the new version.
self.addEventListener('message', (event) => {
  if (event.data === 'skip-waiting') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  const scope = new URL(self.registration.scope);
  if (request.method !== 'GET' || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  const path = url.pathname.slice(scope.pathname.length);
  const file = path === '' || path === 'index.html' ? './' : path;
  if (!FILES.has(file)) return;
  event.respondWith((async () => {
    const cached = await caches.match(file === './' ? './' : file, { cacheName: CACHE });
    return cached || fetch(request);
  })());
});
