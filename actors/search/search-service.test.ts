import { afterEach, describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { webSearchRequest } from './protocol.ts';
import { RateLimiter, type RateLimitOptions } from './rate-limiter.ts';
import type { RetryPolicy } from './retry.ts';
import {
  startSearchApiTestServer,
  type SearchApiTestServer,
  EMPTY_QUERY_MARKER,
} from './search-api-test-server.ts';
import { createSearchBackend } from './search-backends.ts';
import { SearchCache } from './search-cache.ts';
import { SearchService } from './search-service.ts';

const KEY = 'k-1';
const RETRY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 10_000 };
let server: SearchApiTestServer;
let cache: SearchCache;

afterEach(async () => {
  cache.close();
  await server.close();
});

interface Setup {
  retry?: RetryPolicy;
  rate?: RateLimitOptions;
  breaker?: { failureThreshold: number; cooldownMs: number };
  sleeps?: number[];
}

async function setup(options: Setup = {}): Promise<SearchService> {
  server = await startSearchApiTestServer('serper', KEY);
  cache = new SearchCache({ path: ':memory:' });
  const sleeps = options.sleeps;
  return new SearchService({
    backend: createSearchBackend({ kind: 'serper', baseUrl: server.url, apiKey: KEY, timeoutMs: 2_000 }),
    cache,
    limiter: new RateLimiter(options.rate ?? { perSecond: 10_000, burst: 10_000, maxConcurrent: 64 }),
    breaker: new CircuitBreaker('serper', options.breaker ?? { failureThreshold: 100, cooldownMs: 60_000 }),
    retry: options.retry ?? RETRY,
    ...(sleeps === undefined
      ? {}
      : { retryHooks: { sleep: async (ms: number) => void sleeps.push(ms), random: () => 0.5 } }),
  });
}

