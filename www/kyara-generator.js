// <kyara-generator>: kyara as a custom element, for any page.
//
//   <script type="module" src="https://example.org/kyara/kyara-generator.js"></script>
//   <kyara-generator model="models/anime64-varied" tags="blonde hair, blue eyes" seed="42" controls></kyara-generator>
//   <kyara-generator model="models/mine" link="seed=5&tags=red_hair&s=smile:0.5&psi=0.7&fuse=9:3"></kyara-generator>
//
// Attributes: model (folder of a model card, relative to the page; default: this script's
// models/anime64-varied), tags (comma-separated, any spelling the engine accepts: "blonde_hair",
// "Blonde Hair", ...), seed (a whole number; random when absent), controls
// (shows "another one" and "download" buttons), backend ("cpu" to stay off WebGPU; default: WebGPU
// when the build and the browser have it), link (a permalink of the page, the text after `#`: the
// whole recipe of a face, strengths, variations, directions, psi and fusion included; it replaces
// seed and tags, and a part the model cannot use is an error). The element fills the box the host gives it
// (square by default). Events (bubbling, composed):
//   generated  detail: { seed, tags, resolved, width, height, imageData, ms, backend, toBlob() }
//   error      detail: { message }
// Its own shadow DOM; elements with the same model share one generator worker.

import { Generator, messageOf } from './kyara.js';
import { randomSeed } from './js/shared.js';

const DEFAULT_MODEL = new URL('./models/anime64-varied/', import.meta.url).href;
const shared = new Map(); // model URL -> Promise<{ gen, info }>

function generatorFor(modelUrl, prefer) {
  const key = `${prefer} ${modelUrl}`;
  if (!shared.has(key)) {
    const gen = new Generator();
    const p = gen.load(modelUrl, { prefer }).then((info) => ({ gen, info }));
    p.catch(() => {
      shared.delete(key);
      gen.terminate();
    });
    shared.set(key, p);
  }
  return shared.get(key);
}

const STYLE = `
:host { display: inline-block; width: 256px; aspect-ratio: 1; position: relative; contain: content;
  color-scheme: light dark; font: 14px/1.4 system-ui, sans-serif; --kyara-accent: #c92a63; }
:host([hidden]) { display: none; }
.box { position: relative; width: 100%; height: 100%; display: flex; flex-direction: column; gap: 6px; }
canvas { flex: 1; min-height: 0; width: 100%; object-fit: contain; image-rendering: pixelated;
  border-radius: 10px; background: color-mix(in srgb, currentColor 8%, transparent); }
:host([smooth]) canvas { image-rendering: auto; }
:host([controls]) { aspect-ratio: auto; }
:host([controls]) canvas { flex: none; aspect-ratio: 1; height: auto; }
.bar { display: flex; gap: 6px; }
.bar[hidden] { display: none; }
button { flex: 1; font: inherit; min-height: 32px; border-radius: 8px; cursor: pointer;
  border: 1px solid color-mix(in srgb, currentColor 25%, transparent); background: transparent; color: inherit; }
button:hover { border-color: var(--kyara-accent); }
button:focus-visible { outline: 3px solid var(--kyara-accent); outline-offset: 2px; }
.msg { position: absolute; inset: 0 0 auto 0; margin: 0; padding: 8px 10px; border-radius: 10px;
  font-size: 13px; background: color-mix(in srgb, Canvas 88%, transparent); overflow-wrap: anywhere; }
.msg.error { border: 1px solid #e03131; }
.msg:empty { display: none; }
`;

class KyaraGeneratorElement extends HTMLElement {
  static observedAttributes = ['model', 'tags', 'seed', 'controls', 'backend', 'link'];

