/**
 * The caller's side of deferred replies: a `tool-inbox` actor placed in the caller's own process receives
 * the `tool.reply` tells and resolves the matching pending call. `ToolCaller.call` looks like an ask but
 * lets the tool actor serve many calls at once. A call that gets an ordinary reply instead of an
 * acknowledgement (an actor answering directly, e.g. a refused request) resolves with that reply.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import { ActorErrorCode, type ActorContext, type ActorFactory } from '../../runtime/actor.ts';
import type { ToolAccepted } from './protocol.ts';
import { toolReplySchema } from './protocol.ts';

interface Pending {
  resolve(reply: unknown): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

/** Inbox name -> its pending calls. Process-wide because the inbox actor and its callers share a process. */
const inboxes = new Map<string, Map<string, Pending>>();

export const toolInboxActor: ActorFactory<unknown> = (_args, ctx) => ({
  receive(raw) {
    const parsed = toolReplySchema.safeParse(raw);
    if (!parsed.success) {
      ctx.log.warn({ actor: ctx.self.name }, 'tool inbox dropped a message that is not a tool.reply');
      return undefined;
    }
    const pending = inboxes.get(ctx.self.name)?.get(parsed.data.callId);
    if (pending === undefined) return undefined; // timed out already
    inboxes.get(ctx.self.name)?.delete(parsed.data.callId);
    clearTimeout(pending.timer);
    pending.resolve(parsed.data.reply);
    return undefined;
  },
});

export class ToolCaller {
  private seq = 0;

  private constructor(
    private readonly ask: ActorContext['ask'],
    readonly inbox: string,
    private readonly pending: Map<string, Pending>,
  ) {}

  /** Spawns this caller's inbox actor (`tool-inbox/<owner>`) in the caller's process, or reuses it. */
  static async create(ctx: Pick<ActorContext, 'ask' | 'spawn'>, owner: string): Promise<ToolCaller> {
    const inbox = `tool-inbox/${owner}`;
    try {
      await ctx.spawn({ kind: 'tool-inbox', name: inbox, placement: { kind: 'local' } });
    } catch (err) {
      if (!isDrError(err, ActorErrorCode.NAME_TAKEN)) throw err;
    }
    let pending = inboxes.get(inbox);
    if (pending === undefined) {
      pending = new Map();
      inboxes.set(inbox, pending);
    }
    return new ToolCaller((target, msg, options) => ctx.ask(target, msg, options), inbox, pending);
  }

  /** Sends `msg` to `target` asking for a deferred reply; resolves with the tool's reply. */
  async call<R>(target: string, msg: object, timeoutMs: number): Promise<R> {
    const callId = `${++this.seq}`;
    const result = new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(callId);
        reject(
          new DrError(
            'TOOL_CALL_TIMEOUT',
            `${target} did not answer call ${callId} within ${timeoutMs} ms; raise the tool timeout or add tool actors`,
            {
              details: { target, timeoutMs },
            },
          ),
        );
      }, timeoutMs);
      this.pending.set(callId, { resolve: resolve as (r: unknown) => void, reject, timer });
    });
    let ack: ToolAccepted | R;
    try {
      ack = await this.ask<ToolAccepted | R>(target, { ...msg, replyTo: this.inbox, callId }, { timeoutMs });
    } catch (err) {
      this.settle(callId);
      throw err;
    }
    if ((ack as ToolAccepted | undefined)?.type !== 'tool.accepted') {
      this.settle(callId);
      return ack as R;
    }
    return result;
  }

  private settle(callId: string): void {
    const pending = this.pending.get(callId);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.pending.delete(callId);
  }
}
