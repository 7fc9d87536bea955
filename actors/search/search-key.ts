/**
 * Cache keys for search results. Queries that differ only in case, Unicode form or spacing hit the same
 * entry; the backend and every parameter that changes the result list are part of the key.
 */
import { DEFAULT_TOP_K } from './protocol.ts';

export interface QueryParams {
  topK: number;
  region?: string;
  language?: string;
}

export function normalizeQuery(query: string): string {
  return query.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}

/** Everything that identifies a result list except the backend; what callers route on (the backend is the
 * same on every shard, so leaving it out does not change placement). */
export function queryKey(query: string, params: Partial<QueryParams> = {}): string {
  return JSON.stringify([
    normalizeQuery(query),
    params.topK ?? DEFAULT_TOP_K,
    params.region?.toLowerCase() ?? '',
    params.language?.toLowerCase() ?? '',
  ]);
}

export function cacheKey(backend: string, query: string, params: Partial<QueryParams> = {}): string {
  return `${backend}\u0000${queryKey(query, params)}`;
}
