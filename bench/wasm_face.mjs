// Time per face of the page's CPU WebAssembly module (www/pkg, built by scripts/build-web.sh)
// under node's V8, one thread, as the page's worker runs it:
//   node bench/wasm_face.mjs www/models/anime64 [more model folders]
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const WWW = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../www');
const wasm = await import(pathToFileURL(path.join(WWW, 'pkg/web.js')).href);
wasm.initSync({ module: fs.readFileSync(path.join(WWW, 'pkg/web_bg.wasm')) });
for (const dir of process.argv.slice(2)) {
  const cardText = fs.readFileSync(path.join(dir, 'model.json'), 'utf8');
  const card = JSON.parse(cardText);
  const t0 = performance.now();
  const model = wasm.KyaraModel.load(cardText, fs.readFileSync(path.join(dir, card.weights)));
  const tLoad = performance.now() - t0;
  const ms = [];
  for (let s = 0; s < 40; s++) {
    const t = performance.now();
    model.face({ seed: String(s), tags: 'blonde hair, blue eyes' });
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  console.log(`${card.name} (${card.arch}): load ${tLoad.toFixed(1)} ms, face median ${ms[20].toFixed(2)} ms, min ${ms[0].toFixed(2)} ms`);
}
