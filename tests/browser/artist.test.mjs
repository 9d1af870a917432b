// Real-browser tests of the artist features of www/: the worker keeps the page responsive,
// tag strengths, variations, permalinks (identical pixels in a new page), locks, transitions,
// readable warnings for bad links, the about panel.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { defaultModel, launchBrowser, startServer, watchErrors } from './harness.mjs';
import { canvasPixels, isBlank, maxDiff, meanDiff, pngSize, waitForHashFace } from './util.mjs';

const T = { timeout: 180_000 };

let server;
let browser;
let page;
let errors;
let model;

before(async () => {
  model = defaultModel();
  server = await startServer();
  browser = await launchBrowser();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(90_000);
  errors = watchErrors(page);
  await open('#seed=42&tags=blonde_hair,blue_eyes');
  await page.waitForSelector('#grid[data-done="1"]');
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Loads the page afresh (not a same-document hash change) and waits for its face. */
async function open(hash) {
  await page.goto('about:blank');
  await page.goto(`${server.url}${hash}`);
  await page.waitForSelector('body[data-ready="1"]');
  await waitForHashFace(page);
}

const strength = (tag) => page.locator(`#strengths .slider[data-tag="${tag}"] input`);

test('the page stays responsive while the worker draws a grid', T, async (t) => {
  // Samples the main thread's event loop while the grid is drawn: no pause as long as a face.
  const gaps = await page.evaluate(async () => {
    const grid = document.getElementById('grid');
    document.getElementById('generate').click();
    while (grid.dataset.done !== '0') await new Promise((r) => setTimeout(r, 0));
    const t0 = performance.now();
    let last = t0;
    let max = 0;
    let blocked = 0;
    let ticks = 0;
    while (grid.dataset.done !== '1') {
      await new Promise((r) => setTimeout(r, 0));
      const now = performance.now();
      max = Math.max(max, now - last);
      blocked += Math.max(0, now - last - 5);
      last = now;
      ticks += 1;
    }
    return { max, blocked, ticks, wall: last - t0, faces: grid.querySelectorAll('.cell[data-seed]').length };
  });
  const ms = Number((await page.textContent('#speed')).match(/[\d.,]+/)[0].replace(/,/g, ''));
  t.diagnostic(`${gaps.faces} faces at ${ms} ms per face in ${gaps.wall.toFixed(0)} ms; main thread blocked `
    + `${gaps.blocked.toFixed(1)} ms in all, longest pause ${gaps.max.toFixed(1)} ms over ${gaps.ticks} ticks`);
  assert.ok(gaps.faces >= 4);
  assert.ok(gaps.max < Math.max(60, 0.8 * ms), `main thread paused for ${gaps.max.toFixed(1)} ms`);
  // The page itself never loads the WebAssembly: only the worker does.
  const mainThreadWasm = await page.evaluate(() => performance.getEntriesByType('resource')
    .map((e) => e.name).filter((n) => n.endsWith('.wasm') || n.endsWith('.bpk')));
  assert.deepEqual(mainThreadWasm, [], 'the main thread fetched the generator or the weights');
  assert.equal(await page.evaluate(() => typeof window.KyaraModel), 'undefined');
});

test('tag strength sliders show the condition vector and change the face', T, async (t) => {
  await open('#seed=42&tags=blonde_hair,blue_eyes');
  await page.click('#expert summary');
  assert.equal(Number(await strength('blonde hair').inputValue()), 1, 'an asked tag has strength 1');
  assert.equal(Number(await strength('red hair').inputValue()), 0, 'another tag has strength 0');
  const full = await canvasPixels(page, '#face');
  await strength('blonde hair').fill('0.3');
  await page.waitForFunction(() => location.hash.includes('s=blonde_hair:0.3'));
  await waitForHashFace(page);
  const weak = await canvasPixels(page, '#face');
  t.diagnostic(`blonde hair 1 -> 0.3: mean abs difference ${meanDiff(full, weak).toFixed(2)}`);
  assert.ok(maxDiff(full, weak) > 0, 'a weaker tag changes the face');
  // Reset brings back the plain face.
  await page.click('#reset-strengths');
  await page.waitForFunction(() => !location.hash.includes('&s='));
  await waitForHashFace(page);
  assert.equal(maxDiff(full, await canvasPixels(page, '#face')), 0, 'reset strengths redraws the plain face');
});

test('variations: a grid around the current character; choosing one continues from it', T, async () => {
  await open('#seed=42&tags=blonde_hair,blue_eyes');
  const base = await canvasPixels(page, '#face');
  await page.click('#variations');
  await page.waitForSelector('#grid[data-mode="variations"][data-done="1"]');
  const cells = await page.$$('#grid .cell canvas');
  const faces = [];
  for (let i = 0; i < cells.length; i++) faces.push(await canvasPixels(page, `#grid .cell:nth-child(${i + 1}) canvas`));
  for (const f of faces) {
    assert.ok(maxDiff(f, base) > 0, 'a variation differs from the character');
    assert.ok(!isBlank(f));
  }
  await page.locator('#grid .cell').nth(1).click();
  await page.waitForFunction(() => location.hash.includes('&v='));
  await waitForHashFace(page);
  assert.equal(maxDiff(await canvasPixels(page, '#face'), faces[1]), 0, 'the chosen variation is shown large');
  assert.equal(await page.locator('#grid .cell').nth(1).getAttribute('aria-pressed'), 'true');
});

test('a permalink reproduces identical pixels in a new page', T, async (t) => {
  // Build a character with every kind of state: seed, tags, a strength, a variation.
  await page.click('#expert summary');
  if (!(await strength('blue eyes').isVisible())) await page.click('#expert summary');
  await strength('blue eyes').fill('1.45');
  await page.waitForFunction(() => location.hash.includes('s=blue_eyes:1.45'));
  await waitForHashFace(page);
  const url = page.url();
  t.diagnostic(`permalink: ${url.slice(url.indexOf('#'))}`);
  assert.match(url, /#model=.*seed=42.*tags=.*s=blue_eyes:1\.45.*v=\d+:/);
  const px = await canvasPixels(page, '#face');

  const other = await browser.context.newPage();
  const otherErrors = watchErrors(other);
  await other.goto(url);
  await other.waitForSelector('body[data-ready="1"]');
  await waitForHashFace(other);
  assert.equal(other.url(), url, 'the new page keeps the link as it is');
  assert.equal(maxDiff(await canvasPixels(other, '#face'), px), 0, 'same pixels from the permalink');
  assert.equal(await other.locator('#strengths .slider[data-tag="blue eyes"] input').inputValue(), '1.45');
  assert.deepEqual(otherErrors, []);
  await other.close();
});

test('randomize keeps locked groups', T, async () => {
  await open('#seed=5&tags=blonde_hair,blue_eyes');
  const hair = model.card.vocab.groups.findIndex((g) => g.tags.includes('blonde hair'));
  await page.click(`fieldset[data-group="${hair}"] .lock`);
  assert.equal(await page.getAttribute(`fieldset[data-group="${hair}"] .lock`, 'aria-pressed'), 'true');
  const seeds = new Set();
  for (let i = 0; i < 3; i++) {
    await page.click('#randomize');
    await waitForHashFace(page);
    seeds.add(await page.inputValue('#seed'));
    const tags = await page.getAttribute('#face', 'data-tags');
    assert.match(tags, /blonde hair/, 'the locked hair stays');
  }
  assert.ok(seeds.size >= 2, 'randomize draws new seeds');
});

test('transition from A to B: ends equal the characters, strip downloads', T, async (t) => {
  await open('#seed=11&tags=blonde_hair');
  const a = await canvasPixels(page, '#face');
  await page.click('#set-a');
  await page.fill('#seed', '12');
  await page.check('input[type="radio"][value="red hair"]');
  // The face of the new tags, not the one of the new seed drawn just before.
  await page.waitForFunction(() => location.hash.includes('seed=12') && location.hash.includes('red_hair'));
  await waitForHashFace(page);
  const b = await canvasPixels(page, '#face');
  await page.click('#set-b');
  await page.waitForSelector('#transition[data-done="1"]');
  await page.click('#trans-play'); // pause
  const frames = Number(await page.getAttribute('#trans-t', 'max')) + 1;
  await page.locator('#trans-t').fill('0');
  assert.equal(maxDiff(await canvasPixels(page, '#trans-canvas'), a), 0, 'first frame is A');
  await page.locator('#trans-t').fill(String(frames - 1));
  assert.equal(maxDiff(await canvasPixels(page, '#trans-canvas'), b), 0, 'last frame is B');
  await page.locator('#trans-t').fill(String(Math.floor(frames / 2)));
  const mid = await canvasPixels(page, '#trans-canvas');
  assert.ok(maxDiff(mid, a) > 0 && maxDiff(mid, b) > 0, 'the middle frame is neither end');
  t.diagnostic(`${frames} frames; middle vs A ${meanDiff(mid, a).toFixed(1)}, vs B ${meanDiff(mid, b).toFixed(1)}`);
  await page.selectOption('#scale', '2');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#trans-strip')]);
  const res = model.card.resolution;
  assert.deepEqual(pngSize(fs.readFileSync(await dl.path())), [frames * res * 2 + (frames - 1) * 4, res * 2]);
});

test('a link with an unknown tag or a bad seed says so, and still draws', T, async (t) => {
  const p = await browser.context.newPage();
  const errs = watchErrors(p);
  await p.goto(`${server.url}#seed=abc&tags=zebra_hair,blue_eyes`);
  await p.waitForSelector('body[data-ready="1"]');
  const text = await p.textContent('#warning');
  t.diagnostic(`#warning: ${text}`);
  assert.match(text, /zebra hair/);
  assert.match(text, /abc/);
  assert.equal(await p.isVisible('#error'), false);
  assert.match(await p.getAttribute('#face', 'data-tags'), /blue eyes/);
  assert.deepEqual(errs, []);
  await p.close();
});

test('the about panel gives the measured figures', T, async (t) => {
  await page.click('#about-panel summary');
  const facts = {};
  for (const k of ['backend', 'wasm', 'weights', 'first', 'ms']) facts[k] = (await page.textContent(`#perf-${k}`)).trim();
  t.diagnostic(JSON.stringify(facts));
  assert.match(facts.backend, /CPU/);
  assert.match(facts.wasm, /[\d.]+ (MB|kB)/);
  assert.match(facts.first, /^\d[\d,.]* ms/);
  assert.match(facts.ms, /ms per face/);
});

test('no console errors in the artist runs', async () => {
  assert.deepEqual(errors, []);
});
