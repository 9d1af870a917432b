// The page's permalink module (www/js/permalink.js) over the engine's parser and printer (the
// WebAssembly build of shared-model's face.rs, www/pkg/), and the shared constants (www/js/shared.js),
// under node, no browser:
//   node --test tests/node/
// Links the page wrote before the parser moved to Rust read and print as they did (the page's old
// JavaScript parser and printer are kept below as the reference); problems are reported and left out;
// every tag spelling the engine accepts draws the same face. Needs www/pkg (scripts/build-web.sh).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WWW = path.join(REPO, 'www');
const glue = path.join(WWW, 'pkg/web.js');
if (!fs.existsSync(glue)) throw new Error(`${glue} is missing: run scripts/build-web.sh first`);

const wasm = await import(pathToFileURL(glue).href);
wasm.initSync({ module: fs.readFileSync(path.join(WWW, 'pkg/web_bg.wasm')) });
const { fromEngine, readLink, toEngine, writeLink } = await import(pathToFileURL(path.join(WWW, 'js/permalink.js')).href);
const shared = await import(pathToFileURL(path.join(WWW, 'js/shared.js')).href);

const MODEL = 'anime64';
const cardText = fs.readFileSync(path.join(WWW, 'models', MODEL, 'model.json'), 'utf8');
const card = JSON.parse(cardText);
const model = wasm.KyaraModel.load(cardText, fs.readFileSync(path.join(WWW, 'models', MODEL, card.weights)));

// ---------- the page's permalink code before it moved to Rust (www/app.js at the parent commit) ----------

const U64_MAX = (1n << 64n) - 1n;
const legacy = {
  num: (x) => String(Math.round(Number(x) * 1000) / 1000),
  under: (t) => t.replace(/ /g, '_'),
  specHash(name, spec) {
    const { num, under } = legacy;
    const p = [`model=${encodeURIComponent(name)}`, `seed=${spec.seed}`];
    if (spec.tags.length) p.push(`tags=${spec.tags.map(under).join(',')}`);
    const s = Object.entries(spec.strengths);
    if (s.length) p.push(`s=${s.map(([t, v]) => `${under(t)}:${num(v)}`).join(',')}`);
    if (spec.vary.length) p.push(`v=${spec.vary.map((v) => `${v.seed}:${num(v.strength)}`).join(',')}`);
    const d = Object.entries(spec.directions).filter(([, v]) => Number(v) !== 0);
    if (d.length) p.push(`d=${d.map(([n, v]) => `${under(n)}:${num(v)}`).join(',')}`);
    return p.join('&');
  },
  readFromUrl(hash, known, directions) {
    const p = new URLSearchParams(hash);
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
  },
};

/** The legacy result in the new shape. */
function legacyRead(hash, withModel) {
  const r = withModel
    ? legacy.readFromUrl(hash, new Set(card.vocab.tags), new Set())
    : legacy.readFromUrl(hash, null, null);
  return {
    spec: {
      model: r.model || null, seed: r.seed, tags: r.tags, strengths: r.strengths,
      variations: r.vary, directions: r.dirs,
    },
    problems: [...repeatedKeys(hash), ...r.problems],
  };
}

