// The main face of the artist page: the current character (seed box, pickers, sliders) as a face
// spec, drawn in the worker with one call that also gives its permalink; the URL hash follows it.
// Links are read by the engine (js/permalink.js in the worker): what a link holds that the model
// cannot use is reported in the warning line and left out.

import { messageOf, parseSeed, U64_MAX } from './shared.js';
import { clearError, formatMs, noteTime, paint, showError, ui, warn } from './dom.js';
import { markSelected } from './grid.js';
import { askedTags, buildPickers } from './pickers.js';
import { buildSliders, syncSliders } from './sliders.js';
import { state } from './state.js';

/** The seed in the seed box as a BigInt, or null (and the box marked invalid). */
export function readSeed() {
  const seed = parseSeed(ui.seed.value);
  ui.seed.setAttribute('aria-invalid', seed === null ? 'true' : 'false');
  ui.seed.setCustomValidity(seed === null ? `Enter a whole number from 0 to ${U64_MAX}.` : '');
  return seed;
}

/** The current character, or null when the seed box is invalid. */
export function currentSpec() {
  const seed = readSeed();
  if (seed === null) return null;
  return {
    model: state.name, seed, tags: askedTags(), strengths: { ...state.strengths },
    variations: state.variations.map((v) => ({ ...v })), directions: { ...state.dirs },
    ...(state.psi === null ? {} : { psi: state.psi }),
    ...(state.fuse === null ? {} : { fuse: { ...state.fuse } }),
  };
}

function applyHash(hash) {
  if (location.hash.slice(1) !== hash) history.replaceState(null, '', `#${hash}`);
  ui.permalink.href = `#${hash}`;
}

/** Redraws the main face soon; bursts of changes coalesce into one drawing at a time. */
export function requestFace() {
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
      try {
        const r = await state.gen.face(spec);
        if (state.face.dirty) continue; // a newer request is waiting: skip painting this one
        applyHash(r.link);
        paint(ui.face, r.rgba);
        noteTime(r.ms);
        showFace(spec, r);
        clearError();
      } catch (e) {
        showError(messageOf(e));
      }
    }
  } finally {
    state.face.busy = false;
  }
}

function showFace(spec, r) {
  const tags = spec.tags.join(', ');
  const resolved = r.tags.join(', ');
  Object.assign(ui.face.dataset, { seed: spec.seed.toString(), tags, resolved, key: r.link });
  const varied = spec.variations.length ? ` (variation ${spec.variations.map((v) => v.seed).join(', ')})` : '';
  ui.face.setAttribute('aria-label', `Generated face, seed ${spec.seed}${varied}: ${resolved}`);
  ui.faceSeed.textContent = `Seed ${spec.seed}${varied}`;
  const asked = new Set(spec.tags);
  ui.faceTags.replaceChildren(...r.tags.map((t) => {
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

/** Sets the controls from the URL hash (and reports what it could not use); resolves to the spec
 *  it read (its seed is null when the link has none, or a bad one). */
export async function applyLink() {
  const { spec, problems } = await state.gen.readLink(location.hash.slice(1));
  if (spec.model && spec.model !== state.name) problems.push(`model “${spec.model}” (this page loaded “${state.name}”)`);
  if (problems.length) warn(`The link could not be used in full: ${problems.join('; ')}.`);
  state.strengths = spec.strengths;
  state.dirs = spec.directions;
  state.variations = spec.variations;
  state.psi = spec.psi ?? null;
  state.fuse = spec.fuse ?? null;
  buildPickers(state.card.vocab || { groups: [], free: [], tags: [] }, spec.tags);
  buildSliders({ onChange: requestFace });
  return spec;
}
