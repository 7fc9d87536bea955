/**
 * Deferred replies for tool calls (protocol version 1). An actor handles one message at a time and its
 * reply is the return value of `receive`, so an ask that waits for a slow web request would hold the whole
 * actor. A tool call that carries `replyTo` + `callId` is instead acknowledged at once (`tool.accepted`),
 * worked on concurrently with other calls, and answered later by a tell of `tool.reply` to the caller's
 * inbox actor. Without `replyTo` the same request is answered the ordinary way, one call at a time.
 */
import { z } from 'zod';

export const TOOL_PROTOCOL_VERSION = 1;

/** Fields a tool request carries to ask for a deferred reply. */
export interface DeferredReplyFields {
  /** Name of the caller's inbox actor (`tool-inbox/...`). */
  replyTo?: string;
  /** Unique within the inbox. */
  callId?: string;
}

export interface ToolAccepted {
  v: 1;
  type: 'tool.accepted';
  callId: string;
}

export interface ToolReply<R = unknown> {
  v: 1;
  type: 'tool.reply';
  callId: string;
  reply: R;
}

export const deferredReplyFieldsSchema = {
  replyTo: z.string().min(1).max(512).optional(),
  callId: z.string().min(1).max(128).optional(),
};

export const toolReplySchema = z.object({
  v: z.literal(TOOL_PROTOCOL_VERSION),
  type: z.literal('tool.reply'),
  callId: z.string().min(1),
  reply: z.unknown(),
});

export function accepted(callId: string): ToolAccepted {
  return { v: TOOL_PROTOCOL_VERSION, type: 'tool.accepted', callId };
}
