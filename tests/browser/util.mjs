// Helpers shared by the browser tests.

import assert from 'node:assert/strict';

/** RGBA bytes of a canvas in the page (or in an element's shadow root with `shadowHost`). */
export function canvasPixels(p, selector) {
  return p.$eval(selector, (c) => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data));
}

export function maxDiff(a, b) {
  assert.equal(a.length, b.length, 'pixel buffers differ in size');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function meanDiff(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

export function isBlank(px) {
  // Blank = every pixel the same colour.
  for (let i = 4; i < px.length; i += 4) {
    if (px[i] !== px[0] || px[i + 1] !== px[1] || px[i + 2] !== px[2] || px[i + 3] !== px[3]) return false;
  }
  return true;
}

/** Waits until the main face shows what the URL hash describes (the page keeps them in step). */
export function waitForHashFace(page) {
  return page.waitForFunction(() => {
    const f = document.getElementById('face');
    return f.dataset.key && f.dataset.key === location.hash.slice(1);
  });
}

/** Width and height of a PNG file from its IHDR chunk. */
export function pngSize(bytes) {
  assert.deepEqual([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'a PNG file');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

/** Decodes a PNG in the page: { w, h, px }. */
export function decodePngInPage(page, url) {
  return page.evaluate(async (u) => {
    const blob = await (await fetch(u)).blob();
    const bmp = await createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const ctx = c.getContext('2d');
    ctx.drawImage(bmp, 0, 0);
    return { w: bmp.width, h: bmp.height, px: Array.from(ctx.getImageData(0, 0, bmp.width, bmp.height).data) };
  }, url);
}
