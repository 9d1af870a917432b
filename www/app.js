// kyara's page: loads a model card and its weights, then draws faces with the WebAssembly
// generator from the `web` crate (./pkg/web.js). Plain ES module, relative paths only.
//
// State that tests and curious people can read from the DOM:
//   #face[data-seed][data-tags][data-resolved]  the main face: seed, asked tags, tags actually used
//   #grid[data-start][data-tags][data-done]     the grid: first seed, asked tags, "1" once all drawn
//   body[data-ready="1"]                         model loaded and the first face drawn

const GRID_SIZE = 8;
const U64_MAX = (1n << 64n) - 1n;
const RANDOM = ''; // value of the "random" choice of a group

// Swatch colours for the colour words found in tag names; other words fall back to CSS names.
const COLOURS = {
  aqua: '#37c6c4', black: '#25222b', blonde: '#f2d36e', blue: '#3f6fd8', brown: '#8a5a35',
  gray: '#9d9ca7', grey: '#9d9ca7', green: '#41a757', orange: '#f08b2e', pink: '#f49bc2',
  purple: '#8e5dca', red: '#d73c3c', silver: '#c5c7d0', white: '#f7f7f7', yellow: '#f3d63d',
};

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), progress: $('progress'), error: $('error'),
  face: $('face'), faceSeed: $('face-seed'), faceTags: $('face-tags'),
  download: $('download'), smooth: $('smooth'),
  controls: $('controls'), modelRow: $('model-row'), modelSelect: $('model'),
  seed: $('seed'), reroll: $('reroll'), pickers: $('pickers'), generate: $('generate'),
  grid: $('grid'), about: $('about'),
};

const state = {
  model: null, card: null, name: '', res: 64,
  gridStart: null, gridJob: 0, facePending: false,
  times: [], // recent milliseconds per face
};

// ---------- small helpers ----------

const messageOf = (e) => (e && e.message) || String(e);
const nextTask = () => new Promise((r) => setTimeout(r, 0));

