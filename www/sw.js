// kyara's service worker: after one visit the page, the WebAssembly generator and the model work
// with no network. Network first (so a deployed update is picked up at once), the cache when
// the network fails. Relative paths only: the folder works on any static host.
//
// A module service worker (the page registers it with { type: 'module' }): the cache name and the
// list of the page's files come from js/shared.js, which the page and the generator worker use too.
//
// The big files (pkg/web_bg.wasm, the weights) are stored by the generator worker on the first
// visit (it downloads them anyway, before this worker controls the page) and refreshed here on
// later visits.

import { CACHE, SHELL, SHELL_OPTIONAL } from './js/shared.js';

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // Optional files (only in builds with WebGPU) are skipped when missing, as is anything that
    // fails now: it is stored later when the page asks for it.
    await Promise.all([...SHELL, ...SHELL_OPTIONAL].map(async (path) => {
      const url = new URL(path, self.location.href);
      try {
        const res = await fetch(url, { cache: 'reload' });
        if (res.ok) await cache.put(url, res);
      } catch {
        // Missing now, stored later when the page asks for it.
      }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('kyara-') && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  const scope = new URL(self.registration.scope);
  if (!url.pathname.startsWith(scope.pathname)) return;
  event.respondWith((async () => {
    try {
      const res = await fetch(req);
      if (res.ok && res.status === 200) {
        const copy = res.clone();
        event.waitUntil(caches.open(CACHE).then((c) => c.put(req, copy)).catch(() => {}));
      }
      return res;
    } catch (e) {
      const cache = await caches.open(CACHE);
      const hit = (await cache.match(req, { ignoreSearch: req.mode === 'navigate' }))
        || (req.mode === 'navigate' ? await cache.match(new URL('index.html', scope)) : undefined);
      if (hit) return hit;
      throw e;
    }
  })());
});
