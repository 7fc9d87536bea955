import { describe, expect, it } from 'vitest';
import { bucketQuantile, ChartSampler } from './chart-sampler.ts';
import { MetricsRecorder } from './metrics-recorder.ts';
import { MetricsStore } from './metrics-store.ts';
import type { Panels } from './panels.ts';

const panels: Panels = {
  charts: [
    {
      id: 'qps',
      section: 'Tools',
      title: 'QPS',
      unit: '1/s',
      series: [{ label: 'queries', query: { op: 'rate', metric: 'dr_search_queries_total' } }],
    },
    {
      id: 'errors',
      section: 'Tools',
      title: 'Errors',
      unit: '1/s',
      series: [{ label: 'code', query: { op: 'rate', metric: 'dr_search_api_errors_total', by: 'code' } }],
    },
    {
      id: 'hits',
      section: 'Tools',
      title: 'Hit rate',
      unit: 'ratio',
      series: [
        {
          label: 'hit rate',
          query: {
            op: 'ratio',
            num: 'dr_search_cache_hits_total',
            den: ['dr_search_cache_hits_total', 'dr_search_cache_misses_total'],
          },
        },
      ],
    },
    {
      id: 'p50',
      section: 'Tools',
      title: 'Latency',
      unit: 's',
      series: [{ label: 'p50', query: { op: 'quantile', metric: 'dr_browse_latency_seconds', q: 0.5 } }],
    },
    {
      id: 'reward',
      section: 'Training',
      title: 'Reward',
      unit: '',
      series: [{ label: 'job', query: { op: 'gauge', metric: 'dr_train_reward_mean', by: 'job' } }],
    },
  ],
  tables: [
    {
      id: 'weights',
      section: 'Weights',
      title: 'Weights',
      key: ['rank', 'job', 'actor'],
      columns: [{ label: 'version', metric: 'dr_weights_version' }],
    },
  ],
};

/** Two nodes, each with its own recorder, sending snapshots to one store: the shape of the real cluster. */
function cluster() {
  const store = new MetricsStore();
  const nodes = [new MetricsRecorder(), new MetricsRecorder()];
  const flush = () => nodes.forEach((n, i) => store.ingest(i + 1, n.snapshot()));
  return { store, nodes, flush, sampler: new ChartSampler(store, panels, 4) };
}