function setStatus(text) {
  ui.status.textContent = text;
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

function randomSeed() {
  // Short seeds are easier to read and share; the model accepts any u64.
  return BigInt(crypto.getRandomValues(new Uint32Array(1))[0] % 1_000_000);
}

function formatBytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} kB`;
}

async function fetchOk(url, what) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`Could not download the ${what} (${url}): ${messageOf(e)}`);
  }
  if (!res.ok) {
    throw new Error(`Could not download the ${what} (${url}): HTTP ${res.status} ${res.statusText}`.trim());
  }
  return res;
}

async function fetchJson(url, what) {
  const text = await (await fetchOk(url, what)).text();
  try {
    return { text, json: JSON.parse(text) };
  } catch (e) {
    throw new Error(`The ${what} (${url}) is not valid JSON: ${messageOf(e)}`);
  }
}

/** Downloads a binary file, reporting progress as (received, total or 0). */
async function fetchBytes(url, what, onProgress) {
  const res = await fetchOk(url, what);
  const total = Number(res.headers.get('content-length')) || 0;
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress(received, total);
  }
  const bytes = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

// ---------- tags ----------

/** "blonde hair" in group "hair" -> "blonde". */
function shortName(tag, group) {
  const suffix = ` ${group}`;
  return tag.endsWith(suffix) ? tag.slice(0, -suffix.length) : tag;
}

function swatchColour(word) {
  if (COLOURS[word]) return COLOURS[word];
  return globalThis.CSS && CSS.supports('color', word) ? word : null;
}

function capitalise(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function visuallyHidden(text) {
  const s = document.createElement('span');
  s.className = 'visually-hidden';
  s.textContent = text;
  return s;
}

/** Builds one radio group per exclusive tag group and one checkbox per free tag. */
function buildPickers(vocab, preset) {
  ui.pickers.replaceChildren();
  const wanted = new Set(preset);
  (vocab.groups || []).forEach((group, gi) => {
    const fs = document.createElement('fieldset');
    fs.className = 'picker';
    const legend = document.createElement('legend');
    legend.textContent = capitalise(group.name);
    fs.append(legend);
    const chips = document.createElement('div');
    chips.className = 'chips';
    const presetTag = group.tags.find((t) => wanted.has(t)) ?? RANDOM;
    for (const tag of [RANDOM, ...group.tags]) {
      const label = document.createElement('label');
      label.className = 'chip';
      const input = document.createElement('input');
      input.type = 'radio';
      input.name = `group-${gi}`;
      input.value = tag;
      input.checked = tag === presetTag;
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.setAttribute('aria-hidden', 'true');
      const word = tag === RANDOM ? 'random' : shortName(tag, group.name);
      if (tag === RANDOM) {
        swatch.classList.add('random');
      } else {
        const colour = swatchColour(word.split(' ').pop());
        if (colour) swatch.style.setProperty('--swatch', colour);
        else swatch.classList.add('none');
      }
      const text = document.createElement('span');
      text.textContent = word;
      label.append(input, swatch, text);
      if (word !== tag || tag === RANDOM) label.append(visuallyHidden(` ${group.name}`));
      chips.append(label);
    }
    fs.append(chips);
    ui.pickers.append(fs);
  });
  const free = vocab.free || [];
  if (free.length) {
    const fs = document.createElement('fieldset');
    fs.className = 'picker';
    const legend = document.createElement('legend');
    legend.textContent = 'Extras';
    const chips = document.createElement('div');
    chips.className = 'chips';
    for (const tag of free) {
      const label = document.createElement('label');
      label.className = 'chip';
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.value = tag;
      input.checked = wanted.has(tag);
      const text = document.createElement('span');
      text.textContent = tag;
      label.append(input, text);
      chips.append(label);
    }
    fs.append(legend, chips);
    ui.pickers.append(fs);
  }
}

/** The tags the user asked for, groups first (in card order), then free tags. */
function askedTags() {
  return [...ui.pickers.querySelectorAll('input:checked')]
    .map((i) => i.value)
    .filter((v) => v !== RANDOM);
}

// ---------- seed ----------

/** The seed in the seed box as a BigInt, or null (and the box marked invalid). */
function readSeed() {
  const raw = ui.seed.value.trim();
  let seed = null;
  if (/^\d+$/.test(raw)) {
    const n = BigInt(raw);
    if (n <= U64_MAX) seed = n;
  }
  ui.seed.setAttribute('aria-invalid', seed === null ? 'true' : 'false');
  ui.seed.setCustomValidity(seed === null ? `Enter a whole number from 0 to ${U64_MAX}.` : '');
  return seed;
}

// ---------- drawing ----------

function drawFace(canvas, seed, tags) {
  const t0 = performance.now();
  const rgba = state.model.generate(seed, tags);
  const ms = performance.now() - t0;
  const { res } = state;
  if (rgba.length !== res * res * 4) {
    throw new Error(`The generator returned ${rgba.length} bytes, expected ${res * res * 4}.`);
  }
  const pixels = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length);
  canvas.getContext('2d').putImageData(new ImageData(pixels, res, res), 0, 0);
  state.times.push(ms);
  if (state.times.length > 16) state.times.shift();
  updateSpeed();
}

function updateSpeed() {
  const t = [...state.times].sort((a, b) => a - b);
  const median = t[Math.floor(t.length / 2)];
  const speed = document.getElementById('speed');
  if (speed && median !== undefined) speed.textContent = `${median < 10 ? median.toFixed(1) : Math.round(median)} ms per face`;
}

function renderFace() {
  const seed = readSeed();
  if (seed === null || !state.model) return false;
  const asked = askedTags();
  const tags = asked.join(', ');
  try {
    drawFace(ui.face, seed, tags);
    const resolved = state.model.resolve_tags(seed, tags);
    ui.face.dataset.seed = seed.toString();
    ui.face.dataset.tags = tags;
    ui.face.dataset.resolved = resolved;
    ui.face.setAttribute('aria-label', `Generated face, seed ${seed}: ${resolved}`);
    ui.faceSeed.textContent = `Seed ${seed}`;
    const askedSet = new Set(asked);
    ui.faceTags.replaceChildren(...resolved.split(',').map((t) => t.trim()).filter(Boolean).map((t) => {
      const li = document.createElement('li');
      li.textContent = t;
      if (!askedSet.has(t)) {
        li.className = 'drawn';
        li.title = 'drawn from the seed';
      }
      return li;
    }));
    ui.download.disabled = false;
    clearError();
    markSelected();
    saveToUrl(seed, asked);
    return true;
  } catch (e) {
    showError(messageOf(e));
    return false;
  }
}

/** Renders the main face once the current event burst is over (typing stays responsive). */
function scheduleFace() {
  if (state.facePending) return;
  state.facePending = true;
  setTimeout(() => {
    state.facePending = false;
    renderFace();
  }, 0);
}

function buildGrid() {
  ui.grid.replaceChildren();
  for (let i = 0; i < GRID_SIZE; i++) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'cell';
    button.setAttribute('aria-pressed', 'false');
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = state.res;
    const label = document.createElement('span');
    label.className = 'cell-seed';
    button.append(canvas, label);
    button.addEventListener('click', () => {
      if (!button.dataset.seed) return;
      ui.seed.value = button.dataset.seed;
      renderFace();
      if (matchMedia('(max-width: 759px)').matches) {
        ui.face.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      }
    });
    ui.grid.append(button);
  }
}

/** Draws the grid from state.gridStart, one face per task; a newer call cancels an older one. */
async function renderGrid() {
  if (state.gridStart === null || !state.model) return;
  const job = ++state.gridJob;
  const tags = askedTags().join(', ');
  ui.grid.dataset.done = '0';
  ui.grid.dataset.start = state.gridStart.toString();
  ui.grid.dataset.tags = tags;
  ui.grid.setAttribute('aria-busy', 'true');
  const cells = [...ui.grid.children];
  for (let i = 0; i < cells.length; i++) {
    await nextTask();
    if (job !== state.gridJob) return;
    const cell = cells[i];
    const seed = state.gridStart + BigInt(i);
    if (seed > U64_MAX) break;
    try {
      drawFace(cell.querySelector('canvas'), seed, tags);
      cell.dataset.seed = seed.toString();
      cell.querySelector('.cell-seed').textContent = seed.toString();
      cell.setAttribute('aria-label', `Seed ${seed}: ${state.model.resolve_tags(seed, tags)}`);
    } catch (e) {
      showError(messageOf(e));
      break;
    }
  }
  ui.grid.removeAttribute('aria-busy');
  ui.grid.dataset.done = '1';
  markSelected();
}

function markSelected() {
  const current = ui.face.dataset.seed;
  for (const cell of ui.grid.children) {
    cell.setAttribute('aria-pressed', String(cell.dataset.seed !== undefined && cell.dataset.seed === current));
  }
}

function newCharacters() {
  state.gridStart = randomSeed();
  ui.seed.value = state.gridStart.toString();
  renderFace();
  renderGrid();
}

function downloadPng() {
  const seed = ui.face.dataset.seed;
  if (seed === undefined) return;
  ui.face.toBlob((blob) => {
    if (!blob) return showError('This browser could not encode the PNG.');
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `kyara-${state.name}-seed${seed}.png`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, 'image/png');
}

// ---------- URL state (#seed=42&tags=blonde_hair,blue_eyes) ----------

function readFromUrl() {
  const p = new URLSearchParams(location.hash.slice(1));
  const seed = p.get('seed');
  const tags = (p.get('tags') || '').split(',').map((t) => t.replace(/_/g, ' ').trim()).filter(Boolean);
  return { seed: seed && /^\d+$/.test(seed) && BigInt(seed) <= U64_MAX ? BigInt(seed) : null, tags };
}

function saveToUrl(seed, asked) {
  const tags = asked.map((t) => t.replace(/ /g, '_')).join(',');
  const hash = `#seed=${seed}${tags ? `&tags=${tags}` : ''}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

