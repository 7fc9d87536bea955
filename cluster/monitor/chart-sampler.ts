import type { MetricsStore, StoredSeries } from './metrics-store.ts';
import type { ChartPanel, Panels, SeriesQuery, TablePanel } from './panels.ts';

/** One sample tick of one chart: a value per line label (null where there is nothing to show). */
export interface ChartPoint {
  /** Epoch seconds. */
  x: number;
  values: Record<string, number | null>;
}

export interface ChartHistory {
  id: string;
  section: string;
  title: string;
  unit: string;
  /** Epoch seconds, oldest first. */
  x: number[];
  series: Array<{ label: string; values: Array<number | null> }>;
}

export interface TableView {
  id: string;
  section: string;
  title: string;
  columns: string[];
  rows: Array<Array<string | number | null>>;
}

interface Previous {
  at: number;
  /** metric -> series key -> last seen cumulative value (counters) or bucket counts (histograms). */
  counters: Map<string, Map<string, number>>;
  buckets: Map<string, Map<string, readonly number[]>>;
}

/**
 * Turns the stored cumulative series into chart lines: at each `sample()` it evaluates every panel query
 * (rates and quantiles over the interval since the previous sample) and appends one point per chart to a
 * bounded history. The browser only draws what it is given.
 */
export class ChartSampler {
  readonly #store: MetricsStore;
  readonly #panels: Panels;
  readonly #capacity: number;
  readonly #staleAfterMs: number;
  readonly #histories = new Map<string, ChartHistory>();
  #previous: Previous | undefined;

  /**
   * `staleAfterMs`: a gauge not reported for this long (its node died, its actor stopped) drops out of the
   * charts instead of drawing its last value forever.
   */
  constructor(store: MetricsStore, panels: Panels, capacity = 360, staleAfterMs = 15_000) {
    this.#store = store;
    this.#panels = panels;
    this.#capacity = capacity;
    this.#staleAfterMs = staleAfterMs;
    for (const chart of panels.charts) {
      this.#histories.set(chart.id, {
        id: chart.id,
        section: chart.section,
        title: chart.title,
        unit: chart.unit,
        x: [],
        series: [],
      });
    }
  }

  /** Evaluates every chart at `now` and returns the new point of each, by chart id. */
  sample(now = Date.now()): Record<string, ChartPoint> {
    const current = this.#capture(now);
    const points: Record<string, ChartPoint> = {};
    for (const chart of this.#panels.charts) {
      const point: ChartPoint = { x: now / 1000, values: this.#evaluate(chart, current) };
      this.#append(chart.id, point);
      points[chart.id] = point;
    }
    this.#previous = current;
    return points;
  }

  histories(): ChartHistory[] {
    return [...this.#histories.values()].map((h) => ({
      ...h,
      x: [...h.x],
      series: h.series.map((s) => ({ label: s.label, values: [...s.values] })),
    }));
  }

  /** Current values of the table panels. */
  tables(): TableView[] {
    return this.#panels.tables.map((table) => tableView(this.#store, table));
  }

  #evaluate(chart: ChartPanel, current: Previous): Record<string, number | null> {
    const values: Record<string, number | null> = {};
    for (const { label, query } of chart.series) {
      const result = this.#query(query, current);
      if (result instanceof Map) for (const [group, value] of result) values[`${label}=${group}`] = value;
      else values[label] = result;
    }
    return values;
  }

  #query(query: SeriesQuery, current: Previous): number | null | Map<string, number | null> {
    switch (query.op) {
      case 'gauge':
        return this.#gauge(query.metric, query.by, query.agg ?? 'mean', current.at);
      case 'rate': {
        const rates = this.#rates(query.metric, current, query.by);
        return query.by === undefined ? (rates.get('') ?? null) : rates;
      }
      case 'ratio': {
        const num = this.#rates(query.num, current).get('');
        const den = query.den.reduce<number | undefined>((acc, m) => {
          const r = this.#rates(m, current).get('');
          return r === undefined || r === null ? acc : (acc ?? 0) + r;
        }, undefined);
        return num === undefined || num === null || den === undefined || den <= 0 ? null : num / den;
      }
      case 'quantile':
        return this.#quantile(query.metric, query.q, current);
    }
  }

  #gauge(
    metric: string,
    by: string | undefined,
    agg: 'sum' | 'mean' | 'max',
    now: number,
  ): number | null | Map<string, number | null> {
    const groups = new Map<string, number[]>();
    for (const series of this.#store.family(metric)?.series.values() ?? []) {
      if (now - series.updatedAt > this.#staleAfterMs) continue;
      const group = by === undefined ? '' : (series.labels[by] ?? '');
      const list = groups.get(group) ?? [];
      list.push(series.value);
      groups.set(group, list);
    }
    const reduce = (xs: number[]): number =>
      agg === 'sum'
        ? xs.reduce((a, b) => a + b, 0)
        : agg === 'max'
          ? Math.max(...xs)
          : xs.reduce((a, b) => a + b, 0) / xs.length;
    if (by === undefined) {
      const all = groups.get('');
      return all === undefined ? null : reduce(all);
    }
    return new Map([...groups].map(([g, xs]) => [g, reduce(xs)]));
  }

  /** Per-second increase since the previous tick, summed per group; a series seen for the first time has no rate yet. */
  #rates(metric: string, current: Previous, by?: string): Map<string, number | null> {
    const rates = new Map<string, number | null>();
    const family = this.#store.family(metric);
    const previous = this.#previous;
    if (family === undefined || previous === undefined) return rates;
    const dt = (current.at - previous.at) / 1000;
    if (dt <= 0) return rates;
    const before = previous.counters.get(metric);
    for (const [key, value] of current.counters.get(metric) ?? []) {
      const prior = before?.get(key);
      const group = by === undefined ? '' : (family.series.get(key)?.labels[by] ?? '');
      if (prior === undefined) {
        if (!rates.has(group)) rates.set(group, null);
        continue;
      }
      // A drop means the reporting process restarted and counts from zero again.
      const increase = value >= prior ? value - prior : value;
      rates.set(group, (rates.get(group) ?? 0) + increase / dt);
    }
    return rates;
  }

  #quantile(metric: string, q: number, current: Previous): number | null {
    const family = this.#store.family(metric);
    const bounds = family?.buckets;
    const before = this.#previous?.buckets.get(metric);
    if (family === undefined || bounds === undefined || before === undefined) return null;
    const delta = new Array<number>(bounds.length + 1).fill(0);
    for (const [key, counts] of current.buckets.get(metric) ?? []) {
      const prior = before.get(key);
      if (prior === undefined) continue;
      const reset = (counts[bounds.length] ?? 0) < (prior[bounds.length] ?? 0);
      counts.forEach((c, i) => (delta[i]! += reset ? c : c - (prior[i] ?? 0)));
    }
    return bucketQuantile(bounds, delta, q);
  }

  #capture(at: number): Previous {
    const counters = new Map<string, Map<string, number>>();
    const buckets = new Map<string, Map<string, readonly number[]>>();
    for (const family of this.#store.families()) {
      if (family.kind === 'counter')
        counters.set(
          family.name,
          mapSeries(family.series, (s) => s.value),
        );
      if (family.kind === 'histogram')
        buckets.set(
          family.name,
          mapSeries(family.series, (s) => s.counts ?? []),
        );
    }
    return { at, counters, buckets };
  }

  #append(id: string, point: ChartPoint): void {
    const history = this.#histories.get(id);
    if (history === undefined) return;
    const length = history.x.length;
    history.x.push(point.x);
    for (const series of history.series) series.values.push(point.values[series.label] ?? null);
    for (const [label, value] of Object.entries(point.values)) {
      if (!history.series.some((s) => s.label === label))
        history.series.push({ label, values: [...new Array<null>(length).fill(null), value] });
    }
    if (history.x.length > this.#capacity) {
      const drop = history.x.length - this.#capacity;
      history.x.splice(0, drop);
      for (const series of history.series) series.values.splice(0, drop);
    }
  }
}

