/**
 * Invented names. Built from syllables so they are pronounceable, clash with no real entity, and are
 * distinctive tokens for BM25 (a name is rare in the corpus, the way proper nouns are on the web).
 */
import type { Rng } from './rng.ts';

const ONSETS = [
  'b',
  'br',
  'c',
  'd',
  'dr',
  'f',
  'g',
  'gr',
  'h',
  'k',
  'kr',
  'l',
  'm',
  'n',
  'p',
  'r',
  's',
  'st',
  't',
  'tr',
  'v',
  'z',
];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ei', 'ou'];
const CODAS = ['', '', '', 'n', 'r', 'l', 's', 'th', 'm', 'nd', 'sk', 'rn'];

function syllable(rng: Rng): string {
  return rng.pick(ONSETS) + rng.pick(VOWELS) + rng.pick(CODAS);
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** One capitalized word of `min`..`max` syllables, 4-11 letters. */
export function inventWord(rng: Rng, min = 2, max = 3): string {
  for (;;) {
    let w = '';
    const n = rng.int(min, max);
    for (let i = 0; i < n; i++) w += syllable(rng);
    if (w.length >= 4 && w.length <= 11) return capitalize(w);
  }
}

/**
 * Hands out names that are unique across the whole world (case-insensitively), so that every question has
 * exactly one answer and every name finds exactly one main page.
 */
export class NameRegistry {
  private readonly taken = new Set<string>();

  /** Calls `make` until it produces a name not yet taken, then reserves it. */
  claim(make: () => string): string {
    for (;;) {
      const name = make();
      const key = name.toLowerCase();
      if (!this.taken.has(key)) {
        this.taken.add(key);
        return name;
      }
    }
  }
}
