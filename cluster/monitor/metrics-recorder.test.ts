import { describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { MetricsRecorder } from './metrics-recorder.ts';
import { metricsBatchSchema } from './protocol.ts';

describe('MetricsRecorder', () => {
  it('refuses names that break the Prometheus conventions with MONITOR_BAD_METRIC', () => {
    const recorder = new MetricsRecorder();
    for (const declare of [
      () => recorder.counter('dr_search_queries', 'no _total suffix'),
      () => recorder.gauge('searchQps', 'not snake case, no prefix'),
      () => recorder.gauge('dr_search_', 'trailing underscore'),
    ]) {
      expect(declare).toThrowError(expect.objectContaining({ code: 'MONITOR_BAD_METRIC' }));
    }
  });

  it('refuses the same name as another kind, but hands back the same series for a second declaration', () => {
    const recorder = new MetricsRecorder();
    recorder.counter('dr_x_total', 'x').inc({ actor: 'a' });
    recorder.counter('dr_x_total', 'x').inc({ actor: 'a' }, 2);
    expect(() => recorder.gauge('dr_x_total', 'x')).toThrow(/already declared as a counter/);
    expect(recorder.snapshot().samples).toEqual([
      { kind: 'counter', name: 'dr_x_total', help: 'x', labels: { actor: 'a' }, value: 3 },
    ]);
  });

  it('keeps counters monotonic and reserves the rank and le labels for the monitor', () => {
    const recorder = new MetricsRecorder();
    const counter = recorder.counter('dr_y_total', 'y');
    expect(() => counter.inc({}, -1)).toThrow(/only go up/);
    let error: unknown;
    try {
      counter.inc({ rank: '3' });
    } catch (err) {
      error = err;
    }
    expect(isDrError(error, 'MONITOR_BAD_METRIC')).toBe(true);
  });

  it('counts histogram observations cumulatively per bucket, with sum and count', () => {
    const recorder = new MetricsRecorder();
    const latency = recorder.histogram('dr_browse_latency_seconds', 'browse', [0.1, 1, 10]);
    for (const v of [0.05, 0.5, 0.7, 5, 50]) latency.observe({ actor: 'browse/0' }, v);
    const [sample] = recorder.snapshot().samples;
    expect(sample).toMatchObject({
      kind: 'histogram',
      buckets: [0.1, 1, 10],
      counts: [1, 3, 4, 5],
      count: 5,
    });
    expect(sample?.kind === 'histogram' && sample.sum).toBeCloseTo(56.25);
  });

  it('produces snapshots that the head-side schema accepts', () => {
    const recorder = new MetricsRecorder();
    recorder.gauge('dr_train_kl', 'kl').set({ job: 'j1' }, 0.02);
    recorder.counter('dr_search_cache_hits_total', 'hits').inc({ actor: 'search/0' }, 4);
    recorder.histogram('dr_browse_latency_seconds', 'browse').observe({}, 0.3);
    expect(metricsBatchSchema.safeParse(recorder.snapshot()).success).toBe(true);
  });
});