/** The one change from the legacy reading (issue 31): a repeated key is said, the first counts. */
function repeatedKeys(hash) {
  const params = new URLSearchParams(hash.replace(/^[^#]*#/, ''));
  const count = new Map();
  for (const [k] of params) count.set(k, (count.get(k) || 0) + 1);
  return [...count]
    .filter(([, n]) => n > 1)
    .map(([k, n]) => `“${k}” is given ${n} times; the first, “${params.get(k)}”, counts`);
}

// Links as the page wrote them, and links people may have edited by hand.
const OLD_LINKS = [
  'model=anime64&seed=42&tags=blonde_hair,blue_eyes&s=blue_eyes:1.45&v=851501:0.35&d=smile:0.5',
  'model=anime64&seed=42&tags=blonde_hair,blue_eyes',
  'seed=42&tags=blonde_hair,blue_eyes',
  'model=anime64&seed=7&tags=pink_hair&s=pink_hair:0.3,red_eyes:-0.05,blue_eyes:2,black_hair:0&v=1:0.35,200:1.5,3:0.05',
  'seed=18446744073709551615',
  'seed=18446744073709551616&tags=red_hair',
  'seed=abc&tags=zebra_hair,blue_eyes',
  'seed=5&s=blue_eyes:x,zebra:1,blue_eyes&v=x:1,3:-1,4:0.2,5:',
  'tags=pink_hair&seed=9&foo=bar',
  'seed=3&seed=4&tags=red+hair',
  'seed=12&tags=%20red_hair%20,,&s=red_hair:+1.5',
  '',
];

test('old links read as the page read them (syntax, then against the model)', () => {
  for (const link of OLD_LINKS) {
    for (const withModel of [false, true]) {
      const got = readLink(withModel ? model : wasm, link);
      const want = legacyRead(link, withModel);
      assert.deepEqual(got, want, `${link} (${withModel ? 'with' : 'without'} the model)`);
      // A leading '#' or a whole URL read the same.
      assert.deepEqual(readLink(withModel ? model : wasm, `https://example.org/kyara/?x=1#${link}`), got);
    }
  }
});

test('specs print as the page printed them', () => {
  for (const link of OLD_LINKS) {
    const { spec } = readLink(model, link);
    if (spec.seed === null) continue;
    const printed = writeLink(wasm, { ...spec, model: MODEL });
    assert.equal(printed, legacy.specHash(MODEL, { ...spec, vary: spec.variations }), link);
    // ... and read back to the same spec.
    assert.deepEqual(readLink(model, printed).spec, { ...spec, model: MODEL }, printed);
  }
  // Slider values, float noise included, print rounded to 3 decimals as before; zero steps along a
  // direction are left out.
  const tags = card.vocab.tags;
  const strengths = Object.fromEntries(tags.map((t, i) => [t, -1 + 0.05 * i * 3 + (i % 3) * 1e-9]));
  const spec = {
    seed: 123n, tags: ['red hair'], strengths,
    variations: [{ seed: 9n, strength: 0.35000000000000003 }, { seed: 10n, strength: 1.5 }],
    directions: { 'head tilt': 0.1 * 3, nod: 0, 'eyes closed': -0.0004 },
  };
  assert.equal(writeLink(wasm, { ...spec, model: MODEL }), legacy.specHash(MODEL, { ...spec, vary: spec.variations }));
  // Every old link still names its own face: the printed text is the link.
  assert.equal(writeLink(wasm, readLink(wasm, OLD_LINKS[0]).spec), OLD_LINKS[0]);
});

test('problems are reported and the rest of the link still applies', () => {
  const { spec, problems } = readLink(model, '#seed=abc&tags=zebra_hair,blue_eyes,red_hair,black_hair&s=blue_eyes:1.2&d=smile:1');
  assert.equal(spec.seed, null);
  assert.deepEqual(spec.tags, ['blue eyes', 'red hair']);
  assert.deepEqual(spec.strengths, { 'blue eyes': 1.2 });
  assert.deepEqual(problems, [
    `seed “abc” is not a whole number from 0 to ${U64_MAX}`,
    'unknown tag “zebra hair”',
    'tags “red hair” and “black hair” are both hair; kept the first',
    'unknown latent direction “smile”',
  ]);
});

test('the engine takes every spelling of a tag the widget may be given', () => {
  const canonical = model.face({ seed: '42', tags: 'blonde hair, blue eyes' });
  assert.deepEqual(canonical.asked, ['blonde hair', 'blue eyes']);
  assert.equal(canonical.rgba.length, card.resolution ** 2 * 4);
  assert.equal(canonical.link, 'seed=42&tags=blonde_hair,blue_eyes');
  for (const tags of ['blonde_hair,blue_eyes', 'Blonde_Hair, BLUE_EYES', '  blonde   hair ,, blue eyes ',
    'blonde hair, Blonde_hair, blue eyes', ['blonde_hair', 'Blue Eyes']]) {
    const face = model.face({ seed: '42', tags });
    assert.deepEqual(face.asked, canonical.asked, JSON.stringify(tags));
    assert.deepEqual(face.tags, canonical.tags, JSON.stringify(tags));
    assert.deepEqual(face.rgba, canonical.rgba, JSON.stringify(tags));
  }
  // Seeds as strings (the wire format), safe integers or BigInt.
  for (const seed of [42, 42n, ' 42 ']) assert.deepEqual(model.face({ seed, tags: 'blonde hair, blue eyes' }).rgba, canonical.rgba);
  // What the engine does not accept is an error naming it.
  assert.throws(() => model.face({ seed: '42', tags: 'zebra hair' }), /unknown tag 'zebra hair'/);
  assert.throws(() => model.face({ seed: 'x1', tags: '' }), /The seed “x1” is not a whole number from 0 to 18446744073709551615/);
  assert.throws(() => model.face({ seed: '1', tags: 'red hair, black hair' }), /exclusive group 'hair'/);
  assert.throws(() => model.face({ tags: '' }), /no seed/);
});

test('a spec survives the trip to the engine and back', () => {
  const spec = {
    model: MODEL, seed: 18446744073709551615n, tags: ['red hair'], strengths: { 'red hair': 0.5 },
    variations: [{ seed: 9007199254740993n, strength: 0.35 }], directions: {},
  };
  assert.deepEqual(toEngine(spec).seed, '18446744073709551615');
  assert.deepEqual(toEngine(spec).variations[0].seed, '9007199254740993');
  assert.deepEqual(fromEngine(toEngine(spec)), spec);
  assert.deepEqual(readLink(model, writeLink(wasm, spec)).spec, spec);
  // `vary` (the name kyara.js documented first) is the same as `variations`.
  const { variations, ...rest } = spec;
  assert.equal(writeLink(wasm, { ...rest, vary: variations }), writeLink(wasm, spec));
  const face = model.face(toEngine(spec));
  assert.equal(face.seed, '18446744073709551615');
  assert.equal(face.link, writeLink(wasm, spec));
});

test('shared constants: seeds and the files kept for offline use', () => {
  assert.equal(shared.U64_MAX, U64_MAX);
  assert.equal(shared.parseSeed(' 42 '), 42n);
  assert.equal(shared.parseSeed('18446744073709551615'), U64_MAX);
  for (const bad of ['', 'x1', '-1', '+1', '1.5', '18446744073709551616', null, undefined]) {
    assert.equal(shared.parseSeed(bad), null, String(bad));
  }
  assert.match(shared.CACHE, /^kyara-/);
  // Every module of the page is stored by the service worker (a missing one breaks offline use).
  const files = ['app.js', 'kyara.js', 'worker.js', 'kyara-generator.js', 'sw.js', 'index.html', 'style.css',
    ...fs.readdirSync(path.join(WWW, 'js')).map((f) => `js/${f}`)];
  for (const f of files.filter((f) => f !== 'sw.js')) assert.ok(shared.SHELL.includes(f), `${f} is not in SHELL`);
  for (const f of shared.SHELL.filter((f) => f !== './' && !f.startsWith('pkg/'))) {
    assert.ok(fs.existsSync(path.join(WWW, f)), `SHELL names ${f}, which does not exist`);
  }
  // ... and the files that share a constant import it instead of repeating it.
  for (const f of ['app.js', 'kyara.js', 'worker.js', 'kyara-generator.js', 'sw.js', ...fs.readdirSync(path.join(WWW, 'js')).map((x) => `js/${x}`)]) {
    if (f === 'js/shared.js') continue;
    const text = fs.readFileSync(path.join(WWW, f), 'utf8');
    assert.doesNotMatch(text, /kyara-v\d|1n << 64n|\/\^\\d\+\$\//, `${f} repeats a shared constant`);
  }
});
