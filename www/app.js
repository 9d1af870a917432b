// kyara's artist page. The generator runs in a Web Worker (kyara.js + worker.js), so the page
// never freezes while faces are drawn. Plain ES module, relative paths only.
//
// State that tests and curious people can read from the DOM:
//   #face[data-seed][data-tags][data-resolved][data-key]  the main face: seed, asked tags, tags
//                                     actually used, and the permalink (URL hash) it was drawn for
//   #grid[data-start][data-tags][data-mode][data-done]    the grid: first seed, asked tags,
//                                     "seeds" or "variations", "1" once all drawn
//   #transition[data-done]             "1" once the transition frames are drawn
//   body[data-ready="1"]               model loaded and the first face drawn
//   body[data-offline="1"]             page, WebAssembly and model are stored for offline use

import { CACHE, Generator, messageOf } from './kyara.js';

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
  status: $('status'), progress: $('progress'), warning: $('warning'), error: $('error'),
  face: $('face'), faceSeed: $('face-seed'), faceTags: $('face-tags'),
  download: $('download'), downloadGrid: $('download-grid'), scale: $('scale'), smooth: $('smooth'),
  permalink: $('permalink'), setA: $('set-a'), setB: $('set-b'),
  controls: $('controls'), modelRow: $('model-row'), modelSelect: $('model'),
  seed: $('seed'), reroll: $('reroll'), pickers: $('pickers'), generate: $('generate'),
  randomize: $('randomize'), varyStrength: $('vary-strength'), varyValue: $('vary-value'),
  variations: $('variations'), strengths: $('strengths'), directions: $('directions'),
  resetStrengths: $('reset-strengths'), directionCount: $('direction-count'),
  grid: $('grid'), gridHint: $('grid-hint'), about: $('about'),
  transition: $('transition'), transA: $('trans-a'), transB: $('trans-b'), transCanvas: $('trans-canvas'),
  transT: $('trans-t'), transFrames: $('trans-frames'), transPlay: $('trans-play'), transStrip: $('trans-strip'),
  perf: {
    backend: $('perf-backend'), wasm: $('perf-wasm'), weights: $('perf-weights'),
    first: $('perf-first'), ms: $('perf-ms'), offline: $('perf-offline'),
  },
};

const state = {
  gen: null, info: null, card: null, name: '', res: 64,
  strengths: {}, // tag -> value, overrides of the condition vector
  dirs: {}, // latent direction name -> value
  vary: [], // variations applied to the current character's latent
  locks: new Set(), // group indexes kept by "Randomize tags"
  face: { busy: false, dirty: false },
  grid: { start: null, job: 0, mode: 'seeds', specs: [], varyBase: 0n },
  trans: { a: null, b: null, frames: [], job: 0, timer: 0, i: 0, dir: 1 },
  times: [], // recent milliseconds per face
  firstFace: null,
};

// ---------- small helpers ----------

const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r()));

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

function warn(text) {
  ui.warning.textContent = ui.warning.hidden ? text : `${ui.warning.textContent} ${text}`;
  ui.warning.hidden = false;
}

function randomSeed() {
  // Short seeds are easier to read and share; the model accepts any u64.
  return BigInt(crypto.getRandomValues(new Uint32Array(1))[0] % 1_000_000);
}

function formatBytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} kB`;
}

function formatMs(ms) {
  return ms < 10 ? ms.toFixed(1) : Math.round(ms).toLocaleString('en');
}

const num = (x) => String(Math.round(Number(x) * 1000) / 1000);

function paint(canvas, rgba) {
  const { res } = state;
  if (rgba.length !== res * res * 4) {
    throw new Error(`The generator returned ${rgba.length} bytes, expected ${res * res * 4}.`);
  }
  if (canvas.width !== res) canvas.width = canvas.height = res;
  canvas.getContext('2d').putImageData(new ImageData(rgba, res, res), 0, 0);
}

function noteTime(ms) {
  state.times.push(ms);
  if (state.times.length > 16) state.times.shift();
  const t = [...state.times].sort((a, b) => a - b);
  const median = t[Math.floor(t.length / 2)];
  const text = `${formatMs(median)} ms per face`;
  const speed = document.getElementById('speed');
  if (speed) speed.textContent = text;
  ui.perf.ms.textContent = `${text} (median of the last ${t.length}, ${state.info?.backend === 'webgpu' ? 'WebGPU' : 'CPU'})`;
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

/** Builds one radio group per exclusive tag group (with a lock) and one checkbox per free tag. */
function buildPickers(vocab, preset) {
  ui.pickers.replaceChildren();
  if (state.card.generator && state.card.generator.conditional === false) {
    // An unconditional model (e.g. `--arch dcgan --unconditional`) draws from the seed alone.
    const note = document.createElement('p');
    note.className = 'note';
    note.textContent = 'This model ignores tags: every face comes from its seed alone.';
    ui.pickers.append(note);
    return;
  }
  const wanted = new Set(preset);
  (vocab.groups || []).forEach((group, gi) => {
    const fs = document.createElement('fieldset');
    fs.className = 'picker';
    fs.dataset.group = String(gi);
    const legend = document.createElement('legend');
    legend.textContent = capitalise(group.name);
    const lock = document.createElement('button');
    lock.type = 'button';
    lock.className = 'lock';
    lock.setAttribute('aria-pressed', 'false');
    lock.setAttribute('aria-label', `Lock ${group.name} when randomizing`);
    lock.title = `Keep the ${group.name} when randomizing`;
    lock.textContent = 'Lock';
    lock.addEventListener('click', () => {
      const on = !state.locks.has(gi);
      if (on) state.locks.add(gi);
      else state.locks.delete(gi);
      lock.setAttribute('aria-pressed', String(on));
      lock.textContent = on ? 'Locked' : 'Lock';
    });
    const head = document.createElement('div');
    head.className = 'picker-head';
    head.append(legend, lock);
    fs.append(head);
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

function randomizeTags() {
  const groups = state.card.vocab.groups || [];
  const pick = (n) => crypto.getRandomValues(new Uint32Array(1))[0] % n;
  groups.forEach((g, gi) => {
    if (state.locks.has(gi)) return;
    const tag = g.tags[pick(g.tags.length)];
    const input = [...ui.pickers.querySelectorAll(`input[name="group-${gi}"]`)].find((i) => i.value === tag);
    if (input) input.checked = true;
  });
}

// ---------- expert sliders ----------

function slider({ id, label, min, max, step, value, onInput }) {
  const row = document.createElement('div');
  row.className = 'slider';
  const l = document.createElement('label');
  l.htmlFor = id;
  l.textContent = label;
  const input = document.createElement('input');
  input.type = 'range';
  input.id = id;
  input.min = String(min);
  input.max = String(max);
  input.step = String(step);
  input.value = String(value);
  const out = document.createElement('output');
  out.htmlFor = id;
  out.textContent = num(value);
  input.addEventListener('input', () => {
    out.textContent = num(input.value);
    onInput(Number(input.value));
  });
  row.append(l, input, out);
  return row;
}

function buildSliders() {
  const tags = state.card.vocab.tags || [];
  ui.strengths.replaceChildren(...tags.map((tag, i) => {
    const row = slider({
      id: `strength-${i}`, label: tag, min: -1, max: 2, step: 0.05, value: state.strengths[tag] ?? 0,
      onInput: (v) => {
        state.strengths[tag] = v;
        row.classList.add('moved');
        requestFace();
      },
    });
    row.dataset.tag = tag;
    row.classList.toggle('moved', tag in state.strengths);
    return row;
  }));
  const dirs = state.card.directions || [];
  ui.directionCount.textContent = dirs.length ? ` and ${dirs.length} latent directions` : '';
  ui.directions.replaceChildren(...dirs.map((d, i) => slider({
    id: `direction-${i}`, label: d.name, min: -3, max: 3, step: 0.1, value: state.dirs[d.name] ?? 0,
    onInput: (v) => {
      state.dirs[d.name] = v;
      requestFace();
    },
  })));
}

/** Shows the condition vector a face was drawn with; moved sliders keep their values. */
function syncSliders(cond) {
  [...ui.strengths.children].forEach((row, i) => {
    const tag = row.dataset.tag;
    const moved = tag in state.strengths;
    row.classList.toggle('moved', moved);
    if (moved) return;
    const input = row.querySelector('input');
    input.value = String(cond[i]);
    row.querySelector('output').textContent = num(cond[i]);
  });
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

// ---------- permalinks (#model=…&seed=42&tags=blonde_hair,blue_eyes&s=…&v=…&d=…) ----------

/** The current character, or null when the seed box is invalid. */
function currentSpec() {
  const seed = readSeed();
  if (seed === null) return null;
  return {
    seed, tags: askedTags(), strengths: { ...state.strengths }, vary: state.vary.map((v) => ({ ...v })),
    directions: { ...state.dirs },
  };
}

const under = (t) => t.replace(/ /g, '_');

function specHash(spec) {
  const p = [`model=${encodeURIComponent(state.name)}`, `seed=${spec.seed}`];
  if (spec.tags.length) p.push(`tags=${spec.tags.map(under).join(',')}`);
  const s = Object.entries(spec.strengths);
  if (s.length) p.push(`s=${s.map(([t, v]) => `${under(t)}:${num(v)}`).join(',')}`);
  if (spec.vary.length) p.push(`v=${spec.vary.map((v) => `${v.seed}:${num(v.strength)}`).join(',')}`);
  const d = Object.entries(spec.directions).filter(([, v]) => Number(v) !== 0);
  if (d.length) p.push(`d=${d.map(([n, v]) => `${under(n)}:${num(v)}`).join(',')}`);
  return p.join('&');
}

/** Parses the hash; unknown or malformed parts are reported in `problems` and left out. */
function readFromUrl(known, directions) {
  const p = new URLSearchParams(location.hash.slice(1));
  const problems = [];
  const out = { model: p.get('model'), seed: null, tags: [], strengths: {}, vary: [], dirs: {} };
  const seed = p.get('seed');
  if (seed !== null) {
    if (/^\d+$/.test(seed) && BigInt(seed) <= U64_MAX) out.seed = BigInt(seed);
    else problems.push(`seed “${seed}” is not a whole number from 0 to ${U64_MAX}`);
  }
  const words = (key) => (p.get(key) || '').split(',').map((t) => t.trim()).filter(Boolean);
  const spaced = (t) => t.replace(/_/g, ' ');
  for (const t of words('tags').map(spaced)) {
    if (known && !known.has(t)) problems.push(`unknown tag “${t}”`);
    else out.tags.push(t);
  }
  for (const item of words('s')) {
    const [t, v] = item.split(':');
    const tag = spaced(t);
    if (known && !known.has(tag)) problems.push(`unknown tag “${tag}” in the strengths`);
    else if (!Number.isFinite(Number(v)) || v === '' || v === undefined) problems.push(`strength “${item}” is not tag:number`);
    else out.strengths[tag] = Number(v);
  }
  for (const item of words('v')) {
    const [s, v] = item.split(':');
    if (/^\d+$/.test(s) && BigInt(s) <= U64_MAX && Number.isFinite(Number(v)) && Number(v) >= 0 && v !== '') {
      out.vary.push({ seed: BigInt(s), strength: Number(v) });
    } else {
      problems.push(`variation “${item}” is not seed:strength`);
    }
  }
  for (const item of words('d')) {
    const [n, v] = item.split(':');
    const name = spaced(n);
    if (directions && !directions.has(name)) problems.push(`unknown latent direction “${name}”`);
    else if (!Number.isFinite(Number(v))) problems.push(`direction “${item}” is not name:number`);
    else out.dirs[name] = Number(v);
  }
  return { ...out, problems };
}

function applyHash(hash) {
  if (location.hash.slice(1) !== hash) history.replaceState(null, '', `#${hash}`);
  ui.permalink.href = `#${hash}`;
}

