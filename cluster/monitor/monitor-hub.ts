import { ChartSampler, type ChartHistory, type ChartPoint, type TableView } from './chart-sampler.ts';
import { etaSeconds, progressRatio } from './job-progress.ts';
import { resultLink } from './job-results.ts';
import { MetricsStore } from './metrics-store.ts';
import { DEFAULT_PANELS, type Panels } from './panels.ts';
import type { ActorView, JobView, MonitorSource, NodeView } from './source.ts';

export const SNAPSHOT_VERSION = 1;

export interface NodeRow extends NodeView {
  heartbeatAgeSeconds: number | null;
  actorCount: number;
}

export interface JobRow extends JobView {
  progressRatio: number;
  etaSeconds: number | null;
  /** `results` as the page links them: files on the head through `/results/<job>/<i>`, URLs as they are. */
  resultLinks: Array<{ label: string; href: string | null }>;
}

/** The cluster tables at one instant: what `dr watch` prints and the dashboard's tables show. */
export interface ClusterState {
  v: typeof SNAPSHOT_VERSION;
  /** Epoch milliseconds. */
  now: number;
  nodes: NodeRow[];
  actors: ActorView[];
  jobs: JobRow[];
  tables: TableView[];
}

/** The first message a dashboard gets: the state plus every chart's history. */
export interface DashboardSnapshot extends ClusterState {
  charts: ChartHistory[];
}

/** Live-update messages on the dashboard WebSocket. */
export type DashboardMessage =
  | { type: 'snapshot'; data: DashboardSnapshot }
  /** A table changed (node, actor, job) between ticks. */
  | { type: 'state'; data: ClusterState }
  /** A sample tick: fresh state and one new point per chart. */
  | { type: 'tick'; data: ClusterState; points: Record<string, ChartPoint> };

export interface MonitorHubOptions {
  source: MonitorSource;
  store?: MetricsStore;
  panels?: Panels;
  /** Milliseconds between chart samples (and tick messages). */
  sampleIntervalMs?: number;
  /** Points kept per chart. */
  historyPoints?: number;
  /** Table changes are batched for this long before a `state` message goes out. */
  stateDebounceMs?: number;
}

/**
 * The head's monitoring core: reads the cluster tables from the MonitorSource, holds reported metrics in a
 * MetricsStore, samples the charts on a timer, and fans live messages out to listeners (dashboard sockets).
 */
export class MonitorHub {
  readonly source: MonitorSource;
  readonly store: MetricsStore;
  readonly panels: Panels;
  readonly #sampler: ChartSampler;
  readonly #listeners = new Set<(message: DashboardMessage) => void>();
  readonly #sampleIntervalMs: number;
  readonly #stateDebounceMs: number;
  #timer: NodeJS.Timeout | undefined;
  #pendingState: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(options: MonitorHubOptions) {
    this.source = options.source;
    this.store = options.store ?? new MetricsStore();
    this.panels = options.panels ?? DEFAULT_PANELS;
    this.#sampler = new ChartSampler(this.store, this.panels, options.historyPoints ?? 360);
    this.#sampleIntervalMs = options.sampleIntervalMs ?? 2000;
    this.#stateDebounceMs = options.stateDebounceMs ?? 100;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#sampler.sample();
    this.#timer = setInterval(() => this.tick(), this.#sampleIntervalMs);
    this.#timer.unref();
    this.#unsubscribe = this.source.subscribe(() => this.#scheduleState());
  }

  stop(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#pendingState);
    this.#unsubscribe?.();
    this.#timer = undefined;
    this.#pendingState = undefined;
    this.#unsubscribe = undefined;
  }

  /** Samples the charts and sends a tick; called by the timer (and by tests at chosen instants). */
  tick(now = Date.now()): void {
    const points = this.#sampler.sample(now);
    this.#emit({ type: 'tick', data: this.state(now), points });
  }

  state(now = Date.now()): ClusterState {
    const actors = [...this.source.actors()];
    const perNode = new Map<number, number>();
    for (const actor of actors) perNode.set(actor.node, (perNode.get(actor.node) ?? 0) + 1);
    return {
      v: SNAPSHOT_VERSION,
      now,
      nodes: this.source.nodes().map((node) => ({
        ...node,
        heartbeatAgeSeconds:
          node.lastHeartbeatAt === null ? null : Math.max(0, (now - node.lastHeartbeatAt) / 1000),
        actorCount: perNode.get(node.rank) ?? 0,
      })),
      actors,
      jobs: this.source.jobs().map((job) => ({
        ...job,
        progressRatio: progressRatio(job),
        etaSeconds: etaSeconds(job, now),
        resultLinks: job.results.map((r, i) => ({ label: r.label, href: resultLink(job, i) })),
      })),
      tables: this.#sampler.tables(),
    };
  }

  snapshot(now = Date.now()): DashboardSnapshot {
    return { ...this.state(now), charts: this.#sampler.histories() };
  }

  /** Listens to live messages; returns the unsubscribe function. */
  subscribe(listener: (message: DashboardMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #scheduleState(): void {
    if (this.#pendingState !== undefined) return;
    this.#pendingState = setTimeout(() => {
      this.#pendingState = undefined;
      this.#emit({ type: 'state', data: this.state() });
    }, this.#stateDebounceMs);
    this.#pendingState.unref();
  }

  #emit(message: DashboardMessage): void {
    for (const listener of this.#listeners) listener(message);
  }
}
