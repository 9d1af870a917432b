// The artist page's state (one object, shared by its modules).

export const GRID_SIZE = 8;
export const RANDOM = ''; // value of the "random" choice of a group

export const state = {
  gen: null, info: null, card: null, name: '', res: 64,
  strengths: {}, // tag -> value, overrides of the condition vector
  dirs: {}, // latent direction name -> value
  psi: null, // truncation psi (null = none), models with styles
  fuse: null, // { seed, tags, from_layer }: another character's styles from a layer on
  variations: [], // variations applied to the current character's latent
  locks: new Set(), // group indexes kept by "Randomize tags"
  face: { busy: false, dirty: false },
  current: null, // the spec of the face shown
  grid: { start: null, job: 0, mode: 'seeds', specs: [], varyBase: 0n },
  trans: { a: null, b: null, frames: [], job: 0, timer: 0, i: 0, dir: 1 },
  times: [], // recent milliseconds per face
  firstFace: null,
};