// ---------- the main face ----------

/** Redraws the main face soon; bursts of changes coalesce into one drawing at a time. */
function requestFace() {
  state.face.dirty = true;
  if (!state.face.busy) pumpFace();
}

async function pumpFace() {
  state.face.busy = true;
  try {
    while (state.face.dirty) {
      state.face.dirty = false;
      const spec = currentSpec();
      if (!spec) break;
      const hash = specHash(spec);
      applyHash(hash);
      try {
        const r = await state.gen.face(spec);
        if (state.face.dirty) continue; // a newer request is waiting: skip painting this one
        paint(ui.face, r.rgba);
        noteTime(r.ms);
        showFace(spec, r, hash);
        clearError();
      } catch (e) {
        showError(messageOf(e));
      }
    }
  } finally {
    state.face.busy = false;
  }
}

function showFace(spec, r, hash) {
  const tags = spec.tags.join(', ');
  Object.assign(ui.face.dataset, { seed: spec.seed.toString(), tags, resolved: r.tags, key: hash });
  const varied = spec.vary.length ? ` (variation ${spec.vary.map((v) => v.seed).join(', ')})` : '';
  ui.face.setAttribute('aria-label', `Generated face, seed ${spec.seed}${varied}: ${r.tags}`);
  ui.faceSeed.textContent = `Seed ${spec.seed}${varied}`;
  const asked = new Set(spec.tags);
  ui.faceTags.replaceChildren(...r.tags.split(',').map((t) => t.trim()).filter(Boolean).map((t) => {
    const li = document.createElement('li');
    li.textContent = t;
    if (!asked.has(t)) {
      li.className = 'drawn';
      li.title = 'drawn from the seed';
    }
    return li;
  }));
  syncSliders(r.cond);
  state.current = spec;
  for (const b of [ui.download, ui.setA, ui.setB, ui.variations]) b.disabled = false;
  markSelected();
  if (state.firstFace === null) {
    state.firstFace = performance.now();
    const i = state.info;
    ui.perf.first.textContent = `${formatMs(state.firstFace)} ms after navigation (downloads ${formatMs(i.downloadMs)} ms, `
      + `building the generator ${formatMs(i.buildMs)} ms, first face ${formatMs(r.ms)} ms)`;
  }
}

