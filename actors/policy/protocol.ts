/**
 * Messages a PolicyActor (`policy/<name>`, a checkpoint the cluster serves) accepts, protocol version 1.
 * RolloutActors reach it through actors/rollout/served-policy.ts: the prompt goes over the cluster transport
 * like any ask, so a served policy needs no port, no URL and no route between nodes, and it keeps its name
 * when it is re-spawned elsewhere. Refusals are `policy.error` replies, not throws: a bad request must not
 * restart the actor and drop every generation in flight.
 */
import { z } from 'zod';

export const POLICY_PROTOCOL_VERSION = 1;

export const policyActorName = (name: string): string => `policy/${name}`;

export const policyArgsSchema = z.object({
  /** The name jobs use (`--policy NAME`); replies report it as the model. */
  name: z.string().min(1),
  /** `embedded` (runtime/model/embedded) or an absolute Qwen2 checkpoint folder on the hosting node. */
  checkpoint: z.string().min(1),
  provider: z.enum(['cpu', 'cuda']).default('cpu'),
  /** Most prompts generated together. */
  maxBatch: z.number().int().min(1).max(1024).default(32),
});
export type PolicyArgs = z.input<typeof policyArgsSchema>;

export const policyMessageSchema = z.discriminatedUnion('type', [
  z.object({ v: z.literal(POLICY_PROTOCOL_VERSION), type: z.literal('policy.info') }),
  z.object({
    v: z.literal(POLICY_PROTOCOL_VERSION),
    type: z.literal('policy.generate'),
    /** Rendered prompt text, or its token ids in the served model's vocabulary. */
    prompt: z.union([z.string().min(1), z.array(z.number().int().min(0)).min(1)]),
    maxTokens: z.number().int().min(1).max(32_768),
    temperature: z.number().min(0).max(5),
    topP: z.number().gt(0).max(1),
    stop: z.array(z.string()).max(16),
    seed: z.number().int().optional(),
  }),
]);
export type PolicyMessage = z.infer<typeof policyMessageSchema>;
export type PolicyGenerateRequest = Extract<PolicyMessage, { type: 'policy.generate' }>;

export interface PolicyInfoReply {
  v: 1;
  type: 'policy.info.reply';
  model: string;
  vocabSize: number;
  weightVersion: number;
}

export interface PolicyGenerateReply {
  v: 1;
  type: 'policy.generate.reply';
  text: string;
  tokenIds: number[];
  logprobs: number[];
  finishReason: 'stop' | 'length';
  weightVersion: number;
}

export interface PolicyErrorReply {
  v: 1;
  type: 'policy.error';
  error: { code: string; message: string };
}

export type PolicyReply = PolicyInfoReply | PolicyGenerateReply | PolicyErrorReply;
