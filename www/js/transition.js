// The transition of the artist page: from character A to character B, the frames the engine
// draws for the two specs (the same transition as `trainer interpolate`), animated.

import { messageOf } from './shared.js';
import { noteTime, paint, setStatus, showError, ui } from './dom.js';
import { currentSpec } from './face.js';
import { state } from './state.js';

export function setTransition(end) {
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

export async function renderTransition() {
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

export function showFrame(i) {
  const f = state.trans.frames[i];
  if (!f) return;
  paint(ui.transCanvas, f);
  ui.transT.value = String(i);
  ui.transT.setAttribute('aria-valuetext', `frame ${i + 1} of ${state.trans.frames.length}`);
}

export function playTransition() {
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

export function pauseTransition() {
  clearInterval(state.trans.timer);
  ui.transPlay.setAttribute('aria-pressed', 'false');
  ui.transPlay.textContent = 'Play';
}