// ---------- the grid ----------

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
    button.addEventListener('click', () => chooseCell(i));
    ui.grid.append(button);
  }
}

function chooseCell(i) {
  const spec = state.grid.specs[i];
  if (!spec || !ui.grid.children[i].dataset.seed) return;
  ui.seed.value = spec.seed.toString();
  state.vary = spec.vary.map((v) => ({ ...v }));
  requestFace();
  if (matchMedia('(max-width: 759px)').matches) {
    ui.face.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }
}

/** Draws the grid one face at a time in the worker; a newer call cancels an older one. */
async function renderGrid() {
  if (!state.gen || state.grid.start === null) return;
  const job = ++state.grid.job;
  const g = state.grid;
  const tags = askedTags();
  const base = { tags, strengths: { ...state.strengths }, directions: { ...state.dirs } };
  if (g.mode === 'variations') {
    const strength = Number(ui.varyStrength.value);
    g.specs = Array.from({ length: GRID_SIZE }, (_, i) => ({
      ...base, seed: g.start, vary: [...state.vary, { seed: g.varyBase + BigInt(i), strength }],
    }));
    ui.gridHint.textContent = `Variations of seed ${g.start} at strength ${num(strength)}. Choose one to continue from it.`;
  } else {
    g.specs = Array.from({ length: GRID_SIZE }, (_, i) => ({ ...base, seed: g.start + BigInt(i), vary: [] }))
      .filter((s) => s.seed <= U64_MAX);
    ui.gridHint.textContent = 'Choose a face to see it large. Tags you leave on “random” are drawn from each seed.';
  }
  Object.assign(ui.grid.dataset, { done: '0', start: g.start.toString(), tags: tags.join(', '), mode: g.mode });
  ui.grid.setAttribute('aria-busy', 'true');
  ui.downloadGrid.disabled = true;
  const cells = [...ui.grid.children];
  cells.forEach((c) => delete c.dataset.seed);
  for (let i = 0; i < cells.length && i < g.specs.length; i++) {
    const spec = g.specs[i];
    try {
      const r = await state.gen.face(spec);
      if (job !== g.job) return;
      paint(cells[i].querySelector('canvas'), r.rgba);
      noteTime(r.ms);
      cells[i].dataset.seed = spec.seed.toString();
      cells[i].dataset.key = specHash(spec);
      const last = spec.vary.at(-1);
      cells[i].querySelector('.cell-seed').textContent = g.mode === 'variations' ? `~${last.seed}` : spec.seed.toString();
      cells[i].setAttribute('aria-label', g.mode === 'variations'
        ? `Variation ${i + 1} of seed ${spec.seed}: ${r.tags}`
        : `Seed ${spec.seed}: ${r.tags}`);
    } catch (e) {
      if (job !== g.job) return;
      showError(messageOf(e));
      break;
    }
  }
  ui.grid.removeAttribute('aria-busy');
  ui.grid.dataset.done = '1';
  ui.downloadGrid.disabled = false;
  markSelected();
}

