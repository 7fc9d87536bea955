/**
 * The actor contract every actor kind in `actors/` is written against. The actor system (runtime/) runs
 * these on nact on every node and makes refs location-transparent across the cluster (cluster/).
 *
 * An actor handles one message at a time unless its SpawnSpec sets `maxConcurrency` (then up to that many
 * `receive` calls are in flight at once, for I/O-bound actors). `receive` returns the reply to an `ask`
 * (ignored for a `tell`); throwing fails the ask with the thrown error (a DrError keeps its `code` across the
 * wire) and triggers the actor's supervision policy. Messages and replies must be msgpack-encodable plain
 * data.
 */
import type { Logger } from '../config/log.ts';

/** A cluster-wide address. `name` is unique in the cluster and stable across restarts and re-spawns; `node`
 * is the rank of the node hosting the current incarnation (a hint: the runtime re-resolves it when the actor
 * moves). */
export interface ActorRef {
  readonly name: string;
  readonly node: number;
}

export interface AskOptions {
  /** Milliseconds before the ask fails with `ACTOR_ASK_TIMEOUT`. */
  timeoutMs?: number;
}

export interface ActorContext {
  readonly self: ActorRef;
  /** Rank of the node this incarnation runs on. */
  readonly rank: number;
  readonly log: Logger;
  tell(target: ActorRef | string, msg: unknown): void;
  ask<R = unknown>(target: ActorRef | string, msg: unknown, options?: AskOptions): Promise<R>;
  /** Resolve a name to its current ref; fails with `ACTOR_NOT_FOUND`. */
  resolve(name: string): Promise<ActorRef>;
  /** Spawn a child-like peer anywhere in the cluster (same semantics as ActorSystem.spawn). */
  spawn(spec: SpawnSpec): Promise<ActorRef>;
  /** Stop an actor anywhere in the cluster (same semantics as ActorSystem.stopActor), e.g. the peers a job
   * spawned once the job is over. */
  stopActor(target: ActorRef | string): Promise<void>;
}

export interface Actor<M = unknown, R = unknown> {
  receive(msg: M, ctx: ActorContext): R | Promise<R>;
  /** Called when the incarnation stops (shutdown, before a restart, or when its node leaves). */
  stop?(): void | Promise<void>;
  /** How many `receive` calls this actor can take at once when its SpawnSpec sets no `maxConcurrency`
   * (an I/O-bound kind declares its own, e.g. from its args, so every spawner gets it). Default 1. */
  readonly maxConcurrency?: number;
}

/** Builds a fresh incarnation. Called at spawn and at every supervised restart; `args` are the spawn args. */
export type ActorFactory<A = unknown> = (args: A, ctx: ActorContext) => Actor | Promise<Actor>;

export interface SupervisionPolicy {
  /** restart: new incarnation at the same name; stop: remove it; escalate: report to the node supervisor,
   * which stops it and marks it failed in the directory. */
  strategy: 'restart' | 'stop' | 'escalate';
  /** Restarts allowed within `windowMs`; one more escalates. */
  maxRestarts: number;
  windowMs: number;
  /** Exponential backoff between restarts. */
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export type Placement =
  | { kind: 'rank'; rank: number }
  | { kind: 'resource'; resource: string } // e.g. 'gpu': a node that announced that resource
  | { kind: 'spread' } // the node with the fewest actors
  | { kind: 'local' };

export interface SpawnSpec<A = unknown> {
  /** Registered actor kind, e.g. 'search'. Every node registers the same kinds at start-up. */
  kind: string;
  /** Cluster-unique name, e.g. 'search/0'. */
  name: string;
  args?: A;
  placement?: Placement;
  supervision?: Partial<SupervisionPolicy>;
  /** When its node goes down, re-spawn on a survivor (per `placement`, falling back to spread). */
  respawnOnNodeLoss?: boolean;
  /** `receive` calls in flight at once (default: what the actor declares, else 1: one message at a time). Above 1, messages start in
   * mailbox order but may finish in any order, each ask gets its own reply; a throwing receive fails its
   * ask and triggers supervision, and a restart fails the other calls still in flight with ACTOR_STOPPED
   * (their late results are dropped). Only for actors whose state tolerates interleaving at `await`s. */
  maxConcurrency?: number;
}

/** What a node knows how to run: kind → factory. Built by the entry point, passed to the runtime. */
export type ActorKinds = ReadonlyMap<string, ActorFactory<never>>;

/** Stable error codes of the actor runtime (every one is thrown as a DrError). */
export const ActorErrorCode = {
  /** No actor with that name exists (never spawned, stopped, or lost with its node and not re-spawned). */
  NOT_FOUND: 'ACTOR_NOT_FOUND',
  /** The ask got no reply within its timeout. */
  ASK_TIMEOUT: 'ACTOR_ASK_TIMEOUT',
  /** The node hosting the actor is down or unreachable. */
  NODE_DOWN: 'ACTOR_NODE_DOWN',
  /** The actor stopped (or was stopped by supervision) before it handled the message. */
  STOPPED: 'ACTOR_STOPPED',
  /** Its mailbox is full: the sender must slow down. */
  MAILBOX_FULL: 'ACTOR_MAILBOX_FULL',
  /** The SpawnSpec is malformed (empty kind or name, a name starting with '$', maxConcurrency not an
   * integer >= 1). */
  BAD_SPEC: 'ACTOR_BAD_SPEC',
  /** `spawn` named an actor kind this node does not register (see actors/kinds.ts). */
  KIND_UNKNOWN: 'ACTOR_KIND_UNKNOWN',
  /** `spawn` used a name that is already taken in the cluster. */
  NAME_TAKEN: 'ACTOR_NAME_TAKEN',
  /** No node satisfies the placement (e.g. no node announced a GPU). */
  PLACEMENT_UNSATISFIABLE: 'ACTOR_PLACEMENT_UNSATISFIABLE',
  /** The actor threw a plain Error while handling a remote ask (its message is kept). */
  FAILED: 'ACTOR_FAILED',
  /** The factory threw while building the first incarnation. */
  SPAWN_FAILED: 'ACTOR_SPAWN_FAILED',
} as const;

export type ActorState = 'running' | 'restarting' | 'stopped' | 'failed';

/** One actor as the runtime sees it (what `dr status` prints under `actors`). */
export interface ActorInfo {
  name: string;
  kind: string;
  /** Rank of the node hosting it. */
  node: number;
  state: ActorState;
  /** Supervised restarts since it was spawned (re-spawns after node loss do not reset it). */
  restarts: number;
}

/** What an entry point, a test, or another actor's host holds: the same verbs as ActorContext, plus
 * lifecycle. Implemented for one node by `createActorSystem` (runtime/local-system.ts) and for a cluster by
 * the node runtime (runtime/node-runtime.ts). */
export interface ActorSystem {
  readonly rank: number;
  spawn<A>(spec: SpawnSpec<A>): Promise<ActorRef>;
  tell(target: ActorRef | string, msg: unknown): void;
  ask<R = unknown>(target: ActorRef | string, msg: unknown, options?: AskOptions): Promise<R>;
  resolve(name: string): Promise<ActorRef>;
  /** Stop one actor (its `stop()` hook runs; pending asks fail with ACTOR_STOPPED). */
  stopActor(target: ActorRef | string): Promise<void>;
  /** Actors known to this system (the whole cluster's directory on a cluster node). */
  actors(): Promise<ActorInfo[]>;
  /** Stop every actor hosted here and release timers and sockets. Idempotent. */
  stop(): Promise<void>;
}
