// The page's service worker: keeps the page's files so a second visit works offline, as one
// versioned set. shell.js (written by scripts/build-wasm.sh) lists the files, each one's SHA-256
// and a version that hashes that listing; a new version is fetched whole (of the wasm builds,
// only those this browser runs), every file checked against its hash, and cached beside the
// old one, and takes over only when no page of the old version is open (or the page
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
// (every file but "./", which is index.html again), in shell.js's order.
async function versionOf(sha256) {
  const listing = SHELL.files.filter((f) => f !== './').map((f) => `${sha256[f]}  ${f}\n`).join('');
  return (await sha256Hex(new TextEncoder().encode(listing))).slice(0, 16);
}

// Which wasm builds this browser never runs, as the package's engine.js decides: a module with one
// relaxed-SIMD instruction validates or not (the same bytes as engine.js's probe). Where it does,
// both relaxed builds are kept (the threaded one where the page is cross-origin isolated, the
// single-thread one for pages that are not or that run without a worker).
function unusedBuilds() {
  const zeros = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const probe = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00,
    0x0a, 0x3d, 0x01, 0x3b, 0x00, ...zeros, ...zeros, ...zeros, 0xfd, 0x93, 0x02, 0x0b,
  ]);
  let relaxed = false;
  try { relaxed = WebAssembly.validate(probe); } catch { /* no wasm at all */ }
  return relaxed ? ['nook/pkg/'] : ['nook/pkg-relaxed/', 'nook/pkg-threads/'];
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    if (await versionOf(SHELL.sha256) !== SHELL.version) throw new Error('shell.js does not match its own version');
    const unused = unusedBuilds();
    const wanted = SHELL.files.filter((f) => !unused.some((prefix) => f.startsWith(prefix)));
    const responses = await Promise.all(wanted.map(async (file) => {
      const response = await fetch(new Request(file, { cache: 'no-cache' }));
      if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
      return [file, response];
    }));
    for (const [file, r] of responses) {
      const got = await sha256Hex(await r.clone().arrayBuffer());
      const want = SHELL.sha256[file === './' ? 'index.html' : file];
      if (got !== want) throw new Error(`${file} is not the file of version ${SHELL.version}: not caching a mixed set`);
    }
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