describe('SearchService', () => {
  it('answers a repeated query from the cache and counts the saved API call', async () => {
    const service = await setup();

    const first = await service.webSearch(webSearchRequest(['Paris population']));
    const second = await service.webSearch(webSearchRequest(['  paris   POPULATION ']));

    expect(first.results[0]?.cached).toBe(false);
    expect(second.results[0]?.cached).toBe(true);
    expect(second.results[0]?.hits).toEqual(first.results[0]?.hits);
    expect(server.requests).toHaveLength(1);
    expect(await service.stats()).toMatchObject({
      cacheHits: 1,
      cacheMisses: 1,
      savedApiCalls: 1,
      apiCalls: 1,
      cacheEntries: 1,
    });
  });

  it('runs the queries of one call concurrently and keeps their order', async () => {
    const service = await setup();
    server.setLatency(100);

    const reply = await service.webSearch(webSearchRequest(['a', 'b', 'c'], { topK: 2 }));

    expect(reply.results.map((r) => r.query)).toEqual(['a', 'b', 'c']);
    expect(reply.results.every((r) => r.hits.length === 2)).toBe(true);
    expect(server.maxConcurrent).toBe(3);
  });

  it('shares one API call among identical queries in flight', async () => {
    const service = await setup();
    server.setLatency(50);

    const replies = await Promise.all(
      Array.from({ length: 20 }, () => service.webSearch(webSearchRequest(['same']))),
    );

    expect(server.requests).toHaveLength(1);
    expect(replies.every((r) => r.results[0]?.hits.length === 10)).toBe(true);
    expect((await service.stats()).savedApiCalls).toBe(19);
  });

  it('never caches an empty result list', async () => {
    const service = await setup();

    await service.webSearch(webSearchRequest([`${EMPTY_QUERY_MARKER} a`]));
    const again = await service.webSearch(webSearchRequest([`${EMPTY_QUERY_MARKER} a`]));

    expect(again.results[0]).toMatchObject({ hits: [], cached: false });
    expect(server.requests).toHaveLength(2);
    expect((await service.stats()).cacheEntries).toBe(0);
  });

  it('never caches a failed query', async () => {
    const service = await setup({ retry: { ...RETRY, maxAttempts: 1 } });
    server.failNext({ status: 500 });

    const failed = await service.webSearch(webSearchRequest(['flaky']));
    const retried = await service.webSearch(webSearchRequest(['flaky']));

    expect(failed.results[0]?.error?.code).toBe('SEARCH_RETRIES_EXHAUSTED');
    expect(retried.results[0]?.error).toBeUndefined();
    expect(retried.results[0]?.cached).toBe(false);
    expect(retried.results[0]?.hits).toHaveLength(10);
  });

  it('retries 500s and stops after the configured attempts with SEARCH_RETRIES_EXHAUSTED', async () => {
    const service = await setup({ retry: { ...RETRY, maxAttempts: 4 } });
    server.failNext({ status: 500 }, 10);

    const err = await service.search('down', { topK: 10 }).catch((e: unknown) => e);

    expect(isDrError(err, 'SEARCH_RETRIES_EXHAUSTED')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toEqual({
      attempts: 4,
      lastCode: 'SEARCH_UPSTREAM',
    });
    expect(server.requests).toHaveLength(4);
  });

  it('recovers when a retry succeeds, with exponentially growing jittered delays', async () => {
    const sleeps: number[] = [];
    const service = await setup({
      retry: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 10_000, maxRetryAfterMs: 60_000 },
      sleeps,
    });
    server.failNext({ status: 503 }, 3);

    const result = await service.search('eventually', { topK: 10 });

    expect(result.hits).toHaveLength(10);
    expect(sleeps).toEqual([50, 100, 200]);
  });

  it('waits at least the Retry-After of a 429', async () => {
    const sleeps: number[] = [];
    const service = await setup({ sleeps });
    server.failNext({ status: 429, headers: { 'retry-after': '7' } });

    await service.search('throttled', { topK: 10 });

    expect(sleeps).toEqual([7_000]);
  });

  it('does not retry a rejected API key', async () => {
    const service = await setup();
    server.failNext({ status: 401 });

    const err = await service.search('q', { topK: 10 }).catch((e: unknown) => e);

    expect(isDrError(err, 'SEARCH_AUTH')).toBe(true);
    expect(server.requests).toHaveLength(1);
  });

  it('opens the circuit after consecutive backend failures and fails fast', async () => {
    const service = await setup({
      retry: { ...RETRY, maxAttempts: 1 },
      breaker: { failureThreshold: 3, cooldownMs: 60_000 },
    });
    server.failNext({ status: 500 }, 3);
    for (const q of ['x1', 'x2', 'x3']) await service.search(q, { topK: 10 }).catch(() => undefined);

    const err = await service.search('x4', { topK: 10 }).catch((e: unknown) => e);

    expect(isDrError(err, 'SEARCH_CIRCUIT_OPEN')).toBe(true);
    expect(server.requests).toHaveLength(3);
  });

  it('holds the rate limit and the concurrency cap under a burst of 1,000 concurrent queries', async () => {
    const rate = { perSecond: 1_000, burst: 50, maxConcurrent: 8 };
    const service = await setup({ rate });
    server.setLatency(2);

    const replies = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => service.webSearch(webSearchRequest([`burst ${i}`]))),
    );

    expect(replies.every((r) => r.results[0]?.hits.length === 10)).toBe(true);
    expect(server.requests).toHaveLength(1_000);
    expect(server.maxConcurrent).toBeLessThanOrEqual(rate.maxConcurrent);
    // Token bucket: any window of w ms admits at most burst + rate * w requests. The times are taken where
    // the server sees each request, and loopback delivery on a loaded 2-core machine can bunch arrivals by a
    // few ms (a CI run saw 377 in a window allowing 376.5), so the window gets 10 ms of transport slack.
    const transportSlackMs = 10;
    const starts = server.requests.map((r) => r.startedAt).sort((a, b) => a - b);
    for (let i = 0; i < starts.length; i++) {
      for (let j = i + 1; j < starts.length; j += 25) {
        const windowMs = (starts[j] as number) - (starts[i] as number);
        const allowed = rate.burst + (rate.perSecond * (windowMs + transportSlackMs)) / 1000 + 1;
        expect(j - i + 1).toBeLessThanOrEqual(allowed);
      }
    }
    const spanMs = (starts.at(-1) as number) - (starts[0] as number);
    expect(spanMs).toBeGreaterThanOrEqual(((1_000 - rate.burst) / rate.perSecond) * 1000 - 20);
  });
});
