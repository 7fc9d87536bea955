import { describe, expect, it } from 'vitest';
import { ActorTools } from './actor-tools.ts';
import type { ActorContext } from '../../runtime/actor.ts';
import type { WebSearchReply, WebSearchRequest } from '../search/protocol.ts';

/** Records the asks ActorTools sends and answers web_search asks with one hit per query. */
function recordingContext(): {
  asks: Array<{ target: string; msg: WebSearchRequest }>;
  ask: ActorContext['ask'];
} {
  const asks: Array<{ target: string; msg: WebSearchRequest }> = [];
  const ask = (target: string, msg: WebSearchRequest): Promise<WebSearchReply> => {
    asks.push({ target, msg });
    return Promise.resolve({
      v: 1,
      type: 'web_search.reply',
      results: msg.queries.map((query) => ({
        query,
        cached: false,
        hits: [{ title: query, url: `http://web.test/${encodeURIComponent(query)}`, snippet: 'x' }],
      })),
    });
  };
  // ActorContext.ask is generic in its reply type; this one only ever answers web_search.
  return { asks, ask: ask as unknown as ActorContext['ask'] };
}

describe('ActorTools', () => {
  it('asks the search shard for the rollout top-k, and leaves it to the backend when unset', async () => {
    const ctx = recordingContext();
    const tools = new ActorTools(
      { ask: ctx.ask, tell: () => undefined },
      {
        searchShards: 1,
        browseShards: 1,
        timeoutMs: 1_000,
      },
    );

    await tools.webSearch(['alpha'], { trajectoryId: 't#0', question: 'q', searchTopK: 5 });
    await tools.webSearch(['beta'], { trajectoryId: 't#0', question: 'q' });

    expect(ctx.asks.map((a) => [a.msg.queries, a.msg.topK])).toEqual([
      [['alpha'], 5],
      [['beta'], undefined],
    ]);
  });
});
