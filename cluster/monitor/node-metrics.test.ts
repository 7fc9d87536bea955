import { describe, expect, it } from 'vitest';
import { MetricsRecorder } from './metrics-recorder.ts';
import { MetricsStore } from './metrics-store.ts';
import { startMetricsReporting } from './node-metrics.ts';
import type { MetricsBatch } from './protocol.ts';

describe('startMetricsReporting', () => {
  it("sends the process figures and the actors' own series to the head, and a last snapshot on stop", () => {
    const recorder = new MetricsRecorder();
    const sent: MetricsBatch[] = [];
    const head = new MetricsStore();
    const stop = startMetricsReporting({
      recorder,
      intervalMs: 60_000,
      send: (b) => (sent.push(b), head.ingest(3, b)),
    });
    expect(sent).toHaveLength(1);
    const rss = head.family('dr_process_resident_memory_bytes');
    expect([...(rss?.series.values() ?? [])][0]).toMatchObject({ labels: { rank: '3' } });
    expect([...(rss?.series.values() ?? [])][0]!.value).toBeGreaterThan(1024 * 1024);

    recorder.counter('dr_search_queries_total', 'q').inc({ actor: 'search/0' }, 2);
    stop();
    expect(sent).toHaveLength(2);
    expect(head.family('dr_search_queries_total')?.series.size).toBe(1);
    expect(head.family('dr_process_cpu_seconds_total')?.kind).toBe('counter');
  });
});
