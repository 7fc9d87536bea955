/**
 * Hosts the incarnations of the actors placed on this node, on nact: one nact actor per named actor gives
 * the mailbox and one-message-at-a-time processing; supervision (restart with backoff, stop, escalate) is
 * decided here from the actor's SupervisionPolicy. Knows nothing about other nodes: the local system and the
 * node runtime route to it by name.
 *
 * With `maxConcurrency` N > 1 a DRAIN starts receives without awaiting them, up to N in flight; each one
 * settles its own reply when it finishes and frees a place. A receive that rejects later is handed back to
 * nact as a crash on the next DRAIN, so every failure goes through the same supervision path.
 *
 * An ask that arrives from the wire for an idle actor is drained at once, in the callback of the frame that
 * carried it, instead of on nact's next turn, so its reply leaves in that same callback: on a busy two-core
 * host the serving process is often preempted between reading an ask and writing its reply, and the shorter
 * that window the fewer asks wait out a preemption (measured in cluster/README.md). A receive that fails
 * there is raised through nact like a concurrent one, so supervision is unchanged.
 */
import nact from 'nact';
import { DrError } from '../config/errors.ts';
import type { Logger } from '../config/log.ts';
import {
  ActorErrorCode,
  type Actor,
  type ActorContext,
  type ActorFactory,
  type ActorInfo,
  type ActorKinds,
  type ActorRef,
  type ActorState,
  type SpawnSpec,
  type SupervisionPolicy,
} from './actor.ts';
import { RestartBudget, resolvePolicy } from './supervision.ts';

export interface ActorHostOptions {
  kinds: ActorKinds;
  rank: number;
  logger: Logger;
  /** Builds the context an incarnation sees (its tell/ask/spawn go through the owning system). */
  contextFor(self: ActorRef, log: Logger): ActorContext;
  /** Messages waiting per actor before tell/ask fail with ACTOR_MAILBOX_FULL. */
  mailboxCapacity?: number;
  /** Told about every state change (the node runtime reports them to the head's directory). */
  onStateChange?(info: ActorInfo): void;
}

/** Where an ask's outcome goes: settled exactly once, by the actor's reply, its failure, or its removal. */
export interface Reply {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

interface Delivery {
  msg: unknown;
  reply: Reply | undefined;
}

/** The one message nact carries for an actor: "drain your inbox". */
type Drain = 0;
const DRAIN: Drain = 0;
/** Deliveries handled per nact turn before yielding to the event loop (fairness between actors and I/O). */
const DRAIN_BATCH = 512;

interface Slot {
  readonly spec: SpawnSpec;
  readonly factory: ActorFactory<never>;
  readonly policy: SupervisionPolicy;
  readonly budget: RestartBudget;
  readonly ctx: ActorContext;
  readonly log: Logger;
  actor: Actor;
  state: ActorState;
  restarts: number;
  /** Deliveries not yet handled, from index `head` on (a compacting array queue). */
  inbox: Delivery[];
  head: number;
  /** A DRAIN is queued or running in nact. */
  scheduled: boolean;
  /** The delivery being handled (what supervision logs and fails when the actor throws). */
  current: Delivery | undefined;
  /** Most receives in flight at once (SpawnSpec.maxConcurrency, else what the incarnation declares). */
  maxConcurrency: number;
  /** Deliveries whose receive is running (maxConcurrency > 1 only). */
  readonly inFlight: Set<Delivery>;
  /** Bumped at every restart: a late outcome of an earlier incarnation is dropped. */
  generation: number;
  /** A receive that failed outside a nact turn (a concurrent one, or one drained at once), waiting for the
   * next DRAIN to raise it to supervision. */
  failure: { d: Delivery | undefined; err: unknown } | undefined;
  /** Asks not answered yet; failed with ACTOR_STOPPED when the actor is removed. An ask that timed out stays
   * here until its message is handled (bounded by the mailbox capacity plus maxConcurrency). An outcome
   * settles a reply only while its delivery is still here, so each reply is settled exactly once. */
  readonly pending: Set<Delivery>;
  ref: nact.Ref<Drain> | undefined;
}

const DEFAULT_MAILBOX_CAPACITY = 100_000;

export class ActorHost {
  private readonly slots = new Map<string, Slot>();
  private readonly system = nact.start();
  private readonly capacity: number;
  private seq = 0;
  private closed = false;