/**
 * Prometheus' histogram_quantile: find the bucket holding the q-th observation and interpolate linearly in
 * it; an answer in the +Inf bucket is reported as the largest finite bound. Null when nothing was observed.
 */
export function bucketQuantile(
  bounds: readonly number[],
  cumulative: readonly number[],
  q: number,
): number | null {
  const total = cumulative[bounds.length] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    const count = cumulative[i] ?? 0;
    if (count >= rank) {
      const lower = i === 0 ? 0 : (bounds[i - 1] as number);
      const below = i === 0 ? 0 : (cumulative[i - 1] ?? 0);
      const inBucket = count - below;
      return inBucket <= 0 ? lower : lower + ((bounds[i] as number) - lower) * ((rank - below) / inBucket);
    }
  }
  return bounds[bounds.length - 1] ?? null;
}

function tableView(store: MetricsStore, table: TablePanel): TableView {
  const rows = new Map<string, Array<string | number | null>>();
  table.columns.forEach(({ metric }, column) => {
    for (const series of store.family(metric)?.series.values() ?? []) {
      const keyValues = table.key.map((k) => series.labels[k] ?? '');
      const rowKey = JSON.stringify(keyValues);
      const row = rows.get(rowKey) ?? [...keyValues, ...new Array<null>(table.columns.length).fill(null)];
      row[table.key.length + column] = series.value;
      rows.set(rowKey, row);
    }
  });
  // Key labels no reporter sets would only add empty columns.
  const all = [...rows.values()];
  const used = table.key.map((_, i) => all.some((row) => row[i] !== ''));
  const keep = (_: unknown, i: number) => i >= table.key.length || used[i] === true;
  return {
    id: table.id,
    section: table.section,
    title: table.title,
    columns: [...table.key, ...table.columns.map((c) => c.label)].filter(keep),
    rows: all
      .map((row) => row.filter(keep))
      .sort(
        (a, b) =>
          String(a[0]).localeCompare(String(b[0]), undefined, { numeric: true }) ||
          String(a[1]).localeCompare(String(b[1])),
      ),
  };
}

function mapSeries<T>(
  series: ReadonlyMap<string, StoredSeries>,
  pick: (s: StoredSeries) => T,
): Map<string, T> {
  return new Map([...series].map(([key, s]) => [key, pick(s)]));
}
