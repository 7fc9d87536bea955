import { describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { generateWorld, indexWorld } from './world.ts';

describe('generateWorld', () => {
  it('gives a byte-identical world for the same seed and size', () => {
    expect(JSON.stringify(generateWorld({ seed: 11, size: 300 }))).toBe(
      JSON.stringify(generateWorld({ seed: 11, size: 300 })),
    );
  });

  it('gives a different world for a different seed', () => {
    const a = generateWorld({ seed: 11, size: 300 });
    const b = generateWorld({ seed: 12, size: 300 });
    expect(a.entities.map((e) => e.name)).not.toEqual(b.entities.map((e) => e.name));
  });

  it('creates every entity type, roughly `size` entities, with unique names and slugs', () => {
    const w = generateWorld({ seed: 3, size: 500 });
    const types = new Set(w.entities.map((e) => e.type));
    expect([...types].sort()).toEqual([
      'book',
      'city',
      'company',
      'country',
      'person',
      'river',
      'university',
    ]);
    expect(w.entities.length).toBeGreaterThan(450);
    expect(w.entities.length).toBeLessThan(550);
    expect(new Set(w.entities.map((e) => e.name.toLowerCase())).size).toBe(w.entities.length);
    expect(new Set(w.entities.map((e) => e.slug)).size).toBe(w.entities.length);
  });

  it('only relates entities that exist, with consistent dates', () => {
    const w = generateWorld({ seed: 5, size: 400 });
    const get = indexWorld(w);
    for (const e of w.entities) {
      if (e.type === 'person') {
        expect(get(e.birthCity).type).toBe('city');
        expect(get(e.university).type).toBe('university');
      } else if (e.type === 'company') {
        const founder = get(e.founder);
        expect(founder.type).toBe('person');
        if (founder.type === 'person') expect(e.foundedYear).toBeGreaterThan(founder.birth.year);
      } else if (e.type === 'book') {
        const author = get(e.author);
        if (author.type === 'person') expect(e.year).toBeGreaterThan(author.birth.year);
      } else if (e.type === 'country') {
        const capital = get(e.capital);
        expect(capital.type === 'city' && capital.country).toBe(e.id);
      } else if (e.type === 'city' && e.river !== null) {
        const river = get(e.river);
        expect(river.type === 'river' && river.source).toBe(e.country);
      }
    }
  });

  it('rejects a bad seed or a too-small size with a typed error', () => {
    for (const bad of [
      { seed: -1, size: 100 },
      { seed: 1.5, size: 100 },
      { seed: 1, size: 5 },
    ]) {
      let err: unknown;
      try {
        generateWorld(bad);
      } catch (e) {
        err = e;
      }
      expect(isDrError(err, 'SANDBOX_BAD_OPTIONS')).toBe(true);
    }
  });
});