  constructor(private readonly opts: ActorHostOptions) {
    this.capacity = opts.mailboxCapacity ?? DEFAULT_MAILBOX_CAPACITY;
  }

  has(name: string): boolean {
    return this.slots.has(name);
  }

  /** Messages waiting in `name`'s mailbox (0 when there is no such actor). */
  queued(name: string): number {
    const slot = this.slots.get(name);
    return slot === undefined ? 0 : slot.inbox.length - slot.head;
  }

  get mailboxCapacity(): number {
    return this.capacity;
  }

  /** Build the first incarnation and start its mailbox. Factory errors fail the spawn (nothing is left behind). */
  async spawn(spec: SpawnSpec, restarts = 0): Promise<ActorRef> {
    if (this.closed)
      throw new DrError(ActorErrorCode.STOPPED, `this node is shutting down; cannot spawn '${spec.name}'`);
    if (spec.maxConcurrency !== undefined) concurrencyOf(spec, undefined);
    const factory = this.opts.kinds.get(spec.kind);
    if (factory === undefined) {
      throw new DrError(
        ActorErrorCode.KIND_UNKNOWN,
        `actor kind '${spec.kind}' is not registered on node ${this.opts.rank}; add it to actors/kinds.ts (or the --kinds module)`,
        { details: { kind: spec.kind, known: [...this.opts.kinds.keys()] } },
      );
    }
    if (this.slots.has(spec.name)) {
      throw new DrError(
        ActorErrorCode.NAME_TAKEN,
        `an actor named '${spec.name}' already runs here; pick another name or stop it first`,
      );
    }
    const self: ActorRef = { name: spec.name, node: this.opts.rank };
    const log = this.opts.logger.child({ actor: spec.name, kind: spec.kind });
    const ctx = this.opts.contextFor(self, log);
    let actor: Actor;
    try {
      actor = await factory(spec.args as never, ctx);
    } catch (err) {
      throw new DrError(
        ActorErrorCode.SPAWN_FAILED,
        `actor '${spec.name}' (${spec.kind}) failed to start: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
    let maxConcurrency: number;
    try {
      maxConcurrency = concurrencyOf(spec, actor);
    } catch (err) {
      await stopQuietly(actor, log);
      throw err;
    }
    if (this.slots.has(spec.name) || this.closed) {
      await stopQuietly(actor, log);
      throw new DrError(
        ActorErrorCode.NAME_TAKEN,
        `an actor named '${spec.name}' was spawned concurrently; pick another name`,
      );
    }
    const policy = resolvePolicy(spec.supervision);
    const slot: Slot = {
      spec,
      factory,
      policy,
      budget: new RestartBudget(policy),
      ctx,
      log,
      actor,
      state: 'running',
      restarts,
      inbox: [],
      head: 0,
      scheduled: false,
      current: undefined,
      maxConcurrency,
      inFlight: new Set(),
      generation: 0,
      failure: undefined,
      pending: new Set(),
      ref: undefined,
    };
    slot.ref = nact.spawn(this.system, (s: Slot, _d: Drain) => this.handle(s), `a${++this.seq}`, {
      initialState: slot,
      onCrash: (
        _d: Drain | undefined,
        err: Error | undefined,
        sctx: nact.SupervisionContext<Drain, nact.Ref<never>>,
      ) => this.onCrash(slot, err, sctx),
    });
    this.slots.set(spec.name, slot);
    this.emit(slot);
    return self;
  }

  tell(name: string, msg: unknown): void {
    this.deliver(this.slotOrThrow(name), { msg, reply: undefined });
  }

  /** Ask with a timeout (a remote asker's node uses `askWith`: the asker keeps the clock). */
  ask(name: string, msg: unknown, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new DrError(
              ActorErrorCode.ASK_TIMEOUT,
              `ask to '${name}' got no reply within ${timeoutMs} ms; raise timeoutMs or check the actor's logs`,
              { details: { actor: name, timeoutMs } },
            ),
          ),
        timeoutMs,
      );
      this.askWith(name, msg, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /**
   * An ask without a promise or a timer: the outcome goes straight to `reply` (the node runtime answers a
   * remote ask on its link this way; the asker keeps the clock). Fails `reply` when there is no such actor,
   * its mailbox is full, or it is removed before answering. With `now` (an ask from the wire), an idle actor
   * starts on it before this returns, and its reply is settled in this callback or its promise jobs.
   */
  askWith(name: string, msg: unknown, reply: Reply, now = false): void {
    const slot = this.slots.get(name);
    if (slot === undefined) {
      reply.reject(notFound(name, this.opts.rank));
      return;
    }
    const d: Delivery = { msg, reply };
    slot.pending.add(d);
    try {
      this.deliver(slot, d, now);
    } catch (err) {
      settle(slot, d, false, err);
    }
  }

  async stopActor(name: string): Promise<void> {
    const slot = this.slots.get(name);
    if (slot === undefined) return;
    await this.retire(slot, 'stopped');
  }

  list(): ActorInfo[] {
    return [...this.slots.values()].map((s) => this.info(s));
  }

  /** Specs of the actors hosted here with their restart counts (re-registration after a head restart). */
  hosted(): Array<{ spec: SpawnSpec; restarts: number }> {
    return [...this.slots.values()].map((s) => ({ spec: s.spec, restarts: s.restarts }));
  }

  async stopAll(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.slots.values()].map((s) => this.retire(s, 'stopped')));
    nact.stop(this.system);
  }

