// Measures the figures docs/web.md quotes (not a test): node tests/browser/measure.mjs [runs] [faces]
// For each run: a fresh browser profile loads the page from loopback; reads time to first face
// from the page's about panel, then draws `faces` faces in the worker and takes the median.
// KYARA_WWW points at another www/ (e.g. one with a SIMD build in pkg/).

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { launchBrowser, startServer, WWW } from './harness.mjs';

const runs = Number(process.argv[2] || 3);
const faces = Number(process.argv[3] || 32);
const wasm = fs.readFileSync(path.join(WWW, 'pkg/web_bg.wasm'));
const out = { www: WWW, wasmBytes: wasm.length, wasmGzipBytes: zlib.gzipSync(wasm, { level: 9 }).length, runs: [] };
const server = await startServer();
try {
  for (let r = 0; r < runs; r++) {
    const browser = await launchBrowser();
    try {
      const page = browser.context.pages()[0] ?? (await browser.context.newPage());
      await page.goto(`${server.url}#seed=42&tags=blonde_hair,blue_eyes`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
      const first = await page.textContent('#perf-first');
      const simd = await page.textContent('#perf-backend');
      const times = await page.evaluate(async (n) => {
        const { Generator } = await import('./kyara.js');
        const gen = new Generator();
        await gen.load(new URL('models/anime64/', location.href));
        const t = [];
        for (let i = 0; i < n; i++) t.push((await gen.face({ seed: 1000 + i, tags: [] })).ms);
        gen.terminate();
        return t.sort((a, b) => a - b);
      }, faces);
      out.runs.push({ first, backend: simd, medianMs: times[Math.floor(times.length / 2)], minMs: times[0] });
    } finally {
      await browser.close();
    }
  }
} finally {
  await server.close();
}
console.log(JSON.stringify(out, null, 2));
