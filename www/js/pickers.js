// The tag pickers of the artist page: one radio group per exclusive tag group (with a lock for
// "Randomize tags"), one checkbox per free tag.

import { ui } from './dom.js';
import { RANDOM, state } from './state.js';

// Swatch colours for the colour words found in tag names; other words fall back to CSS names.
const COLOURS = {
  aqua: '#37c6c4', black: '#25222b', blonde: '#f2d36e', blue: '#3f6fd8', brown: '#8a5a35',
  gray: '#9d9ca7', grey: '#9d9ca7', green: '#41a757', orange: '#f08b2e', pink: '#f49bc2',
  purple: '#8e5dca', red: '#d73c3c', silver: '#c5c7d0', white: '#f7f7f7', yellow: '#f3d63d',
};

/** "blonde hair" in group "hair" -> "blonde". */
function shortName(tag, group) {
  const suffix = ` ${group}`;
  return tag.endsWith(suffix) ? tag.slice(0, -suffix.length) : tag;
}

function swatchColour(word) {
  if (COLOURS[word]) return COLOURS[word];
  return globalThis.CSS && CSS.supports('color', word) ? word : null;
}

function capitalise(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function visuallyHidden(text) {
  const s = document.createElement('span');
  s.className = 'visually-hidden';
  s.textContent = text;
  return s;
}

/** Builds one radio group per exclusive tag group (with a lock) and one checkbox per free tag. */
export function buildPickers(vocab, preset) {
  ui.pickers.replaceChildren();
  if (state.card.generator && state.card.generator.conditional === false) {
    // An unconditional model (e.g. `--arch dcgan --unconditional`) draws from the seed alone.
    const note = document.createElement('p');
    note.className = 'note';
    note.textContent = 'This model ignores tags: every face comes from its seed alone.';
    ui.pickers.append(note);
    return;
  }
  const wanted = new Set(preset);
  (vocab.groups || []).forEach((group, gi) => {
    const fs = document.createElement('fieldset');
    fs.className = 'picker';
    fs.dataset.group = String(gi);
    const legend = document.createElement('legend');
    legend.textContent = capitalise(group.name);
    const lock = document.createElement('button');
    lock.type = 'button';
    lock.className = 'lock';
    lock.setAttribute('aria-pressed', 'false');
    lock.setAttribute('aria-label', `Lock ${group.name} when randomizing`);
    lock.title = `Keep the ${group.name} when randomizing`;
    lock.textContent = 'Lock';
    lock.addEventListener('click', () => {
      const on = !state.locks.has(gi);
      if (on) state.locks.add(gi);
      else state.locks.delete(gi);
      lock.setAttribute('aria-pressed', String(on));
      lock.textContent = on ? 'Locked' : 'Lock';
    });
    const head = document.createElement('div');
    head.className = 'picker-head';
    head.append(legend, lock);
    fs.append(head);
    const chips = document.createElement('div');
    chips.className = 'chips';
    const presetTag = group.tags.find((t) => wanted.has(t)) ?? RANDOM;
    for (const tag of [RANDOM, ...group.tags]) {
      const label = document.createElement('label');
      label.className = 'chip';
      const input = document.createElement('input');
      input.type = 'radio';
      input.name = `group-${gi}`;
      input.value = tag;
      input.checked = tag === presetTag;
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.setAttribute('aria-hidden', 'true');
      const word = tag === RANDOM ? 'random' : shortName(tag, group.name);
      if (tag === RANDOM) {
        swatch.classList.add('random');
      } else {
        const colour = swatchColour(word.split(' ').pop());
        if (colour) swatch.style.setProperty('--swatch', colour);
        else swatch.classList.add('none');
      }
      const text = document.createElement('span');
      text.textContent = word;
      label.append(input, swatch, text);
      if (word !== tag || tag === RANDOM) label.append(visuallyHidden(` ${group.name}`));
      chips.append(label);
    }
    fs.append(chips);
    ui.pickers.append(fs);
  });
  const free = vocab.free || [];
  if (free.length) {
    const fs = document.createElement('fieldset');
    fs.className = 'picker';
    const legend = document.createElement('legend');
    legend.textContent = 'Extras';
    const chips = document.createElement('div');
    chips.className = 'chips';
    for (const tag of free) {
      const label = document.createElement('label');
      label.className = 'chip';
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.value = tag;
      input.checked = wanted.has(tag);
      const text = document.createElement('span');
      text.textContent = tag;
      label.append(input, text);
      chips.append(label);
    }
    fs.append(legend, chips);
    ui.pickers.append(fs);
  }
}

/** The tags the user asked for, groups first (in card order), then free tags. */
export function askedTags() {
  return [...ui.pickers.querySelectorAll('input:checked')]
    .map((i) => i.value)
    .filter((v) => v !== RANDOM);
}

export function randomizeTags() {
  const groups = state.card.vocab.groups || [];
  const pick = (n) => crypto.getRandomValues(new Uint32Array(1))[0] % n;
  groups.forEach((g, gi) => {
    if (state.locks.has(gi)) return;
    const tag = g.tags[pick(g.tags.length)];
    const input = [...ui.pickers.querySelectorAll(`input[name="group-${gi}"]`)].find((i) => i.value === tag);
    if (input) input.checked = true;
  });
}