  private slotOrThrow(name: string): Slot {
    const slot = this.slots.get(name);
    if (slot === undefined) throw notFound(name, this.opts.rank);
    return slot;
  }

  /**
   * Queue a delivery in the actor's inbox and make sure nact has a DRAIN for it. nact still runs one DRAIN
   * at a time per actor and supervises it; a DRAIN handles up to DRAIN_BATCH deliveries, so a burst costs
   * one scheduler turn instead of one per message.
   */
  private deliver(slot: Slot, d: Delivery, now = false): void {
    const queued = slot.inbox.length - slot.head;
    if (queued >= this.capacity) {
      throw new DrError(
        ActorErrorCode.MAILBOX_FULL,
        `actor '${slot.spec.name}' has ${queued} messages waiting (capacity ${this.capacity}); slow down or add replicas`,
      );
    }
    slot.inbox.push(d);
    this.kick(slot, now);
  }

  /** Make sure the inbox gets drained: on nact's next turn, or with `now` in this callback (the same drain
   * loop, run outside nact; anything that arrives while it runs queues behind it, as in a nact turn). */
  private kick(slot: Slot, now = false): void {
    if (slot.scheduled) return;
    if (
      slot.failure === undefined &&
      (slot.inbox.length === slot.head || slot.inFlight.size >= slot.maxConcurrency)
    )
      return;
    slot.scheduled = true;
    if (!now || slot.failure !== undefined) {
      nact.dispatch(slot.ref as nact.Ref<Drain>, DRAIN);
      return;
    }
    const generation = slot.generation;
    this.handle(slot).then(undefined, (err: unknown) => {
      if (slot.generation !== generation) return;
      // The receive being handled failed: hand it to nact, whose next DRAIN raises it to supervision.
      slot.failure = { d: slot.current, err };
      slot.current = undefined;
      slot.scheduled = false;
      this.kick(slot);
    });
  }

  private take(slot: Slot): Delivery | undefined {
    if (slot.head === slot.inbox.length) {
      if (slot.head > 0) {
        slot.inbox = [];
        slot.head = 0;
      }
      return undefined;
    }
    const d = slot.inbox[slot.head] as Delivery;
    slot.inbox[slot.head++] = undefined as unknown as Delivery;
    if (slot.head >= 1_024 && slot.head * 2 >= slot.inbox.length) {
      slot.inbox = slot.inbox.slice(slot.head);
      slot.head = 0;
    }
    return d;
  }

