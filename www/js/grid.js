// The grid of the artist page: 8 seeds in a row, or 8 variations of the current character, drawn
// one face at a time in the worker (a newer call cancels an older one).

import { messageOf, U64_MAX } from './shared.js';
import { noteTime, num, paint, showError, ui } from './dom.js';
import { askedTags } from './pickers.js';
import { GRID_SIZE, state } from './state.js';

/** Builds the cells; `onChoose(spec)` runs when a drawn cell is chosen. */
export function buildGrid(onChoose) {
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
      const spec = state.grid.specs[i];
      if (spec && ui.grid.children[i].dataset.seed) onChoose(spec);
    });
    ui.grid.append(button);
  }
}

/** Draws the grid one face at a time in the worker; a newer call cancels an older one. */
export async function renderGrid() {
  if (!state.gen || state.grid.start === null) return;
  const job = ++state.grid.job;
  const g = state.grid;
  const tags = askedTags();
  const base = { model: state.name, tags, strengths: { ...state.strengths }, directions: { ...state.dirs } };
  if (g.mode === 'variations') {
    const strength = Number(ui.varyStrength.value);
    g.specs = Array.from({ length: GRID_SIZE }, (_, i) => ({
      ...base, seed: g.start, variations: [...state.variations, { seed: g.varyBase + BigInt(i), strength }],
    }));
    ui.gridHint.textContent = `Variations of seed ${g.start} at strength ${num(strength)}. Choose one to continue from it.`;
  } else {
    g.specs = Array.from({ length: GRID_SIZE }, (_, i) => ({ ...base, seed: g.start + BigInt(i), variations: [] }))
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
      cells[i].dataset.key = r.link;
      const last = spec.variations.at(-1);
      const resolved = r.tags.join(', ');
      cells[i].querySelector('.cell-seed').textContent = g.mode === 'variations' ? `~${last.seed}` : spec.seed.toString();
      cells[i].setAttribute('aria-label', g.mode === 'variations'
        ? `Variation ${i + 1} of seed ${spec.seed}: ${resolved}`
        : `Seed ${spec.seed}: ${resolved}`);
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

/** Marks the cell that shows the main face. */
export function markSelected() {
  const key = ui.face.dataset.key;
  for (const cell of ui.grid.children) {
    cell.setAttribute('aria-pressed', String(Boolean(cell.dataset.seed) && cell.dataset.key === key));
  }
}
