import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeMetrics } from '../../cluster/monitor/metrics-recorder.ts';
import type { Labels } from '../../cluster/monitor/protocol.ts';
import type { ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import type { SearchStatsReply, WebSearchReply } from './protocol.ts';
import { webSearchRequest } from './protocol.ts';
import { startSearchApiTestServer, type SearchApiTestServer } from './search-api-test-server.ts';
import { searchActor, type SearchActorArgs } from './search-actor.ts';
import { askWebSearch } from './search-routing.ts';
import { searchCacheActor } from './shared-cache.ts';

const KEY_ENV = 'DR_TEST_SERPER_KEY';
let server: SearchApiTestServer;
let dir: string;
let systems: ActorSystem[];

beforeEach(async () => {
  process.env[KEY_ENV] = 'actor-test-key';
  server = await startSearchApiTestServer('serper', 'actor-test-key');
  dir = mkdtempSync(join(tmpdir(), 'search-actor-'));
  systems = [];
});

afterEach(async () => {
  for (const s of systems) await s.stop();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  delete process.env[KEY_ENV];
});

function system(): ActorSystem {
  const s = createActorSystem({
    kinds: new Map([
      ['search', searchActor as never],
      ['search-cache', searchCacheActor as never],
    ]),
  });
  systems.push(s);
  return s;
}

function args(shard: number): SearchActorArgs {
  return { shard, backend: { kind: 'serper', baseUrl: server.url, apiKeyEnv: KEY_ENV }, cacheDir: dir };
}

/** A counter as this process would ship it to the head (0 before its first increment). */
function counterValue(name: string, labels: Labels): number {
  const sample = nodeMetrics
    .snapshot()
    .samples.find(
      (m) => m.name === name && JSON.stringify(m.labels) === JSON.stringify(labels) && m.kind === 'counter',
    );
  return sample?.kind === 'counter' ? sample.value : 0;
}

async function spawnShards(s: ActorSystem, n: number): Promise<void> {
  for (let shard = 0; shard < n; shard++)
    await s.spawn({ kind: 'search', name: `search/${shard}`, args: args(shard) });
}

describe('SearchActor', () => {
  it('answers web_search calls routed across its shards', async () => {
    const s = system();
    await spawnShards(s, 3);

    const reply = await askWebSearch(
      (name, msg) => s.ask<WebSearchReply>(name, msg),
      webSearchRequest(['one', 'two', 'three'], { topK: 3 }),
      3,
    );

    expect(reply.results.map((r) => [r.query, r.hits.length, r.cached])).toEqual([
      ['one', 3, false],
      ['two', 3, false],
      ['three', 3, false],
    ]);
  });

  it('serves concurrent asks at once, up to its maxConcurrency', async () => {
    const s = system();
    server.setLatency(100);
    await s.spawn({ kind: 'search', name: 'search/0', args: { ...args(0), maxConcurrency: 2 } });
    await s.spawn({ kind: 'search', name: 'search/1', args: args(1) });
    const sixAsks = (name: string, prefix: string) =>
      Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          s.ask<WebSearchReply>(name, webSearchRequest([`${prefix} ${i}`])),
        ),
      );

    await sixAsks('search/0', 'narrow');
    const narrow = server.maxConcurrent;
    const replies = await sixAsks('search/1', 'wide');

    expect(narrow).toBe(2);
    expect(server.maxConcurrent).toBe(6);
    expect(replies.map((r) => r.results[0]?.query)).toEqual(Array.from({ length: 6 }, (_, i) => `wide ${i}`));
    expect(replies.every((r) => r.results[0]?.hits.length === 10)).toBe(true);
  });

  it('keeps its cache across a restart of the whole system', async () => {
    const first = system();
    await spawnShards(first, 2);
    await askWebSearch(
      (name, msg) => first.ask<WebSearchReply>(name, msg),
      webSearchRequest(['persistent query']),
      2,
    );
    await first.stop();

    const second = system();
    await spawnShards(second, 2);
    const reply = await askWebSearch(
      (name, msg) => second.ask<WebSearchReply>(name, msg),
      webSearchRequest(['persistent query']),
      2,
    );

    expect(reply.results[0]?.cached).toBe(true);
    expect(server.requests).toHaveLength(1);
  });

  it('answers a malformed call with SEARCH_BAD_REQUEST and keeps serving', async () => {
    const s = system();
    await spawnShards(s, 1);

    const bad = await s.ask<WebSearchReply>('search/0', {
      v: 1,
      type: 'web_search',
      queries: ['a', 'b', 'c', 'd'],
    });
    const good = await s.ask<WebSearchReply>('search/0', webSearchRequest(['fine']));

    expect(bad.error?.code).toBe('SEARCH_BAD_REQUEST');
    expect(bad.error?.message).toMatch(/at most 3 queries/);
    expect(good.results[0]?.hits).toHaveLength(10);
  });

  it('reports its counters', async () => {
    const s = system();
    await spawnShards(s, 1);
    await s.ask('search/0', webSearchRequest(['x']));
    await s.ask('search/0', webSearchRequest(['x']));

    const stats = await s.ask<SearchStatsReply>('search/0', { v: 1, type: 'search.stats' });

    expect(stats).toMatchObject({
      type: 'search.stats.reply',
      cacheHits: 1,
      cacheMisses: 1,
      savedApiCalls: 1,
      apiCalls: 1,
      cacheEntries: 1,
    });
  });

  it('reports cache hits, misses, backend queries and API errors to the node recorder', async () => {
    const s = system();
    const actor = 'search-metered/0';
    await s.spawn({ kind: 'search', name: actor, args: args(0) });

    await s.ask(actor, webSearchRequest(['metered']));
    const afterFirst = {
      misses: counterValue('dr_search_cache_misses_total', { actor }),
      hits: counterValue('dr_search_cache_hits_total', { actor }),
    };
    await s.ask(actor, webSearchRequest(['metered']));
    server.failNext({ status: 401, body: { message: 'Unauthorized.' } });
    await s.ask(actor, webSearchRequest(['refused key']));

    expect(afterFirst).toEqual({ misses: 1, hits: 0 });
    expect(counterValue('dr_search_cache_hits_total', { actor })).toBe(1);
    expect(counterValue('dr_search_cache_misses_total', { actor })).toBe(2);
    expect(counterValue('dr_search_queries_total', { actor, backend: 'serper' })).toBe(2);
    expect(server.requests).toHaveLength(2);
    expect(
      counterValue('dr_search_api_errors_total', { actor, backend: 'serper', code: 'SEARCH_AUTH' }),
    ).toBe(1);
  });

  it('refuses to spawn without its API key in the environment', async () => {
    delete process.env[KEY_ENV];
    const s = system();

    await expect(s.spawn({ kind: 'search', name: 'search/0', args: args(0) })).rejects.toMatchObject({
      code: 'ACTOR_SPAWN_FAILED',
    });
  });

  describe('with the head-owned cache (cacheOwner: head)', () => {
    const shared = (shard: number): SearchActorArgs => ({ ...args(shard), cacheActor: 'search-cache' });

    it("serves a query a since-replaced shard cached from the cache actor's file, writing none of its own", async () => {
      const s = system();
      await s.spawn({ kind: 'search-cache', name: 'search-cache', args: { path: join(dir, 'head.sqlite') } });
      await s.spawn({ kind: 'search', name: 'search/0', args: shared(0) });
      const first = await s.ask<WebSearchReply>('search/0', webSearchRequest(['capital of france']));
      await s.stopActor('search/0');
      await s.spawn({ kind: 'search', name: 'search/0', args: shared(0) });
      const again = await s.ask<WebSearchReply>('search/0', webSearchRequest(['capital of france']));
      expect(first.results[0]?.cached).toBe(false);
      expect(again.results[0]).toMatchObject({ cached: true, hits: first.results[0]!.hits });
      expect(server.requests).toHaveLength(1);
      expect(existsSync(join(dir, 'search-cache-0.sqlite'))).toBe(false);
    });

    it('searches uncached when the cache actor does not answer, rather than failing the call', async () => {
      const s = system();
      await s.spawn({ kind: 'search', name: 'search/0', args: shared(0) });
      const reply = await s.ask<WebSearchReply>('search/0', webSearchRequest(['q1']));
      const again = await s.ask<WebSearchReply>('search/0', webSearchRequest(['q1']));
      expect(reply.results[0]?.hits.length).toBeGreaterThan(0);
      expect(again.results[0]).toMatchObject({ cached: false });
      expect(server.requests).toHaveLength(2);
    });
  });
});