function markSelected() {
  const key = ui.face.dataset.key;
  for (const cell of ui.grid.children) {
    cell.setAttribute('aria-pressed', String(Boolean(cell.dataset.seed) && cell.dataset.key === key));
  }
}

function newCharacters() {
  state.grid.mode = 'seeds';
  state.grid.start = randomSeed();
  state.vary = [];
  ui.seed.value = state.grid.start.toString();
  requestFace();
  renderGrid();
}

function variations() {
  const spec = currentSpec();
  if (!spec) return;
  state.grid.mode = 'variations';
  state.grid.start = spec.seed;
  state.grid.varyBase = randomSeed() * 100n;
  renderGrid();
}

// ---------- transition ----------

function setTransition(end) {
  const spec = currentSpec();
  if (!spec) return;
  state.trans[end] = spec;
  ui.transition.hidden = false;
  const src = ui.face;
  const dst = end === 'a' ? ui.transA : ui.transB;
  dst.width = dst.height = state.res;
  dst.getContext('2d').drawImage(src, 0, 0);
  if (state.trans.a && state.trans.b) renderTransition();
  else setStatus(end === 'a' ? 'Transition start set: choose another character and press “…to here”.'
    : 'Transition end set: choose another character and press “Transition from here”.');
}

async function renderTransition() {
  const t = state.trans;
  const job = ++t.job;
  const count = Number(ui.transFrames.value);
  ui.transition.dataset.done = '0';
  ui.transStrip.disabled = true;
  ui.transition.setAttribute('aria-busy', 'true');
  try {
    const r = await state.gen.frames(t.a, t.b, count);
    if (job !== t.job) return;
    t.frames = r.frames;
    noteTime(r.ms);
    ui.transT.max = String(count - 1);
    t.i = 0;
    t.dir = 1;
    showFrame(0);
    ui.transition.dataset.done = '1';
    ui.transStrip.disabled = false;
    if (ui.transPlay.getAttribute('aria-pressed') === 'true') playTransition();
  } catch (e) {
    if (job === t.job) showError(messageOf(e));
  } finally {
    if (job === t.job) ui.transition.removeAttribute('aria-busy');
  }
}

function showFrame(i) {
  const f = state.trans.frames[i];
  if (!f) return;
  paint(ui.transCanvas, f);
  ui.transT.value = String(i);
  ui.transT.setAttribute('aria-valuetext', `frame ${i + 1} of ${state.trans.frames.length}`);
}

function playTransition() {
  clearInterval(state.trans.timer);
  const reduce = matchMedia('(prefers-reduced-motion: reduce)').matches;
  if (reduce) return;
  state.trans.timer = setInterval(() => {
    const t = state.trans;
    const n = t.frames.length;
    if (n < 2) return;
    if (t.i + t.dir < 0 || t.i + t.dir >= n) t.dir = -t.dir;
    t.i += t.dir;
    showFrame(t.i);
  }, 110);
}

// ---------- downloads ----------

function scaled(sources, columns) {
  const k = Number(ui.scale.value) || 1;
  const res = state.res;
  const rows = Math.ceil(sources.length / columns);
  const gap = sources.length > 1 ? 2 * k : 0;
  const out = document.createElement('canvas');
  out.width = columns * res * k + (columns - 1) * gap;
  out.height = rows * res * k + (rows - 1) * gap;
  const ctx = out.getContext('2d');
  ctx.imageSmoothingEnabled = ui.smooth.checked;
  ctx.imageSmoothingQuality = 'high';
  sources.forEach((src, i) => {
    const x = (i % columns) * (res * k + gap);
    const y = Math.floor(i / columns) * (res * k + gap);
    ctx.drawImage(src, 0, 0, res, res, x, y, res * k, res * k);
  });
  return out;
}

