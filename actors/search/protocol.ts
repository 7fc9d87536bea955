/**
 * Messages a SearchActor accepts and the replies it sends (protocol version 1). Everything here is plain,
 * msgpack-encodable data. Callers validate nothing themselves: the actor validates every message with the
 * schemas below and answers a bad one with a reply whose `error.code` is `SEARCH_BAD_REQUEST` (a reply, not
 * a thrown error, so a bad tool call never restarts the actor).
 *
 * Routing: the cache is sharded by key across SearchActors named `search/<shard>`. A caller splits a tool
 * call by shard with `splitByShard` (search-routing.ts) so each query goes to the actor that owns its cache
 * entry, or sends the whole call to any one actor (correct, but that actor's shard then caches foreign keys).
 */
import { z } from 'zod';

export const SEARCH_PROTOCOL_VERSION = 1;
/** DeepResearcher lets one web_search call carry at most this many queries. */
export const MAX_QUERIES_PER_CALL = 3;
export const DEFAULT_TOP_K = 10;
export const MAX_TOP_K = 50;
export const MAX_QUERY_CHARS = 1_000;

/** One normalized search result, whatever the backend. */
export interface SearchHit {
  title: string;
  url: string;
  snippet: string;
}

export interface SearchError {
  /** A DrError code, e.g. SEARCH_RETRIES_EXHAUSTED, SEARCH_CIRCUIT_OPEN, SEARCH_AUTH, SEARCH_BAD_RESPONSE. */
  code: string;
  message: string;
}

/** The `web_search` tool call: up to 3 queries, run concurrently (and concurrently with other calls: the
 * actor takes up to `maxConcurrency` asks at once). */
export interface WebSearchRequest {
  v: 1;
  type: 'web_search';
  queries: string[];
  /** Results per query; default 10. */
  topK?: number;
  /** Country/market code, e.g. 'us' (Serper `gl`, Bing `mkt` country part). */
  region?: string;
  /** Language code, e.g. 'en' (Serper `hl`, Bing `setLang`, SearXNG `language`). */
  language?: string;
}

/** The outcome of one query of a call: hits, or an error that applies to that query only. */
export interface QueryOutcome {
  query: string;
  hits: SearchHit[];
  /** True when the hits came from the cache (no API call). */
  cached: boolean;
  error?: SearchError;
}

export interface WebSearchReply {
  v: 1;
  type: 'web_search.reply';
  /** Same order and length as the request's `queries`; empty when the whole request was refused. */
  results: QueryOutcome[];
  /** Set when the whole request was refused (SEARCH_BAD_REQUEST); per-query failures are in `results`. */
  error?: SearchError;
}

/** Counters of one SearchActor (its cache shard and its API calls). */
export interface SearchStatsRequest {
  v: 1;
  type: 'search.stats';
}

export interface SearchStats {
  cacheHits: number;
  cacheMisses: number;
  /** API calls the cache saved: hits plus queries that joined an identical in-flight call. */
  savedApiCalls: number;
  apiCalls: number;
  apiFailures: number;
  cacheEntries: number;
}

export interface SearchStatsReply extends SearchStats {
  v: 1;
  type: 'search.stats.reply';
}

export type SearchMessage = WebSearchRequest | SearchStatsRequest;
export type SearchReply = WebSearchReply | SearchStatsReply;

const queryText = z
  .string()
  .trim()
  .min(1, 'a query must not be empty')
  .max(MAX_QUERY_CHARS, `a query must be at most ${MAX_QUERY_CHARS} characters`);

export const webSearchRequestSchema = z.object({
  v: z.literal(SEARCH_PROTOCOL_VERSION),
  type: z.literal('web_search'),
  queries: z
    .array(queryText)
    .min(1, 'web_search needs at least one query')
    .max(MAX_QUERIES_PER_CALL, `web_search takes at most ${MAX_QUERIES_PER_CALL} queries per call`),
  topK: z.number().int().min(1).max(MAX_TOP_K).optional(),
  region: z.string().min(1).max(16).optional(),
  language: z.string().min(1).max(16).optional(),
});

export const searchStatsRequestSchema = z.object({
  v: z.literal(SEARCH_PROTOCOL_VERSION),
  type: z.literal('search.stats'),
});

export const searchMessageSchema = z.discriminatedUnion('type', [
  webSearchRequestSchema,
  searchStatsRequestSchema,
]);

/** Builds a request from a model's tool-call arguments; validation happens in the actor. */
export function webSearchRequest(
  queries: string[],
  options: { topK?: number; region?: string; language?: string } = {},
): WebSearchRequest {
  return { v: SEARCH_PROTOCOL_VERSION, type: 'web_search', queries, ...options };
}

/**
 * The cluster's search cache on the head (kind `search-cache`, name SEARCH_CACHE_ACTOR), which search shards
 * ask instead of keeping a file of their own when the cluster file says `cacheOwner: head`: a shard
 * re-spawned on another node, or after its node was lost, finds every entry still there.
 */
export const SEARCH_CACHE_ACTOR = 'search-cache';

export const searchCacheMessageSchema = z.discriminatedUnion('type', [
  z.object({ v: z.literal(1), type: z.literal('search-cache.get'), key: z.string().min(1) }),
  z.object({
    v: z.literal(1),
    type: z.literal('search-cache.put'),
    key: z.string().min(1),
    hits: z.array(z.object({ title: z.string(), url: z.string(), snippet: z.string() })),
  }),
  z.object({ v: z.literal(1), type: z.literal('search-cache.size') }),
]);
export type SearchCacheMessage = z.infer<typeof searchCacheMessageSchema>;

export type SearchCacheReply =
  { hits: SearchHit[] | null } | { stored: boolean } | { entries: number } | { error: SearchError };