// ---------- loading ----------

function describeModel(card, name) {
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
  about.append(speed, ' · runs on your device with WebAssembly.');
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

async function loadWasm() {
  try {
    const wasm = await import('./pkg/web.js');
    await wasm.default();
    return wasm;
  } catch (e) {
    throw new Error(`Could not start the WebAssembly generator (pkg/web.js): ${messageOf(e)}`);
  }
}

async function load() {
  const params = new URLSearchParams(location.search);
  setStatus('Loading the model list…');
  const { json: index } = await fetchJson('models/index.json', 'model list');
  const name = params.get('model') || index.default || (index.models || [])[0];
  if (!name || !/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name)) {
    throw new Error(`"${name ?? ''}" is not a model name this page can load.`);
  }
  state.name = name;
  buildModelPicker(index, name);

  setStatus(`Loading model “${name}”…`);
  const cardUrl = new URL(`models/${name}/model.json`, location.href);
  const { text: cardText, json: card } = await fetchJson(cardUrl.href, `card of model “${name}”`);
  if (card.format !== 'kyara-model') {
    throw new Error(`models/${name}/model.json is not a kyara model card (format is ${JSON.stringify(card.format)}).`);
  }
  const weightsUrl = new URL(card.weights || 'generator.bpk', cardUrl);

  ui.progress.hidden = false;
  ui.progress.removeAttribute('value');
  const [wasm, weights] = await Promise.all([
    loadWasm(),
    fetchBytes(weightsUrl.href, `weights of model “${name}”`, (got, total) => {
      if (total) {
        ui.progress.value = got / total;
        setStatus(`Downloading weights… ${formatBytes(got)} of ${formatBytes(total)}`);
      } else {
        setStatus(`Downloading weights… ${formatBytes(got)}`);
      }
    }),
  ]);
  ui.progress.hidden = true;

  setStatus(`Building the generator (${formatBytes(weights.length)} of weights)…`);
  await nextTask();
  try {
    state.model = wasm.KyaraModel.load(cardText, weights);
  } catch (e) {
    throw new Error(`Could not load model “${name}”: ${messageOf(e)}`);
  }
  state.res = state.model.resolution();
  try {
    state.card = JSON.parse(state.model.card_json());
  } catch {
    state.card = card;
  }
}

