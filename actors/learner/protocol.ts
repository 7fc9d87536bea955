/**
 * Messages of the LearnerActor and of its gradient inbox (protocol version 1). The trainer sends `step` to
 * every learner of a data-parallel group with that learner's shard; learners exchange all-reduce chunks
 * through each other's inbox actor (`<learner>/inbox`), which never blocks, so a learner busy in a step can
 * still receive its peers' chunks.
 */
import { z } from 'zod';
import type { AdamWConfig } from './adamw.ts';
import type { GrpoLossConfig } from './grpo.ts';
import type { LearnerConfig, StepMetrics } from './learner.ts';

export const LEARNER_PROTOCOL = 1 as const;

/** Which trainable model a learner runs; every learner of a group gets the same spec. */
export type ModelSpec =
  | { kind: 'bigram'; vocab: number; seed: number }
  /** A Qwen2-family checkpoint folder (config.json, safetensors) run by runtime/model. */
  | { kind: 'qwen2'; dir: string };

export interface LearnerArgs {
  /** Learners are named `${group}/${rank}`; their inboxes `${group}/${rank}/inbox`. */
  group: string;
  rank: number;
  size: number;
  model: ModelSpec;
  config: LearnerConfig;
  /** Name of the ParameterServerActor; rank 0 publishes every new version there. */
  paramServer: string;
  /** 'cuda' when placed on a GPU node. */
  device: 'cpu' | 'cuda';
  /** Where weights, moments and gradients live (default: `device` on CUDA, `host` on CPU); see engine.ts. */
  residency?: 'device' | 'host';
  /** Chunk bytes for weight publishing. */
  chunkBytes?: number;
  /** How long a learner waits for a peer's all-reduce chunk. */
  collectiveTimeoutMs?: number;
}

const preparedSample = z.object({
  tokenIds: z.array(z.number().int().nonnegative()),
  lossMask: z.array(z.number()),
  advantage: z.number(),
});

const optimizerBlob = z.object({
  step: z.number().int().nonnegative(),
  bytes: z.instanceof(Uint8Array),
  sha256: z.string(),
});

export const learnerRequest = z.discriminatedUnion('type', [
  z.object({
    v: z.literal(1),
    type: z.literal('learner.step'),
    /** Unique per step and identical across the group (it keys the all-reduce chunks). */
    tag: z.string().min(1),
    mode: z.enum(['grpo', 'sft']),
    samples: z.array(preparedSample),
  }),
  z.object({ v: z.literal(1), type: z.literal('learner.export') }),
  /** Take weights `version` from the parameter server and this optimizer state (resume). */
  z.object({
    v: z.literal(1),
    type: z.literal('learner.load'),
    version: z.number().int().nonnegative(),
    optimizer: optimizerBlob,
  }),
  z.object({ v: z.literal(1), type: z.literal('learner.publish') }),
]);

export type LearnerRequest = z.infer<typeof learnerRequest>;

export const chunkMessage = z.object({
  v: z.literal(1),
  type: z.literal('learner.chunk'),
  from: z.number().int().nonnegative(),
  key: z.string(),
  /** float32 values as little-endian bytes */
  data: z.instanceof(Uint8Array),
});

export type ChunkMessage = z.infer<typeof chunkMessage>;

export interface StepReply {
  metrics: StepMetrics;
  /** The weight version rank 0 published after the step (null on other ranks). */
  version: number | null;
}

export interface ExportReply {
  step: number;
  optimizer: { step: number; bytes: Uint8Array; sha256: string };
}

export interface PublishReply {
  version: number;
}

export interface LearnerErrorReply {
  error: { code: string; message: string };
}

export type { AdamWConfig, GrpoLossConfig, LearnerConfig };
