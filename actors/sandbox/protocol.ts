/**
 * Spawn args, messages and replies of the SandboxActor (protocol version 1): the actor that owns a running
 * sandbox web server. Plain msgpack-encodable data. The actor validates every message with the schemas
 * below and answers a bad one with a `sandbox.error` reply instead of throwing, since a throw would restart
 * the actor and with it the server (on a new port, if the port is not pinned).
 */
import { z } from 'zod';
import { injectionSchema, type InjectionConfig } from './injection.ts';
import type { QuestionRow, Split } from './questions.ts';
import type { SandboxStats } from './server.ts';

export const SANDBOX_PROTOCOL_VERSION = 1;

export const sandboxArgsSchema = z.object({
  seed: z.number().int().min(0).max(0xffffffff),
  size: z.number().int().min(30).optional(),
  /** Pin it when the actor may restart, so URLs handed out stay valid. 0 or absent: any free port. */
  port: z.number().int().min(0).max(65535).optional(),
  /** Bind address; 0.0.0.0 to serve other hosts (then set publicUrl). */
  host: z.string().optional(),
  publicUrl: z.string().url().optional(),
  apiKey: z.string().min(1).optional(),
  injection: injectionSchema.optional(),
  slowPageMs: z.number().int().min(0).optional(),
});
export type SandboxArgs = z.infer<typeof sandboxArgsSchema>;

export interface SandboxInfoRequest {
  v: 1;
  type: 'sandbox.info';
}
export interface SandboxInfoReply {
  v: 1;
  type: 'sandbox.info.reply';
  url: string;
  searchUrl: string;
  bingUrl: string;
  apiKey: string;
  seed: number;
  size: number;
  pages: number;
  questions: Record<Split, number>;
}

export interface SandboxStatsRequest {
  v: 1;
  type: 'sandbox.stats';
  /** Zero the counters after reading them. */
  reset?: boolean;
}
export interface SandboxStatsReply {
  v: 1;
  type: 'sandbox.stats.reply';
  stats: SandboxStats;
}

export interface SandboxQuestionsRequest {
  v: 1;
  type: 'sandbox.questions';
  split: Split;
  offset?: number;
  limit?: number;
}
export interface SandboxQuestionsReply {
  v: 1;
  type: 'sandbox.questions.reply';
  rows: QuestionRow[];
  /** Rows in the whole split. */
  total: number;
}

export interface SandboxSetInjectionRequest {
  v: 1;
  type: 'sandbox.set_injection';
  injection: InjectionConfig;
}
export interface SandboxAck {
  v: 1;
  type: 'sandbox.ack';
}

export interface SandboxErrorReply {
  v: 1;
  type: 'sandbox.error';
  error: { code: string; message: string };
}

export type SandboxMessage =
  SandboxInfoRequest | SandboxStatsRequest | SandboxQuestionsRequest | SandboxSetInjectionRequest;
export type SandboxReply =
  SandboxInfoReply | SandboxStatsReply | SandboxQuestionsReply | SandboxAck | SandboxErrorReply;

const v = z.literal(SANDBOX_PROTOCOL_VERSION);
export const sandboxMessageSchema = z.discriminatedUnion('type', [
  z.object({ v, type: z.literal('sandbox.info') }),
  z.object({ v, type: z.literal('sandbox.stats'), reset: z.boolean().optional() }),
  z.object({
    v,
    type: z.literal('sandbox.questions'),
    split: z.enum(['train', 'dev', 'test']),
    offset: z.number().int().min(0).optional(),
    limit: z.number().int().min(1).optional(),
  }),
  z.object({ v, type: z.literal('sandbox.set_injection'), injection: injectionSchema }),
]);

/** Builds a request; validation happens in the actor. */
export function sandboxRequest<T extends SandboxMessage['type']>(
  type: T,
  fields: Omit<Extract<SandboxMessage, { type: T }>, 'v' | 'type'>,
): Extract<SandboxMessage, { type: T }> {
  return { v: SANDBOX_PROTOCOL_VERSION, type, ...fields } as Extract<SandboxMessage, { type: T }>;
}
