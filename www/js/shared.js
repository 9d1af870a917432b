// What the page (app.js and js/*), the generator client (kyara.js), its worker (worker.js), the
// widget (kyara-generator.js) and the service worker (sw.js) share: one place for each constant.
// Plain ES module, no imports, nothing that needs a window (workers import it too).

/** Name of the cache that holds the page, the WebAssembly and the models for offline use. */
export const CACHE = 'kyara-v2';

/** The page's own files, relative to www/: the service worker stores them when it installs, and the
 *  page checks them before it says it works offline. */
export const SHELL = [
  './', 'index.html', 'app.js', 'style.css', 'favicon.svg', 'kyara.js', 'worker.js',
  'kyara-generator.js', 'embed.html', 'js/shared.js', 'js/permalink.js', 'js/dom.js', 'js/state.js',
  'js/pickers.js', 'js/sliders.js', 'js/face.js', 'js/grid.js', 'js/transition.js',
  'js/downloads.js', 'js/loading.js', 'models/index.json', 'pkg/web.js', 'pkg/build.json',
  'manifest.webmanifest', 'icons/icon-192.png', 'icons/icon-512.png',
];

/** Stored too when the build has them (the WebGPU module's glue). */
export const SHELL_OPTIONAL = ['pkg-gpu/web.js'];

/** The largest seed (seeds are u64). */
export const U64_MAX = (1n << 64n) - 1n;

/** What a seed looks like: decimal digits only. */
export const SEED_PATTERN = /^\d+$/;

/** Names of model folders the page loads (`?model=` / `#model=`). */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** The seed in `text` as a BigInt, or null when it is not a whole number from 0 to U64_MAX. */
export function parseSeed(text) {
  const s = String(text ?? '').trim();
  return SEED_PATTERN.test(s) && BigInt(s) <= U64_MAX ? BigInt(s) : null;
}

/** A random seed; short seeds are easier to read and share (the model accepts any u64). */
export function randomSeed() {
  return BigInt(crypto.getRandomValues(new Uint32Array(1))[0] % 1_000_000);
}

/** The message of an error, or the thing itself as text. */
export const messageOf = (e) => (e && e.message) || String(e);
