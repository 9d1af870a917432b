// Real-browser test of www/: Debian Chromium (playwright-core) against the WebAssembly build.
//
//   KYARA_NATIVE_PNG=/path/to/seed0042.png node --test tests/browser/
//
// KYARA_NATIVE_PNG is the face `trainer generate` wrote natively for seed 42 with the tags
// "blonde hair, blue eyes"; the page must draw the same pixels (max abs difference <= 1).
// Needs www/pkg (scripts/build-web.sh) and a model in www/models/ (see www/models/index.json).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { defaultModel, launchBrowser, startServer, watchErrors, WWW } from './harness.mjs';
import { canvasPixels, decodePngInPage, isBlank, maxDiff, meanDiff, pngSize } from './util.mjs';

const NATIVE_PNG = process.env.KYARA_NATIVE_PNG;
const T = { timeout: 120_000 };

let server;
let browser;
let page;
let errors;
let model;

before(async () => {
  for (const f of ['pkg/web.js', 'pkg/web_bg.wasm', 'models/index.json']) {
    if (!fs.existsSync(path.join(WWW, f))) {
      throw new Error(`${path.join(WWW, f)} is missing: run scripts/build-web.sh and export a model first`);
    }
  }
  model = defaultModel();
  server = await startServer();
  browser = await launchBrowser();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(60_000);
  errors = watchErrors(page);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const sameTags = (a, b) => {
  const norm = (s) => s.split(',').map((t) => t.trim()).filter(Boolean).sort().join(',');
  return norm(a) === norm(b);
};

/** Waits until #face shows exactly this seed and these asked tags. */
async function waitForFace(seed, tags) {
  await page.waitForFunction(({ seed, tags }) => {
    const f = document.getElementById('face');
    const norm = (s) => (s || '').split(',').map((t) => t.trim()).filter(Boolean).sort().join(',');
    return f.dataset.seed === seed && norm(f.dataset.tags) === norm(tags);
  }, { seed: String(seed), tags });
}

const radio = (tag) => page.getByRole('radio', { name: tag, exact: true });

test('the page loads the default model and draws a face', T, async (t) => {
  const t0 = Date.now();
  // The CPU path: its pixels must equal the native CLI's (WebGPU, where present, is compared in
  // webgpu.test.mjs).
  await page.goto(`${server.url}?backend=cpu`);
  await page.waitForSelector('body[data-ready="1"]');
  assert.equal(await page.getAttribute('body', 'data-backend'), 'cpu');
  t.diagnostic(`model "${model.name}" ready after ${Date.now() - t0} ms`);
  assert.equal(await page.isVisible('#error'), false, 'no error on a normal load');
  const res = model.card.resolution;
  const size = await page.$eval('#face', (c) => [c.width, c.height]);
  assert.deepEqual(size, [res, res]);
  assert.ok(!isBlank(await canvasPixels(page, '#face')), 'first face is not blank');
  const speed = await page.textContent('#speed');
  assert.match(speed, /\d+(\.\d+)? ms per face/);
  t.diagnostic(`footer: ${speed}`);
});

test('seed 42 with "blonde hair" and "blue eyes" draws that face', T, async () => {
  await page.fill('#seed', '42');
  await radio('blonde hair').check();
  await radio('blue eyes').check();
  await waitForFace(42, 'blonde hair, blue eyes');
  const resolved = await page.getAttribute('#face', 'data-resolved');
  assert.ok(sameTags(resolved, 'blonde hair, blue eyes'), `resolved tags: ${resolved}`);
  assert.ok(!isBlank(await canvasPixels(page, '#face')));
});

test('the face matches the native CLI rendering (max abs channel difference <= 1)',
  { ...T, skip: !NATIVE_PNG && 'KYARA_NATIVE_PNG is not set' }, async (t) => {
    assert.ok(fs.existsSync(NATIVE_PNG), `${NATIVE_PNG} does not exist`);
    await waitForFace(42, 'blonde hair, blue eyes');
    const face = await canvasPixels(page, '#face');
    const ref = await decodePngInPage(page, '/__test__/native.png');
    const res = model.card.resolution;
    assert.deepEqual([ref.w, ref.h], [res, res], 'reference PNG size');
    const m = maxDiff(face, ref.px);
    const differing = face.filter((v, i) => v !== ref.px[i]).length;
    t.diagnostic(`browser vs native: max abs channel difference ${m}, ${differing} of ${face.length} channel values differ`);
    assert.ok(m <= 1, `max abs channel difference ${m} > 1`);
  });

test('changing a tag changes the face', T, async (t) => {
  await waitForFace(42, 'blonde hair, blue eyes');
  const before = await canvasPixels(page, '#face');
  const hair = model.card.vocab.groups.find((g) => g.tags.includes('blonde hair'));
  const other = hair.tags.find((tag) => tag !== 'blonde hair');
  await radio(other).check();
  await waitForFace(42, `${other}, blue eyes`);
  const afterPx = await canvasPixels(page, '#face');
  t.diagnostic(`blonde hair -> ${other}: mean abs difference ${meanDiff(before, afterPx).toFixed(2)}`);
  assert.ok(maxDiff(before, afterPx) > 0, `switching to "${other}" left the face unchanged`);
  // Back again: the same seed and tags give the very same pixels.
  await radio('blonde hair').check();
  await waitForFace(42, 'blonde hair, blue eyes');
  assert.equal(maxDiff(before, await canvasPixels(page, '#face')), 0, 'the same seed and tags redraw identically');
});

test('"New characters" draws a grid of distinct faces; choosing one shows it large', T, async (t) => {
  await page.click('#generate');
  const start = await page.inputValue('#seed');
  assert.match(start, /^\d+$/, 'the first seed of the grid is written into the seed box');
  await page.waitForSelector(`#grid[data-done="1"][data-start="${start}"]`);
  const cells = await page.$$('#grid .cell canvas');
  assert.ok(cells.length >= 4, `grid has ${cells.length} faces`);
  const faces = [];
  for (let i = 0; i < cells.length; i++) faces.push(await canvasPixels(page, `#grid .cell:nth-child(${i + 1}) canvas`));
  faces.forEach((px, i) => assert.ok(!isBlank(px), `grid face ${i} is blank`));
  let closest = Infinity;
  for (let i = 0; i < faces.length; i++) {
    for (let j = i + 1; j < faces.length; j++) {
      const d = meanDiff(faces[i], faces[j]);
      assert.ok(d > 0, `grid faces ${i} and ${j} are identical`);
      closest = Math.min(closest, d);
    }
  }
  t.diagnostic(`grid of ${faces.length} from seed ${start}; smallest mean abs difference between two faces: ${closest.toFixed(2)}`);

  // Choosing the third face shows it large, with its seed.
  const third = page.locator('#grid .cell').nth(2);
  const seed = (BigInt(start) + 2n).toString();
  assert.equal(await third.getAttribute('data-seed'), seed);
  await third.click();
  await waitForFace(seed, await page.getAttribute('#grid', 'data-tags'));
  assert.equal(await page.inputValue('#seed'), seed);
  assert.equal(await third.getAttribute('aria-pressed'), 'true');
  assert.equal(maxDiff(await canvasPixels(page, '#face'), faces[2]), 0, 'large face equals the grid face');
  assert.match(await page.textContent('#face-seed'), new RegExp(seed));

  // Download PNG saves the selected face, at the chosen size.
  const res = model.card.resolution;
  for (const scale of ['1', '4']) {
    await page.selectOption('#scale', scale);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    assert.match(download.suggestedFilename(), new RegExp(`seed${seed}${scale === '1' ? '' : `@${scale}x`}\\.png$`));
    const bytes = fs.readFileSync(await download.path());
    assert.deepEqual(pngSize(bytes), [res * scale, res * scale], `PNG at ${scale}x`);
  }
  // ... and the whole grid in one image (4 columns, 2 px gaps at 1x).
  await page.selectOption('#scale', '1');
  const [grid] = await Promise.all([page.waitForEvent('download'), page.click('#download-grid')]);
  const [w, h] = pngSize(fs.readFileSync(await grid.path()));
  const rows = Math.ceil(cells.length / 4);
  assert.deepEqual([w, h], [4 * res + 3 * 2, rows * res + (rows - 1) * 2], 'grid PNG size');
});

test('no console errors in the normal runs', async () => {
  assert.deepEqual(errors, []);
});

test('corrupt weights show a readable error', T, async (t) => {
  const p = await browser.context.newPage();
  await p.goto(`${server.url}?model=broken`);
  const error = p.locator('#error[role="alert"]');
  await error.waitFor({ state: 'visible', timeout: 60_000 });
  const text = (await error.textContent()).trim();
  t.diagnostic(`#error: ${text}`);
  assert.match(text, /broken/);
  assert.ok(text.length > 'Could not load model “broken”: '.length, 'the message says what is wrong');
  assert.equal(await p.getAttribute('body', 'data-ready'), null);
  await p.close();
});

test('flipped, foreign and oversized models show what is wrong', T, async (t) => {
  const cases = [
    { model: 'flipped', expect: /SHA-256/ },
    { model: 'foreign', expect: /do not fit the model card/ },
    { model: 'oversized', expect: /more than kyara allows/ },
    { model: 'edited', expect: /edited after it was sealed/ },
  ];
  for (const c of cases) {
    const p = await browser.context.newPage();
    await p.goto(`${server.url}?model=${c.model}`);
    const error = p.locator('#error[role="alert"]');
    await error.waitFor({ state: 'visible', timeout: 60_000 });
    const text = (await error.textContent()).trim();
    t.diagnostic(`${c.model}: ${text}`);
    assert.match(text, c.expect);
    assert.match(text, new RegExp(c.model));
    assert.equal(await p.getAttribute('body', 'data-ready'), null);
    await p.close();
  }
});

test('a missing model shows a readable 404 error', T, async (t) => {
  const p = await browser.context.newPage();
  await p.goto(`${server.url}?model=missing`);
  const error = p.locator('#error[role="alert"]');
  await error.waitFor({ state: 'visible', timeout: 60_000 });
  const text = (await error.textContent()).trim();
  t.diagnostic(`#error: ${text}`);
  assert.match(text, /404/);
  await p.close();
});
