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