  private async handle(slot: Slot): Promise<Slot> {
    if (slot.failure !== undefined) {
      const { d, err } = slot.failure;
      slot.failure = undefined;
      slot.current = d;
      throw err;
    }
    for (let n = 0; n < DRAIN_BATCH; n++) {
      if (slot.inFlight.size >= slot.maxConcurrency) {
        slot.scheduled = false;
        return slot;
      }
      const d = this.take(slot);
      if (d === undefined) {
        slot.scheduled = false;
        return slot;
      }
      slot.current = d;
      let value = slot.actor.receive(d.msg, slot.ctx);
      if (isThenable(value)) {
        if (slot.maxConcurrency === 1) value = await value;
        else {
          this.track(slot, d, value);
          slot.current = undefined;
          continue;
        }
      }
      slot.current = undefined;
      settle(slot, d, true, value);
    }
    nact.dispatch(slot.ref as nact.Ref<Drain>, DRAIN);
    return slot;
  }

  /** Settle a concurrent receive's reply when it finishes; a rejection also goes to supervision (once per
   * incarnation: later ones only fail their own asks). */
  private track(slot: Slot, d: Delivery, running: PromiseLike<unknown>): void {
    const generation = slot.generation;
    slot.inFlight.add(d);
    running.then(
      (value) => {
        if (slot.generation !== generation) return;
        slot.inFlight.delete(d);
        settle(slot, d, true, value);
        this.kick(slot);
      },
      (err: unknown) => {
        if (slot.generation !== generation) return;
        slot.inFlight.delete(d);
        if (slot.failure !== undefined) {
          settle(slot, d, false, err);
          return;
        }
        slot.failure = { d, err };
        this.kick(slot);
      },
    );
  }

  private async onCrash(
    slot: Slot,
    err: Error | undefined,
    sctx: nact.SupervisionContext<Drain, nact.Ref<never>>,
  ): Promise<symbol> {
    const d = slot.current;
    slot.current = undefined;
    if (d !== undefined) settle(slot, d, false, err);
    this.abandonInFlight(slot);
    const { strategy } = slot.policy;
    slot.log.error(
      { err, failingMessage: describe(d?.msg), strategy },
      'actor failed while handling a message',
    );
    if (this.closed || slot.state === 'stopped') return sctx.stop as symbol;
    if (strategy === 'stop') return this.retireFromCrash(slot, 'stopped', sctx);
    if (strategy === 'escalate') return this.retireFromCrash(slot, 'failed', sctx);
    for (;;) {
      const decision = slot.budget.onFailure(Date.now());
      if (!decision.restart) {
        slot.log.error(
          { maxRestarts: slot.policy.maxRestarts, windowMs: slot.policy.windowMs },
          'restart budget exhausted; actor escalated and marked failed',
        );
        return this.retireFromCrash(slot, 'failed', sctx);
      }
      slot.state = 'restarting';
      this.emit(slot);
      await stopQuietly(slot.actor, slot.log);
      await new Promise((r) => setTimeout(r, decision.backoffMs));
      if (this.closed || this.slots.get(slot.spec.name) !== slot) return sctx.stop as symbol;
      try {
        const actor = await slot.factory(slot.spec.args as never, slot.ctx);
        try {
          slot.maxConcurrency = concurrencyOf(slot.spec, actor);
        } catch (err) {
          await stopQuietly(actor, slot.log);
          throw err;
        }
        slot.actor = actor;
        slot.restarts++;
        slot.state = 'running';
        slot.log.warn({ restarts: slot.restarts, backoffMs: decision.backoffMs }, 'actor restarted');
        this.emit(slot);
        slot.scheduled = false;
        this.kick(slot);
        return sctx.resume as symbol;
      } catch (factoryErr) {
        slot.log.error({ err: factoryErr }, 'actor factory failed during restart');
      }
    }
  }

