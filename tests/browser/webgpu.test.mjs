// WebGPU vs CPU: where the build has the WebGPU module (KYARA_WEBGPU=1 scripts/build-web.sh) and
// Chromium gives an adapter (a real GPU, or SwiftShader's software WebGPU with
// --enable-unsafe-webgpu), the page picks WebGPU and its faces match the CPU's within a small
// tolerance (float order of operations differs). Skipped otherwise, saying why.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { launchBrowser, startServer, watchErrors, WWW } from './harness.mjs';
import { canvasPixels, isBlank, maxDiff, meanDiff, waitForHashFace } from './util.mjs';

const built = fs.existsSync(path.join(WWW, 'pkg-gpu/web_bg.wasm'));

test('WebGPU faces match the CPU faces', { timeout: 300_000, skip: !built && 'no www/pkg-gpu (build with KYARA_WEBGPU=1)' }, async (t) => {
  const server = await startServer();
  const browser = await launchBrowser({ webgpu: true });
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.setDefaultTimeout(240_000);
    const errors = watchErrors(page);
    const hash = '#seed=42&tags=blonde_hair,blue_eyes';
    await page.goto(`${server.url}${hash}`);
    await page.waitForSelector('body[data-ready="1"]');
    await waitForHashFace(page);
    const backend = await page.getAttribute('body', 'data-backend');
    const about = await page.textContent('#perf-backend');
    t.diagnostic(`backend: ${about}`);
    if (backend !== 'webgpu') {
      assert.match(about, /no adapter|no WebGPU|failed/, 'the page says why WebGPU is not used');
      t.skip(`WebGPU not used here: ${about}`);
      return;
    }
    const gpu = await canvasPixels(page, '#face');
    assert.ok(!isBlank(gpu));
    await page.waitForSelector('#grid[data-done="1"]');
    t.diagnostic(`WebGPU: ${await page.textContent('#perf-first')}; ${await page.textContent('#perf-ms')}`);

    const cpuPage = await browser.context.newPage();
    await cpuPage.goto(`${server.url}?backend=cpu${hash}`);
    await cpuPage.waitForSelector('body[data-ready="1"]');
    await waitForHashFace(cpuPage);
    assert.equal(await cpuPage.getAttribute('body', 'data-backend'), 'cpu');
    const cpu = await canvasPixels(cpuPage, '#face');
    const m = maxDiff(gpu, cpu);
    const mean = meanDiff(gpu, cpu);
    t.diagnostic(`WebGPU vs CPU: max abs channel difference ${m}, mean ${mean.toFixed(3)}`);
    assert.ok(m <= 4 && mean < 0.5, `WebGPU differs from the CPU: max ${m}, mean ${mean}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.close();
  }
});
