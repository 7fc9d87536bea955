/**
 * The actor system for one node with no network: every actor runs in this process. This is what unit tests
 * of actor kinds use, and the same ActorHost the cluster node runtime builds on, so an actor that works here
 * behaves the same when its peers are on other nodes.
 */
import { DrError } from '../config/errors.ts';
import { silentLogger, type Logger } from '../config/log.ts';
import {
  ActorErrorCode,
  type ActorContext,
  type ActorInfo,
  type ActorKinds,
  type ActorRef,
  type ActorSystem,
  type AskOptions,
  type Placement,
  type SpawnSpec,
} from './actor.ts';
import { ActorHost } from './actor-host.ts';

export interface LocalSystemOptions {
  kinds: ActorKinds;
  /** Rank reported in refs and contexts (default 0). */
  rank?: number;
  logger?: Logger;
  /** Resources this node offers to `{ kind: 'resource' }` placements, e.g. ['gpu'] (default none). */
  resources?: readonly string[];
  /** Default ask timeout when the caller gives none (default 30 s). */
  defaultAskTimeoutMs?: number;
  mailboxCapacity?: number;
}

export const DEFAULT_ASK_TIMEOUT_MS = 30_000;

export function createActorSystem(options: LocalSystemOptions): ActorSystem {
  return new LocalActorSystem(options);
}

/** Name of an ActorRef-or-name target. */
export function targetName(target: ActorRef | string): string {
  return typeof target === 'string' ? target : target.name;
}

/** The ActorContext an incarnation sees: the verbs of the system that hosts it. */
export function contextFor(system: ActorSystem, self: ActorRef, log: Logger): ActorContext {
  return {
    self,
    rank: system.rank,
    log,
    tell: (target, msg) => system.tell(target, msg),
    ask: <R>(target: ActorRef | string, msg: unknown, options?: AskOptions) =>
      system.ask<R>(target, msg, options),
    resolve: (name) => system.resolve(name),
    spawn: (spec) => system.spawn(spec),
    stopActor: (target) => system.stopActor(target),
  };
}

class LocalActorSystem implements ActorSystem {
  readonly rank: number;
  private readonly host: ActorHost;
  private readonly resources: ReadonlySet<string>;
  private readonly askTimeoutMs: number;

  constructor(opts: LocalSystemOptions) {
    this.rank = opts.rank ?? 0;
    this.resources = new Set(opts.resources ?? []);
    this.askTimeoutMs = opts.defaultAskTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
    const logger = (opts.logger ?? silentLogger).child({ rank: this.rank });
    this.host = new ActorHost({
      kinds: opts.kinds,
      rank: this.rank,
      logger,
      mailboxCapacity: opts.mailboxCapacity,
      contextFor: (self, log) => contextFor(this, self, log),
    });
  }

  spawn<A>(spec: SpawnSpec<A>): Promise<ActorRef> {
    const unsatisfied = this.unsatisfied(spec.placement);
    if (unsatisfied !== undefined) return Promise.reject(unsatisfied);
    return this.host.spawn(spec as SpawnSpec);
  }

  tell(target: ActorRef | string, msg: unknown): void {
    this.host.tell(targetName(target), msg);
  }

  ask<R = unknown>(target: ActorRef | string, msg: unknown, options?: AskOptions): Promise<R> {
    return this.host.ask(targetName(target), msg, options?.timeoutMs ?? this.askTimeoutMs) as Promise<R>;
  }

  async resolve(name: string): Promise<ActorRef> {
    if (!this.host.has(name))
      throw new DrError(ActorErrorCode.NOT_FOUND, `no actor named '${name}'; spawn it first`);
    return { name, node: this.rank };
  }

  stopActor(target: ActorRef | string): Promise<void> {
    return this.host.stopActor(targetName(target));
  }

  async actors(): Promise<ActorInfo[]> {
    return this.host.list();
  }

  stop(): Promise<void> {
    return this.host.stopAll();
  }

  private unsatisfied(placement: Placement | undefined): DrError | undefined {
    if (placement?.kind === 'rank' && placement.rank !== this.rank) {
      return new DrError(
        ActorErrorCode.PLACEMENT_UNSATISFIABLE,
        `placement on rank ${placement.rank} cannot be met by a single-node system of rank ${this.rank}; use a cluster or placement 'local'`,
      );
    }
    if (placement?.kind === 'resource' && !this.resources.has(placement.resource)) {
      return new DrError(
        ActorErrorCode.PLACEMENT_UNSATISFIABLE,
        `no node offers resource '${placement.resource}'; pass resources: ['${placement.resource}'] to createActorSystem (or run on a node that has it)`,
      );
    }
    return undefined;
  }
}
