import type {
  ActorView,
  JobView,
  MonitorEvent,
  MonitorSource,
  NodeResources,
  NodeState,
  NodeView,
} from './source.ts';

/** State changes kept per node; older ones are dropped. */
const HISTORY_LIMIT = 50;

/**
 * An in-memory MonitorSource that the head's membership, actor directory and job manager write into as
 * things happen (or that an adapter feeds from their events). Listeners see every change in order.
 */
export class MonitorTables implements MonitorSource {
  readonly #nodes = new Map<number, NodeView>();
  readonly #actors = new Map<string, ActorView>();
  readonly #jobs = new Map<string, JobView>();
  readonly #listeners = new Set<(event: MonitorEvent) => void>();

  nodes(): readonly NodeView[] {
    return [...this.#nodes.values()].sort((a, b) => a.rank - b.rank);
  }

  actors(): readonly ActorView[] {
    return [...this.#actors.values()].sort((a, b) => a.node - b.node || a.path.localeCompare(b.path));
  }

  jobs(): readonly JobView[] {
    return [...this.#jobs.values()].sort((a, b) => a.submittedAt - b.submittedAt);
  }

  subscribe(listener: (event: MonitorEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records a node joining (or re-joining with a new incarnation). */
  nodeJoined(
    rank: number,
    info: { resources: NodeResources; address?: string; version?: string },
    at = Date.now(),
  ): void {
    const previous = this.#nodes.get(rank);
    const node: NodeView = {
      rank,
      ...(info.address === undefined ? {} : { address: info.address }),
      ...(info.version === undefined ? {} : { version: info.version }),
      state: 'alive',
      resources: info.resources,
      lastHeartbeatAt: at,
      history: appendHistory(previous?.history ?? [], 'alive', at),
    };
    this.#setNode(node);
  }

  heartbeat(rank: number, at = Date.now()): void {
    const node = this.#nodes.get(rank);
    if (node === undefined) return;
    this.#nodes.set(rank, { ...node, lastHeartbeatAt: at });
  }

  nodeState(rank: number, state: NodeState, at = Date.now()): void {
    const node = this.#nodes.get(rank);
    if (node === undefined || node.state === state) return;
    this.#setNode({ ...node, state, history: appendHistory(node.history, state, at) });
  }

  upsertActor(actor: ActorView): void {
    this.#actors.set(actor.path, actor);
    this.#emit({ type: 'actor', actor });
  }

  removeActor(path: string): void {
    if (this.#actors.delete(path)) this.#emit({ type: 'actor-removed', path });
  }

  upsertJob(job: JobView): void {
    this.#jobs.set(job.id, job);
    this.#emit({ type: 'job', job });
  }

  #setNode(node: NodeView): void {
    this.#nodes.set(node.rank, node);
    this.#emit({ type: 'node', node });
  }

  #emit(event: MonitorEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

function appendHistory(history: NodeView['history'], state: NodeState, at: number): NodeView['history'] {
  const next = [...history, { state, at }];
  return next.length > HISTORY_LIMIT ? next.slice(next.length - HISTORY_LIMIT) : next;
}
