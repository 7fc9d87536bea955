import { describe, expect, it } from 'vitest';
import { webSearchRequest, type WebSearchReply, type WebSearchRequest } from './protocol.ts';
import { queryKey } from './search-key.ts';
import { askWebSearch, mergeShardReplies, searchActorName, splitByShard } from './search-routing.ts';
import { shardFor } from './shard.ts';

describe('shardFor', () => {
  it('is stable, in range, and spreads keys over all shards', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8_000; i++) {
      const shard = shardFor(`query number ${i}`, 8);
      expect(shard).toBe(shardFor(`query number ${i}`, 8));
      counts[shard] = (counts[shard] ?? 0) + 1;
    }
    for (const count of counts) expect(count).toBeGreaterThan(800);
  });

  it('rejects a non-positive shard count', () => {
    expect(() => shardFor('k', 0)).toThrow(RangeError);
  });
});

describe('splitByShard and askWebSearch', () => {
  const echo = (req: WebSearchRequest): WebSearchReply => ({
    v: 1,
    type: 'web_search.reply',
    results: req.queries.map((query) => ({
      query,
      hits: [{ title: query, url: `https://x/${query}`, snippet: '' }],
      cached: false,
    })),
  });

  it('sends each query to the shard owning its key and merges replies in request order', async () => {
    const req = webSearchRequest(['alpha', 'beta', 'gamma'], { topK: 5 });
    const asked: Array<[string, string[]]> = [];

    const reply = await askWebSearch(
      async (name, msg) => {
        asked.push([name, msg.queries]);
        return echo(msg);
      },
      req,
      4,
    );

    expect(reply.results.map((r) => r.query)).toEqual(['alpha', 'beta', 'gamma']);
    for (const [name, queries] of asked) {
      for (const q of queries) expect(name).toBe(searchActorName(shardFor(queryKey(q, { topK: 5 }), 4)));
    }
    expect(asked.flatMap(([, q]) => q).sort()).toEqual(['alpha', 'beta', 'gamma']);
  });

  it('routes queries that differ only in case and spacing to the same shard', () => {
    const parts = splitByShard(webSearchRequest(['Tallest  Building', 'tallest building']), 16);

    expect(parts).toHaveLength(1);
  });

  it('spreads a shard refusal over that shard’s queries', () => {
    const req = webSearchRequest(['a', 'b']);
    const parts = splitByShard(req, 1);
    const error = { code: 'SEARCH_BAD_REQUEST', message: 'bad' };

    const merged = mergeShardReplies(req, parts, [{ v: 1, type: 'web_search.reply', results: [], error }]);

    expect(merged.results).toEqual([
      { query: 'a', hits: [], cached: false, error },
      { query: 'b', hits: [], cached: false, error },
    ]);
  });

  it('refuses a shard reply that lacks some of its queries', () => {
    const req = webSearchRequest(['a', 'b']);
    const parts = splitByShard(req, 1);

    expect(() => mergeShardReplies(req, parts, [{ v: 1, type: 'web_search.reply', results: [] }])).toThrow(
      /answered 0 of 2/,
    );
  });
});