function wireControls() {
  ui.controls.addEventListener('submit', (e) => e.preventDefault());
  ui.seed.addEventListener('input', scheduleFace);
  ui.reroll.addEventListener('click', () => {
    ui.seed.value = randomSeed().toString();
    renderFace();
  });
  ui.pickers.addEventListener('change', () => {
    scheduleFace();
    renderGrid();
  });
  ui.generate.addEventListener('click', newCharacters);
  ui.download.addEventListener('click', downloadPng);
  ui.smooth.addEventListener('change', () => {
    document.body.classList.toggle('smooth', ui.smooth.checked);
  });
}

async function main() {
  wireControls();
  try {
    await load();
  } catch (e) {
    ui.progress.hidden = true;
    setStatus('The model could not be loaded.');
    showError(messageOf(e));
    console.warn(e);
    return;
  }
  const fromUrl = readFromUrl();
  const vocab = state.card.vocab || { groups: [], free: [] };
  const known = new Set(vocab.tags || []);
  buildPickers(vocab, fromUrl.tags.filter((t) => known.has(t)));
  ui.face.width = ui.face.height = state.res;
  describeModel(state.card, state.name);
  buildGrid();

  const first = fromUrl.seed ?? randomSeed();
  ui.seed.value = first.toString();
  const lastStart = U64_MAX - BigInt(GRID_SIZE - 1);
  state.gridStart = first > lastStart ? lastStart : first;
  for (const el of [ui.seed, ui.reroll, ui.generate]) el.disabled = false;
  if (!renderFace()) {
    setStatus('The model loaded, but drawing a face failed.');
    return;
  }
  setStatus('Ready.');
  document.body.dataset.ready = '1';
  renderGrid();
}

main();
