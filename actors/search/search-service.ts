/**
 * What a SearchActor does with a web_search call: per query, a cache lookup, else one backend call through
 * the circuit breaker, the per-key rate limiter and the retry policy; identical queries in flight share one
 * call. Queries of a call run concurrently and fail independently.
 */
import type { Logger } from '../../config/log.ts';
import { silentLogger } from '../../config/log.ts';
import { DrError, isDrError } from '../../config/errors.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import type { QueryOutcome, SearchHit, SearchStats, WebSearchReply, WebSearchRequest } from './protocol.ts';
import { DEFAULT_TOP_K, SEARCH_PROTOCOL_VERSION } from './protocol.ts';
import type { RateLimiter } from './rate-limiter.ts';
import type { RetryHooks, RetryPolicy } from './retry.ts';
import { withRetry } from './retry.ts';
import type { SearchBackend } from './search-backends.ts';
import { RETRYABLE_CODES } from './search-backends.ts';
import type { SearchCacheStore } from './search-cache.ts';
import type { QueryParams } from './search-key.ts';
import { cacheKey } from './search-key.ts';
import type { SearchMetrics } from './tool-metrics.ts';

export interface SearchServiceOptions {
  backend: SearchBackend;
  cache: SearchCacheStore;
  limiter: RateLimiter;
  breaker: CircuitBreaker;
  retry: RetryPolicy;
  retryHooks?: RetryHooks;
  log?: Logger;
  /** Where the dashboard's figures go (tool-metrics.ts); without it only `stats()` counts. */
  metrics?: SearchMetrics;
}

export interface QueryResult {
  hits: SearchHit[];
  cached: boolean;
}

const isRetryable = (err: unknown): boolean => isDrError(err) && RETRYABLE_CODES.has(err.code);
// Rate limiting and bad keys say nothing about the backend's health; only these open the circuit.
const isBackendFailure = (err: unknown): boolean =>
  isDrError(err) &&
  (err.code === 'SEARCH_UPSTREAM' || err.code === 'SEARCH_TIMEOUT' || err.code === 'SEARCH_NETWORK');

export class SearchService {
  private readonly inFlight = new Map<string, Promise<SearchHit[]>>();
  private readonly counters = { cacheHits: 0, cacheMisses: 0, savedApiCalls: 0, apiCalls: 0, apiFailures: 0 };
  private readonly log: Logger;

  constructor(private readonly options: SearchServiceOptions) {
    this.log = options.log ?? silentLogger;
  }

  async webSearch(req: WebSearchRequest): Promise<WebSearchReply> {
    const params: QueryParams = {
      topK: req.topK ?? DEFAULT_TOP_K,
      ...(req.region === undefined ? {} : { region: req.region }),
      ...(req.language === undefined ? {} : { language: req.language }),
    };
    const results = await Promise.all(req.queries.map((query) => this.outcome(query, params)));
    return { v: SEARCH_PROTOCOL_VERSION, type: 'web_search.reply', results };
  }

  /** One query; throws a DrError when it cannot be answered. */
  async search(query: string, params: QueryParams): Promise<QueryResult> {
    const key = cacheKey(this.options.backend.kind, query, params);
    const cached = await this.options.cache.get(key);
    if (cached !== undefined) {
      this.counters.cacheHits += 1;
      this.counters.savedApiCalls += 1;
      this.options.metrics?.cacheHit();
      return { hits: cached, cached: true };
    }
    this.counters.cacheMisses += 1;
    this.options.metrics?.cacheMiss();
    const pending = this.inFlight.get(key);
    if (pending !== undefined) {
      this.counters.savedApiCalls += 1;
      return { hits: await pending, cached: false };
    }
    const call = this.callBackend(query, params).then(async (hits) => {
      await this.options.cache.put(key, hits);
      return hits;
    });
    this.inFlight.set(key, call);
    try {
      return { hits: await call, cached: false };
    } finally {
      this.inFlight.delete(key);
    }
  }

  async stats(): Promise<SearchStats> {
    return { ...this.counters, cacheEntries: await this.options.cache.size() };
  }

  private async outcome(query: string, params: QueryParams): Promise<QueryOutcome> {
    try {
      const { hits, cached } = await this.search(query, params);
      return { query, hits, cached };
    } catch (err) {
      const drErr = isDrError(err) ? err : new DrError('SEARCH_UNKNOWN', String(err), { cause: err });
      this.log.warn({ query, code: drErr.code, err: drErr.message }, 'search query failed');
      return { query, hits: [], cached: false, error: { code: drErr.code, message: drErr.message } };
    }
  }

  private callBackend(query: string, params: QueryParams): Promise<SearchHit[]> {
    const { backend, breaker, limiter, retry, retryHooks, metrics } = this.options;
    const attempt = () =>
      breaker.run(async () => {
        const release = await limiter.acquire();
        this.counters.apiCalls += 1;
        metrics?.apiCall();
        try {
          return await backend.search(query, params);
        } catch (err) {
          this.counters.apiFailures += 1;
          metrics?.apiError(isDrError(err) ? err.code : 'SEARCH_UNKNOWN');
          throw err;
        } finally {
          release();
        }
      }, isBackendFailure);
    return withRetry(attempt, isRetryable, retry, {
      ...retryHooks,
      onRetry: (n, delayMs, err) => {
        this.log.debug({ query, attempt: n, delayMs, code: err.code }, 'retrying search');
        retryHooks?.onRetry?.(n, delayMs, err);
      },
    });
  }
}
