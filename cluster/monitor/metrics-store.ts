import { DrError } from '../../config/errors.ts';
import { silentLogger, type Logger } from '../../config/log.ts';
import { labelKey } from './metrics-recorder.ts';
import { metricsBatchSchema } from './protocol.ts';
import type { Labels, MetricKind } from './protocol.ts';

export interface StoredSeries {
  /** The reporter's labels plus `rank`. */
  labels: Labels;
  /** Counter total or gauge value; for histograms the observation count. */
  value: number;
  /** Histograms only: cumulative bucket counts, then +Inf. */
  counts?: readonly number[];
  sum?: number;
  updatedAt: number;
}

export interface StoredFamily {
  name: string;
  kind: MetricKind;
  help: string;
  /** Histograms only. */
  buckets?: readonly number[];
  series: ReadonlyMap<string, StoredSeries>;
}

export interface MetricsStoreOptions {
  /** Distinct label sets kept per metric; new ones beyond it are dropped (and logged once per metric). */
  maxSeriesPerMetric?: number;
  log?: Logger;
}

/**
 * The head's view of every node's metrics: the last cumulative value of each series from each rank. Batches
 * arrive from the network, so they are validated here; a bad batch is refused whole with MONITOR_BAD_BATCH
 * and nothing already stored changes.
 */
export class MetricsStore {
  readonly #families = new Map<string, StoredFamily & { series: Map<string, StoredSeries> }>();
  readonly #maxSeries: number;
  readonly #log: Logger;
  readonly #overflowLogged = new Set<string>();

  constructor(options: MetricsStoreOptions = {}) {
    this.#maxSeries = options.maxSeriesPerMetric ?? 2000;
    this.#log = options.log ?? silentLogger;
  }

  /**
   * Takes a node's snapshot (see MetricsRecorder.snapshot). A snapshot is the node's whole state, so the
   * rank's series that it no longer contains are dropped.
   */
  ingest(rank: number, batch: unknown, at = Date.now()): void {
    const parsed = metricsBatchSchema.safeParse(batch);
    if (!parsed.success) {
      throw new DrError(
        'MONITOR_BAD_BATCH',
        `Metrics batch from rank ${rank} refused: ${parsed.error.issues[0]?.message ?? 'invalid'} at ${parsed.error.issues[0]?.path.join('.') ?? '?'}. Report metrics through MetricsRecorder.`,
        {
          details: { rank },
        },
      );
    }
    const seen = new Set<string>();
    for (const sample of parsed.data.samples) {
      let family = this.#families.get(sample.name);
      if (family === undefined) {
        family = { name: sample.name, kind: sample.kind, help: sample.help, series: new Map() };
        if (sample.kind === 'histogram') family.buckets = sample.buckets;
        this.#families.set(sample.name, family);
      } else if (
        family.kind !== sample.kind ||
        (sample.kind === 'histogram' && !sameBuckets(family.buckets, sample.buckets))
      ) {
        this.#log.warn(
          { rank, metric: sample.name, kind: sample.kind, expected: family.kind },
          'metric sample dropped: kind or buckets differ from the first reporter',
        );
        continue;
      }
      const labels = { ...sample.labels, rank: String(rank) };
      const key = labelKey(labels);
      seen.add(`${sample.name}\u0000${key}`);
      if (!family.series.has(key) && family.series.size >= this.#maxSeries) {
        if (!this.#overflowLogged.has(sample.name)) {
          this.#overflowLogged.add(sample.name);
          this.#log.warn(
            { rank, metric: sample.name, limit: this.#maxSeries },
            'metric has too many label sets; new ones are dropped',
          );
        }
        continue;
      }
      family.series.set(
        key,
        sample.kind === 'histogram'
          ? { labels, value: sample.count, counts: sample.counts, sum: sample.sum, updatedAt: at }
          : { labels, value: sample.value, updatedAt: at },
      );
    }
    const sender = String(rank);
    for (const family of this.#families.values()) {
      for (const [key, series] of family.series) {
        if (series.labels.rank === sender && !seen.has(`${family.name}\u0000${key}`))
          family.series.delete(key);
      }
    }
  }

  /** Forgets everything a rank reported (its node is down or left: its figures are no longer current). */
  dropRank(rank: number): void {
    const sender = String(rank);
    for (const family of this.#families.values()) {
      for (const [key, series] of family.series) if (series.labels.rank === sender) family.series.delete(key);
    }
  }

  families(): Iterable<StoredFamily> {
    return this.#families.values();
  }

  family(name: string): StoredFamily | undefined {
    return this.#families.get(name);
  }
}

function sameBuckets(a: readonly number[] | undefined, b: readonly number[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}
