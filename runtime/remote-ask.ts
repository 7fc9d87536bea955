/**
 * Asks in flight over links: correlation ids, timeouts, and failing fast when the link they went out on
 * closes (a reply can only come back on that link) or their node is declared down. Shared by the node
 * runtime and the client, so both fail the same way.
 */
import { DrError, isDrError } from '../config/errors.ts';
import type { Link } from '../cluster/link.ts';
import { Kind, type Envelope, type WireError } from '../cluster/wire.ts';
import { ActorErrorCode } from './actor.ts';

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
  link: Link;
  rank: number;
}

export class PendingAsks {
  private readonly pending = new Map<number, Pending>();
  private seq = 0;

  constructor(private readonly self: number) {}

  get size(): number {
    return this.pending.size;
  }

  /** Send an ASK for `target` on `link` (to node `rank`) and wait for its REPLY or FAIL. */
  ask(link: Link, rank: number, target: string, msg: unknown, timeoutMs: number): Promise<unknown> {
    const cid = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(cid);
        reject(
          new DrError(
            ActorErrorCode.ASK_TIMEOUT,
            `ask to '${target}' on node ${rank} got no reply within ${timeoutMs} ms; raise timeoutMs or check that node's logs`,
            {
              details: { actor: target, node: rank, timeoutMs },
            },
          ),
        );
      }, timeoutMs);
      this.pending.set(cid, { resolve, reject, timer, link, rank });
      try {
        link.send({ kind: Kind.ASK, from: this.self, target, cid, payload: [msg, timeoutMs] });
      } catch (err) {
        this.settle(cid, undefined, err);
      }
    });
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

  private settle(cid: number, value: unknown, err: unknown): void {
    const p = this.pending.get(cid);
    if (p === undefined) return;
    this.pending.delete(cid);
    clearTimeout(p.timer);
    if (err === undefined) p.resolve(value);
    else p.reject(err);
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

/** Reply to an ASK on the link it came from; a reply that cannot be encoded fails the ask instead. */
export function reply(
  link: Link,
  self: number,
  cid: number,
  outcome: { value: unknown } | { error: unknown },
): void {
  if (!link.isOpen) return;
  const env: Envelope =
    'value' in outcome
      ? { kind: Kind.REPLY, from: self, target: '', cid, payload: outcome.value }
      : { kind: Kind.FAIL, from: self, target: '', cid, payload: toWireError(outcome.error) };
  try {
    link.send(env);
  } catch (err) {
    if (env.kind === Kind.FAIL || !link.isOpen) return;
    try {
      link.send({ kind: Kind.FAIL, from: self, target: '', cid, payload: toWireError(err) });
    } catch {
      // The link is saturated or closing: the asker's timeout or link-close handling reports it.
    }
  }
}
