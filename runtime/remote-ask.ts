/**
 * Asks in flight over links: correlation ids, timeouts (all on one DeadlineQueue timer), and failing fast
 * when the link they went out on closes (a reply can only come back on that link) or their node is declared
 * down. Shared by the node runtime and the client, so both fail the same way.
 */
import { DrError, isDrError } from '../config/errors.ts';
import type { Link } from '../cluster/link.ts';
import { Kind, type Envelope, type WireError } from '../cluster/wire.ts';
import { ActorErrorCode } from './actor.ts';
import type { Reply } from './actor-host.ts';
import { DeadlineEntry, DeadlineQueue } from './deadline-queue.ts';

/** One ask in flight: its deadline entry is the pending record itself (one object per ask). */
class PendingAsk extends DeadlineEntry {
  constructor(
    readonly cid: number,
    readonly reply: Reply,
    readonly link: Link,
    readonly rank: number,
    readonly target: string,
    readonly timeoutMs: number,
  ) {
    super();
  }
}

export class PendingAsks {
  private readonly pending = new Map<number, PendingAsk>();
  private readonly deadlines = new DeadlineQueue<PendingAsk>((p) => this.expire(p));
  private seq = 0;

  constructor(private readonly self: number) {}

  get size(): number {
    return this.pending.size;
  }

  /** Send an ASK for `target` on `link` (to node `rank`) and wait for its REPLY or FAIL. */
  ask(link: Link, rank: number, target: string, msg: unknown, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.send(link, rank, target, msg, timeoutMs, { resolve, reject }),
    );
  }

  /** Send an ASK and settle `reply` exactly once: with the REPLY, the FAIL, ASK_TIMEOUT after `timeoutMs`,
   * or the error that closed its link or downed its node. */
  send(link: Link, rank: number, target: string, msg: unknown, timeoutMs: number, reply: Reply): void {
    const p = new PendingAsk(++this.seq, reply, link, rank, target, timeoutMs);
    this.pending.set(p.cid, p);
    this.deadlines.add(p, timeoutMs);
    try {
      link.send({ kind: Kind.ASK, from: this.self, target, cid: p.cid, payload: [msg, timeoutMs] });
    } catch (err) {
      this.settle(p.cid, undefined, err);
    }
  }

  /** Route a REPLY or FAIL envelope to its ask. Unknown ids (timed out already) are ignored. */
  onReply(env: Envelope): void {
    if (env.kind === Kind.REPLY) this.settle(env.cid, env.payload, undefined);
    else this.settle(env.cid, undefined, fromWireError(env.payload));
  }

  failLink(link: Link, err: DrError): void {
    for (const [cid, p] of this.pending) if (p.link === link) this.settle(cid, undefined, err);
  }

  failRank(rank: number, err: DrError): void {
    for (const [cid, p] of this.pending) if (p.rank === rank) this.settle(cid, undefined, err);
  }

  failAll(err: DrError): void {
    for (const cid of [...this.pending.keys()]) this.settle(cid, undefined, err);
  }

  private expire(p: PendingAsk): void {
    // The queue hands over every entry due in one tick before expiring any; settling one of them (a
    // failure handler that fails its link, say) can settle another of them first, which then must stay settled.
    if (!this.pending.delete(p.cid)) return;
    p.reply.reject(
      new DrError(
        ActorErrorCode.ASK_TIMEOUT,
        `ask to '${p.target}' on node ${p.rank} got no reply within ${p.timeoutMs} ms; raise timeoutMs or check that node's logs`,
        { details: { actor: p.target, node: p.rank, timeoutMs: p.timeoutMs } },
      ),
    );
  }

  private settle(cid: number, value: unknown, err: unknown): void {
    const p = this.pending.get(cid);
    if (p === undefined) return;
    this.pending.delete(cid);
    this.deadlines.remove(p);
    if (err === undefined) p.reply.resolve(value);
    else p.reply.reject(err);
  }
}

/** How a failure crosses the wire: a DrError keeps its code; anything else becomes ACTOR_FAILED. */
export function toWireError(err: unknown): WireError {
  if (isDrError(err))
    return err.details === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, details: err.details };
  return { code: ActorErrorCode.FAILED, message: err instanceof Error ? err.message : String(err) };
}

export function fromWireError(payload: unknown): DrError {
  const w = payload as Partial<WireError> | null;
  const code = typeof w?.code === 'string' ? w.code : ActorErrorCode.FAILED;
  const message = typeof w?.message === 'string' ? w.message : 'remote failure without a message';
  const details = typeof w?.details === 'object' && w.details !== null ? w.details : undefined;
  return new DrError(code, message, { details });
}

/** Answers an ASK on the link it came from; a reply that cannot be encoded fails the ask instead. One object
 * per remote ask (methods on the prototype, no closures). */
export class LinkReply implements Reply {
  constructor(
    private readonly link: Link,
    private readonly self: number,
    private readonly cid: number,
  ) {}

  resolve(value: unknown): void {
    this.send(Kind.REPLY, value);
  }

  reject(error: unknown): void {
    this.send(Kind.FAIL, toWireError(error));
  }

  private send(kind: Kind, payload: unknown): void {
    const { link, self, cid } = this;
    if (!link.isOpen) return;
    try {
      link.send({ kind, from: self, target: '', cid, payload });
    } catch (err) {
      if (kind === Kind.FAIL || !link.isOpen) return;
      try {
        link.send({ kind: Kind.FAIL, from: self, target: '', cid, payload: toWireError(err) });
      } catch {
        // The link is saturated or closing: the asker's timeout or link-close handling reports it.
      }
    }
  }
}
