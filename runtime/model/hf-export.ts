/**
 * A Hugging Face model folder that transformers' `from_pretrained` and vLLM / SGLang load as they are:
 * config.json, model.safetensors (or shards `model-0000i-of-0000n.safetensors` with
 * model.safetensors.index.json above `maxShardBytes`, as `save_pretrained` lays them out),
 * generation_config.json, and the tokenizer files with the chat template, taken from the base model folder
 * the weights were trained from (Qwen2.5's vendored tokenizer when that folder has none).
 *
 * The folder is written under a temporary name and renamed into place, so an engine told to load it never
 * reads half of one, and an existing folder of that name is replaced whole.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DrError } from '../../config/errors.ts';
import { writeDurably } from '../durable-file.ts';
import { qwen2ParamShapes, toConfigJson, type Qwen2Config } from './qwen2-config.ts';
import { encodeSafetensors, type FloatTensor, type StoredDType } from './safetensors.ts';
import { QWEN25_TOKENIZER_DIR } from './tokenizer.ts';

export interface HfExportOptions {
  /** The model folder training started from: its config.json, generation and tokenizer files are kept. */
  base?: string;
  /** Stored dtype of the weights (default BF16, what Qwen2.5 checkpoints ship as). */
  dtype?: StoredDType;
  /** Shard above this many bytes of weights (default 5 GB, transformers' `max_shard_size`). */
  maxShardBytes?: number;
  /** String metadata for every safetensors header (e.g. step and weight version). */
  metadata?: Record<string, string>;
}

export interface HfExportResult {
  dir: string;
  /** The safetensors files written, in order. */
  shards: string[];
  /** Bytes of tensor data over all shards (the index's `total_size`). */
  totalBytes: number;
}

export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
] as const;

const BYTES_PER_VALUE: Record<StoredDType, number> = { F32: 4, BF16: 2, F16: 2 };
const TORCH_DTYPE: Record<StoredDType, string> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

export async function exportHfFolder(
  outDir: string,
  model: { config: Qwen2Config; weights: ReadonlyMap<string, FloatTensor> },
  options: HfExportOptions = {},
): Promise<HfExportResult> {
  const dtype = options.dtype ?? 'BF16';
  const maxShard = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  checkWeights(model);
  const names = [...qwen2ParamShapes(model.config).keys()];
  const shards = planShards(names, model.weights, BYTES_PER_VALUE[dtype], maxShard);
  const out = path.resolve(outDir);
  const tmp = `${out}.tmp-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true });
  try {
    const files =
      shards.length === 1 ? ['model.safetensors'] : shards.map((_, i) => shardName(i, shards.length));
    const weightMap: Record<string, string> = {};
    let totalBytes = 0;
    for (const [i, shard] of shards.entries()) {
      const tensors = new Map(shard.map((n) => [n, model.weights.get(n)!]));
      const bytes = encodeSafetensors(tensors, { dtype, metadata: { format: 'pt', ...options.metadata } });
      await writeDurably(path.join(tmp, files[i]!), bytes);
      for (const n of shard) {
        weightMap[n] = files[i]!;
        totalBytes += model.weights.get(n)!.data.length * BYTES_PER_VALUE[dtype];
      }
    }
    if (shards.length > 1)
      await writeJson(path.join(tmp, 'model.safetensors.index.json'), {
        metadata: { total_size: totalBytes },
        weight_map: weightMap,
      });
    await writeJson(path.join(tmp, 'config.json'), await configJson(model.config, dtype, options.base));
    await writeJson(
      path.join(tmp, 'generation_config.json'),
      await generationConfig(model.config, options.base),
    );
    await copyTokenizer(options.base, tmp);
    await rm(out, { recursive: true, force: true });
    await rename(tmp, out);
    return { dir: out, shards: files, totalBytes };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

function checkWeights(model: { config: Qwen2Config; weights: ReadonlyMap<string, FloatTensor> }): void {
  for (const [name, shape] of qwen2ParamShapes(model.config)) {
    const t = model.weights.get(name);
    if (t === undefined || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new DrError(
        'MODEL_EXPORT_MISMATCH',
        `tensor ${name} is ${t === undefined ? 'missing' : `of shape ${JSON.stringify(t.shape)}`} but the config implies ${JSON.stringify(shape)}; export with the base model the weights were trained from`,
      );
  }
}

/** Consecutive tensors in checkpoint order, a new shard whenever the next one would pass the limit. */
function planShards(
  names: readonly string[],
  weights: ReadonlyMap<string, FloatTensor>,
  bytesPerValue: number,
  maxShard: number,
): string[][] {
  const shards: string[][] = [[]];
  let size = 0;
  for (const n of names) {
    const bytes = weights.get(n)!.data.length * bytesPerValue;
    if (size > 0 && size + bytes > maxShard) {
      shards.push([]);
      size = 0;
    }
    shards.at(-1)!.push(n);
    size += bytes;
  }
  return shards;
}

function shardName(i: number, n: number): string {
  const pad = (k: number): string => String(k).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
}

/** The base's config.json with every field transformers wrote kept (only the dtype follows the export);
 * without a base, the config this runtime knows. */
async function configJson(config: Qwen2Config, dtype: StoredDType, base?: string): Promise<object> {
  const own = (await readJsonIfAny(base, 'config.json')) ?? toConfigJson(config);
  const key = 'dtype' in own && !('torch_dtype' in own) ? 'dtype' : 'torch_dtype';
  return { ...own, [key]: TORCH_DTYPE[dtype] };
}

async function generationConfig(config: Qwen2Config, base?: string): Promise<object> {
  const own = await readJsonIfAny(base, 'generation_config.json');
  if (own !== null) return own;
  const eos = config.eosTokenIds;
  return { _from_model_config: true, eos_token_id: eos.length === 1 ? eos[0] : [...eos] };
}

async function copyTokenizer(base: string | undefined, dir: string): Promise<void> {
  const from =
    base !== undefined && (await exists(path.join(base, 'tokenizer.json'))) ? base : QWEN25_TOKENIZER_DIR;
  for (const f of TOKENIZER_FILES)
    if (await exists(path.join(from, f))) await copyFile(path.join(from, f), path.join(dir, f));
}

async function readJsonIfAny(dir: string | undefined, file: string): Promise<Record<string, unknown> | null> {
  if (dir === undefined) return null;
  const p = path.join(dir, file);
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (cause) {
    throw new DrError('MODEL_CONFIG_INVALID', `${p} is not valid JSON: ${String(cause)}`, { cause });
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeDurably(file, Buffer.from(JSON.stringify(value, null, 2) + '\n'));
}
