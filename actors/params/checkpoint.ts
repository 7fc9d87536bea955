/**
 * Training checkpoints on disk: weights, AdamW moments, step and weight version, and the trainer's own state
 * (RNG state, data cursor) as JSON. A checkpoint is written into a temporary folder, fsynced, then renamed
 * into place, and `latest.json` is replaced the same way, so a crash at any moment leaves either the previous
 * checkpoint or the new one, never half of one. Reading verifies the sha256 of every payload.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DrError } from '../../config/errors.ts';
import { writeDurably } from '../../runtime/durable-file.ts';
import { encodeWeights, sha256, splitTensors, type TensorSpec } from './weights-codec.ts';

export interface CheckpointData<T = unknown> {
  step: number;
  /** Weight version the checkpointed weights were published as. */
  version: number;
  specs: TensorSpec[];
  weights: Float32Array[];
  optimizer: { step: number; m: Float32Array[]; v: Float32Array[] };
  /** Trainer state: RNG state, data cursor, anything needed to continue exactly. */
  trainer: T;
  /** The Hugging Face folder training started from (config and tokenizer for `dr export`). */
  base?: string;
}

interface CheckpointMeta {
  format: 1;
  step: number;
  version: number;
  optimizerStep: number;
  specs: TensorSpec[];
  weightsSha256: string;
  optimizerSha256: string;
  trainer: unknown;
  base?: string;
}

const FORMAT = 1;

export function checkpointName(step: number): string {
  return `step_${String(step).padStart(8, '0')}`;
}

/** Writes a checkpoint atomically under `root` and keeps the newest `keep` of them. Returns its folder. */
export async function writeCheckpoint(root: string, data: CheckpointData, keep = 3): Promise<string> {
  await mkdir(root, { recursive: true });
  const { bytes: weights, manifest } = encodeWeights(data.specs, data.weights);
  const optimizer = encodeWeights([...data.specs, ...data.specs], [...data.optimizer.m, ...data.optimizer.v]);
  const meta: CheckpointMeta = {
    format: FORMAT,
    step: data.step,
    version: data.version,
    optimizerStep: data.optimizer.step,
    specs: data.specs,
    weightsSha256: manifest.sha256,
    optimizerSha256: optimizer.manifest.sha256,
    trainer: data.trainer,
    ...(data.base === undefined ? {} : { base: data.base }),
  };
  const tmp = join(root, `.tmp-${checkpointName(data.step)}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  await writeDurably(join(tmp, 'weights.bin'), weights);
  await writeDurably(join(tmp, 'optimizer.bin'), optimizer.bytes);
  await writeDurably(join(tmp, 'meta.json'), Buffer.from(JSON.stringify(meta)));
  const final = join(root, checkpointName(data.step));
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await writeDurably(
    join(root, 'latest.json.tmp'),
    Buffer.from(JSON.stringify({ checkpoint: checkpointName(data.step) })),
  );
  await rename(join(root, 'latest.json.tmp'), join(root, 'latest.json'));
  await prune(root, keep);
  return final;
}

/** The folder `latest.json` points at, or null when `root` holds no checkpoint. */
export async function latestCheckpoint(root: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(join(root, 'latest.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const parsed = JSON.parse(text) as { checkpoint?: unknown };
  if (typeof parsed.checkpoint !== 'string' || !/^step_\d{8}$/.test(parsed.checkpoint)) {
    throw new DrError(
      'PARAMS_BAD_CHECKPOINT',
      `${join(root, 'latest.json')} does not name a checkpoint; delete it to start over`,
    );
  }
  return join(root, parsed.checkpoint);
}

export async function readCheckpoint<T = unknown>(dir: string): Promise<CheckpointData<T>> {
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as CheckpointMeta;
  } catch (err) {
    throw new DrError(
      'PARAMS_BAD_CHECKPOINT',
      `cannot read ${join(dir, 'meta.json')}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (meta.format !== FORMAT) {
    throw new DrError(
      'PARAMS_BAD_CHECKPOINT',
      `checkpoint ${dir} has format ${meta.format}; this build reads ${FORMAT}`,
    );
  }
  const load = async (file: string, specs: TensorSpec[], digest: string): Promise<Float32Array[]> => {
    const bytes = new Uint8Array(await readFile(join(dir, file)));
    if (sha256(bytes) !== digest) {
      throw new DrError(
        'PARAMS_BAD_CHECKPOINT',
        `checkpoint file ${join(dir, file)} fails its sha256 check; resume from an older checkpoint`,
      );
    }
    return splitTensors(specs, bytes);
  };
  const weights = await load('weights.bin', meta.specs, meta.weightsSha256);
  const moments = await load('optimizer.bin', [...meta.specs, ...meta.specs], meta.optimizerSha256);
  const n = meta.specs.length;
  return {
    step: meta.step,
    version: meta.version,
    specs: meta.specs,
    weights,
    optimizer: { step: meta.optimizerStep, m: moments.slice(0, n), v: moments.slice(n) },
    trainer: meta.trainer as T,
    ...(meta.base === undefined ? {} : { base: meta.base }),
  };
}

async function prune(root: string, keep: number): Promise<void> {
  const names = (await readdir(root)).filter((n) => /^step_\d{8}$/.test(n)).sort();
  for (const old of names.slice(0, Math.max(0, names.length - keep)))
    await rm(join(root, old), { recursive: true, force: true });
}
