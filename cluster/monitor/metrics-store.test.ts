import { describe, expect, it } from 'vitest';
import { MetricsRecorder } from './metrics-recorder.ts';
import { MetricsStore } from './metrics-store.ts';

function batchWith(build: (r: MetricsRecorder) => void) {
  const recorder = new MetricsRecorder();
  build(recorder);
  return recorder.snapshot();
}

describe('MetricsStore', () => {
  it('keeps the latest value per series and rank, labelled with the sender rank', () => {
    const store = new MetricsStore();
    store.ingest(
      1,
      batchWith((r) => r.counter('dr_search_queries_total', 'q').inc({ actor: 'search/0' }, 5)),
    );
    store.ingest(
      2,
      batchWith((r) => r.counter('dr_search_queries_total', 'q').inc({ actor: 'search/1' }, 7)),
    );
    store.ingest(
      1,
      batchWith((r) => r.counter('dr_search_queries_total', 'q').inc({ actor: 'search/0' }, 9)),
    );
    const series = [...(store.family('dr_search_queries_total')?.series.values() ?? [])].map((s) => [
      s.labels,
      s.value,
    ]);
    expect(series).toEqual([
      [{ actor: 'search/0', rank: '1' }, 9],
      [{ actor: 'search/1', rank: '2' }, 7],
    ]);
  });

  it('refuses a malformed batch whole with MONITOR_BAD_BATCH and keeps what it had', () => {
    const store = new MetricsStore();
    store.ingest(
      1,
      batchWith((r) => r.gauge('dr_train_kl', 'kl').set({}, 0.1)),
    );
    const hostile = [
      'not an object',
      { v: 2, samples: [] },
      {
        v: 1,
        samples: [
          { kind: 'gauge', name: 'dr_train_kl', help: '', labels: {}, value: 5 },
          { kind: 'gauge', name: 'Bad Name', help: '', labels: {}, value: 1 },
        ],
      },
      { v: 1, samples: [{ kind: 'gauge', name: 'dr_train_kl', help: '', labels: { rank: '9' }, value: 5 }] },
      { v: 1, samples: [{ kind: 'counter', name: 'dr_no_suffix', help: '', labels: {}, value: 1 }] },
      {
        v: 1,
        samples: [
          {
            kind: 'histogram',
            name: 'dr_h_seconds',
            help: '',
            labels: {},
            buckets: [1],
            counts: [1],
            sum: 1,
            count: 1,
          },
        ],
      },
    ];
    for (const batch of hostile)
      expect(() => store.ingest(1, batch)).toThrowError(
        expect.objectContaining({ code: 'MONITOR_BAD_BATCH' }),
      );
    expect([...(store.family('dr_train_kl')?.series.values() ?? [])].map((s) => s.value)).toEqual([0.1]);
    expect(store.family('dr_h_seconds')).toBeUndefined();
  });

  it('drops samples whose kind differs from the first reporter of the name', () => {
    const store = new MetricsStore();
    store.ingest(
      1,
      batchWith((r) => r.gauge('dr_weights_version', 'v').set({}, 3)),
    );
    store.ingest(2, {
      v: 1,
      samples: [
        { kind: 'counter', name: 'dr_weights_version_total', help: '', labels: {}, value: 1 },
        {
          kind: 'histogram',
          name: 'dr_weights_version',
          help: '',
          labels: {},
          buckets: [1],
          counts: [0, 0],
          sum: 0,
          count: 0,
        },
      ],
    });
    expect(store.family('dr_weights_version')?.kind).toBe('gauge');
    expect(store.family('dr_weights_version')?.series.size).toBe(1);
  });

  it("drops a rank's series that its latest snapshot no longer holds, leaving other ranks alone", () => {
    const store = new MetricsStore();
    const node = new MetricsRecorder();
    const depth = node.gauge('dr_actor_mailbox_depth', 'waiting');
    depth.set({ actor: 'a' }, 1);
    depth.set({ actor: 'b' }, 2);
    store.ingest(1, node.snapshot());
    store.ingest(
      2,
      batchWith((r) => r.gauge('dr_actor_mailbox_depth', 'waiting').set({ actor: 'c' }, 3)),
    );
    depth.remove({ actor: 'a' });
    store.ingest(1, node.snapshot());
    const left = [...(store.family('dr_actor_mailbox_depth')?.series.values() ?? [])].map((s) => s.labels);
    expect(left).toEqual([
      { actor: 'b', rank: '1' },
      { actor: 'c', rank: '2' },
    ]);
  });

  it('forgets a rank whose node is gone', () => {
    const store = new MetricsStore();
    store.ingest(
      1,
      batchWith((r) => r.gauge('dr_node_load1', 'l').set({}, 1)),
    );
    store.ingest(
      2,
      batchWith((r) => r.gauge('dr_node_load1', 'l').set({}, 2)),
    );
    store.dropRank(1);
    expect([...(store.family('dr_node_load1')?.series.values() ?? [])].map((s) => s.labels.rank)).toEqual([
      '2',
    ]);
  });

  it('caps the label sets kept per metric', () => {
    const store = new MetricsStore({ maxSeriesPerMetric: 3 });
    store.ingest(
      1,
      batchWith((r) => {
        const g = r.gauge('dr_job_thing', 'x');
        for (let i = 0; i < 10; i++) g.set({ job: `j${i}` }, i);
      }),
    );
    expect(store.family('dr_job_thing')?.series.size).toBe(3);
  });
});
