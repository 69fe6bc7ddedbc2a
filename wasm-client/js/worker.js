// The package's Web Worker: runs the engine off the page's main thread. Messages are internal to
// the package (index.js is the only other end): {id, op, args} in, {id, value} or {id, error} out,
// and {event, detail} for progress and bundle updates.
import { Engine, errorData } from './engine.js';

const engine = new Engine((event, detail) => self.postMessage({ event, detail }));

self.onmessage = async ({ data }) => {
  try {
    const value = await engine.call(data.op, data.args);
    self.postMessage({ id: data.id, value });
  } catch (err) {
    self.postMessage({ id: data.id, error: errorData(err) });
  }
};