  #root;
  #canvas;
  #msg;
  #bar;
  #job = 0;
  #scheduled = false;
  #seed = null; // the random seed used when no seed attribute is given

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: 'open' });
    this.#root.innerHTML = `<style>${STYLE}</style>
      <div class="box" part="box">
        <canvas part="canvas" role="img" aria-label="Generated anime character"></canvas>
        <p class="msg" part="message" role="status" aria-live="polite">Loading…</p>
        <div class="bar" part="controls" hidden>
          <button type="button" data-act="another">Another one</button>
          <button type="button" data-act="download">Download</button>
        </div>
      </div>`;
    this.#canvas = this.#root.querySelector('canvas');
    this.#msg = this.#root.querySelector('.msg');
    this.#bar = this.#root.querySelector('.bar');
    this.#bar.addEventListener('click', (e) => {
      const act = e.target.closest('button')?.dataset.act;
      if (act === 'another') {
        this.setAttribute('seed', randomSeed().toString());
      } else if (act === 'download') {
        this.#canvas.toBlob((blob) => {
          if (!blob) return;
          const a = document.createElement('a');
          a.href = URL.createObjectURL(blob);
          a.download = `kyara-seed${this.dataset.seed || 'face'}.png`;
          a.click();
          setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
        }, 'image/png');
      }
    });
  }

  connectedCallback() {
    this.#schedule();
  }

  attributeChangedCallback(name) {
    if (name === 'controls') this.#bar.hidden = !this.hasAttribute('controls');
    if (this.isConnected) this.#schedule();
  }

  /** The face as a PNG blob (after `generated`). */
  toBlob() {
    return new Promise((resolve) => this.#canvas.toBlob(resolve, 'image/png'));
  }

  get modelUrl() {
    const attr = this.getAttribute('model');
    const url = attr ? new URL(attr, document.baseURI) : new URL(DEFAULT_MODEL);
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    return url.href;
  }

  #schedule() {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#render();
    });
  }

  #fail(message) {
    this.#msg.textContent = message;
    this.#msg.classList.add('error');
    this.#msg.setAttribute('role', 'alert');
    this.dataset.state = 'error';
    this.dispatchEvent(new CustomEvent('error', { detail: { message }, bubbles: true, composed: true }));
  }

  async #render() {
    const job = ++this.#job;
    this.dataset.state = 'loading';
    this.#msg.classList.remove('error');
    this.#msg.setAttribute('role', 'status');
    let gen;
    let info;
    try {
      ({ gen, info } = await generatorFor(this.modelUrl, this.getAttribute('backend') === 'cpu' ? 'cpu' : 'auto'));
    } catch (e) {
      if (job === this.#job) this.#fail(messageOf(e));
      return;
    }
    if (job !== this.#job) return;
    // Tags and seed go to the engine as written: it reads every spelling it accepts and says what
    // it cannot use (an unknown tag, a seed that is not a whole number from 0 to 2^64-1).
    const tags = this.getAttribute('tags') || '';
    const attr = this.getAttribute('seed');
    const link = this.getAttribute('link');
    let seed;
    if (attr !== null && attr.trim() !== '') {
      seed = attr;
    } else {
      this.#seed ??= randomSeed();
      seed = this.#seed;
    }
    let r;
    try {
      let spec = { seed, tags };
      if (link !== null && link.trim() !== '') {
        const read = await gen.readLink(link.trim().replace(/^#/, ''));
        if (read.problems.length) throw new Error(`The link could not be used: ${read.problems.join('; ')}.`);
        spec = { ...read.spec, seed: read.spec.seed ?? seed };
      }
      r = await gen.face(spec);
    } catch (e) {
      if (job === this.#job) this.#fail(messageOf(e));
      return;
    }
    if (job !== this.#job) return;
    const res = info.resolution;
    this.#canvas.width = this.#canvas.height = res;
    const imageData = new ImageData(r.rgba, res, res);
    this.#canvas.getContext('2d').putImageData(imageData, 0, 0);
    const resolved = r.tags.join(', ');
    this.#canvas.setAttribute('aria-label', `Generated anime character, seed ${r.seed}: ${resolved}`);
    this.#msg.textContent = '';
    this.dataset.seed = r.seed;
    this.dataset.state = 'ready';
    this.dispatchEvent(new CustomEvent('generated', {
      bubbles: true,
      composed: true,
      detail: {
        seed: r.seed, tags: r.asked.join(', '), resolved, width: res, height: res,
        imageData, ms: r.ms, backend: r.backend, toBlob: () => this.toBlob(),
      },
    }));
  }
}

if (!customElements.get('kyara-generator')) customElements.define('kyara-generator', KyaraGeneratorElement);

export { KyaraGeneratorElement };
