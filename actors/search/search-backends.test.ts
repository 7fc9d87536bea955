import { afterEach, describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { createSearchBackend, parseRetryAfter } from './search-backends.ts';
import { startSearchApiTestServer, type SearchApiTestServer } from './search-api-test-server.ts';

const KEY = 'test-key-123';
let server: SearchApiTestServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('Serper backend', () => {
  it('sends q, num, gl and hl with the API key and normalizes organic results', async () => {
    server = await startSearchApiTestServer('serper', KEY);
    const backend = createSearchBackend({ kind: 'serper', baseUrl: server.url, apiKey: KEY });

    const hits = await backend.search('Eiffel tower height', { topK: 3, region: 'US', language: 'en' });

    expect(server.requests).toEqual([
      expect.objectContaining({
        query: 'Eiffel tower height',
        num: 3,
        region: 'us',
        language: 'en',
        status: 200,
      }),
    ]);
    expect(hits).toEqual([
      {
        title: 'Eiffel tower height - result 1',
        url: 'https://example.org/eiffel-tower-height/1',
        snippet: 'Snippet 1 about Eiffel tower height.',
      },
      {
        title: 'Eiffel tower height - result 2',
        url: 'https://example.org/eiffel-tower-height/2',
        snippet: 'Snippet 2 about Eiffel tower height.',
      },
      {
        title: 'Eiffel tower height - result 3',
        url: 'https://example.org/eiffel-tower-height/3',
        snippet: 'Snippet 3 about Eiffel tower height.',
      },
    ]);
  });

  it('turns a rejected key into SEARCH_AUTH', async () => {
    server = await startSearchApiTestServer('serper', KEY);
    const backend = createSearchBackend({ kind: 'serper', baseUrl: server.url, apiKey: 'wrong' });

    const err = await rejection(backend.search('q', { topK: 10 }));

    expect(isDrError(err, 'SEARCH_AUTH')).toBe(true);
    expect(server.requests[0]?.status).toBe(401);
  });

  it('turns 429 into SEARCH_RATE_LIMITED carrying Retry-After', async () => {
    server = await startSearchApiTestServer('serper', KEY);
    server.failNext({ status: 429, headers: { 'retry-after': '2' } });
    const backend = createSearchBackend({ kind: 'serper', baseUrl: server.url, apiKey: KEY });

    const err = await rejection(backend.search('q', { topK: 10 }));

    expect(isDrError(err, 'SEARCH_RATE_LIMITED')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details.retryAfterMs).toBe(2000);
  });

  it('turns 500 into SEARCH_UPSTREAM', async () => {
    server = await startSearchApiTestServer('serper', KEY);
    server.failNext({ status: 500 });
    const backend = createSearchBackend({ kind: 'serper', baseUrl: server.url, apiKey: KEY });

    expect(isDrError(await rejection(backend.search('q', { topK: 10 })), 'SEARCH_UPSTREAM')).toBe(true);
  });

  it('turns a malformed body into SEARCH_BAD_RESPONSE', async () => {
    server = await startSearchApiTestServer('serper', KEY);
    server.failNext({ status: 200, body: { organic: [{ title: 42 }] } });
    const backend = createSearchBackend({ kind: 'serper', baseUrl: server.url, apiKey: KEY });

    const err = await rejection(backend.search('q', { topK: 10 }));

    expect(isDrError(err, 'SEARCH_BAD_RESPONSE')).toBe(true);
    expect((err as Error).message).toContain('serper');
  });

  it('turns a slow answer into SEARCH_TIMEOUT', async () => {
    server = await startSearchApiTestServer('serper', KEY);
    server.setLatency(500);
    const backend = createSearchBackend({ kind: 'serper', baseUrl: server.url, apiKey: KEY, timeoutMs: 50 });

    expect(isDrError(await rejection(backend.search('q', { topK: 10 })), 'SEARCH_TIMEOUT')).toBe(true);
  });

  it('refuses to start without an API key', () => {
    expect(() => createSearchBackend({ kind: 'serper', baseUrl: 'http://127.0.0.1:1' })).toThrow(/API key/);
  });
});

describe('Bing backend', () => {
  it('sends q, count, mkt and setLang with the subscription key and normalizes webPages', async () => {
    server = await startSearchApiTestServer('bing', KEY);
    const backend = createSearchBackend({ kind: 'bing', baseUrl: server.url, apiKey: KEY });

    const hits = await backend.search('mount everest', { topK: 2, region: 'gb', language: 'en' });

    expect(server.requests).toEqual([
      expect.objectContaining({ query: 'mount everest', num: 2, region: 'GB', language: 'en', status: 200 }),
    ]);
    expect(hits.map((h) => h.url)).toEqual([
      'https://example.org/mount-everest/1',
      'https://example.org/mount-everest/2',
    ]);
  });

  it('reads a response without webPages as no results', async () => {
    server = await startSearchApiTestServer('bing', KEY);
    const backend = createSearchBackend({ kind: 'bing', baseUrl: server.url, apiKey: KEY });

    expect(await backend.search('zzznothing here', { topK: 10 })).toEqual([]);
  });

  it('turns a rejected key into SEARCH_AUTH', async () => {
    server = await startSearchApiTestServer('bing', KEY);
    const backend = createSearchBackend({ kind: 'bing', baseUrl: server.url, apiKey: 'nope' });

    expect(isDrError(await rejection(backend.search('q', { topK: 10 })), 'SEARCH_AUTH')).toBe(true);
  });
});

describe('SearXNG backend', () => {
  it('asks for JSON with a language-region code and keeps the top k', async () => {
    server = await startSearchApiTestServer('searxng');
    const backend = createSearchBackend({ kind: 'searxng', baseUrl: server.url });

    const hits = await backend.search('rust borrow checker', { topK: 4, region: 'us', language: 'en' });

    expect(server.requests).toEqual([
      expect.objectContaining({ query: 'rust borrow checker', language: 'en-US', status: 200 }),
    ]);
    expect(hits).toHaveLength(4);
    expect(hits[0]?.snippet).toBe('Snippet 1 about rust borrow checker.');
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
