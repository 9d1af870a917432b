// Permalinks: #model=anime64&seed=42&tags=blonde_hair,blue_eyes&s=blue_eyes:1.45&v=851501:0.35&d=smile:0.5
//
// The link is read and written by the engine (shared-model's face.rs, compiled into the WebAssembly
// module), the same code `trainer generate --link` runs; this module only converts between the
// page's face specs and the engine's. The page's spec:
//   { model?, seed: BigInt | null, tags: string[], strengths: { tag: number },
//     variations: [{ seed: BigInt, strength: number }], directions: { name: number },
//     psi?: number, fuse?: { seed: BigInt, tags: string[], from_layer: number } }
// The engine's is the same with seeds as decimal strings (a u64 does not fit a JavaScript number).
//
// `engine` is the wasm-bindgen module (its `parseLink` / `printLink`: syntax only) or a loaded
// `KyaraModel` (its `read_link` also leaves out, and names, tags and directions the model lacks).
// Used by the generator worker (worker.js) and tested under node (tests/node/permalink.test.mjs).

/** A page spec as the engine takes it (seeds as strings). */
export function toEngine(spec) {
  const out = { ...spec };
  if (spec.seed !== undefined && spec.seed !== null) out.seed = String(spec.seed);
  const variations = spec.variations ?? spec.vary;
  delete out.vary;
  if (variations) out.variations = variations.map((v) => ({ seed: String(v.seed), strength: v.strength }));
  if (spec.fuse) out.fuse = { ...spec.fuse, seed: String(spec.fuse.seed) };
  return out;
}

/** An engine spec as the page holds it (seeds as BigInt, every field present). */
export function fromEngine(spec) {
  return {
    model: spec.model ?? null,
    seed: spec.seed === undefined || spec.seed === null ? null : BigInt(spec.seed),
    tags: [...(spec.tags ?? [])],
    strengths: { ...(spec.strengths ?? {}) },
    variations: (spec.variations ?? []).map((v) => ({ seed: BigInt(v.seed), strength: v.strength })),
    directions: { ...(spec.directions ?? {}) },
    // Models with styles only: truncation psi, and a fusion { seed, tags, from_layer }.
    ...(spec.psi === undefined || spec.psi === null ? {} : { psi: spec.psi }),
    ...(spec.fuse ? { fuse: { ...spec.fuse, seed: BigInt(spec.fuse.seed), tags: [...(spec.fuse.tags ?? [])] } } : {}),
  };
}

/** Reads a link (the text after `#`, or a whole URL): { spec, problems }. */
export function readLink(engine, text) {
  const r = typeof engine.read_link === 'function' ? engine.read_link(text) : engine.parseLink(text);
  return { spec: fromEngine(r.spec), problems: [...r.problems] };
}

/** The link text (without `#`) of a page spec. */
export function writeLink(wasm, spec) {
  return wasm.printLink(toEngine(spec));
}
