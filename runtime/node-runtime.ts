/**
 * The actor system of a cluster node: this node's ActorHost plus location-transparent routing over the
 * ClusterNode's links. The head also keeps the directory (name -> spec, rank, state, restarts), decides
 * placement, re-spawns the actors of a lost node on survivors, and serves clients (the CLI, job submission)
 * by proxying their asks and tells. Workers cache name -> rank and re-resolve when a node goes down or a
 * target says the actor is not there any more.
 */
import { EventEmitter } from 'node:events';
import { DrError, isDrError } from '../config/errors.ts';
import type { ClusterConfig } from '../config/cluster.ts';
import type { Logger } from '../config/log.ts';
import type { Link } from '../cluster/link.ts';
import { ClusterNode, nodeDown, type Member, type MemberEvent } from '../cluster/node.ts';
import { offers, type Resources } from '../cluster/resources.ts';
import { Kind, type Envelope } from '../cluster/wire.ts';
import {
  ActorErrorCode,
  type ActorInfo,
  type ActorKinds,
  type ActorRef,
  type ActorState,
  type ActorSystem,
  type AskOptions,
  type Placement,
  type SpawnSpec,
} from './actor.ts';
import { ActorHost, notFound, type Reply } from './actor-host.ts';
import { contextFor, DEFAULT_ASK_TIMEOUT_MS, targetName } from './local-system.ts';
import { LinkReply, PendingAsks } from './remote-ask.ts';

/** What `dr status --json` prints. */
export interface ClusterStatus {
  head: { rank: 0; incarnation: string; port: number };
  nnodes: number;
  nodes: Array<{
    rank: number;
    state: Member['state'];
    host: string | undefined;
    port: number;
    incarnation: string;
    resources: Resources;
    actors: number;
    since: number;
    lastHeartbeatMsAgo: number;
  }>;
  actors: Array<{
    path: string;
    name: string;
    kind: string;
    node: number;
    state: DirectoryState;
    restarts: number;
  }>;
}

/** A directory entry's state: an ActorState, or `starting` while its spawn is under way, or `lost` when its
 * node went down and it is not re-spawned (asks fail with ACTOR_NODE_DOWN). */
export type DirectoryState = ActorState | 'starting' | 'lost';

interface DirEntry {
  spec: SpawnSpec;
  rank: number;
  state: DirectoryState;
  restarts: number;
}

export interface NodeRuntimeOptions {
  config: ClusterConfig;
  role: 'head' | 'worker';
  kinds: ActorKinds;
  resources: Resources;
  logger: Logger;
  defaultAskTimeoutMs?: number;
  mailboxCapacity?: number;
}

export interface NodeRuntimeEvents {
  /** The cluster was asked to shut down (dr stop): the process should stop and exit 0. */
  shutdown: [];
  /** This node cannot go on (refused by the head, wrong token, head unreachable at start). */
  fatal: [DrError];
}

const CONTROL_TIMEOUT_MS = 30_000;
const CACHE_LIMIT = 100_000;
const THROTTLE_POLL_MS = 2;
/** Remote tells queued for one actor before its sending link is paused: enough to keep the actor busy,
 * few enough that large messages do not pile up in this node's memory (the rest waits in TCP and in the
 * sender's bounded link queue). */
const THROTTLE_HIGH_MESSAGES = 4_096;

export class NodeRuntime extends EventEmitter<NodeRuntimeEvents> implements ActorSystem {
  readonly rank: number;
  readonly node: ClusterNode;
  private readonly host: ActorHost;
  private readonly asks: PendingAsks;
  private readonly log: Logger;
  private readonly askTimeoutMs: number;
  /** Worker: where named actors were last seen. */
  private readonly cache = new Map<string, number>();
  private readonly lookups = new Map<string, Promise<number>>();
  /** Head: every named actor in the cluster. */
  private readonly directory = new Map<string, DirEntry>();
  private stopped = false;
  private lastDropLog = 0;
  private readonly throttleHigh: number;

