// Downloads of the artist page: the face, the grid and the transition strip as PNG, at 1x/2x/4x,
// nearest or smooth.

import { paint, showError, ui } from './dom.js';
import { state } from './state.js';

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

export function downloadFace() {
  const seed = ui.face.dataset.seed;
  if (seed === undefined) return;
  const v = state.current?.variations?.length ? `-v${state.current.variations.map((x) => x.seed).join('-')}` : '';
  saveCanvas(scaled([ui.face], 1), `kyara-${state.name}-seed${seed}${v}${suffix()}.png`);
}

export function downloadGrid() {
  const canvases = [...ui.grid.querySelectorAll('.cell[data-seed] canvas')];
  if (!canvases.length) return;
  saveCanvas(scaled(canvases, 4), `kyara-${state.name}-grid${ui.grid.dataset.start}${suffix()}.png`);
}

export function downloadStrip() {
  const frames = state.trans.frames;
  if (!frames.length) return;
  const canvases = frames.map((f) => {
    const c = document.createElement('canvas');
    paint(c, f);
    return c;
  });
  saveCanvas(scaled(canvases, canvases.length), `kyara-${state.name}-transition-${state.trans.a.seed}-${state.trans.b.seed}${suffix()}.png`);
}