describe('ChartSampler', () => {
  it('charts counters as per-second rates summed over ranks, with no rate for a first sighting', () => {
    const { nodes, flush, sampler } = cluster();
    const queries = nodes.map((n) => n.counter('dr_search_queries_total', 'q'));
    queries[0]!.inc({}, 100);
    flush();
    expect(sampler.sample(0).qps?.values).toEqual({ queries: null });
    queries[0]!.inc({}, 20);
    queries[1]!.inc({}, 40);
    flush();
    expect(sampler.sample(2000).qps?.values).toEqual({ queries: 10 });
    queries[0]!.inc({}, 10);
    queries[1]!.inc({}, 10);
    flush();
    expect(sampler.sample(4000).qps?.values).toEqual({ queries: 10 });
  });

  it('treats a counter that went down as a restarted reporter, not a negative rate', () => {
    const { store, sampler } = cluster();
    const send = (value: number) =>
      store.ingest(1, {
        v: 1,
        samples: [{ kind: 'counter', name: 'dr_search_queries_total', help: '', labels: {}, value }],
      });
    send(500);
    sampler.sample(0);
    send(6);
    expect(sampler.sample(1000).qps?.values).toEqual({ queries: 6 });
  });

  it('splits a rate by a label and computes ratios of rates', () => {
    const { nodes, flush, sampler } = cluster();
    const errors = nodes[0]!.counter('dr_search_api_errors_total', 'e');
    const hits = nodes[0]!.counter('dr_search_cache_hits_total', 'h');
    const misses = nodes[1]!.counter('dr_search_cache_misses_total', 'm');
    errors.inc({ code: '429' }, 0);
    errors.inc({ code: '500' }, 0);
    hits.inc({}, 0);
    misses.inc({}, 0);
    flush();
    sampler.sample(0);
    errors.inc({ code: '429' }, 6);
    errors.inc({ code: '500' }, 2);
    hits.inc({}, 30);
    misses.inc({}, 10);
    flush();
    const point = sampler.sample(2000);
    expect(point.errors?.values).toEqual({ 'code=429': 3, 'code=500': 1 });
    expect(point.hits?.values).toEqual({ 'hit rate': 0.75 });
  });

  it('computes histogram quantiles over the observations since the previous tick', () => {
    const { nodes, flush, sampler } = cluster();
    const latency = nodes.map((n) => n.histogram('dr_browse_latency_seconds', 'l', [1, 2, 4]));
    for (let i = 0; i < 50; i++) latency.forEach((l) => l.observe({}, 3.5)); // old, slow traffic: must not count
    flush();
    sampler.sample(0);
    for (let i = 0; i < 10; i++) latency[0]!.observe({}, 0.5);
    for (let i = 0; i < 10; i++) latency[1]!.observe({}, 1.5);
    flush();
    // 20 new observations, the 10th falls at the top of the [0, 1] bucket.
    expect(sampler.sample(1000).p50?.values.p50).toBeCloseTo(1);
  });

  it('follows gauges per job, pads late lines with nulls and keeps a bounded history', () => {
    const { nodes, flush, sampler } = cluster();
    const reward = nodes[0]!.gauge('dr_train_reward_mean', 'r');
    reward.set({ job: 'a' }, 0.1);
    flush();
    sampler.sample(1000);
    reward.set({ job: 'b' }, 0.5);
    flush();
    for (let t = 2; t <= 6; t++) sampler.sample(t * 1000);
    const history = sampler.histories().find((h) => h.id === 'reward');
    expect(history?.x).toEqual([3, 4, 5, 6]);
    expect(history?.series).toEqual([
      { label: 'job=a', values: [0.1, 0.1, 0.1, 0.1] },
      { label: 'job=b', values: [0.5, 0.5, 0.5, 0.5] },
    ]);
  });

  it('drops a gauge from the chart once its reporter has been silent past the stale limit', () => {
    const { store, sampler } = cluster();
    const report = (rank: number, at: number) =>
      store.ingest(
        rank,
        {
          v: 1,
          samples: [
            {
              kind: 'gauge',
              name: 'dr_train_reward_mean',
              help: '',
              labels: { job: `j${rank}` },
              value: rank,
            },
          ],
        },
        at,
      );
    report(1, 0);
    report(2, 0);
    expect(sampler.sample(10_000).reward?.values).toEqual({ 'job=j1': 1, 'job=j2': 2 });
    report(1, 12_000);
    expect(sampler.sample(20_000).reward?.values).toEqual({ 'job=j1': 1 });
  });

  it('joins table columns on the key labels', () => {
    const { nodes, flush, sampler } = cluster();
    nodes[0]!.gauge('dr_weights_version', 'v').set({ actor: 'params' }, 12);
    nodes[1]!.gauge('dr_weights_version', 'v').set({ actor: 'rollout/3' }, 11);
    flush();
    expect(sampler.tables()).toEqual([
      {
        id: 'weights',
        section: 'Weights',
        title: 'Weights',
        columns: ['rank', 'actor', 'version'],
        rows: [
          ['1', 'params', 12],
          ['2', 'rollout/3', 11],
        ],
      },
    ]);
  });
});

describe('bucketQuantile', () => {
  it('interpolates inside the bucket, answers the top bound for +Inf and null for nothing', () => {
    expect(bucketQuantile([1, 2], [0, 10, 10], 0.5)).toBeCloseTo(1.5);
    expect(bucketQuantile([1, 2], [0, 0, 4], 0.5)).toBe(2);
    expect(bucketQuantile([1, 2], [0, 0, 0], 0.5)).toBeNull();
  });
});
