// kyara's artist page. The generator runs in a Web Worker (kyara.js + worker.js), so the page
// never freezes while faces are drawn. Plain ES modules, relative paths only: this file wires the
// controls and starts the page; the parts live in js/ (face.js: the main face and its permalink,
// pickers.js, sliders.js, grid.js, transition.js, downloads.js, loading.js; dom.js and state.js
// hold the elements and the state; shared.js what the page shares with the worker, the widget and
// the service worker).
//
// State that tests and curious people can read from the DOM:
//   #face[data-seed][data-tags][data-resolved][data-key]  the main face: seed, asked tags, tags
//                                     actually used, and the permalink (URL hash) it was drawn for
//   #grid[data-start][data-tags][data-mode][data-done]    the grid: first seed, asked tags,
//                                     "seeds" or "variations", "1" once all drawn
//   #transition[data-done]             "1" once the transition frames are drawn
//   body[data-ready="1"]               model loaded and the first face drawn
//   body[data-offline="1"]             page, WebAssembly and model are stored for offline use

import { messageOf, randomSeed, U64_MAX } from './js/shared.js';
import { nextFrame, num, setStatus, showError, ui } from './js/dom.js';
import { downloadFace, downloadGrid, downloadStrip } from './js/downloads.js';
import { applyLink, currentSpec, requestFace } from './js/face.js';
import { buildGrid, renderGrid } from './js/grid.js';
import { describeModel, load, showBackend, watchOffline } from './js/loading.js';
import { randomizeTags } from './js/pickers.js';
import { buildSliders } from './js/sliders.js';
import { GRID_SIZE, state } from './js/state.js';
import { pauseTransition, playTransition, renderTransition, setTransition, showFrame } from './js/transition.js';

/** Makes a grid cell the current character. */
function chooseCell(spec) {
  ui.seed.value = spec.seed.toString();
  state.variations = spec.variations.map((v) => ({ ...v }));
  requestFace();
  if (matchMedia('(max-width: 759px)').matches) {
    ui.face.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }
}

function newCharacters() {
  state.grid.mode = 'seeds';
  state.grid.start = randomSeed();
  state.variations = [];
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

function wireControls() {
  ui.controls.addEventListener('submit', (e) => e.preventDefault());
  ui.seed.addEventListener('input', () => {
    state.variations = [];
    requestFace();
  });
  ui.reroll.addEventListener('click', () => {
    ui.seed.value = randomSeed().toString();
    state.variations = [];
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
    buildSliders({ onChange: requestFace });
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
  addEventListener('hashchange', async () => {
    if (!state.card || location.hash.slice(1) === ui.face.dataset.key) return;
    let spec;
    try {
      spec = await applyLink();
    } catch (e) {
      showError(messageOf(e));
      return;
    }
    if (spec.seed !== null) ui.seed.value = spec.seed.toString();
    requestFace();
    renderGrid();
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
  let fromUrl;
  try {
    fromUrl = await applyLink();
  } catch (e) {
    setStatus('The model loaded, but the link could not be read.');
    showError(messageOf(e));
    return;
  }
  for (const c of [ui.face, ui.transA, ui.transB, ui.transCanvas]) c.width = c.height = state.res;
  describeModel(state.card, state.name);
  showBackend();
  buildGrid(chooseCell);

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
  if (fromUrl.variations.length) {
    state.grid.mode = 'variations';
    state.grid.varyBase = randomSeed() * 100n;
  }
  renderGrid();
  watchOffline();
}

main();
