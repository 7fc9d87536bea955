/**
 * Messages of the ParameterServerActor (protocol version 1). Learners publish a weight version in chunks
 * (begin, chunk..., commit with a sha256 check); rollout workers and learners ask for the latest version's
 * manifest and pull its chunks; the trainer asks for checkpoints and restores.
 */
import { z } from 'zod';

export const PARAMS_PROTOCOL = 1 as const;

const tensorSpec = z.object({ name: z.string(), shape: z.array(z.number().int().nonnegative()) });
const manifest = z.object({
  tensors: z.array(tensorSpec),
  totalBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  chunkBytes: z.number().int().positive(),
  chunks: z.number().int().positive(),
});
const bytes = z.instanceof(Uint8Array);

export const paramsRequest = z.discriminatedUnion('type', [
  z.object({
    v: z.literal(1),
    type: z.literal('params.publish.begin'),
    step: z.number().int().nonnegative(),
    manifest,
  }),
  z.object({
    v: z.literal(1),
    type: z.literal('params.publish.chunk'),
    uploadId: z.string(),
    index: z.number().int().nonnegative(),
    data: bytes,
  }),
  z.object({ v: z.literal(1), type: z.literal('params.publish.commit'), uploadId: z.string() }),
  z.object({ v: z.literal(1), type: z.literal('params.latest') }),
  z.object({
    v: z.literal(1),
    type: z.literal('params.pull'),
    version: z.number().int().nonnegative(),
    index: z.number().int().nonnegative(),
  }),
  z.object({
    v: z.literal(1),
    type: z.literal('params.checkpoint'),
    step: z.number().int().nonnegative(),
    /** AdamW moments m then v, float32 in manifest order, and the optimizer's step count. */
    optimizer: z.object({ step: z.number().int().nonnegative(), bytes, sha256: z.string() }),
    trainer: z.unknown(),
  }),
  z.object({ v: z.literal(1), type: z.literal('params.restore'), checkpoint: z.string().optional() }),
  /** Writes the latest version as a Hugging Face folder (runtime/model/hf-export.ts) at `dir`. */
  z.object({
    v: z.literal(1),
    type: z.literal('params.export'),
    dir: z.string().min(1),
    dtype: z.enum(['F32', 'BF16', 'F16']).optional(),
    maxShardBytes: z.number().int().positive().optional(),
  }),
]);

export type ParamsRequest = z.infer<typeof paramsRequest>;
export type WeightManifestMsg = z.infer<typeof manifest>;

/** The reply to any request the server refuses (bad message, integrity failure, evicted version...). */
export interface ParamsErrorReply {
  error: { code: string; message: string };
}

export interface LatestReply {
  /** -1 until the first version is published. */
  version: number;
  step: number;
  manifest: WeightManifestMsg | null;
}

export interface PublishBeginReply {
  uploadId: string;
}

export interface PublishCommitReply {
  version: number;
}

export interface PullReply {
  version: number;
  index: number;
  data: Uint8Array;
}

export interface CheckpointReply {
  path: string;
}

export interface RestoreReply {
  /** null when there is no checkpoint to restore. */
  restored: null | {
    path: string;
    step: number;
    version: number;
    optimizer: { step: number; bytes: Uint8Array; sha256: string };
    trainer: unknown;
  };
}

export interface HfExportReply {
  version: number;
  step: number;
  dir: string;
  shards: string[];
}

export interface ParamsArgs {
  /** Where checkpoints go (one folder per step plus latest.json). */
  checkpointDir: string;
  /** The Hugging Face folder training started from: recorded in every checkpoint, and the config and
   * tokenizer of every export. */
  modelDir?: string;
  /** Checkpoints kept on disk. */
  keepCheckpoints?: number;
  /** Weight versions kept in memory for pulls in progress. */
  keepVersions?: number;
}
