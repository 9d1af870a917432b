// Offline: load the page once, stop the server, reload: the service worker serves the page,
// the WebAssembly and the model from its cache, and the page draws the same face.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchBrowser, startServer, watchErrors } from './harness.mjs';
import { canvasPixels, isBlank, maxDiff, waitForHashFace } from './util.mjs';

test('after one visit the page generates with the server stopped', { timeout: 240_000 }, async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.setDefaultTimeout(90_000);
    const errors = watchErrors(page);
    await page.goto(`${server.url}#seed=42&tags=blonde_hair,blue_eyes`);
    await page.waitForSelector('body[data-ready="1"]');
    await waitForHashFace(page);
    const online = await canvasPixels(page, '#face');
    await page.waitForSelector('body[data-offline="1"]');
    t.diagnostic(`offline status: ${await page.textContent('#perf-offline')}`);

    await server.close();
    // The server is really gone: a plain request from node fails.
    await assert.rejects(fetch(server.url), 'the server still answers');

    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    await waitForHashFace(page);
    const offline = await canvasPixels(page, '#face');
    assert.ok(!isBlank(offline));
    assert.equal(maxDiff(online, offline), 0, 'the same face offline');
    await page.waitForSelector('#grid[data-done="1"]');
    assert.equal(await page.isVisible('#error'), false);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.close().catch(() => {});
  }
});

test('the page is installable: a web app manifest with its icons', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="1"]');
    const href = await page.getAttribute('link[rel="manifest"]', 'href');
    assert.ok(href, 'index.html links a manifest');
    const found = await page.evaluate(async (href) => {
      const url = new URL(href, location.href);
      const m = await (await fetch(url)).json();
      const icons = [];
      for (const icon of m.icons) {
        const res = await fetch(new URL(icon.src, url));
        const blob = await res.blob();
        let size = null;
        if (icon.type === 'image/png') {
          const bmp = await createImageBitmap(blob);
          size = `${bmp.width}x${bmp.height}`;
        }
        icons.push({ ok: res.ok, type: blob.type, sizes: icon.sizes, size });
      }
      return { m, icons };
    }, href);
    assert.equal(found.m.short_name, 'kyara');
    assert.equal(found.m.display, 'standalone');
    assert.equal(found.m.start_url, './');
    const pngs = found.icons.filter((i) => i.size !== null);
    assert.deepEqual(pngs.map((i) => i.size).sort(), ['192x192', '512x512']);
    for (const i of found.icons) {
      assert.ok(i.ok, `icon ${i.sizes} loads`);
      if (i.size !== null) assert.equal(i.size, i.sizes, 'a PNG icon has the size the manifest says');
    }
  } finally {
    await browser.close();
    await server.close().catch(() => {});
  }
});
