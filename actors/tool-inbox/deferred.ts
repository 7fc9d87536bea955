/**
 * The tool actors' side of deferred replies: acknowledge now, work concurrently, tell the result later.
 */
import type { ActorContext } from '../../runtime/actor.ts';
import type { DeferredReplyFields, ToolAccepted, ToolReply } from './protocol.ts';
import { accepted, TOOL_PROTOCOL_VERSION } from './protocol.ts';

/** When `msg` asks for a deferred reply, starts `work` in the background and returns the acknowledgement;
 * otherwise waits for `work` and returns its result as the ordinary reply. */
export async function replyMaybeDeferred<R>(
  msg: DeferredReplyFields,
  ctx: Pick<ActorContext, 'tell' | 'log'>,
  work: () => Promise<R>,
): Promise<R | ToolAccepted> {
  const { replyTo, callId } = msg;
  if (replyTo === undefined || callId === undefined) return work();
  void work().then(
    (reply) => {
      const out: ToolReply<R> = { v: TOOL_PROTOCOL_VERSION, type: 'tool.reply', callId, reply };
      try {
        ctx.tell(replyTo, out);
      } catch (err) {
        ctx.log.warn(
          { replyTo, callId, err: (err as Error).message },
          'could not deliver a deferred tool reply',
        );
      }
    },
    (err: unknown) =>
      ctx.log.error({ replyTo, callId, err: (err as Error).message }, 'deferred tool call failed'),
  );
  return accepted(callId);
}
