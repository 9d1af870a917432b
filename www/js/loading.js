// Loading of the artist page: the model list, the model (in the worker, with progress), the about
// panel, and the offline status (service worker and cache).

import { Generator } from '../kyara.js';
import { CACHE, MODEL_NAME_PATTERN, SHELL, messageOf } from './shared.js';
import { formatBytes, setStatus, ui } from './dom.js';
import { state } from './state.js';

export function describeModel(card, name) {
  const t = card.training || {};
  const about = document.createDocumentFragment();
  about.append('Model ');
  const b = document.createElement('strong');
  b.textContent = card.name || name;
  about.append(b);
  const facts = [];
  if (card.arch) facts.push(card.arch);
  facts.push(`${state.res}×${state.res}`);
  if (t.steps !== undefined) {
    let trained = `trained ${Number(t.steps).toLocaleString('en')} steps`;
    if (t.images_seen !== undefined) trained += ` (${Number(t.images_seen).toLocaleString('en')} images)`;
    if (t.data) trained += ` on ${t.data}`;
    facts.push(trained);
  }
  about.append(` · ${facts.join(' · ')} · `);
  const speed = document.createElement('span');
  speed.id = 'speed';
  speed.textContent = '– ms per face';
  const backend = document.createElement('span');
  backend.id = 'backend';
  about.append(speed, ' · runs on your device with ', backend, ', in a Web Worker.');
  ui.about.replaceChildren(about);
}

function buildModelPicker(index, name) {
  const models = Array.isArray(index.models) ? index.models : [];
  if (models.length < 2) return;
  ui.modelSelect.replaceChildren(...models.map((m) => new Option(m, m, false, m === name)));
  ui.modelRow.hidden = false;
  ui.modelSelect.addEventListener('change', () => {
    const url = new URL(location.href);
    url.searchParams.set('model', ui.modelSelect.value);
    url.hash = '';
    location.assign(url);
  });
}

async function fetchIndex() {
  let res;
  try {
    res = await fetch('models/index.json');
  } catch (e) {
    throw new Error(`Could not download the model list (models/index.json): ${messageOf(e)}`);
  }
  if (!res.ok) throw new Error(`Could not download the model list (models/index.json): HTTP ${res.status}`);
  try {
    return await res.json();
  } catch (e) {
    throw new Error(`The model list (models/index.json) is not valid JSON: ${messageOf(e)}`);
  }
}

export async function load() {
  setStatus('Loading the model list…');
  const index = await fetchIndex();
  // The one part of a link read before the engine runs: which model to load (js/face.js reads the
  // rest through the engine once it is loaded).
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('model');
  const name = fromHash || new URLSearchParams(location.search).get('model') || index.default || (index.models || [])[0];
  if (!name || !MODEL_NAME_PATTERN.test(name)) {
    throw new Error(`"${name ?? ''}" is not a model name this page can load.`);
  }
  state.name = name;
  buildModelPicker(index, name);

  setStatus(`Loading model “${name}”…`);
  ui.progress.hidden = false;
  ui.progress.removeAttribute('value');
  const got = { wasm: [0, 0], weights: [0, 0] };
  state.gen = new Generator({
    onProgress: ({ what, got: n, total, note }) => {
      if (what === 'backend') {
        state.info.backend = 'cpu';
        state.info.backendNote = note;
        showBackend();
        return;
      }
      if (!(what in got)) return;
      got[what] = [n, total];
      const sum = got.wasm[0] + got.weights[0];
      const all = got.wasm[1] && got.weights[1] ? got.wasm[1] + got.weights[1] : 0;
      if (all) ui.progress.value = sum / all;
      setStatus(`Downloading the generator and the weights of “${name}”… ${formatBytes(sum)}${all ? ` of ${formatBytes(all)}` : ''}`);
    },
  });
  const cache = 'serviceWorker' in navigator && !navigator.serviceWorker.controller;
  const prefer = new URLSearchParams(location.search).get('backend') === 'cpu' ? 'cpu' : 'auto';
  try {
    state.info = await state.gen.load(new URL(`models/${name}/`, location.href), { cache, prefer });
  } catch (e) {
    const msg = messageOf(e);
    throw new Error(msg.includes(`“${name}”`) ? msg : `Could not load model “${name}”: ${msg}`);
  } finally {
    ui.progress.hidden = true;
  }
  state.card = state.info.card;
  state.res = state.info.resolution;
  const i = state.info;
  showBackend();
  ui.perf.wasm.textContent = `${formatBytes(i.wasmBytes)} (${i.wasmBytes.toLocaleString('en')} bytes)`;
  ui.perf.weights.textContent = `${formatBytes(i.weightsBytes)}, ${i.latentDim}-value latent, ${i.numTags} tags`;
}

export function showBackend() {
  const i = state.info;
  const text = i.backend === 'webgpu'
    ? `WebGPU (Burn wgpu backend${i.adapter ? `, adapter: ${i.adapter}` : ''}) in a Web Worker`
    : `CPU (WebAssembly${i.simd ? ' with SIMD' : ''}, Burn Flex backend) in a Web Worker`;
  ui.perf.backend.textContent = i.backendNote ? `${text}; ${i.backendNote}` : text;
  document.body.dataset.backend = i.backend;
  const b = document.getElementById('backend');
  if (b) b.textContent = i.backend === 'webgpu' ? 'WebGPU' : 'the CPU (WebAssembly)';
}

/** Marks the page ready for offline use once the service worker and the cache hold everything. */
export async function watchOffline() {
  if (!('serviceWorker' in navigator)) {
    ui.perf.offline.textContent = 'not available in this browser';
    return;
  }
  try {
    // A module service worker: it imports js/shared.js (the cache name and the file list).
    await navigator.serviceWorker.register('sw.js', { type: 'module' });
    await navigator.serviceWorker.ready;
    const weights = new URL(`models/${state.name}/${state.card.weights || 'generator.bpk'}`, location.href).href;
    const glue = new URL('web.js', state.info.wasmUrl).href;
    const needed = [...SHELL, glue, state.info.wasmUrl, `models/${state.name}/model.json`, weights];
    for (let tries = 0; tries < 120; tries++) {
      const cache = await caches.open(CACHE);
      const found = await Promise.all(needed.map((u) => cache.match(new URL(u, location.href).href)));
      if (found.every(Boolean)) {
        document.body.dataset.offline = '1';
        ui.perf.offline.textContent = 'yes: page, generator and model are stored on this device';
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    ui.perf.offline.textContent = 'not yet: some files are not stored';
  } catch (e) {
    console.warn('kyara: no offline support:', e);
    ui.perf.offline.textContent = `no (${messageOf(e)})`;
  }
}
