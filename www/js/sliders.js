// The expert sliders of the artist page: one per tag (the condition vector is real-valued) and one
// per latent direction of the model card.

import { num, ui } from './dom.js';
import { state } from './state.js';

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

/** One slider per tag (its strength) and per latent direction; `onChange` runs after a move. */
export function buildSliders({ onChange }) {
  const tags = state.card.vocab.tags || [];
  ui.strengths.replaceChildren(...tags.map((tag, i) => {
    const row = slider({
      id: `strength-${i}`, label: tag, min: -1, max: 2, step: 0.05, value: state.strengths[tag] ?? 0,
      onInput: (v) => {
        state.strengths[tag] = v;
        row.classList.add('moved');
        onChange();
      },
    });
    row.dataset.tag = tag;
    row.classList.toggle('moved', tag in state.strengths);
    return row;
  }));
  const dirs = state.card.directions || [];
  ui.directionCount.textContent = dirs.length ? ` and ${dirs.length} latent directions` : '';
  // A card's direction may give its sensible range (style-space directions do); else ±3.
  const range = (d) => (Number.isFinite(d.range) && d.range > 0 ? d.range : 3);
  ui.directions.replaceChildren(...dirs.map((d, i) => slider({
    id: `direction-${i}`, label: d.name, min: -range(d), max: range(d), step: range(d) / 30,
    value: state.dirs[d.name] ?? 0,
    onInput: (v) => {
      state.dirs[d.name] = v;
      onChange();
    },
  })));
  buildStyleControls(onChange);
}

/** The psi slider and the fusion controls, for models with styles; hidden for the others. */
function buildStyleControls(onChange) {
  const styles = state.info?.styles || 0;
  ui.styleControls.hidden = styles < 2;
  if (styles < 2) return;
  ui.psiRow.replaceChildren(slider({
    id: 'psi', label: 'psi', min: 0, max: 1, step: 0.05, value: state.psi ?? 1,
    onInput: (v) => {
      state.psi = v === 1 ? null : v;
      onChange();
    },
  }));
  const layer = Math.min(Math.max(state.fuse?.from_layer ?? Math.floor(styles / 2), 1), styles - 1);
  ui.fuseLayerRow.replaceChildren(slider({
    id: 'fuse-layer', label: 'crossover layer', min: 1, max: styles - 1, step: 1, value: layer,
    onInput: (v) => {
      if (state.fuse) state.fuse.from_layer = v;
      onChange();
    },
  }));
  ui.fuseOn.checked = !!state.fuse;
  if (state.fuse) ui.fuseSeed.value = String(state.fuse.seed);
  const readFuse = () => {
    const text = ui.fuseSeed.value.trim();
    const ok = /^\d{1,20}$/.test(text) && BigInt(text) < 2n ** 64n;
    ui.fuseSeed.setAttribute('aria-invalid', ok ? 'false' : 'true');
    const from = Number(document.getElementById('fuse-layer').value);
    state.fuse = ui.fuseOn.checked && ok ? { seed: BigInt(text), tags: [], from_layer: from } : null;
    onChange();
  };
  ui.fuseOn.onchange = readFuse;
  ui.fuseSeed.oninput = readFuse;
}

/** Shows the condition vector a face was drawn with; moved sliders keep their values. */
export function syncSliders(cond) {
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
