// Shared by the browser test and the screenshot script: a tiny static server for www/ on
// loopback, plus Debian's Chromium driven by playwright-core with a fresh profile.
//
// Test-only routes of the server (the page itself knows nothing about them):
//   /models/broken/*      the default model's files, with its weights file cut in half
//   /models/flipped/*     the default model's files, one bit of its weights flipped
//   /models/foreign/*     the default model's card without checksums, with another model's weights
//   /models/oversized/*   the default model's card claiming 10^9 residual blocks
//   /__test__/native.png  the reference PNG named by KYARA_NATIVE_PNG
//   /models/directed/*    KYARA_RECIPE_DIR/directed/: a copy of the default model whose card gains
//                         a latent direction (scripts/test.sh makes it; the default model has none)
//   /models/styled/*      KYARA_RECIPE_DIR/styled/: a small StyleGAN2-style model (psi, fusion)
//   /__test__/recipe/*    the other files of KYARA_RECIPE_DIR (native references of recipe.test.mjs)

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WWW = path.resolve(process.env.KYARA_WWW || path.join(REPO, 'www'));
export const CHROMIUM = process.env.KYARA_CHROMIUM || '/usr/bin/chromium';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.webmanifest': 'application/manifest+json',
  '.ico': 'image/x-icon',
  '.bpk': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
};

/** The default model's name and card, as the page will find them. */
export function defaultModel() {
  const index = JSON.parse(fs.readFileSync(path.join(WWW, 'models', 'index.json'), 'utf8'));
  const name = index.default;
  const card = JSON.parse(fs.readFileSync(path.join(WWW, 'models', name, 'model.json'), 'utf8'));
  return { name, card };
}

/** The damaged copies of the default model the server serves: card and weights edits. */
const DAMAGED = {
  broken: { weights: (b) => b.subarray(0, Math.floor(b.length / 2)) },
  flipped: {
    weights: (b) => {
      const c = Buffer.from(b);
      c[c.length >> 1] ^= 1;
      return c;
    },
  },
  foreign: {
    card: (c) => {
      delete c.weights_sha256;
      delete c.tags_sha256;
      delete c.seal;
      return c;
    },
    weights: () => {
      const index = JSON.parse(fs.readFileSync(path.join(WWW, 'models', 'index.json'), 'utf8'));
      const other = index.models.map((m) => m.name ?? m).find((n) => n !== index.default);
      const card = JSON.parse(fs.readFileSync(path.join(WWW, 'models', other, 'model.json'), 'utf8'));
      return fs.readFileSync(path.join(WWW, 'models', other, card.weights));
    },
  },
  // Unsealed (a card from before the seal), so that the size bound itself speaks.
  oversized: { card: (c) => ({ ...c, seal: undefined, generator: { ...c.generator, res_blocks: 1e9 } }) },
  // Sealed and edited: refused as such (the seal is checked in shared-model, as natively).
  edited: { card: (c) => ({ ...c, vocab: { ...c.vocab, groups: [] } }) },
};

/** Starts the static server on 127.0.0.1 with a free port; resolves to { url, close() }. */
export async function startServer({
  nativePng = process.env.KYARA_NATIVE_PNG, recipeDir = process.env.KYARA_RECIPE_DIR,
} = {}) {
  const inside = (dir, rest) => {
    const f = path.resolve(dir, rest);
    return f.startsWith(path.resolve(dir) + path.sep) ? f : null;
  };
  const server = http.createServer(async (req, res) => {
    try {
      const { pathname } = new URL(req.url, 'http://127.0.0.1');
      let file;
      let body;
      if (pathname === '/__test__/native.png') {
        file = nativePng;
      } else if (recipeDir && pathname.startsWith('/__test__/recipe/')) {
        file = inside(recipeDir, decodeURIComponent(pathname.slice('/__test__/recipe/'.length)));
      } else if (recipeDir && pathname.startsWith('/models/directed/')) {
        file = inside(path.join(recipeDir, 'directed'), decodeURIComponent(pathname.slice('/models/directed/'.length)));
      } else if (recipeDir && pathname.startsWith('/models/styled/')) {
        file = inside(path.join(recipeDir, 'styled'), decodeURIComponent(pathname.slice('/models/styled/'.length)));
      } else if (DAMAGED[pathname.split('/')[2]] && pathname.startsWith('/models/')) {
        const damage = DAMAGED[pathname.split('/')[2]];
        const { name, card } = defaultModel();
        const rest = pathname.split('/').slice(3).join('/');
        file = path.join(WWW, 'models', name, rest);
        if (rest === 'model.json' && damage.card) {
          body = Buffer.from(JSON.stringify(damage.card(structuredClone(card))));
        } else if (rest === card.weights && damage.weights) {
          body = damage.weights(await fsp.readFile(file));
        }
      } else {
        const rel = decodeURIComponent(pathname).replace(/^\/+/, '') || 'index.html';
        file = path.resolve(WWW, rel.endsWith('/') ? `${rel}index.html` : rel);
        if (file !== WWW && !file.startsWith(WWW + path.sep)) file = null;
      }
      if (!body) {
        if (!file || !(await fsp.stat(file).catch(() => null))?.isFile()) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
          return;
        }
        body = await fsp.readFile(file);
      }
      res.writeHead(200, {
        'content-type': MIME[path.extname(file).toLowerCase()] || 'application/octet-stream',
        'content-length': body.length,
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(resolve);
    }),
  };
}

/** Launches Chromium with a fresh user-data-dir; resolves to { context, close() }.
 *  `webgpu: true` starts Chromium with --enable-unsafe-webgpu (SwiftShader's software adapter when
 *  there is no GPU) instead of --disable-gpu. */
export async function launchBrowser({ webgpu = false, ...options } = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)`);
  }
  const profile = await fsp.mkdtemp(path.join(os.tmpdir(), 'kyara-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', webgpu ? '--enable-unsafe-webgpu' : '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    acceptDownloads: true,
    viewport: { width: 1100, height: 900 },
    ...options,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      await fsp.rm(profile, { recursive: true, force: true });
    },
  };
}

/** Collects console errors and uncaught exceptions of a page. */
export function watchErrors(page) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return errors;
}