  /** The incarnation failed: the receives it still runs are given up (their asks fail now, their results
   * are dropped) rather than waited for, so a hung call cannot hold up the restart. */
  private abandonInFlight(slot: Slot): void {
    slot.generation++;
    slot.failure = undefined;
    if (slot.inFlight.size === 0) return;
    const err = new DrError(
      ActorErrorCode.STOPPED,
      `actor '${slot.spec.name}' failed on another message while this one was in flight; its incarnation was discarded`,
    );
    for (const d of slot.inFlight) settle(slot, d, false, err);
    slot.inFlight.clear();
  }

  private retireFromCrash(
    slot: Slot,
    state: 'stopped' | 'failed',
    sctx: nact.SupervisionContext<Drain, nact.Ref<never>>,
  ): symbol {
    void this.retire(slot, state, false);
    return sctx.stop as symbol;
  }

  /** Remove the actor: run its stop hook, fail what waits in its mailbox. `stopMailbox` is false when nact
   * stops it itself (supervision returned `stop`). */
  private async retire(slot: Slot, state: 'stopped' | 'failed', stopMailbox = true): Promise<void> {
    if (this.slots.get(slot.spec.name) !== slot) return;
    this.slots.delete(slot.spec.name);
    slot.state = state;
    if (stopMailbox && slot.ref !== undefined) nact.stop(slot.ref);
    const stopped = new DrError(ActorErrorCode.STOPPED, `actor '${slot.spec.name}' stopped before answering`);
    slot.generation++;
    slot.inFlight.clear();
    for (const d of [...slot.pending]) settle(slot, d, false, stopped);
    slot.inbox = [];
    slot.head = 0;
    await stopQuietly(slot.actor, slot.log);
    this.emit(slot);
  }

  private info(s: Slot): ActorInfo {
    return {
      name: s.spec.name,
      kind: s.spec.kind,
      node: this.opts.rank,
      state: s.state,
      restarts: s.restarts,
    };
  }

  private emit(slot: Slot): void {
    this.opts.onStateChange?.(this.info(slot));
  }
}

export function notFound(name: string, rank: number): DrError {
  return new DrError(
    ActorErrorCode.NOT_FOUND,
    `no actor named '${name}' (asked on node ${rank}); spawn it first or check \`dr status\``,
    {
      details: { actor: name },
    },
  );
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The spec's maxConcurrency, else the incarnation's own, else 1; anything but an integer >= 1 is refused. */
function concurrencyOf(spec: SpawnSpec, actor: Actor | undefined): number {
  const n = spec.maxConcurrency ?? actor?.maxConcurrency ?? 1;
  if (Number.isInteger(n) && n >= 1) return n;
  const from = spec.maxConcurrency === undefined ? `kind '${spec.kind}' declares` : 'the spawn spec sets';
  throw new DrError(
    ActorErrorCode.BAD_SPEC,
    `maxConcurrency of '${spec.name}' must be an integer >= 1 but ${from} ${String(n)}`,
  );
}

/** Settle an ask's reply, once: only while its delivery is pending (tells have no reply). */
function settle(slot: Slot, d: Delivery, ok: boolean, outcome: unknown): void {
  if (d.reply === undefined || !slot.pending.delete(d)) return;
  if (ok) d.reply.resolve(outcome);
  else d.reply.reject(outcome);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | null)?.then === 'function';
}

async function stopQuietly(actor: Actor, log: Logger): Promise<void> {
  try {
    await actor.stop?.();
  } catch (err) {
    log.warn({ err }, 'actor stop hook threw');
  }
}

/** A bounded description of a message for logs: a week of failures must not log megabytes each. */
function describe(msg: unknown): unknown {
  let text: string;
  try {
    text = JSON.stringify(msg) ?? String(msg);
  } catch {
    text = String(msg);
  }
  return text.length > 2_000 ? `${text.slice(0, 2_000)}… (${text.length} chars)` : text;
}
