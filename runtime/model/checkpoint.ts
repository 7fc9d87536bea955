/**
 * A Hugging Face Qwen2 checkpoint folder: config.json plus model.safetensors, or shards listed in
 * model.safetensors.index.json. Loading checks that every parameter the config implies is present with the
 * right shape, so a truncated or mismatched checkpoint fails here with its name, not later inside a graph.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import { parseQwen2Config, qwen2ParamShapes, toConfigJson, type Qwen2Config } from './qwen2-config.ts';
import { readSafetensors, writeSafetensors, type FloatTensor, type StoredDType } from './safetensors.ts';

export interface Checkpoint {
  readonly config: Qwen2Config;
  /** Hugging Face parameter name → float32 tensor. */
  readonly weights: ReadonlyMap<string, FloatTensor>;
}

const indexSchema = z.object({ weight_map: z.record(z.string(), z.string()) });

export async function loadConfig(dir: string): Promise<Qwen2Config> {
  const file = path.join(dir, 'config.json');
  return parseQwen2Config(await readJsonFile(file, 'MODEL_CONFIG_INVALID'), file);
}

export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const config = await loadConfig(dir);
  const expected = qwen2ParamShapes(config);
  const wanted = (name: string): boolean => expected.has(name);
  const weights = new Map<string, FloatTensor>();
  for (const file of await weightFiles(dir)) {
    for (const [name, tensor] of await readSafetensors(file, wanted)) weights.set(name, tensor);
  }
  for (const [name, shape] of expected) {
    const t = weights.get(name);
    if (t === undefined) {
      throw new DrError(
        'MODEL_CHECKPOINT_INVALID',
        `${dir} lacks tensor ${name}, which its config.json implies; the checkpoint is incomplete or for another config`,
        {
          details: { dir, tensor: name },
        },
      );
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new DrError(
        'MODEL_CHECKPOINT_INVALID',
        `${dir}: tensor ${name} has shape ${JSON.stringify(t.shape)} but config.json implies ${JSON.stringify(shape)}`,
        { details: { dir, tensor: name } },
      );
    }
  }
  return { config, weights };
}

/** Writes config.json and model.safetensors (float32 unless `dtype` says otherwise). */
export async function saveCheckpoint(
  dir: string,
  checkpoint: Checkpoint,
  options: { dtype?: StoredDType; metadata?: Record<string, string> } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify(toConfigJson(checkpoint.config), null, 2) + '\n',
  );
  await writeSafetensors(path.join(dir, 'model.safetensors'), checkpoint.weights, {
    dtype: options.dtype ?? 'F32',
    metadata: { format: 'pt', ...options.metadata },
  });
}

async function weightFiles(dir: string): Promise<string[]> {
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexFile, 'utf8'));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [path.join(dir, 'model.safetensors')];
    throw new DrError('MODEL_CHECKPOINT_INVALID', `${indexFile} is not valid JSON: ${String(cause)}`, {
      cause,
    });
  }
  const parsed = indexSchema.safeParse(index);
  if (!parsed.success) {
    throw new DrError(
      'MODEL_CHECKPOINT_INVALID',
      `${indexFile} has no valid weight_map: ${z.prettifyError(parsed.error)}`,
    );
  }
  return [...new Set(Object.values(parsed.data.weight_map))].sort().map((f) => path.join(dir, f));
}

async function readJsonFile(file: string, code: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new DrError(code, `cannot read ${file}; a model folder needs config.json and model.safetensors`, {
      cause,
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new DrError(code, `${file} is not valid JSON: ${String(cause)}`, { cause });
  }
}
