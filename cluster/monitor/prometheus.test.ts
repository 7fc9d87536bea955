import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { MetricsRecorder } from './metrics-recorder.ts';
import { MetricsStore } from './metrics-store.ts';
import { MonitorTables } from './monitor-tables.ts';
import { renderPrometheus } from './prometheus.ts';

const resources = { cpus: 2, memoryBytes: 8 * 2 ** 30, gpus: [{ id: 'GPU-0' }], labels: {} };

function populated() {
  const tables = new MonitorTables();
  tables.nodeJoined(0, { resources }, 1_000);
  tables.nodeJoined(1, { resources }, 1_000);
  tables.nodeState(1, 'down', 5_000);
  tables.upsertActor({
    path: 'search/0',
    kind: 'search',
    node: 0,
    state: 'running',
    restarts: 2,
    mailboxDepth: 7,
  });
  tables.upsertJob({
    id: 'job-1',
    kind: 'evaluate',
    state: 'running',
    progress: { done: 5, total: 20 },
    submittedAt: 0,
    startedAt: 0,
    results: [],
  });
  const store = new MetricsStore();
  const node = new MetricsRecorder();
  node
    .counter('dr_search_queries_total', 'Search queries sent to a backend.')
    .inc({ actor: 'search/0', backend: 'serper' }, 12);
  node.gauge('dr_train_kl', 'KL to the reference policy.').set({ job: 'job-1' }, 0.015);
  // Label values with quotes, backslashes and newlines must be escaped in the exposition.
  node
    .counter('dr_search_api_errors_total', 'Backend errors by HTTP status.')
    .inc({ code: '429', message: 'say "slow down"\\\nnow' });
  const latency = node.histogram('dr_browse_latency_seconds', 'Time to browse one page.', [0.5, 1]);
  latency.observe({ actor: 'browse/0' }, 0.2);
  latency.observe({ actor: 'browse/0' }, 3);
  store.ingest(2, node.snapshot());
  return { tables, store };
}

describe('renderPrometheus', () => {
  it('produces text that a Prometheus text-format parser reads back, values and labels intact', async () => {
    const { tables, store } = populated();
    const text = await renderPrometheus(tables, store, 10_000);
    const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));

    expect(families.get('dr_node_up')?.metrics).toEqual([
      { labels: { rank: '0' }, value: '1' },
      { labels: { rank: '1' }, value: '0' },
    ]);
    expect(families.get('dr_node_heartbeat_age_seconds')?.metrics[0]).toEqual({
      labels: { rank: '0' },
      value: '9',
    });
    expect(families.get('dr_actor_restarts_total')).toMatchObject({
      type: 'COUNTER',
      metrics: [{ labels: { rank: '0', actor: 'search/0', kind: 'search' }, value: '2' }],
    });
    expect(families.get('dr_job_progress_ratio')?.metrics).toEqual([
      { labels: { job: 'job-1', kind: 'evaluate', state: 'running' }, value: '0.25' },
    ]);
    expect(families.get('dr_job_eta_seconds')?.metrics).toEqual([
      { labels: { job: 'job-1', kind: 'evaluate' }, value: '30' },
    ]);
    expect(families.get('dr_search_queries_total')).toMatchObject({
      type: 'COUNTER',
      help: 'Search queries sent to a backend.',
      metrics: [{ labels: { actor: 'search/0', backend: 'serper', rank: '2' }, value: '12' }],
    });
    expect(families.get('dr_search_api_errors_total')?.metrics[0]?.labels?.message).toBe(
      'say "slow down"\\\nnow',
    );
    // The parser flattens a histogram's series into one bucket map and drops their labels, sum and count,
    // so it vouches for the syntax and type here and the series are read from the lines themselves.
    expect(families.get('dr_browse_latency_seconds')?.type).toBe('HISTOGRAM');
    const series = '{actor="browse/0",rank="2"';
    expect(text).toContain(`dr_browse_latency_seconds_bucket${series},le="0.5"} 1\n`);
    expect(text).toContain(`dr_browse_latency_seconds_bucket${series},le="1"} 1\n`);
    expect(text).toContain(`dr_browse_latency_seconds_bucket${series},le="+Inf"} 2\n`);
    expect(text).toContain(`dr_browse_latency_seconds_sum${series}} 3.2\n`);
    expect(text).toContain(`dr_browse_latency_seconds_count${series}} 2\n`);
  });

  it('names every family by the conventions documented in the README', async () => {
    const { tables, store } = populated();
    const families = parsePrometheusTextFormat(await renderPrometheus(tables, store));
    expect(families.length).toBeGreaterThan(10);
    for (const family of families) {
      expect(family.name).toMatch(/^dr_[a-z0-9_]+$/);
      expect(family.help.length).toBeGreaterThan(0);
      if (family.type === 'COUNTER') expect(family.name).toMatch(/_total$/);
      for (const sample of family.metrics) {
        for (const value of [
          sample.value,
          sample.count,
          sample.sum,
          ...Object.values(sample.buckets ?? {}),
        ]) {
          if (value !== undefined) expect(Number.isFinite(Number(value))).toBe(true);
        }
      }
    }
  });

  it('keeps the built-in figures when a node reports a metric under a built-in name', async () => {
    const { tables, store } = populated();
    store.ingest(3, {
      v: 1,
      samples: [{ kind: 'gauge', name: 'dr_node_up', help: 'spoof', labels: {}, value: 1 }],
    });
    const up = parsePrometheusTextFormat(await renderPrometheus(tables, store)).find(
      (f) => f.name === 'dr_node_up',
    );
    expect(up?.metrics.map((m) => m.labels?.rank)).toEqual(['0', '1']);
  });
});
