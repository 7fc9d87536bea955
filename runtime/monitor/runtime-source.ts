import type { MemberEvent } from '../../cluster/node.ts';
import type { Logger } from '../../config/log.ts';
import type { MetricsStore } from '../../cluster/monitor/metrics-store.ts';
import type { MonitorTables } from '../../cluster/monitor/monitor-tables.ts';
import type {
  ActorView,
  JobView,
  MonitorEvent,
  MonitorSource,
  NodeStateChange,
  NodeView,
} from '../../cluster/monitor/source.ts';
import type { NodeRuntime } from '../node-runtime.ts';

/** State changes kept per node. */
const HISTORY_LIMIT = 50;

export interface RuntimeSourceOptions {
  runtime: Pick<NodeRuntime, 'node' | 'status'>;
  /** The job table (fed by the monitor actor). */
  jobs: MonitorTables;
  /** Where nodes' reported metrics land: mailbox depths come from `dr_actor_mailbox_depth`. */
  store: MetricsStore;
  /** How often the actor directory is re-read for changes. */
  pollMs?: number;
  log?: Logger;
}

/**
 * The MonitorSource of a running head: nodes from the membership table (with the state history seen since
 * the monitor started), actors from the head's directory, mailbox depths from the nodes' metrics, jobs from
 * the job table. Membership events pass through at once; directory changes are noticed within `pollMs`.
 */
export class RuntimeMonitorSource implements MonitorSource {
  readonly #runtime: RuntimeSourceOptions['runtime'];
  readonly #jobs: MonitorTables;
  readonly #store: MetricsStore;
  readonly #history = new Map<number, NodeStateChange[]>();
  readonly #listeners = new Set<(event: MonitorEvent) => void>();
  #actors: ActorView[] = [];
  #actorsKey = '';
  readonly #timer: NodeJS.Timeout;
  readonly #onMember: (event: MemberEvent) => void;
  readonly #unsubscribeJobs: () => void;

  constructor(options: RuntimeSourceOptions) {
    this.#runtime = options.runtime;
    this.#jobs = options.jobs;
    this.#store = options.store;
    for (const member of this.#runtime.node.table())
      this.#history.set(member.rank, [{ state: member.state, at: member.since }]);
    this.#onMember = (event) => {
      // A node that is gone reports nothing any more; its last figures must not pass for current ones.
      if (event.type === 'down' || event.type === 'left') this.#store.dropRank(event.member.rank);
      const history = this.#history.get(event.member.rank) ?? [];
      const last = history[history.length - 1];
      if (last === undefined || last.state !== event.member.state || event.type === 'joined') {
        history.push({ state: event.member.state, at: event.member.since });
        if (history.length > HISTORY_LIMIT) history.splice(0, history.length - HISTORY_LIMIT);
      }
      this.#history.set(event.member.rank, history);
      const node = this.nodes().find((n) => n.rank === event.member.rank);
      if (node !== undefined) this.#emit({ type: 'node', node });
    };
    this.#runtime.node.on('member', this.#onMember);
    this.#unsubscribeJobs = this.#jobs.subscribe((event) => this.#emit(event));
    const refresh = () =>
      this.refreshActors().catch((err: unknown) =>
        options.log?.warn({ err }, 'actor directory not readable'),
      );
    this.#timer = setInterval(refresh, options.pollMs ?? 500);
    this.#timer.unref();
    void refresh();
  }

  nodes(): readonly NodeView[] {
    return this.#runtime.node.table().map((m) => ({
      rank: m.rank,
      ...(m.host === undefined ? {} : { address: `${m.host}:${m.port}` }),
      version: m.resources.version,
      state: m.state,
      resources: {
        cpus: m.resources.cpus,
        memoryBytes: m.resources.memoryBytes,
        gpus: m.resources.gpus,
        labels: m.resources.labels,
      },
      // The head does not heartbeat to itself.
      lastHeartbeatAt: m.rank === 0 ? null : m.lastSeen,
      history: this.#history.get(m.rank) ?? [{ state: m.state, at: m.since }],
    }));
  }

  actors(): readonly ActorView[] {
    const depths = new Map<string, number>();
    for (const series of this.#store.family('dr_actor_mailbox_depth')?.series.values() ?? []) {
      depths.set(`${series.labels.rank}/${series.labels.actor}`, series.value);
    }
    return this.#actors.map((a) => ({ ...a, mailboxDepth: depths.get(`${a.node}/${a.path}`) ?? null }));
  }

  /** The node is down or has left (a rank never seen is not gone: it may be a reporter of its own). */
  isGone(rank: number): boolean {
    const state = this.#runtime.node.members.get(rank)?.state;
    return state === 'down' || state === 'left';
  }

  jobs(): readonly JobView[] {
    return this.#jobs.jobs();
  }

  subscribe(listener: (event: MonitorEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads the directory and announces the actors that changed or went away. */
  async refreshActors(): Promise<void> {
    const status = await this.#runtime.status();
    const next: ActorView[] = status.actors.map((a) => ({
      path: a.path,
      kind: a.kind,
      node: a.node,
      state: a.state,
      restarts: a.restarts,
      mailboxDepth: null,
    }));
    const key = JSON.stringify(next);
    if (key === this.#actorsKey) return;
    const before = new Map(this.#actors.map((a) => [a.path, JSON.stringify(a)]));
    this.#actors = next;
    this.#actorsKey = key;
    for (const actor of next)
      if (before.get(actor.path) !== JSON.stringify(actor)) this.#emit({ type: 'actor', actor });
    const now = new Set(next.map((a) => a.path));
    for (const path of before.keys()) if (!now.has(path)) this.#emit({ type: 'actor-removed', path });
  }

  close(): void {
    clearInterval(this.#timer);
    this.#runtime.node.off('member', this.#onMember);
    this.#unsubscribeJobs();
  }

  #emit(event: MonitorEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
