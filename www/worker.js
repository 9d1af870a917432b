// kyara's generator worker: owns the WebAssembly model and answers requests from kyara.js one at
// a time. Messages in: { id, op, args }; out: { id, ok, result | error } and
// { progress: { what, got, total } } while downloading.
//
// Every face is one call into the WebAssembly (`face(spec)`): the recipe (latent, variations,
// directions, tag strengths) is the engine's, the same Rust code `trainer generate --link` runs.
//
// Backends: the CPU build (pkg/, Burn Flex) always works. When the build has a WebGPU module
// (pkg-gpu/, listed in pkg/build.json) and navigator.gpu gives an adapter, the worker loads that
// module instead: it holds the same CPU model (for links and as the fallback) plus the model on
// WebGPU. If WebGPU fails to start or fails during a run, the worker falls back to the CPU and
// says why.

import { CACHE, messageOf } from './js/shared.js';
import { readLink, toEngine } from './js/permalink.js';

let wasm = null; // the wasm-bindgen module in use (pkg/web.js or pkg-gpu/web.js)
let model = null; // KyaraModel (CPU)
let gpu = null; // KyaraGpuModel, when WebGPU runs
let backend = { kind: 'cpu', note: '' };
let crashed = null;

async function fetchOk(url, what) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`Could not download the ${what} (${url}): ${messageOf(e)}`);
  }
  if (!res.ok) throw new Error(`Could not download the ${what} (${url}): HTTP ${res.status} ${res.statusText}`.trim());
  return res;
}

/** Reads a response body, posting progress; returns the bytes. */
async function readBytes(res, what) {
  const total = Number(res.headers.get('content-length')) || 0;
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks = [];
  let got = 0;
  let last = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    const now = performance.now();
    if (now - last > 50) {
      last = now;
      postMessage({ progress: { what, got, total } });
    }
  }
  postMessage({ progress: { what, got, total: total || got } });
  const bytes = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/** Stores downloaded files for offline use (first visit, before the service worker controls the page). */
async function remember(entries) {
  if (!self.caches) return;
  try {
    const cache = await caches.open(CACHE);
    await Promise.all(entries.map(({ url, bytes, type }) => cache.put(url, new Response(bytes, {
      headers: { 'content-type': type, 'content-length': String(bytes.length) },
    }))));
  } catch (e) {
    console.warn('kyara: could not store files for offline use:', e);
  }
}

