// The <kyara-generator> widget inside www/embed.html: it draws, fires `generated` with the
// image, follows attribute changes, and reports bad attributes with an `error` event and a
// message in its shadow DOM.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { launchBrowser, startServer, watchErrors } from './harness.mjs';
import { decodePngInPage, isBlank, maxDiff } from './util.mjs';

const NATIVE_PNG = process.env.KYARA_NATIVE_PNG;
const T = { timeout: 180_000 };

let server;
let browser;
let page;
let errors;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(90_000);
  errors = watchErrors(page);
  // Record every widget event the host page sees.
  await page.addInitScript(() => {
    window.kyaraEvents = [];
    for (const type of ['generated', 'error']) {
      document.addEventListener(type, (e) => {
        if (!(e instanceof CustomEvent)) return;
        const d = e.detail;
        window.kyaraEvents.push({
          type, id: e.target.id, seed: d.seed, tags: d.tags, resolved: d.resolved, message: d.message,
          width: d.width, backend: d.backend, px: d.imageData ? Array.from(d.imageData.data) : null,
        });
      }, true);
    }
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const shadowPixels = (id) => page.$eval(`#${id}`, (el) => {
  const c = el.shadowRoot.querySelector('canvas');
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
});

test('embed.html: every widget draws and fires `generated` with its image', T, async (t) => {
  await page.goto(`${server.url}embed.html`);
  const count = await page.locator('kyara-generator').count();
  await page.waitForFunction((n) => window.kyaraEvents.filter((e) => e.type === 'generated').length >= n, count);
  const events = await page.evaluate(() => window.kyaraEvents);
  t.diagnostic(events.map((e) => `${e.type} #${e.id || '-'} seed ${e.seed}: ${e.resolved}`).join(' | '));
  const hero = events.find((e) => e.id === 'hero');
  assert.equal(hero.seed, '42');
  assert.match(hero.resolved, /blonde hair/);
  assert.match(hero.resolved, /blue eyes/);
  const px = await shadowPixels('hero');
  assert.ok(!isBlank(px));
  assert.equal(maxDiff(px, hero.px), 0, 'the event carries the drawn image');
  assert.equal(await page.$eval('#hero', (el) => el.shadowRoot.querySelector('.bar').hidden), false, 'controls shown');
  t.diagnostic(`widget backend: ${hero.backend}`);
  if (NATIVE_PNG && fs.existsSync(NATIVE_PNG) && hero.backend === 'cpu') {
    const ref = await decodePngInPage(page, '/__test__/native.png');
    const m = maxDiff(px, ref.px);
    t.diagnostic(`widget vs native CLI: max abs channel difference ${m}`);
    assert.ok(m <= 1, `widget differs from the native CLI face by ${m}`);
  }
  // The widget's styles stay inside its shadow root.
  assert.equal(await page.$eval('body', (b) => getComputedStyle(b).imageRendering), 'auto');
});

test('changing the seed attribute redraws; "Another one" picks a new seed', T, async () => {
  const before = await shadowPixels('hero');
  const n = await page.evaluate(() => window.kyaraEvents.length);
  await page.$eval('#hero', (el) => el.setAttribute('seed', '43'));
  await page.waitForFunction((k) => window.kyaraEvents.slice(k).some((e) => e.id === 'hero' && e.seed === '43'), n);
  assert.ok(maxDiff(before, await shadowPixels('hero')) > 0, 'seed 43 draws another face');
  const m = await page.evaluate(() => window.kyaraEvents.length);
  await page.locator('#hero').getByRole('button', { name: 'Another one' }).click();
  await page.waitForFunction((k) => window.kyaraEvents.slice(k).some((e) => e.id === 'hero' && e.type === 'generated'), m);
  assert.notEqual(await page.getAttribute('#hero', 'seed'), '43');
});

test('the widget takes every spelling of a tag the engine takes', T, async (t) => {
  // Seed 42 with "blonde hair, blue eyes" is #hero's first face.
  const hero = await page.evaluate(() => window.kyaraEvents.find((e) => e.id === 'hero' && e.seed === '42'));
  const spellings = ['blonde_hair,blue_eyes', 'Blonde Hair, BLUE_EYES', '  blonde   hair ,, blue eyes ', 'blonde hair,Blonde_Hair, blue eyes'];
  for (const [i, tags] of spellings.entries()) {
    const id = `spelling-${i}`;
    await page.evaluate(({ id, tags }) => {
      const el = document.createElement('kyara-generator');
      el.id = id;
      el.setAttribute('tags', tags);
      el.setAttribute('seed', '42');
      document.body.append(el);
    }, { id, tags });
    await page.waitForFunction((id) => window.kyaraEvents.some((e) => e.id === id), id);
    const ev = await page.evaluate((id) => window.kyaraEvents.find((e) => e.id === id), id);
    t.diagnostic(`tags="${tags}": ${ev.type} ${ev.tags ?? ev.message}`);
    assert.equal(ev.type, 'generated', `tags="${tags}": ${ev.message}`);
    assert.equal(ev.tags, 'blonde hair, blue eyes', 'the asked tags, spelled canonically');
    assert.equal(ev.resolved, hero.resolved);
    assert.equal(maxDiff(ev.px, hero.px), 0, `tags="${tags}" draws another face`);
  }
});

const RECIPE = process.env.KYARA_RECIPE_DIR;

test('a link attribute draws the whole recipe: psi and a fusion as the CLI draws them', {
  ...T, skip: !RECIPE && 'KYARA_RECIPE_DIR is not set (scripts/test.sh sets it)',
}, async (t) => {
  const link = fs.readFileSync(`${RECIPE}/styled.txt`, 'utf8').trim();
  await page.evaluate((link) => {
    const el = document.createElement('kyara-generator');
    el.id = 'linked';
    el.setAttribute('model', 'models/styled');
    el.setAttribute('backend', 'cpu');
    el.setAttribute('link', link);
    document.body.append(el);
  }, link);
  await page.waitForFunction(() => window.kyaraEvents.some((e) => e.id === 'linked'));
  const ev = await page.evaluate(() => window.kyaraEvents.find((e) => e.id === 'linked'));
  assert.equal(ev.type, 'generated', ev.message);
  const ref = await decodePngInPage(page, '/__test__/recipe/styled.png');
  const m = maxDiff(ev.px, ref.px);
  t.diagnostic(`link="${link}": widget vs trainer generate --link: max abs channel difference ${m}`);
  assert.ok(m <= 1, `max abs channel difference ${m} > 1`);
  assert.equal(ev.seed, '5');
});

test('no console errors on the host page in the normal runs', () => {
  assert.deepEqual(errors, []);
});

test('bad attributes fire `error` and show the message in the widget', T, async (t) => {
  const cases = [
    { id: 'bad-tag', attrs: { tags: 'zebra hair', seed: '1' }, expect: /zebra hair/ },
    { id: 'bad-seed', attrs: { tags: 'blue eyes', seed: 'x1' }, expect: /x1/ },
    { id: 'no-model', attrs: { model: 'models/nope', seed: '1' }, expect: /404/ },
    { id: 'corrupt', attrs: { model: 'models/broken', seed: '1' }, expect: /broken/ },
    { id: 'flipped', attrs: { model: 'models/flipped', seed: '1' }, expect: /SHA-256/ },
    { id: 'foreign', attrs: { model: 'models/foreign', seed: '1' }, expect: /other shapes than the card/ },
    { id: 'oversized', attrs: { model: 'models/oversized', seed: '1' }, expect: /more than kyara allows/ },
    { id: 'bad-link', attrs: { link: 'seed=1&d=nope:1' }, expect: /could not be used.*nope/ },
  ];
  for (const c of cases) {
    await page.evaluate(({ id, attrs }) => {
      const el = document.createElement('kyara-generator');
      el.id = id;
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      document.body.append(el);
    }, c);
    await page.waitForFunction((id) => window.kyaraEvents.some((e) => e.id === id && e.type === 'error'), c.id);
    const ev = await page.evaluate((id) => window.kyaraEvents.find((e) => e.id === id && e.type === 'error'), c.id);
    const shown = await page.$eval(`#${c.id}`, (el) => {
      const m = el.shadowRoot.querySelector('.msg');
      return { text: m.textContent, role: m.getAttribute('role'), visible: m.checkVisibility() };
    });
    t.diagnostic(`${c.id}: ${ev.message}`);
    assert.match(ev.message, c.expect);
    assert.equal(shown.text, ev.message);
    assert.equal(shown.role, 'alert');
    assert.ok(shown.visible);
  }
});
