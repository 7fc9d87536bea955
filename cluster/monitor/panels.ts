import type { HistoryPanel } from './run-history.ts';

/**
 * The dashboard's charts and tables, as data over reported metric names. The monitor itself is generic: the
 * names below are the contract with the actors that report them (documented in README.md), and a head can
 * pass its own panel list instead.
 */

/** How one line of a chart is computed from the stored series at each sample tick. */
export type SeriesQuery =
  /** Current gauge value, one line per value of `by` (else one line), aggregated across the other labels. */
  | { op: 'gauge'; metric: string; by?: string; agg?: 'sum' | 'mean' | 'max' }
  /** Per-second increase of a counter since the previous tick, summed; one line per value of `by`. */
  | { op: 'rate'; metric: string; by?: string }
  /** rate(num) / (sum of rate(den)): e.g. hits / (hits + misses). */
  | { op: 'ratio'; num: string; den: readonly string[] }
  /** The q-quantile of a histogram's observations since the previous tick (interpolated within a bucket). */
  | { op: 'quantile'; metric: string; q: number };

export interface ChartPanel {
  id: string;
  section: string;
  title: string;
  /** Shown on the axis: 's', 'ratio', '1/s', 'bytes', ... */
  unit: string;
  series: ReadonlyArray<{ label: string; query: SeriesQuery }>;
}

/** A table of current values, one row per distinct `key` label set, one column per metric. */
export interface TablePanel {
  id: string;
  section: string;
  title: string;
  key: readonly string[];
  columns: ReadonlyArray<{ label: string; metric: string }>;
}

export interface Panels {
  charts: readonly ChartPanel[];
  tables: readonly TablePanel[];
  /** A job's per-step curves over its whole run, from its `metrics` file (run-history.ts). */
  history?: readonly HistoryPanel[];
}

const trainAndHeldOut = (field: string): HistoryPanel['lines'] => [
  { label: 'train', type: 'step', field: `rollout.${field}` },
  { label: 'held-out', type: 'validation', field: `stats.${field}` },
];
const stepField = (label: string, field: string) => ({ label, type: 'step', field });

/** The trainer's `step` and `validation` events (actors/trainer/metrics.ts), over a run's steps. */
export const TRAINING_HISTORY: readonly HistoryPanel[] = [
  { id: 'reward', title: 'Reward (mean)', unit: '', lines: trainAndHeldOut('rewardMean') },
  { id: 'f1', title: 'F1 (mean)', unit: 'ratio', lines: trainAndHeldOut('f1Mean') },
  { id: 'format-errors', title: 'Format errors', unit: 'ratio', lines: trainAndHeldOut('formatErrorRate') },
  {
    id: 'loss',
    title: 'Loss',
    unit: '',
    lines: [stepField('loss', 'learner.loss'), stepField('pg loss', 'learner.pgLoss')],
  },
  { id: 'kl', title: 'KL to the reference', unit: '', lines: [stepField('kl', 'learner.kl')] },
  { id: 'entropy', title: 'Entropy', unit: '', lines: [stepField('entropy', 'learner.entropy')] },
  { id: 'grad-norm', title: 'Gradient norm', unit: '', lines: [stepField('grad norm', 'learner.gradNorm')] },
  {
    id: 'turns',
    title: 'Turns and tool calls per rollout',
    unit: '',
    lines: [stepField('turns', 'rollout.turnsMean'), stepField('tool calls', 'rollout.toolCallsMean')],
  },
  {
    id: 'response-length',
    title: 'Response length',
    unit: 'tokens',
    lines: [stepField('tokens', 'rollout.responseLengthMean')],
  },
  {
    id: 'staleness',
    title: 'Staleness',
    unit: 'versions',
    lines: [stepField('mean', 'stalenessMean'), stepField('max', 'stalenessMax')],
  },
  {
    id: 'throughput',
    title: 'Learner throughput',
    unit: 'tokens/s',
    lines: [stepField('tokens/s', 'tokensPerSecond')],
  },
  {
    id: 'step-time',
    title: 'Step time',
    unit: 's',
    lines: [stepField('rollout', 'rolloutSeconds'), stepField('step', 'stepSeconds')],
  },
];

const byJob = (metric: string): ChartPanel['series'] => [
  { label: 'job', query: { op: 'gauge', metric, by: 'job', agg: 'mean' } },
];

export const DEFAULT_PANELS: Panels = {
  charts: [
    {
      id: 'reward',
      section: 'Training',
      title: 'Reward (mean)',
      unit: '',
      series: byJob('dr_train_reward_mean'),
    },
    { id: 'f1', section: 'Training', title: 'F1 (mean)', unit: 'ratio', series: byJob('dr_train_f1_mean') },
    {
      id: 'format-errors',
      section: 'Training',
      title: 'Format errors',
      unit: 'ratio',
      series: byJob('dr_train_format_error_ratio'),
    },
    { id: 'kl', section: 'Training', title: 'KL divergence', unit: '', series: byJob('dr_train_kl') },
    { id: 'entropy', section: 'Training', title: 'Entropy', unit: '', series: byJob('dr_train_entropy') },
    {
      id: 'response-length',
      section: 'Training',
      title: 'Response length',
      unit: 'tokens',
      series: byJob('dr_train_response_length_tokens'),
    },
    {
      id: 'turns',
      section: 'Training',
      title: 'Turns per rollout',
      unit: '',
      series: byJob('dr_train_turns_mean'),
    },
    {
      id: 'search-qps',
      section: 'Tools',
      title: 'Search queries',
      unit: '1/s',
      series: [{ label: 'queries', query: { op: 'rate', metric: 'dr_search_queries_total' } }],
    },
    {
      id: 'cache-hit-rate',
      section: 'Tools',
      title: 'Search cache hit rate',
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
      id: 'api-errors',
      section: 'Tools',
      title: 'Search API errors',
      unit: '1/s',
      series: [{ label: 'code', query: { op: 'rate', metric: 'dr_search_api_errors_total', by: 'code' } }],
    },
    {
      id: 'browse-latency',
      section: 'Tools',
      title: 'Browse latency',
      unit: 's',
      series: [0.5, 0.9, 0.99].map((q) => ({
        label: `p${Math.round(q * 100)}`,
        query: { op: 'quantile', metric: 'dr_browse_latency_seconds', q } as const,
      })),
    },
    {
      id: 'staleness',
      section: 'Weights',
      title: 'Weight staleness (max)',
      unit: 'versions',
      series: [{ label: 'max', query: { op: 'gauge', metric: 'dr_weights_staleness_versions', agg: 'max' } }],
    },
    {
      id: 'node-rss',
      section: 'Node processes',
      title: 'Process memory (RSS)',
      unit: 'bytes',
      series: [
        {
          label: 'rank',
          query: { op: 'gauge', metric: 'dr_process_resident_memory_bytes', by: 'rank', agg: 'sum' },
        },
      ],
    },
    {
      id: 'node-load',
      section: 'Node processes',
      title: 'Load average (1 min)',
      unit: '',
      series: [{ label: 'rank', query: { op: 'gauge', metric: 'dr_node_load1', by: 'rank', agg: 'max' } }],
    },
  ],
  tables: [
    {
      id: 'weights',
      section: 'Weights',
      title: 'Weight versions',
      key: ['rank', 'job', 'actor'],
      columns: [
        { label: 'version', metric: 'dr_weights_version' },
        { label: 'staleness', metric: 'dr_weights_staleness_versions' },
      ],
    },
  ],
  history: TRAINING_HISTORY,
};
