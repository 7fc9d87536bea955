/**
 * Client-side routing of a web_search call: each query goes to the SearchActor owning its cache shard, the
 * per-shard replies are merged back into the request's order.
 */
import type { QueryOutcome, WebSearchReply, WebSearchRequest } from './protocol.ts';
import { SEARCH_PROTOCOL_VERSION } from './protocol.ts';
import { queryKey } from './search-key.ts';
import { shardFor } from './shard.ts';

export interface ShardPart {
  shard: number;
  request: WebSearchRequest;
  /** Positions of this part's queries in the original request. */
  positions: number[];
}

export function searchActorName(shard: number): string {
  return `search/${shard}`;
}

export function splitByShard(req: WebSearchRequest, nShards: number): ShardPart[] {
  const parts = new Map<number, ShardPart>();
  req.queries.forEach((query, position) => {
    const shard = shardFor(queryKey(query, req), nShards);
    let part = parts.get(shard);
    if (part === undefined) {
      part = { shard, request: { ...req, queries: [] }, positions: [] };
      parts.set(shard, part);
    }
    part.request.queries.push(query);
    part.positions.push(position);
  });
  return [...parts.values()];
}

export function mergeShardReplies(
  req: WebSearchRequest,
  parts: ShardPart[],
  replies: WebSearchReply[],
): WebSearchReply {
  const results = new Array<QueryOutcome>(req.queries.length);
  parts.forEach((part, i) => {
    const reply = replies[i];
    if (reply === undefined) throw new RangeError(`no reply for shard ${part.shard}`);
    part.positions.forEach((position, j) => {
      const query = part.request.queries[j] as string;
      // A shard that refused the whole request: the refusal applies to each of its queries.
      const outcome =
        reply.error !== undefined && reply.results.length === 0
          ? { query, hits: [], cached: false, error: reply.error }
          : reply.results[j];
      if (outcome === undefined)
        throw new RangeError(
          `shard ${part.shard} answered ${reply.results.length} of ${part.positions.length} queries`,
        );
      results[position] = outcome;
    });
  });
  return { v: SEARCH_PROTOCOL_VERSION, type: 'web_search.reply', results };
}

/** Sends a web_search call across the shards with the caller's `ask` (e.g. ActorContext.ask) and merges the
 * replies. A shard that fails fails the whole call with its error. */
export async function askWebSearch(
  ask: (actorName: string, msg: WebSearchRequest) => Promise<WebSearchReply>,
  req: WebSearchRequest,
  nShards: number,
): Promise<WebSearchReply> {
  const parts = splitByShard(req, nShards);
  const replies = await Promise.all(parts.map((part) => ask(searchActorName(part.shard), part.request)));
  return mergeShardReplies(req, parts, replies);
}
