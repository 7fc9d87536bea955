/**
 * Metrics events (v1): what every node sends the head about itself and the actors it hosts. Generic named
 * series, Prometheus-shaped: counters and histograms are cumulative since the reporting process started
 * (the head treats a drop as a restart), gauges are the current value. The head adds the `rank` label from
 * the sender, so reporters never set it.
 */
import { z } from 'zod';

export const METRICS_PROTOCOL_VERSION = 1;

/** Prometheus naming, plus the project's: a `dr_` prefix, and counters end in `_total`. */
export const METRIC_NAME = /^dr_[a-z0-9_]*[a-z0-9]$/;
export const LABEL_NAME = /^[a-z_][a-z0-9_]*$/;
/** Labels the head owns (`rank`) or the exposition reserves (`le`). */
export const RESERVED_LABELS: ReadonlySet<string> = new Set(['rank', 'le']);

const labels = z
  .record(z.string().regex(LABEL_NAME), z.string().max(200))
  .refine((l) => Object.keys(l).every((k) => !RESERVED_LABELS.has(k)), 'labels `rank` and `le` are reserved')
  .refine((l) => Object.keys(l).length <= 8, 'at most 8 labels per series');

const common = {
  name: z.string().regex(METRIC_NAME),
  help: z.string().max(300),
  labels,
};

const finite = z.number().finite();

export const metricSampleSchema = z.discriminatedUnion('kind', [
  z
    .object({ kind: z.literal('counter'), ...common, value: finite.nonnegative() })
    .refine((s) => s.name.endsWith('_total'), {
      message: 'counter names end in _total',
    }),
  z.object({ kind: z.literal('gauge'), ...common, value: finite }),
  z
    .object({
      kind: z.literal('histogram'),
      ...common,
      /** Upper bounds, ascending, without +Inf. */
      buckets: z.array(finite).min(1).max(40),
      /** Cumulative counts per bucket, then the +Inf bucket (= count). */
      counts: z.array(finite.nonnegative()),
      sum: finite,
      count: finite.nonnegative(),
    })
    .refine((s) => s.counts.length === s.buckets.length + 1, {
      message: 'counts has one entry per bucket plus +Inf',
    }),
]);

export const metricsBatchSchema = z.object({
  v: z.literal(METRICS_PROTOCOL_VERSION),
  samples: z.array(metricSampleSchema).max(20_000),
});

export type MetricSample = z.infer<typeof metricSampleSchema>;
export type MetricKind = MetricSample['kind'];
export type MetricsBatch = z.infer<typeof metricsBatchSchema>;
export type Labels = Readonly<Record<string, string>>;