  constructor(private readonly opts: NodeRuntimeOptions) {
    super();
    this.rank = opts.role === 'head' ? 0 : opts.config.rank;
    this.log = opts.logger.child({ rank: this.rank });
    this.askTimeoutMs = opts.defaultAskTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
    this.asks = new PendingAsks(this.rank);
    this.throttleHigh = Math.min(
      THROTTLE_HIGH_MESSAGES,
      (opts.mailboxCapacity ?? Number.MAX_SAFE_INTEGER) / 2,
    );
    this.host = new ActorHost({
      kinds: opts.kinds,
      rank: this.rank,
      logger: this.log,
      mailboxCapacity: opts.mailboxCapacity,
      contextFor: (self, log) => contextFor(this, self, log),
      onStateChange: (info) => this.onLocalState(info),
    });
    this.node = new ClusterNode({
      config: opts.config,
      role: opts.role,
      resources: opts.resources,
      logger: this.log,
      joinState: () => ({ actors: this.host.hosted() }),
      onJoin: (member, state) => this.onWorkerJoin(member, state),
    });
    this.node.on('envelope', (env, link) => this.onEnvelope(env, link));
    this.node.on('member', (e) => this.onMember(e));
    this.node.on('linkClosed', (link) =>
      this.asks.failLink(link, nodeDown(link.peer ?? -1, 'unreachable (its link closed before it replied)')),
    );
    this.node.on('joined', ({ extra }) => this.onWelcome(extra));
    this.node.on('fatal', (err) => this.emit('fatal', err));
    this.node.on('shutdown', () => this.emit('shutdown'));
  }

  get isHead(): boolean {
    return this.opts.role === 'head';
  }

  start(): Promise<void> {
    return this.node.start();
  }

  /** Messages waiting in each actor's mailbox on this node (the dashboard's mailbox column). */
  mailboxDepths(): Array<[actor: string, depth: number]> {
    return this.host.hosted().map(({ spec }) => [spec.name, this.host.queued(spec.name)]);
  }

  // ---- ActorSystem ----------------------------------------------------------------------------------

  async spawn<A>(spec: SpawnSpec<A>): Promise<ActorRef> {
    checkSpec(spec);
    const ref = this.isHead
      ? await this.placeAndSpawn(spec as SpawnSpec, this.rank, 0)
      : ((await this.control(0, '$spawn', { spec, from: this.rank })) as ActorRef);
    this.remember(ref.name, ref.node);
    return ref;
  }

  tell(target: ActorRef | string, msg: unknown): void {
    const name = targetName(target);
    if (this.host.has(name)) {
      this.host.tell(name, msg);
      return;
    }
    const rank = this.knownRank(name);
    if (rank !== undefined) {
      this.sendTell(rank, name, msg);
      return;
    }
    this.locate(name, CONTROL_TIMEOUT_MS).then(
      (r) => this.deliverTell(r, name, msg),
      (err: unknown) => this.warnDropped(name, err),
    );
  }

  /** The hot path (a known actor) sends at once, with no await before the send and one promise in all. */
  ask<R = unknown>(target: ActorRef | string, msg: unknown, options?: AskOptions): Promise<R> {
    const name = targetName(target);
    const timeoutMs = options?.timeoutMs ?? this.askTimeoutMs;
    if (this.host.has(name)) return this.host.ask(name, msg, timeoutMs) as Promise<R>;
    const deadline = Date.now() + timeoutMs;
    const known = this.knownRank(name);
    if (known === undefined)
      return this.locate(name, timeoutMs).then((rank) => this.askRetrying<R>(rank, name, msg, deadline));
    return this.askRetrying<R>(known, name, msg, deadline);
  }

  /** Ask on `rank`; if the actor is not there or its node went down, look it up once more and retry where
   * it moved (a stale cache entry, or a re-spawn after node loss). One promise per ask: the retry is only
   * built when the first attempt fails. */
  private askRetrying<R>(rank: number, name: string, msg: unknown, deadline: number): Promise<R> {
    return new Promise<R>((resolve, reject) =>
      this.askOn(rank, name, msg, Math.max(1, deadline - Date.now()), {
        resolve: resolve as (v: unknown) => void,
        reject: (err: unknown) => {
          if (!isDrError(err, ActorErrorCode.NOT_FOUND) && !isDrError(err, ActorErrorCode.NODE_DOWN)) {
            reject(err);
            return;
          }
          this.forget(name);
          this.retryElsewhere(rank, name, msg, deadline, err).then(resolve as (v: unknown) => void, reject);
        },
      }),
    );
  }

  private async retryElsewhere(
    rank: number,
    name: string,
    msg: unknown,
    deadline: number,
    err: unknown,
  ): Promise<unknown> {
    const left = () => Math.max(1, deadline - Date.now());
    const again = await this.locate(name, left());
    if (again === rank) throw err;
    return new Promise((resolve, reject) => this.askOn(again, name, msg, left(), { resolve, reject }));
  }

