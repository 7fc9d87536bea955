/**
 * What the monitor reads from the cluster. The head's membership table, actor directory and job table
 * implement (or feed) a MonitorSource; the dashboard, /metrics and `dr watch` only ever read through it.
 * Nothing here knows about research agents: jobs are a generic table with progress and result links.
 */

export type NodeState = 'alive' | 'suspect' | 'down' | 'left';

export interface NodeResources {
  cpus: number;
  memoryBytes: number;
  gpus: ReadonlyArray<{ id: string; name?: string }>;
  labels: Readonly<Record<string, string>>;
}

export interface NodeStateChange {
  state: NodeState;
  /** Epoch milliseconds. */
  at: number;
}

export interface NodeView {
  rank: number;
  address?: string;
  version?: string;
  state: NodeState;
  resources: NodeResources;
  /** Epoch milliseconds of the last heartbeat the head received; null before the first. */
  lastHeartbeatAt: number | null;
  /** Oldest first; bounded by the source. */
  history: readonly NodeStateChange[];
}

/** `lost`: its node went down and it was not re-spawned. */
export type ActorState = 'starting' | 'running' | 'restarting' | 'stopped' | 'failed' | 'lost';

export interface ActorView {
  /** Cluster-unique name, e.g. 'search/0'. */
  path: string;
  kind: string;
  /** Rank of the node hosting the current incarnation. */
  node: number;
  state: ActorState;
  restarts: number;
  /** Messages waiting, as last reported by the hosting node; null when not reported. */
  mailboxDepth: number | null;
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobView {
  id: string;
  kind: string;
  state: JobState;
  progress: { done: number; total: number };
  /** Epoch milliseconds. */
  submittedAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Where results can be fetched or found (paths on the head or URLs). */
  results: ReadonlyArray<{ label: string; href: string }>;
  error?: string;
  /** One line the job's owner has to say about it, e.g. its tool calls and search cache hits. */
  detail?: string;
}

export type MonitorEvent =
  | { type: 'node'; node: NodeView }
  | { type: 'actor'; actor: ActorView }
  | { type: 'actor-removed'; path: string }
  | { type: 'job'; job: JobView };

export interface MonitorSource {
  nodes(): readonly NodeView[];
  actors(): readonly ActorView[];
  jobs(): readonly JobView[];
  /** Called on every change; returns the unsubscribe function. */
  subscribe(listener: (event: MonitorEvent) => void): () => void;
}
