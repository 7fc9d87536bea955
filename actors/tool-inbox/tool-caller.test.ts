import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import { browseActor } from '../browse/browse-actor.ts';
import { ARTICLE_FACT, startTestSite, type TestSite } from '../browse/browse-test-site.ts';
import { browseRequest, type BrowseReply } from '../browse/protocol.ts';
import { webSearchRequest, type WebSearchReply } from '../search/protocol.ts';
import { startSearchApiTestServer, type SearchApiTestServer } from '../search/search-api-test-server.ts';
import { searchActor } from '../search/search-actor.ts';
import { ToolCaller, toolInboxActor } from './tool-caller.ts';

const KEY_ENV = 'DR_TEST_TOOL_CALLER_KEY';
let server: SearchApiTestServer;
let dir: string;
let system: ActorSystem;

beforeEach(async () => {
  process.env[KEY_ENV] = 'k';
  server = await startSearchApiTestServer('serper', 'k');
  dir = mkdtempSync(join(tmpdir(), 'tool-caller-'));
  system = createActorSystem({
    kinds: new Map([
      ['search', searchActor as never],
      ['browse', browseActor as never],
      ['tool-inbox', toolInboxActor as never],
    ]),
  });
  await system.spawn({
    kind: 'search',
    name: 'search/0',
    args: { shard: 0, backend: { kind: 'serper', baseUrl: server.url, apiKeyEnv: KEY_ENV }, cacheDir: dir },
  });
});

afterEach(async () => {
  await system.stop();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  delete process.env[KEY_ENV];
});

describe('ToolCaller (deferred tool replies)', () => {
  it('lets one SearchActor work on many calls at once, where plain asks are served one at a time', async () => {
    server.setLatency(100);
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        system.ask<WebSearchReply>('search/0', webSearchRequest([`plain ${i}`])),
      ),
    );
    const plainConcurrency = server.maxConcurrent;

    const caller = await ToolCaller.create(system, 'test');
    const replies = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        caller.call<WebSearchReply>('search/0', webSearchRequest([`deferred ${i}`]), 5_000),
      ),
    );

    expect(plainConcurrency).toBe(1);
    expect(server.maxConcurrent).toBe(6);
    expect(replies.map((r) => r.results[0]?.query)).toEqual(
      Array.from({ length: 6 }, (_, i) => `deferred ${i}`),
    );
    expect(replies.every((r) => r.results[0]?.hits.length === 10)).toBe(true);
  });

  it('resolves with the direct reply when the actor refuses the call outright', async () => {
    const caller = await ToolCaller.create(system, 'test');

    const reply = await caller.call<WebSearchReply>(
      'search/0',
      { v: 1, type: 'web_search', queries: [] },
      5_000,
    );

    expect(reply.error?.code).toBe('SEARCH_BAD_REQUEST');
  });

  it('fails with TOOL_CALL_TIMEOUT when the reply does not come in time', async () => {
    server.setLatency(1_000);
    const caller = await ToolCaller.create(system, 'test');

    await expect(caller.call('search/0', webSearchRequest(['slow']), 200)).rejects.toMatchObject({
      code: 'TOOL_CALL_TIMEOUT',
    });
  });

  it('keeps browse memory per trajectory across deferred calls', async () => {
    const site: TestSite = await startTestSite();
    try {
      await system.spawn({ kind: 'browse', name: 'browse/0', args: { allowCidrs: ['127.0.0.1/32'] } });
      const caller = await ToolCaller.create(system, 'test');
      const req = browseRequest([`${site.url}/article`], 'How long is the Zorblat Bridge?', 'traj');

      const first = await caller.call<BrowseReply>('browse/0', req, 5_000);
      const second = await caller.call<BrowseReply>('browse/0', req, 5_000);

      expect(first.results[0]?.information).toContain(ARTICLE_FACT);
      expect(second.results[0]?.information).not.toContain(ARTICLE_FACT);
    } finally {
      await site.close();
    }
  });
});