/** Bytes a wasm call returned, in a buffer of their own (so it can be transferred). */
function own(bytes) {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

const ops = {
  async load({ modelUrl, cache, prefer = 'auto' }) {
    const t0 = performance.now();
    const base = new URL(modelUrl);
    const cardUrl = new URL('model.json', base);
    const name = decodeURIComponent(base.pathname.split('/').filter(Boolean).pop() || 'model');
    const cardRes = await fetchOk(cardUrl.href, `card of model “${name}”`);
    const cardText = await cardRes.text();
    let raw;
    try {
      raw = JSON.parse(cardText);
    } catch (e) {
      throw new Error(`The card of model “${name}” (${cardUrl.href}) is not valid JSON: ${messageOf(e)}`);
    }
    if (raw.format !== 'kyara-model') {
      throw new Error(`${cardUrl.href} is not a kyara model card (format is ${JSON.stringify(raw.format)}).`);
    }
    const build = await buildInfo();
    const choice = await chooseBackend(prefer, build);
    let pkg = choice.kind === 'webgpu' ? 'pkg-gpu' : 'pkg';
    const weightsUrl = new URL(raw.weights || 'generator.bpk', cardUrl);
    const fetchWasm = (dir) => fetchOk(new URL(`./${dir}/web_bg.wasm`, import.meta.url).href, 'WebAssembly generator')
      .then((r) => readBytes(r, 'wasm'));
    let [wasmBytes, weights] = await Promise.all([
      fetchWasm(pkg).catch((e) => {
        if (pkg === 'pkg') throw e;
        choice.kind = 'cpu';
        choice.note = `the WebGPU module could not be downloaded (${messageOf(e)})`;
        pkg = 'pkg';
        return fetchWasm(pkg);
      }),
      fetchOk(weightsUrl.href, `weights of model “${name}”`).then((r) => readBytes(r, 'weights')),
    ]);
    const wasmUrl = new URL(`./${pkg}/web_bg.wasm`, import.meta.url);
    const t1 = performance.now();
    try {
      wasm = await import(`./${pkg}/web.js`);
      await wasm.default({ module_or_path: wasmBytes });
    } catch (e) {
      throw new Error(`Could not start the WebAssembly generator (${pkg}/web_bg.wasm): ${messageOf(e)}`);
    }
    try {
      model = wasm.KyaraModel.load(cardText, weights);
    } catch (e) {
      throw new Error(`Could not load model “${name}”: ${messageOf(e)}`);
    }
    backend = { kind: 'cpu', note: choice.note };
    if (choice.kind === 'webgpu') {
      try {
        gpu = await wasm.KyaraGpuModel.load(cardText, weights);
        backend = { kind: 'webgpu', note: choice.note };
      } catch (e) {
        gpu = null;
        backend = { kind: 'cpu', note: `WebGPU failed to start (${messageOf(e)}), so the CPU runs` };
      }
    }
    const card = JSON.parse(model.card_json()); // latent directions included
    const t2 = performance.now();
    if (cache) {
      remember([
        { url: cardUrl.href, bytes: new TextEncoder().encode(cardText), type: 'application/json' },
        { url: weightsUrl.href, bytes: weights, type: 'application/octet-stream' },
        { url: wasmUrl.href, bytes: wasmBytes, type: 'application/wasm' },
      ]);
    }
    wasmBytes = wasmBytes.length;
    return {
      name,
      card,
      resolution: model.resolution(),
      latentDim: model.latent_dim(),
      // Style layers (StyleGAN2-style models; the WebGPU module predates them).
      styles: typeof model.styles === 'function' ? model.styles() : 0,
      numTags: model.num_tags(),
      wasmBytes,
      wasmUrl: wasmUrl.href,
      weightsBytes: weights.length,
      downloadMs: t1 - t0,
      buildMs: t2 - t1,
      backend: backend.kind,
      backendNote: backend.note,
      adapter: choice.adapter || '',
      simd: wasm.builtWithSimd(),
    };
  },

  /** One face: one call into the WebAssembly. */
  async face({ spec }) {
    const t0 = performance.now();
    const r = await onBackend((m) => m.face(toEngine(spec)));
    const ms = performance.now() - t0;
    const rgba = new Uint8ClampedArray(own(r.rgba).buffer);
    return {
      result: { rgba, seed: r.seed, asked: r.asked, tags: r.tags, cond: r.condition, link: r.link, ms, backend: backend.kind },
      transfer: [rgba.buffer],
    };
  },

  /** The frames of a transition from spec `a` to spec `b` (one call). */
  async frames({ a, b, count }) {
    const n = Math.max(2, Math.min(64, Math.floor(Number(count) || 0)));
    const t0 = performance.now();
    const out = await onBackend((m) => m.frames(toEngine(a), toEngine(b), n));
    const frames = out.map((f) => new Uint8ClampedArray(own(f).buffer));
    return { result: { frames, ms: (performance.now() - t0) / n }, transfer: frames.map((f) => f.buffer) };
  },

  /** Reads a permalink for the loaded model: { spec (BigInt seeds), problems }. */
  readLink({ text }) {
    return readLink(model, String(text ?? ''));
  },

  /** Leaves WebGPU for the CPU (tests compare the two; people can too). */
  useCpu() {
    gpu = null;
    backend = { kind: 'cpu', note: 'switched to the CPU on request' };
    return { backend: backend.kind };
  },
};

/** Runs `call` on the WebGPU model when there is one, else on the CPU model. A spec the model
 *  cannot draw throws at once (on either); only a failure of WebGPU itself (a rejected promise)
 *  falls back to the CPU, for good. */
async function onBackend(call) {
  if (gpu) {
    const pending = call(gpu);
    try {
      return await pending;
    } catch (e) {
      gpu = null;
      backend = { kind: 'cpu', note: `WebGPU failed during a run (${messageOf(e)}), so the CPU runs` };
      postMessage({ progress: { what: 'backend', backend: backend.kind, note: backend.note } });
    }
  }
  return call(model);
}

/** What scripts/build-web.sh built: { simd, webgpu } (pkg/build.json). */
async function buildInfo() {
  try {
    const res = await fetch(new URL('./pkg/build.json', import.meta.url));
    return res.ok ? await res.json() : {};
  } catch {
    return {};
  }
}

async function chooseBackend(prefer, build) {
  if (prefer === 'cpu') return { kind: 'cpu', note: 'the CPU was asked for' };
  if (!build.webgpu) return { kind: 'cpu', note: 'this build has no WebGPU module' };
  if (!self.navigator?.gpu) return { kind: 'cpu', note: 'this browser has no WebGPU' };
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch {
    // handled below
  }
  if (!adapter) return { kind: 'cpu', note: 'WebGPU gives no adapter here' };
  const info = adapter.info || {};
  return { kind: 'webgpu', note: '', adapter: [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') };
}

let queue = Promise.resolve();

self.onmessage = (e) => {
  const { id, op, args } = e.data;
  queue = queue.then(async () => {
    try {
      if (crashed) throw crashed;
      if (!ops[op]) throw new Error(`Unknown request "${op}".`);
      if (op !== 'load' && !model) throw new Error('No model is loaded yet.');
      const out = (await ops[op](args)) || {};
      const { result, transfer } = 'result' in out ? out : { result: out, transfer: [] };
      postMessage({ id, ok: true, result }, transfer);
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) {
        crashed = new Error(`The generator crashed (${err.message}); reload the page to start it again.`);
        err = crashed;
      }
      postMessage({ id, ok: false, error: messageOf(err) });
    }
  });
};
