// The recipe of a face, page against the native CLI (scripts/test.sh writes the references into
// KYARA_RECIPE_DIR; the tests skip without it):
//   - a permalink with s=, v= and d= draws in the page the pixels `trainer generate --link` drew;
//   - the page's Transition frames are the frames of `trainer interpolate` between the same specs;
//   - psi and a fusion (a StyleGAN2-style model) draw the native pixels, with their controls.
// KYARA_RECIPE_DIR holds directed/ (a copy of the default model whose card gains a latent
// direction, served as models/directed/), link.txt + link.png, from.txt, to.txt, steps.txt and
// strip.png (the native strip: tiles of the model's size, 2-pixel gutters, one row), and styled/
// (a small StyleGAN2-style model, served as models/styled/) with styled.txt + styled.png (a link
// with psi and a fusion, drawn by `trainer generate --link`).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, startServer, watchErrors } from './harness.mjs';
import { canvasPixels, decodePngInPage, maxDiff, meanDiff, waitForHashFace } from './util.mjs';

const DIR = process.env.KYARA_RECIPE_DIR;
const T = { timeout: 240_000, skip: !DIR && 'KYARA_RECIPE_DIR is not set (scripts/test.sh sets it)' };
const read = (f) => fs.readFileSync(path.join(DIR, f), 'utf8').trim();

let server;
let browser;
let page;
let errors;

before(async () => {
  if (!DIR) return;
  server = await startServer();
  browser = await launchBrowser();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(120_000);
  errors = watchErrors(page);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Loads the page afresh on the CPU (its pixels are the native CLI's) and waits for its face. */
async function open(hash) {
  await page.goto('about:blank');
  await page.goto(`${server.url}?backend=cpu${hash}`);
  await page.waitForSelector('body[data-ready="1"]');
  await waitForHashFace(page);
}

test('a permalink with strengths, variations and a direction draws the native pixels', T, async (t) => {
  const link = read('link.txt');
  assert.match(link, /&s=.*&v=.*&d=/, 'the reference link has all three kinds of edit');
  await open(link);
  const url = page.url();
  assert.equal(url.slice(url.indexOf('#')), link, 'the page keeps the link as it is');
  assert.equal(await page.isVisible('#warning'), false, 'the whole link is used');
  const dir = JSON.parse(read('directed/model.json')).directions[0];
  assert.equal(await page.textContent('label[for="direction-0"]'), dir.name, 'the direction has its slider');
  const face = await canvasPixels(page, '#face');
  const ref = await decodePngInPage(page, '/__test__/recipe/link.png');
  const m = maxDiff(face, ref.px);
  t.diagnostic(`${link}: page vs trainer generate --link: max abs channel difference ${m}`);
  assert.ok(m <= 1, `max abs channel difference ${m} > 1`);
});

test('psi and a fusion of two characters draw the native pixels, with their controls', T, async (t) => {
  const link = read('styled.txt');
  assert.match(link, /&psi=.*&fuse=/, 'the reference link truncates and fuses');
  await open(link);
  assert.equal(await page.isVisible('#warning'), false, 'the whole link is used');
  await page.click('#expert summary');
  assert.equal(await page.isVisible('#style-controls'), true, 'a model with styles shows its style controls');
  assert.equal(await page.inputValue('#psi'), '0.6', 'the psi slider shows the link');
  assert.equal(await page.isChecked('#fuse-on'), true, 'the fusion is on');
  assert.equal(await page.inputValue('#fuse-seed'), '9');
  assert.equal(await page.inputValue('#fuse-layer'), '2');
  const face = await canvasPixels(page, '#face');
  const ref = await decodePngInPage(page, '/__test__/recipe/styled.png');
  const m = maxDiff(face, ref.px);
  t.diagnostic(`${link}: page vs trainer generate --link: max abs channel difference ${m}`);
  assert.ok(m <= 1, `max abs channel difference ${m} > 1`);
  // The controls write the link: psi back to 1 leaves it out; the fusion off drops it.
  await page.$eval('#psi', (el) => {
    el.value = '1';
    el.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await page.waitForFunction(() => !location.hash.includes('psi='));
  await page.uncheck('#fuse-on');
  await page.waitForFunction(() => !location.hash.includes('fuse='));
  await waitForHashFace(page);
  const plain = await canvasPixels(page, '#face');
  assert.ok(maxDiff(plain, face) > 8, 'without psi and fusion the face changes');
  // ... and a model without styles shows none.
  await open('#model=directed&seed=1');
  assert.equal(await page.isVisible('#style-controls'), false);
});

test('the Transition frames are the frames of trainer interpolate', T, async (t) => {
  const [from, to, steps] = [read('from.txt'), read('to.txt'), Number(read('steps.txt'))];
  await open(from);
  await page.click('#set-a');
  // B by a link in the same page (a reload would forget A).
  await page.evaluate((h) => { location.hash = h; }, to);
  await page.waitForFunction((h) => document.getElementById('face').dataset.key === h.slice(1), to);
  await page.selectOption('#trans-frames', String(steps));
  await page.click('#set-b');
  await page.waitForSelector('#transition[data-done="1"]');
  await page.click('#trans-play'); // pause
  assert.equal(Number(await page.getAttribute('#trans-t', 'max')) + 1, steps);
  const strip = await decodePngInPage(page, '/__test__/recipe/strip.png');
  const res = (await page.$eval('#trans-canvas', (c) => c.width));
  assert.deepEqual([strip.w, strip.h], [steps * res + (steps + 1) * 2, res + 4], 'native strip size');
  const tile = (k) => {
    const out = [];
    for (let y = 0; y < res; y++) {
      const at = ((2 + y) * strip.w + 2 + k * (res + 2)) * 4;
      out.push(...strip.px.slice(at, at + res * 4));
    }
    return out;
  };
  const diffs = [];
  let previous = null;
  for (let k = 0; k < steps; k++) {
    await page.locator('#trans-t').fill(String(k));
    const frame = await canvasPixels(page, '#trans-canvas');
    diffs.push(maxDiff(frame, tile(k)));
    if (previous) assert.ok(meanDiff(frame, previous) > 0, `frame ${k} repeats frame ${k - 1}`);
    previous = frame;
  }
  t.diagnostic(`${steps} frames from ${from} to ${to}; max abs channel difference per frame: ${diffs.join(' ')}`);
  assert.ok(Math.max(...diffs) <= 1, `page and trainer interpolate differ: ${diffs.join(' ')}`);
});

test('no console errors in the recipe runs', { skip: T.skip }, () => {
  assert.deepEqual(errors, []);
});
