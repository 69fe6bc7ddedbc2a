// The page's service worker: keeps the app shell (page, scripts, wasm) so a second visit works
// offline. Network first, so an update is picked up whenever the server is reachable; the cache
// answers only when the network does not. Bundle files are not handled here: the wasm client
// keeps them in the Cache API itself, verified against the manifest's SHA-256 on every load.
const APP_CACHE = 'nook-app-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.includes('/bundle/')) return;
  event.respondWith((async () => {
    const cache = await caches.open(APP_CACHE);
    try {
      const response = await fetch(event.request);
      if (response.ok) await cache.put(event.request, response.clone());
      return response;
    } catch (err) {
      const cached = await cache.match(event.request, { ignoreSearch: true });
      if (cached) return cached;
      throw err;
    }
  })());
});
