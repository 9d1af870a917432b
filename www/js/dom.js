// The artist page's elements and small helpers: status, warning and error lines, painting,
// number formats, the per-face timing.

import { state } from './state.js';

const $ = (id) => document.getElementById(id);

export const ui = {
  status: $('status'), progress: $('progress'), warning: $('warning'), error: $('error'),
  face: $('face'), faceSeed: $('face-seed'), faceTags: $('face-tags'),
  download: $('download'), downloadGrid: $('download-grid'), scale: $('scale'), smooth: $('smooth'),
  permalink: $('permalink'), setA: $('set-a'), setB: $('set-b'),
  controls: $('controls'), modelRow: $('model-row'), modelSelect: $('model'),
  seed: $('seed'), reroll: $('reroll'), pickers: $('pickers'), generate: $('generate'),
  randomize: $('randomize'), varyStrength: $('vary-strength'), varyValue: $('vary-value'),
  variations: $('variations'), strengths: $('strengths'), directions: $('directions'),
  resetStrengths: $('reset-strengths'), directionCount: $('direction-count'),
  styleControls: $('style-controls'), psiRow: $('psi-row'), fuseOn: $('fuse-on'), fuseSeed: $('fuse-seed'),
  fuseLayerRow: $('fuse-layer-row'),
  grid: $('grid'), gridHint: $('grid-hint'), about: $('about'),
  transition: $('transition'), transA: $('trans-a'), transB: $('trans-b'), transCanvas: $('trans-canvas'),
  transT: $('trans-t'), transFrames: $('trans-frames'), transPlay: $('trans-play'), transStrip: $('trans-strip'),
  perf: {
    backend: $('perf-backend'), wasm: $('perf-wasm'), weights: $('perf-weights'),
    first: $('perf-first'), ms: $('perf-ms'), offline: $('perf-offline'),
  },
};

export const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r()));

export function setStatus(text) {
  ui.status.textContent = text;
}

export function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = false;
}

export function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

export function warn(text) {
  ui.warning.textContent = ui.warning.hidden ? text : `${ui.warning.textContent} ${text}`;
  ui.warning.hidden = false;
}

export function formatBytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} kB`;
}

export function formatMs(ms) {
  return ms < 10 ? ms.toFixed(1) : Math.round(ms).toLocaleString('en');
}

/** A number for people: at most 3 decimals. */
export const num = (x) => String(Math.round(Number(x) * 1000) / 1000);

export function paint(canvas, rgba) {
  const { res } = state;
  if (rgba.length !== res * res * 4) {
    throw new Error(`The generator returned ${rgba.length} bytes, expected ${res * res * 4}.`);
  }
  if (canvas.width !== res) canvas.width = canvas.height = res;
  canvas.getContext('2d').putImageData(new ImageData(rgba, res, res), 0, 0);
}

export function noteTime(ms) {
  state.times.push(ms);
  if (state.times.length > 16) state.times.shift();
  const t = [...state.times].sort((a, b) => a - b);
  const median = t[Math.floor(t.length / 2)];
  const text = `${formatMs(median)} ms per face`;
  const speed = document.getElementById('speed');
  if (speed) speed.textContent = text;
  ui.perf.ms.textContent = `${text} (median of the last ${t.length}, ${state.info?.backend === 'webgpu' ? 'WebGPU' : 'CPU'})`;
}