  async resolve(name: string): Promise<ActorRef> {
    if (this.host.has(name)) return { name, node: this.rank };
    return { name, node: await this.locate(name, CONTROL_TIMEOUT_MS) };
  }

  async stopActor(target: ActorRef | string): Promise<void> {
    const name = targetName(target);
    if (this.isHead) await this.stopNamed(name);
    else await this.control(0, '$stop-actor', { name });
    this.forget(name);
  }

  async actors(): Promise<ActorInfo[]> {
    return (await this.status()).actors.map(({ name, kind, node, state, restarts }) => ({
      name,
      kind,
      node,
      state: state === 'starting' ? 'running' : state === 'lost' ? 'stopped' : state,
      restarts,
    }));
  }

  /** Resolves once the link to the actor's node has drained below its high-water mark (tell backpressure). */
  async whenWritable(target: ActorRef | string): Promise<void> {
    const name = targetName(target);
    if (this.host.has(name)) return;
    await this.node.linkTo(await this.locate(name, CONTROL_TIMEOUT_MS)).whenWritable();
  }

  async status(): Promise<ClusterStatus> {
    if (!this.isHead) return (await this.control(0, '$status', null)) as ClusterStatus;
    const now = Date.now();
    const load = this.load();
    return {
      head: { rank: 0, incarnation: this.node.incarnation, port: this.node.port },
      nnodes: this.opts.config.nnodes,
      nodes: this.node.table().map((m) => ({
        rank: m.rank,
        state: m.state,
        host: m.host,
        port: m.port,
        incarnation: m.incarnation,
        resources: m.resources,
        actors: load.get(m.rank) ?? 0,
        since: m.since,
        lastHeartbeatMsAgo: m.rank === 0 ? 0 : now - m.lastSeen,
      })),
      actors: [...this.directory].map(([name, e]) => ({
        path: name,
        name,
        kind: e.spec.kind,
        node: e.rank,
        state: e.state,
        restarts: e.restarts,
      })),
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.host.stopAll();
    this.asks.failAll(new DrError(ActorErrorCode.STOPPED, `node ${this.rank} is shutting down`));
    await this.node.stop();
  }

  // ---- routing --------------------------------------------------------------------------------------

  private knownRank(name: string): number | undefined {
    if (!this.isHead) return this.cache.get(name);
    const e = this.directory.get(name);
    return e !== undefined && (e.state === 'running' || e.state === 'restarting') ? e.rank : undefined;
  }

  /** Where `name` runs now: the cache or the head's directory. */
  private locate(name: string, timeoutMs: number): Promise<number> {
    if (this.isHead) {
      try {
        return Promise.resolve(this.lookupLocal(name));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const cached = this.cache.get(name);
    if (cached !== undefined) return Promise.resolve(cached);
    const inFlight = this.lookups.get(name);
    if (inFlight !== undefined) return inFlight;
    const p = this.control(0, '$lookup', { name }, Math.min(timeoutMs, CONTROL_TIMEOUT_MS)).then((r) => {
      const rank = r as number;
      this.remember(name, rank);
      return rank;
    });
    this.lookups.set(name, p);
    const done = () => this.lookups.delete(name);
    p.then(done, done);
    return p;
  }

  private lookupLocal(name: string): number {
    const e = this.directory.get(name);
    if (e === undefined || e.state === 'stopped' || e.state === 'failed') throw notFound(name, this.rank);
    if (e.state === 'lost')
      throw nodeDown(e.rank, 'down and its actor was not re-spawned (respawnOnNodeLoss is off)');
    return e.rank;
  }

  private askOn(rank: number, name: string, msg: unknown, timeoutMs: number, reply: Reply): void {
    if (rank === this.rank) {
      if (this.host.has(name))
        this.host.ask(name, msg, timeoutMs).then(
          (v) => reply.resolve(v),
          (e: unknown) => reply.reject(e),
        );
      else reply.reject(notFound(name, this.rank));
      return;
    }
    let link: Link;
    try {
      link = this.node.linkTo(rank);
    } catch (err) {
      reply.reject(err);
      return;
    }
    this.asks.send(link, rank, name, msg, timeoutMs, reply);
  }

  private control(
    rank: number,
    verb: string,
    payload: unknown,
    timeoutMs = CONTROL_TIMEOUT_MS,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => this.askOn(rank, verb, payload, timeoutMs, { resolve, reject }));
  }

  /** Backpressure errors (CLUSTER_QUEUE_FULL, CLUSTER_FRAME_TOO_LARGE) reach the sender; a down node only
   * drops the tell (logged), as it would have been lost in flight anyway. */
  private sendTell(rank: number, name: string, msg: unknown): void {
    try {
      this.node.send(rank, { kind: Kind.TELL, from: this.rank, target: name, cid: 0, payload: msg });
    } catch (err) {
      if (!isDrError(err, ActorErrorCode.NODE_DOWN)) throw err;
      this.forget(name);
      this.warnDropped(name, err);
    }
  }

  private deliverTell(rank: number, name: string, msg: unknown): void {
    try {
      if (rank === this.rank) this.host.tell(name, msg);
      else this.sendTell(rank, name, msg);
    } catch (err) {
      this.warnDropped(name, err);
    }
  }

  private remember(name: string, rank: number): void {
    if (this.isHead) return;
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(name, rank);
  }

  private forget(name: string): void {
    this.cache.delete(name);
  }

  /** Tells cannot report failure to their sender; say so in the log, at most once a second. */
  private warnDropped(name: string, err: unknown): void {
    const now = Date.now();
    if (now - this.lastDropLog < 1_000) return;
    this.lastDropLog = now;
    this.log.warn({ actor: name, code: isDrError(err) ? err.code : undefined, err }, 'dropped a tell');
  }

  // ---- incoming -------------------------------------------------------------------------------------

  private onEnvelope(env: Envelope, link: Link): void {
    switch (env.kind) {
      case Kind.REPLY:
      case Kind.FAIL:
        this.asks.onReply(env);
        return;
      case Kind.TELL:
        this.onTell(env, link);
        return;
      case Kind.ASK:
        this.onAsk(env, link);
        return;
    }
  }

  private onTell(env: Envelope, link: Link): void {
    if (env.target.startsWith('$')) {
      if (env.target === '$state' && this.isHead) this.onRemoteState(env.payload as ActorInfo, link.peer);
      return;
    }
    if (this.host.has(env.target)) {
      this.deliverTell(this.rank, env.target, env.payload);
      if (this.host.queued(env.target) > this.throttleHigh) this.throttle(link, env.target);
      return;
    }
    // A client's tell, or a sender with a stale view: route it by the directory (at most one more hop,
    // since a node never forwards a tell the directory says is its own).
    this.forget(env.target);
    this.locate(env.target, CONTROL_TIMEOUT_MS).then(
      (r) =>
        r === this.rank && !this.host.has(env.target)
          ? this.warnDropped(env.target, notFound(env.target, this.rank))
          : this.deliverTell(r, env.target, env.payload),
      (err: unknown) => this.warnDropped(env.target, err),
    );
  }

  private onAsk(env: Envelope, link: Link): void {
    const args = Array.isArray(env.payload) ? (env.payload as unknown[]) : [];
    const msg = args[0];
    const t = args[1];
    const timeoutMs = typeof t === 'number' && t > 0 ? t : this.askTimeoutMs;
    const answer = new LinkReply(link, this.rank, env.cid);
    // The hot path: an actor hosted here answers straight onto the link (no promise; the asker times it),
    // and an idle one before this frame's callback ends.
    if (!env.target.startsWith('$') && this.host.has(env.target)) {
      this.host.askWith(env.target, msg, answer, true);
      return;
    }
    let p: Promise<unknown>;
    if (env.target.startsWith('$')) p = this.onControl(env.target, msg, link);
    else if ((link.peer ?? 0) < 0) p = this.ask(env.target, msg, { timeoutMs });
    else p = Promise.reject(notFound(env.target, this.rank));
    p.then(
      (v) => answer.resolve(v),
      (e: unknown) => answer.reject(e),
    );
  }

  private async onControl(verb: string, p: unknown, link: Link): Promise<unknown> {
    const arg = (p ?? {}) as Record<string, unknown>;
    switch (verb) {
      case '$spawn-local':
        return this.host.spawn(arg.spec as SpawnSpec, Number(arg.restarts ?? 0));
      case '$stop-local':
        await this.host.stopActor(String(arg.name));
        return null;
    }
    if (!this.isHead) throw new DrError('CLUSTER_NOT_HEAD', `'${verb}' is served by the head only`);
    switch (verb) {
      case '$spawn': {
        const spec = arg.spec as SpawnSpec;
        checkSpec(spec);
        const from = typeof arg.from === 'number' ? arg.from : (link.peer ?? 0);
        return this.placeAndSpawn(spec, from, 0);
      }
      case '$lookup':
        return this.lookupLocal(String(arg.name));
      case '$status':
        return this.status();
      case '$stop-actor':
        await this.stopNamed(String(arg.name));
        return null;
      case '$shutdown':
        this.log.warn({ by: link.peer }, 'cluster shutdown requested');
        this.node.broadcastShutdown();
        setTimeout(() => this.emit('shutdown'), 100).unref();
        return null;
      default:
        throw new DrError(
          'CLUSTER_UNKNOWN_VERB',
          `unknown control verb '${verb}'; is this node running the same dr version?`,
        );
    }
  }

  /**
   * End-to-end backpressure: when tells from a link fill an actor's mailbox past `throttleHigh`, stop
   * reading that link until the mailbox is down to a quarter of that. TCP then fills up, the sender's link queue
   * grows past its high-water mark, and the sender sees `writable` false instead of tells being dropped here.
   */
  private throttle(link: Link, name: string): void {
    if (link.isPaused) return;
    link.pause();
    const timer = setInterval(() => {
      if (link.isOpen && this.host.queued(name) > this.throttleHigh / 4) return;
      clearInterval(timer);
      if (link.isOpen) link.resume();
    }, THROTTLE_POLL_MS);
  }

  // ---- head: directory, placement, re-spawn ---------------------------------------------------------

  private async placeAndSpawn(spec: SpawnSpec, requester: number, restarts: number): Promise<ActorRef> {
    const existing = this.directory.get(spec.name);
    if (
      existing !== undefined &&
      (existing.state === 'running' || existing.state === 'restarting' || existing.state === 'starting')
    ) {
      throw new DrError(
        ActorErrorCode.NAME_TAKEN,
        `an actor named '${spec.name}' already runs on node ${existing.rank}; pick another name or stop it first`,
      );
    }
    const rank = this.choose(spec.placement, requester);
    const entry: DirEntry = { spec, rank, state: 'starting', restarts };
    this.directory.set(spec.name, entry);
    try {
      if (rank === this.rank) await this.host.spawn(spec, restarts);
      else await this.control(rank, '$spawn-local', { spec, restarts });
    } catch (err) {
      if (this.directory.get(spec.name) === entry) this.directory.delete(spec.name);
      throw err;
    }
    if (entry.state === 'starting') entry.state = 'running';
    this.log.info({ actor: spec.name, kind: spec.kind, node: rank }, 'actor placed');
    return { name: spec.name, node: rank };
  }

  private load(): Map<number, number> {
    const load = new Map<number, number>();
    for (const e of this.directory.values()) {
      if (e.state === 'running' || e.state === 'restarting' || e.state === 'starting')
        load.set(e.rank, (load.get(e.rank) ?? 0) + 1);
    }
    return load;
  }

  private choose(placement: Placement | undefined, requester: number): number {
    const alive = this.node.table().filter((m) => m.state === 'alive');
    const unsatisfiable = (why: string) => new DrError(ActorErrorCode.PLACEMENT_UNSATISFIABLE, why);
    let candidates: Member[];
    switch (placement?.kind) {
      case 'rank': {
        const m = alive.find((a) => a.rank === placement.rank);
        if (m === undefined)
          throw unsatisfiable(`node ${placement.rank} is not alive; start it or place the actor elsewhere`);
        return m.rank;
      }
      case 'local':
        if (alive.some((a) => a.rank === requester)) return requester;
        candidates = alive;
        break;
      case 'resource':
        candidates = alive.filter((m) => offers(m.resources, placement.resource));
        if (candidates.length === 0) {
          throw unsatisfiable(
            `no live node offers '${placement.resource}'; join one that does (GPUs via nvidia-smi or DR_GPUS, others via --label ${placement.resource}=...)`,
          );
        }
        break;
      default:
        candidates = alive;
    }
    const load = this.load();
    let best: Member | undefined;
    for (const m of candidates)
      if (best === undefined || (load.get(m.rank) ?? 0) < (load.get(best.rank) ?? 0)) best = m;
    if (best === undefined) throw unsatisfiable('no live node to place the actor on');
    return best.rank;
  }

  private async stopNamed(name: string): Promise<void> {
    const e = this.directory.get(name);
    if (e === undefined) throw notFound(name, this.rank);
    this.directory.delete(name);
    if (e.state === 'lost') return;
    if (e.rank === this.rank) await this.host.stopActor(name);
    else await this.control(e.rank, '$stop-local', { name });
  }

  private onLocalState(info: ActorInfo): void {
    if (this.isHead) {
      this.onRemoteState(info, this.rank);
      return;
    }
    if (this.stopped) return;
    try {
      this.node.send(0, { kind: Kind.TELL, from: this.rank, target: '$state', cid: 0, payload: info });
    } catch {
      // The head is away; the state is re-sent with the actor list when this node rejoins.
    }
  }

  private onRemoteState(info: ActorInfo, from: number | undefined): void {
    const e = this.directory.get(info.name);
    if (e === undefined || e.rank !== from || e.rank !== info.node) return;
    if (info.state === 'stopped') {
      this.directory.delete(info.name);
      return;
    }
    e.state = info.state;
    e.restarts = info.restarts;
  }

  /** Head: a worker (re)joined with the actors it hosts. Rebuild their entries (after a head restart) and
   * tell it to stop any that were re-spawned elsewhere while it was away. */
  private onWorkerJoin(member: Member, state: unknown): unknown {
    const hosted = ((state as { actors?: unknown } | null)?.actors ?? []) as Array<{
      spec: SpawnSpec;
      restarts: number;
    }>;
    const stop: string[] = [];
    for (const { spec, restarts } of Array.isArray(hosted) ? hosted : []) {
      const e = this.directory.get(spec.name);
      const elsewhere =
        e !== undefined &&
        e.rank !== member.rank &&
        e.state !== 'lost' &&
        e.state !== 'stopped' &&
        e.state !== 'failed';
      if (elsewhere) stop.push(spec.name);
      else this.directory.set(spec.name, { spec, rank: member.rank, state: 'running', restarts });
    }
    return { stop };
  }

  /** Worker: the head's answer to our join. */
  private onWelcome(extra: unknown): void {
    const stop = (extra as { stop?: unknown } | null)?.stop;
    if (!Array.isArray(stop)) return;
    for (const name of stop) {
      this.log.warn(
        { actor: name },
        'stopping a local actor that was re-spawned elsewhere while this node was away',
      );
      void this.host.stopActor(String(name));
    }
  }

  private onMember({ type, member }: MemberEvent): void {
    if (member.rank === this.rank || (type !== 'down' && type !== 'left')) return;
    const err = nodeDown(member.rank, type);
    this.asks.failRank(member.rank, err);
    for (const [name, rank] of this.cache) if (rank === member.rank) this.cache.delete(name);
    if (this.isHead) void this.recover(member.rank);
  }

  /** Head: re-spawn (per spec) or mark lost every actor that ran on a node that went down or left. */
  private async recover(rank: number): Promise<void> {
    const orphans = [...this.directory].filter(([, e]) => e.rank === rank && e.state !== 'lost');
    for (const [name, e] of orphans) {
      if (this.directory.get(name) !== e) continue;
      if (e.spec.respawnOnNodeLoss !== true) {
        e.state = 'lost';
        this.log.warn({ actor: name, node: rank }, 'actor lost with its node (respawnOnNodeLoss is off)');
        continue;
      }
      this.directory.delete(name);
      const pinned = e.spec.placement?.kind === 'rank' || e.spec.placement?.kind === 'local';
      const spec: SpawnSpec = pinned ? { ...e.spec, placement: { kind: 'spread' } } : e.spec;
      try {
        const ref = await this.placeAndSpawn(spec, this.rank, e.restarts);
        this.log.warn(
          { actor: name, from: rank, node: ref.node },
          'actor re-spawned after its node was lost',
        );
      } catch (err) {
        this.directory.set(name, { ...e, state: 'lost' });
        this.log.error({ actor: name, err }, 'could not re-spawn an actor from a lost node');
      }
    }
  }
}

function checkSpec(spec: SpawnSpec): void {
  if (
    typeof spec?.kind !== 'string' ||
    spec.kind === '' ||
    typeof spec.name !== 'string' ||
    spec.name === '' ||
    spec.name.startsWith('$')
  ) {
    throw new DrError(
      'ACTOR_BAD_SPEC',
      "a spawn needs a non-empty kind and a name that does not start with '$'",
    );
  }
}
