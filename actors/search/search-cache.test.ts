import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SearchCache } from './search-cache.ts';

const HITS = [{ title: 'T', url: 'https://example.org/t', snippet: 'S' }];
let dir: string;
let caches: SearchCache[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'search-cache-'));
  caches = [];
});

afterEach(() => {
  for (const cache of caches) cache.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(options: { ttlMs?: number; now?: () => number } = {}): SearchCache {
  const cache = new SearchCache({ path: join(dir, 'shard-0.sqlite'), ...options });
  caches.push(cache);
  return cache;
}

describe('SearchCache', () => {
  it('returns an entry until its TTL has passed, then reads it as a miss and purges it', () => {
    let now = 1_000_000;
    const cache = open({ ttlMs: 60_000, now: () => now });
    cache.put('k', HITS);

    now += 59_999;
    expect(cache.get('k')).toEqual(HITS);

    now += 1;
    expect(cache.get('k')).toBeUndefined();
    expect(cache.size()).toBe(0);
    expect(cache.purgeExpired()).toBe(1);
  });

  it('keeps entries across close and reopen of the file', () => {
    const first = open();
    first.put('k', HITS);
    first.close();

    const second = open();

    expect(second.get('k')).toEqual(HITS);
    expect(second.size()).toBe(1);
  });

  it('refuses to store an empty result list', () => {
    const cache = open();

    expect(cache.put('k', [])).toBe(false);
    expect(cache.get('k')).toBeUndefined();
    expect(cache.size()).toBe(0);
  });

  it('defaults to a seven-day TTL', () => {
    let now = 0;
    const cache = open({ now: () => now });
    cache.put('k', HITS);

    now = 7 * 24 * 3600 * 1000 - 1;
    expect(cache.get('k')).toEqual(HITS);
    now += 1;
    expect(cache.get('k')).toBeUndefined();
  });

  it('fails with SEARCH_CACHE_OPEN when the file cannot be created', () => {
    const notADirectory = join(dir, 'file');
    writeFileSync(notADirectory, 'x');

    expect(() => new SearchCache({ path: join(notADirectory, 'cache.sqlite') })).toThrow(
      expect.objectContaining({ code: 'SEARCH_CACHE_OPEN' }),
    );
  });
});
