// The Web Worker that owns the wasm client: loading, embedding and ranking all happen here,
// off the page's main thread. All maths is in nook-core (Rust); this file only relays messages.
import init, { NookClient } from './pkg/nook_wasm.js';

let client = null;

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    if (msg.type === 'load') {
      await init();
      client = await NookClient.load(msg.url, (loaded, total, file) =>
        self.postMessage({ type: 'progress', loaded, total, file }));
      self.postMessage({ type: 'progress', loaded: 1, total: 1, file: 'choosing the ranking backend' });
      const backend = await client.initBackend(msg.backend || 'auto');
      self.postMessage({ type: 'ready', manifest: JSON.parse(client.manifestJson()), items: client.itemCount(), backend });
    } else if (msg.type === 'search') {
      self.postMessage({ type: 'search', id: msg.id, results: JSON.parse(client.search(msg.text, msg.limit)) });
    } else if (msg.type === 'recommend') {
      const start = performance.now();
      const results = JSON.parse(await client.recommendAsync(JSON.stringify(msg.request)));
      self.postMessage({ type: 'recommend', id: msg.id, results, ms: performance.now() - start, backend: client.backend() });
    }
  } catch (err) {
    self.postMessage({ type: 'error', id: msg.id, message: String(err && err.message ? err.message : err) });
  }
};
