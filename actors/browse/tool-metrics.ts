/**
 * The BrowseActor's figure for the dashboard's Tools panel (browse p50/p90/p99) and /metrics, under the name
 * and labels cluster/monitor/README.md documents. It goes to this process's recorder, whose snapshot the
 * node ships to the head.
 */
import type { MetricsRecorder } from '../../cluster/monitor/metrics-recorder.ts';
import { nodeMetrics, SECONDS_BUCKETS } from '../../cluster/monitor/metrics-recorder.ts';

export interface BrowseMetrics {
  /** One URL of a call finished (read, failed or unsupported), `seconds` after it started. */
  pageBrowsed(seconds: number): void;
}

export function browseMetrics(actor: string, recorder: MetricsRecorder = nodeMetrics): BrowseMetrics {
  const latency = recorder.histogram(
    'dr_browse_latency_seconds',
    'Time to browse one page: fetch, extraction and reading.',
    SECONDS_BUCKETS,
  );
  return { pageBrowsed: (seconds) => latency.observe({ actor }, seconds) };
}
