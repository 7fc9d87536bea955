import { DrError } from '../../config/errors.ts';
import { LABEL_NAME, METRIC_NAME, METRICS_PROTOCOL_VERSION, RESERVED_LABELS } from './protocol.ts';
import type { Labels, MetricKind, MetricSample, MetricsBatch } from './protocol.ts';

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}
export interface Gauge {
  set(labels: Labels, value: number): void;
  /** Forget one series (its job ended, its actor left); the head drops it at the next snapshot. */
  remove(labels: Labels): void;
}
export interface Histogram {
  observe(labels: Labels, value: number): void;
}

/** Latency buckets in seconds, from 5 ms to a minute. */
export const SECONDS_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

interface Family {
  kind: MetricKind;
  help: string;
  buckets: readonly number[];
  series: Map<string, SeriesValue>;
}

interface SeriesValue {
  labels: Labels;
  value: number;
  counts: number[];
  sum: number;
}

/**
 * Node-local metrics: actors and node services declare series and update them in place; the node's link to
 * the head sends `snapshot()` periodically and the head's MetricsStore aggregates it. Declaring the same name
 * twice returns the same series (so re-spawned actors keep counting); the same name with another kind is a
 * programming error and throws MONITOR_BAD_METRIC.
 */
export class MetricsRecorder {
  readonly #families = new Map<string, Family>();

  counter(name: string, help: string): Counter {
    if (!name.endsWith('_total'))
      throw badMetric(name, 'counter names end in _total (Prometheus convention)');
    const family = this.#family(name, 'counter', help, []);
    return {
      inc: (labels = {}, by = 1) => {
        if (!(by >= 0)) throw badMetric(name, `counters only go up; got an increment of ${by}`);
        this.#series(family, labels).value += by;
      },
    };
  }

  gauge(name: string, help: string): Gauge {
    const family = this.#family(name, 'gauge', help, []);
    return {
      set: (labels, value) => {
        this.#series(family, labels).value = value;
      },
      remove: (labels) => {
        family.series.delete(labelKey(labels));
      },
    };
  }

  histogram(name: string, help: string, buckets: readonly number[] = SECONDS_BUCKETS): Histogram {
    const sorted = [...buckets].sort((a, b) => a - b);
    const family = this.#family(name, 'histogram', help, sorted);
    return {
      observe: (labels, value) => {
        const series = this.#series(family, labels);
        for (let i = 0; i < family.buckets.length; i++)
          if (value <= (family.buckets[i] as number)) series.counts[i]! += 1;
        series.counts[family.buckets.length]! += 1;
        series.sum += value;
      },
    };
  }

  /** Every series with its cumulative value, ready to send to the head. */
  snapshot(): MetricsBatch {
    const samples: MetricSample[] = [];
    for (const [name, family] of this.#families) {
      for (const series of family.series.values()) {
        const labels = { ...series.labels };
        if (family.kind === 'histogram') {
          samples.push({
            kind: 'histogram',
            name,
            help: family.help,
            labels,
            buckets: [...family.buckets],
            counts: [...series.counts],
            sum: series.sum,
            count: series.counts[family.buckets.length] ?? 0,
          });
        } else {
          samples.push({ kind: family.kind, name, help: family.help, labels, value: series.value });
        }
      }
    }
    return { v: METRICS_PROTOCOL_VERSION, samples };
  }

  #family(name: string, kind: MetricKind, help: string, buckets: readonly number[]): Family {
    if (!METRIC_NAME.test(name))
      throw badMetric(name, 'names are lower_snake_case with the dr_ prefix, e.g. dr_search_queries_total');
    const existing = this.#families.get(name);
    if (existing !== undefined) {
      if (existing.kind !== kind)
        throw badMetric(name, `already declared as a ${existing.kind}, not a ${kind}`);
      return existing;
    }
    const family: Family = { kind, help, buckets, series: new Map() };
    this.#families.set(name, family);
    return family;
  }

  #series(family: Family, labels: Labels): SeriesValue {
    const key = labelKey(labels);
    let series = family.series.get(key);
    if (series === undefined) {
      for (const label of Object.keys(labels)) {
        if (!LABEL_NAME.test(label) || RESERVED_LABELS.has(label)) {
          throw new DrError(
            'MONITOR_BAD_METRIC',
            `Label "${label}" is not allowed: use lower_snake_case; rank and le are set by the monitor.`,
          );
        }
      }
      series = {
        labels: { ...labels },
        value: 0,
        counts: new Array<number>(family.buckets.length + 1).fill(0),
        sum: 0,
      };
      family.series.set(key, series);
    }
    return series;
  }
}

/** A stable key for a label set, independent of property order. */
export function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function badMetric(name: string, why: string): DrError {
  return new DrError('MONITOR_BAD_METRIC', `Metric "${name}": ${why}.`, { details: { name } });
}

/** The metrics of this process (one per node). Actors and node services report here. */
export const nodeMetrics = new MetricsRecorder();