function saveCanvas(canvas, name) {
  canvas.toBlob((blob) => {
    if (!blob) return showError('This browser could not encode the PNG.');
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, 'image/png');
}

const suffix = () => (Number(ui.scale.value) > 1 ? `@${ui.scale.value}x` : '');

function downloadFace() {
  const seed = ui.face.dataset.seed;
  if (seed === undefined) return;
  const v = state.current?.vary?.length ? `-v${state.current.vary.map((x) => x.seed).join('-')}` : '';
  saveCanvas(scaled([ui.face], 1), `kyara-${state.name}-seed${seed}${v}${suffix()}.png`);
}

function downloadGrid() {
  const canvases = [...ui.grid.querySelectorAll('.cell[data-seed] canvas')];
  if (!canvases.length) return;
  saveCanvas(scaled(canvases, 4), `kyara-${state.name}-grid${ui.grid.dataset.start}${suffix()}.png`);
}

function downloadStrip() {
  const frames = state.trans.frames;
  if (!frames.length) return;
  const canvases = frames.map((f) => {
    const c = document.createElement('canvas');
    paint(c, f);
    return c;
  });
  saveCanvas(scaled(canvases, canvases.length), `kyara-${state.name}-transition-${state.trans.a.seed}-${state.trans.b.seed}${suffix()}.png`);
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

async function load() {
  setStatus('Loading the model list…');
  const index = await fetchIndex();
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('model');
  const name = fromHash || new URLSearchParams(location.search).get('model') || index.default || (index.models || [])[0];
  if (!name || !/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name)) {
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

function showBackend() {
  const i = state.info;
  const text = i.backend === 'webgpu'
    ? `WebGPU (Burn wgpu backend${i.adapter ? `, adapter: ${i.adapter}` : ''}) in a Web Worker`
    : `CPU (WebAssembly${i.simd ? ' with SIMD' : ''}, Burn Flex backend) in a Web Worker`;
  ui.perf.backend.textContent = i.backendNote ? `${text}; ${i.backendNote}` : text;
  document.body.dataset.backend = i.backend;
  const b = document.getElementById('backend');
  if (b) b.textContent = i.backend === 'webgpu' ? 'WebGPU' : 'the CPU (WebAssembly)';
}

function wireControls() {
  ui.controls.addEventListener('submit', (e) => e.preventDefault());
  ui.seed.addEventListener('input', () => {
    state.vary = [];
    requestFace();
  });
  ui.reroll.addEventListener('click', () => {
    ui.seed.value = randomSeed().toString();
    state.vary = [];
    requestFace();
  });
  ui.pickers.addEventListener('change', () => {
    requestFace();
    renderGrid();
  });
  ui.generate.addEventListener('click', newCharacters);
  ui.randomize.addEventListener('click', () => {
    randomizeTags();
    newCharacters();
  });
  ui.varyStrength.addEventListener('input', () => {
    ui.varyValue.textContent = num(ui.varyStrength.value);
  });
  ui.varyStrength.addEventListener('change', () => {
    if (state.grid.mode === 'variations') renderGrid();
  });
  ui.variations.addEventListener('click', variations);
  ui.resetStrengths.addEventListener('click', () => {
    state.strengths = {};
    state.dirs = {};
    buildSliders();
    requestFace();
    renderGrid();
  });
  ui.strengths.addEventListener('change', () => renderGrid());
  ui.download.addEventListener('click', downloadFace);
  ui.downloadGrid.addEventListener('click', downloadGrid);
  ui.smooth.addEventListener('change', () => {
    document.body.classList.toggle('smooth', ui.smooth.checked);
  });
  ui.permalink.addEventListener('click', async (e) => {
    e.preventDefault();
    try {
      await navigator.clipboard.writeText(location.href);
      setStatus('Link copied to the clipboard.');
    } catch {
      setStatus(`Link to this character: ${location.href}`);
    }
  });
  ui.setA.addEventListener('click', () => setTransition('a'));
  ui.setB.addEventListener('click', () => setTransition('b'));
  ui.transFrames.addEventListener('change', () => state.trans.a && state.trans.b && renderTransition());
  ui.transT.addEventListener('input', () => {
    pauseTransition();
    state.trans.i = Number(ui.transT.value);
    showFrame(state.trans.i);
  });
  ui.transPlay.addEventListener('click', () => {
    if (ui.transPlay.getAttribute('aria-pressed') === 'true') pauseTransition();
    else {
      ui.transPlay.setAttribute('aria-pressed', 'true');
      ui.transPlay.textContent = 'Pause';
      playTransition();
    }
  });
  ui.transStrip.addEventListener('click', downloadStrip);
  addEventListener('hashchange', () => {
    if (!state.card || location.hash.slice(1) === ui.face.dataset.key) return;
    const fromUrl = applyUrl();
    if (fromUrl.seed !== null) ui.seed.value = fromUrl.seed.toString();
    requestFace();
    renderGrid();
  });
}

function pauseTransition() {
  clearInterval(state.trans.timer);
  ui.transPlay.setAttribute('aria-pressed', 'false');
  ui.transPlay.textContent = 'Play';
}

/** Sets the controls from the URL hash (and reports what it could not use). */
function applyUrl() {
  const vocab = state.card.vocab || { groups: [], free: [], tags: [] };
  const fromUrl = readFromUrl(new Set(vocab.tags || []), new Set((state.card.directions || []).map((d) => d.name)));
  if (fromUrl.model && fromUrl.model !== state.name) fromUrl.problems.push(`model “${fromUrl.model}” (this page loaded “${state.name}”)`);
  const groups = vocab.groups || [];
  for (const g of groups) {
    const inGroup = fromUrl.tags.filter((t) => g.tags.includes(t));
    if (inGroup.length > 1) {
      fromUrl.problems.push(`tags ${inGroup.map((t) => `“${t}”`).join(' and ')} are both ${g.name}; kept the first`);
      fromUrl.tags = fromUrl.tags.filter((t) => !inGroup.slice(1).includes(t));
    }
  }
  if (fromUrl.problems.length) warn(`The link could not be used in full: ${fromUrl.problems.join('; ')}.`);
  state.strengths = fromUrl.strengths;
  state.dirs = fromUrl.dirs;
  state.vary = fromUrl.vary;
  buildPickers(vocab, fromUrl.tags);
  buildSliders();
  return fromUrl;
}

/** Marks the page ready for offline use once the service worker and the cache hold everything. */
async function watchOffline() {
  if (!('serviceWorker' in navigator)) {
    ui.perf.offline.textContent = 'not available in this browser';
    return;
  }
  try {
    await navigator.serviceWorker.register('sw.js');
    await navigator.serviceWorker.ready;
    const weights = new URL(`models/${state.name}/${state.card.weights || 'generator.bpk'}`, location.href).href;
    const glue = new URL('web.js', state.info.wasmUrl).href;
    const needed = ['index.html', 'app.js', 'worker.js', glue, state.info.wasmUrl, `models/${state.name}/model.json`, weights];
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
  const fromUrl = applyUrl();
  for (const c of [ui.face, ui.transA, ui.transB, ui.transCanvas]) c.width = c.height = state.res;
  describeModel(state.card, state.name);
  showBackend();
  buildGrid();

  const first = fromUrl.seed ?? randomSeed();
  ui.seed.value = first.toString();
  const lastStart = U64_MAX - BigInt(GRID_SIZE - 1);
  state.grid.start = first > lastStart ? lastStart : first;
  for (const el of [ui.seed, ui.reroll, ui.generate, ui.randomize]) el.disabled = false;
  setStatus('Drawing the first face…');
  await nextFrame();
  requestFace();
  while (state.face.busy) await new Promise((r) => setTimeout(r, 20));
  if (!ui.face.dataset.seed) {
    setStatus('The model loaded, but drawing a face failed.');
    return;
  }
  setStatus('Ready.');
  document.body.dataset.ready = '1';
  if (fromUrl.vary.length) {
    state.grid.mode = 'variations';
    state.grid.varyBase = randomSeed() * 100n;
  }
  renderGrid();
  watchOffline();
}

main();
