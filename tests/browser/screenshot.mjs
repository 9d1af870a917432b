// Takes screenshots of the page (not a test): node tests/browser/screenshot.mjs OUT_DIR [seed]
// Writes OUT_DIR/desktop-light.png, desktop-dark.png, phone.png, readme.png (for
// docs/screenshot.png), expert.png (tag strength sliders) and widget.png (www/embed.html, for
// docs/widget.png). Uses the model in www/ (KYARA_WWW to point elsewhere).

import fs from 'node:fs';
import path from 'node:path';
import { launchBrowser, startServer } from './harness.mjs';

const out = path.resolve(process.argv[2] || 'screenshots');
const seed = process.argv[3] || '42';
fs.mkdirSync(out, { recursive: true });

const server = await startServer();
const shots = [
  { file: 'desktop-light.png', viewport: { width: 1100, height: 860 }, colorScheme: 'light' },
  { file: 'desktop-dark.png', viewport: { width: 1100, height: 860 }, colorScheme: 'dark' },
  { file: 'phone.png', viewport: { width: 390, height: 844 }, colorScheme: 'light', fullPage: true },
  { file: 'readme.png', viewport: { width: 1060, height: 1060 }, colorScheme: 'light' },
  { file: 'expert.png', viewport: { width: 1060, height: 1000 }, colorScheme: 'light', expert: true },
  { file: 'widget.png', viewport: { width: 800, height: 560 }, colorScheme: 'light', page: 'embed.html' },
];
try {
  for (const s of shots) {
    const browser = await launchBrowser({ viewport: s.viewport, colorScheme: s.colorScheme });
    try {
      const page = browser.context.pages()[0] ?? (await browser.context.newPage());
      if (s.page) {
        await page.goto(`${server.url}${s.page}`);
        await page.waitForFunction(() => Number(document.body.dataset.generated || 0) >= 3, null, { timeout: 120_000 });
      } else {
        await page.goto(`${server.url}#seed=${seed}&tags=blonde_hair,blue_eyes`);
        await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
        await page.waitForSelector('#grid[data-done="1"]', { timeout: 120_000 });
        if (s.expert) {
          await page.click('#expert summary');
          await page.locator('#strengths .slider[data-tag="blue eyes"] input').fill('1.6');
          await page.waitForFunction(() => document.getElementById('face').dataset.key === location.hash.slice(1));
        }
      }
      await page.screenshot({ path: path.join(out, s.file), fullPage: Boolean(s.fullPage) });
      console.log(path.join(out, s.file));
    } finally {
      await browser.close();
    }
  }
} finally {
  await server.close();
}
