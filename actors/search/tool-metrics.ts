/**
 * The SearchActor's figures for the dashboard's Tools panels and /metrics, under the names and labels
 * cluster/monitor/README.md documents. They go to this process's recorder, whose snapshot the node ships
 * to the head; the SearchService calls these where it updates its own counters.
 */
import type { MetricsRecorder } from '../../cluster/monitor/metrics-recorder.ts';
import { nodeMetrics } from '../../cluster/monitor/metrics-recorder.ts';

export interface SearchMetrics {
  cacheHit(): void;
  cacheMiss(): void;
  /** One request sent to the search API (a retry is another request). */
  apiCall(): void;
  apiError(code: string): void;
}

export function searchMetrics(
  actor: string,
  backend: string,
  recorder: MetricsRecorder = nodeMetrics,
): SearchMetrics {
  const queries = recorder.counter('dr_search_queries_total', 'Search requests sent to a backend.');
  const hits = recorder.counter('dr_search_cache_hits_total', 'Search queries answered from the cache.');
  const misses = recorder.counter('dr_search_cache_misses_total', 'Search queries not in the cache.');
  const errors = recorder.counter('dr_search_api_errors_total', 'Failed search API requests, by code.');
  return {
    cacheHit: () => hits.inc({ actor }),
    cacheMiss: () => misses.inc({ actor }),
    apiCall: () => queries.inc({ actor, backend }),
    apiError: (code) => errors.inc({ actor, backend, code }),
  };
}
