// kyara's generator as seen from a page: a Web Worker (worker.js) runs the WebAssembly model
// off the main thread, so drawing never freezes the page. Shared by the artist page (app.js)
// and the <kyara-generator> widget (kyara-generator.js). Plain ES module, relative paths only.
//
//   const gen = new Generator({ onProgress });        // starts the worker
//   const info = await gen.load(new URL('models/anime64/', location.href));
//   const face = await gen.face({ seed: 42n, tags: ['blonde hair'] });
//   // { rgba, seed, asked, tags, cond, link, ms, backend }
//
// A character ("spec") is { seed, tags, strengths?, variations?, directions? } (what a permalink
// holds; the engine's face spec, shared-model/src/face.rs):
//   seed        BigInt, decimal string or safe integer (u64)
//   tags        asked tags (array or comma-separated, any spelling the engine accepts: case,
//               `_` for spaces); open groups are drawn from the seed
//   strengths   { tag: value } overrides of the condition vector (real values, 1 = present)
//   variations  [{ seed, strength }] variations applied to the latent in order (`vary` works too)
//   directions  { name: value } steps along the model card's latent directions

import { messageOf } from './js/shared.js';

/** Starts the worker; falls back to a same-origin module blob when the page is on another origin. */
function startWorker() {
  const url = new URL('./worker.js', import.meta.url);
  try {
    return new Worker(url, { type: 'module', name: 'kyara' });
  } catch (e) {
    if (e && e.name !== 'SecurityError') throw e;
    const shim = new Blob([`import ${JSON.stringify(url.href)};`], { type: 'text/javascript' });
    return new Worker(URL.createObjectURL(shim), { type: 'module', name: 'kyara' });
  }
}

export class Generator {
  constructor({ onProgress } = {}) {
    this.onProgress = onProgress || (() => {});
    this.pending = new Map();
    this.nextId = 1;
    this.failed = null;
    this.worker = startWorker();
    this.worker.onmessage = (e) => this.#receive(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      const why = e.message ? `: ${e.message}` : ' (worker.js or pkg/web.js could not be loaded)';
      this.#failAll(new Error(`The generator worker stopped${why}`));
    };
    this.worker.onmessageerror = () => this.#failAll(new Error('The generator worker sent an unreadable message.'));
  }

  #receive(msg) {
    if (msg.progress) {
      this.onProgress(msg.progress);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new Error(msg.error));
  }

  #failAll(error) {
    this.failed = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  call(op, args = {}) {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args: toWire(args) });
    });
  }

  /** Downloads the WebAssembly and the model in `modelUrl` (a folder URL); resolves to its facts. */
  /** `prefer`: 'auto' (WebGPU when the build and the browser have it, else CPU) or 'cpu'. */
  load(modelUrl, { cache = false, prefer = 'auto' } = {}) {
    const base = new URL(modelUrl);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    return this.call('load', { modelUrl: base.href, cache, prefer });
  }

  /** Leaves WebGPU for the CPU. */
  useCpu() {
    return this.call('useCpu');
  }

  /** One face: { rgba: Uint8ClampedArray, seed, asked: canonical asked tags, tags: tags used
   *  (open groups drawn), cond: condition vector, link: permalink text, ms, backend }. */
  face(spec) {
    return this.call('face', { spec });
  }

  /** `count` faces from `a` to `b` (latent slerp, condition lerp): { frames: [Uint8ClampedArray], ms }. */
  frames(a, b, count) {
    return this.call('frames', { a, b, count });
  }

  /** Reads a permalink for the loaded model: { spec (BigInt seeds), problems: string[] }. */
  readLink(text) {
    return this.call('readLink', { text });
  }

  terminate() {
    this.worker.terminate();
    this.#failAll(new Error('The generator was closed.'));
  }
}

/** BigInt seeds travel as strings (structured clone handles BigInt, but strings are plainer). */
function toWire(value) {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toWire(v)]));
  }
  return value;
}

export { messageOf };
