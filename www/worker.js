// kyara's generator worker: owns the WebAssembly model and answers requests from kyara.js one at
// a time. Messages in: { id, op, args }; out: { id, ok, result | error } and
// { progress: { what, got, total } } while downloading.
//
// Backends: the CPU build (pkg/, Burn Flex) always works. When the build has a WebGPU module
// (pkg-gpu/, listed in pkg/build.json) and navigator.gpu gives an adapter, the worker loads that
// module instead: it holds the same CPU model (for z, c and as the fallback) plus the model on
// WebGPU. If WebGPU fails to start or fails during a run, the worker falls back to the CPU and
// says why.

const CACHE = 'kyara-v1'; // same name as kyara.js / sw.js
const U64_MAX = (1n << 64n) - 1n;

let wasm = null; // the wasm-bindgen module in use (pkg/web.js or pkg-gpu/web.js)
let model = null; // KyaraModel (CPU)
let gpu = null; // KyaraGpuModel, when WebGPU runs
let backend = { kind: 'cpu', note: '' };
let card = null;
let crashed = null;

const messageOf = (e) => (e && e.message) || String(e);

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

function parseSeed(seed, what = 'seed') {
  const s = String(seed ?? '').trim();
  if (!/^\d+$/.test(s) || BigInt(s) > U64_MAX) throw new Error(`The ${what} "${s}" is not a whole number from 0 to ${U64_MAX}.`);
  return BigInt(s);
}

function tagString(tags) {
  return Array.isArray(tags) ? tags.join(', ') : String(tags ?? '');
}

/** The generator inputs (z, c) of a character spec, plus its resolved tags. */
function inputs(spec) {
  const seed = parseSeed(spec.seed);
  const tags = tagString(spec.tags);
  const resolved = model.resolve_tags(seed, tags); // throws on unknown or conflicting tags
  let z = model.latent(seed);
  for (const v of spec.vary || []) {
    const strength = Number(v.strength);
    if (!Number.isFinite(strength) || strength < 0) throw new Error(`Variation strength "${v.strength}" is not a number >= 0.`);
    z = wasm.varyLatent(z, parseSeed(v.seed, 'variation seed'), strength);
  }
  const directions = card.directions || [];
  for (const [name, value] of Object.entries(spec.directions || {})) {
    const d = directions.find((x) => x.name === name);
    if (!d) throw new Error(`The model has no latent direction "${name}".`);
    const k = Number(value);
    if (!Number.isFinite(k)) throw new Error(`Direction "${name}": "${value}" is not a number.`);
    for (let i = 0; i < z.length; i++) z[i] += k * (d.vector[i] || 0);
  }
  const c = model.condition(seed, tags);
  const vocab = card.vocab.tags;
  for (const [tag, value] of Object.entries(spec.strengths || {})) {
    const i = vocab.indexOf(tag);
    if (i < 0) throw new Error(`Unknown tag "${tag}" in the strengths; this model knows: ${vocab.join(', ')}.`);
    const k = Number(value);
    if (!Number.isFinite(k)) throw new Error(`Strength of "${tag}": "${value}" is not a number.`);
    c[i] = k;
  }
  return { z, c, resolved };
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
    card = JSON.parse(model.card_json());
    card.directions = Array.isArray(raw.directions) ? raw.directions : [];
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

  async face({ spec }) {
    const { z, c, resolved } = inputs(spec);
    const t0 = performance.now();
    const rgba = await draw(z, c);
    const ms = performance.now() - t0;
    return {
      result: { rgba: new Uint8ClampedArray(rgba.buffer), tags: resolved, cond: Array.from(c), ms, backend: backend.kind },
      transfer: [rgba.buffer],
    };
  },

  async frames({ a, b, count }) {
    const n = Math.max(2, Math.min(64, Math.floor(Number(count) || 0)));
    const A = inputs(a);
    const B = inputs(b);
    const t0 = performance.now();
    const frames = [];
    for (let i = 0; i < n; i++) {
      const t = i / (n - 1);
      const px = await draw(wasm.slerpLatent(A.z, B.z, t), wasm.lerpCondition(A.c, B.c, t));
      frames.push(new Uint8ClampedArray(px.buffer));
      postMessage({ progress: { what: 'frames', got: i + 1, total: n } });
    }
    return { result: { frames, ms: (performance.now() - t0) / n }, transfer: frames.map((f) => f.buffer) };
  },

  /** Leaves WebGPU for the CPU (tests compare the two; people can too). */
  useCpu() {
    gpu = null;
    backend = { kind: 'cpu', note: 'switched to the CPU on request' };
    return { backend: backend.kind };
  },
};

/** One face on the current backend; a WebGPU failure falls back to the CPU for good. */
async function draw(z, c) {
  if (gpu) {
    try {
      return await gpu.generate_with(z, c);
    } catch (e) {
      gpu = null;
      backend = { kind: 'cpu', note: `WebGPU failed during a run (${messageOf(e)}), so the CPU runs` };
      postMessage({ progress: { what: 'backend', backend: backend.kind, note: backend.note } });
    }
  }
  return model.generate_with(z, c);
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
