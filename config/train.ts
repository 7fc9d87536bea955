/**
 * The configuration of a GRPO (or SFT) training job, as `dr submit train --config FILE` sends it: validated
 * with zod at the edge, every field with the DeepResearcher default unless a preset says otherwise. A config
 * file may name a preset (`"preset": "paper"`) and override any field of it.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DrError } from './errors.ts';
import { applySet, isPlainObject } from './overrides.ts';

const positiveInt = z.number().int().positive();

export const trainConfigSchema = z
  .object({
    /** Experiment name: output and checkpoint folders are named after it. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,80}$/, 'use letters, digits, dot, dash or underscore'),
    /** Project the experiment belongs to: outputs then go to outputs/<project>/<name>, the original's layout. */
    project: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,80}$/, 'use letters, digits, dot, dash or underscore')
      .optional(),
    seed: z.number().int().nonnegative().default(0),
    mode: z.enum(['grpo', 'sft']).default('grpo'),
    /** Optimizer steps to run (each one batch of questions × n rollouts). */
    steps: positiveInt,
    policy: z.discriminatedUnion('kind', [
      /** The small Qwen2-architecture policy that ships with the project (runtime/model). */
      z.object({ kind: z.literal('embedded'), dir: z.string().optional() }),
      /** A Hugging Face Qwen2 / Qwen2.5 checkpoint folder (config.json, safetensors, tokenizer.json). */
      z.object({ kind: z.literal('qwen2'), dir: z.string().min(1) }),
      /** The bigram reference model (tests and benchmarks of the training machinery). */
      z.object({ kind: z.literal('bigram'), vocab: positiveInt, seed: z.number().int().default(0) }),
    ]),
    /** Dataset specs as actors/rollout/datasets.ts reads them: a parquet or JSONL path, or
     * `sandbox:<split>[:seed[:size]]` for the generated sandbox world. */
    data: z.object({
      train: z.string().min(1),
      dev: z.string().min(1),
    }),
    rollout: z
      .object({
        /** Questions per step (the paper: 256). */
        questionsPerStep: positiveInt.default(256),
        /** Rollouts per question, the GRPO group size (the paper: 16). */
        n: positiveInt.default(16),
        maxTurns: positiveInt.max(100).default(10),
        maxTokensPerTurn: positiveInt.default(512),
        temperature: z.number().min(0).max(5).default(1),
        topP: z.number().gt(0).max(1).default(1),
        /** Results per web_search query (DeepResearcher: 10). */
        searchTopK: positiveInt.max(50).default(10),
        /** Rollout actors sharing the work. */
        workers: positiveInt.default(1),
        /** Fail the job when more than this share of its tool calls failed (broken tools, not bad calls). */
        maxToolErrorRate: z.number().min(0).max(1).default(0.5),
        /** Roll out on this cluster-file policy (a completions engine with `weightSync`: vLLM, SGLang)
         * instead of the trainer's in-process policy server; its weights follow every step. */
        engine: z.string().min(1).optional(),
      })
      .prefault({}),
    algorithm: z
      .object({
        klCoef: z.number().min(0).default(0.001),
        entropyCoef: z.number().min(0).default(0),
        clipRatioLow: z.number().gt(0).lt(1).default(0.2),
        clipRatioHigh: z.number().gt(0).default(0.2),
        clipRatioC: z.number().gt(1).nullable().default(null),
        advantageEpsilon: z.number().positive().default(1e-6),
        normalizeByStd: z.boolean().default(true),
        /** Train only on groups whose rewards differ (DAPO's dynamic-sampling filter, without resampling):
         * a uniform group has zero advantage everywhere. A step with no such group makes no update. */
        dropUniformGroups: z.boolean().default(false),
      })
      .prefault({}),
    optimizer: z
      .object({
        lr: z.number().positive().default(1e-6),
        beta1: z.number().min(0).lt(1).default(0.9),
        beta2: z.number().min(0).lt(1).default(0.999),
        eps: z.number().positive().default(1e-8),
        weightDecay: z.number().min(0).default(0.01),
        maxGradNorm: z.number().positive().nullable().default(1),
      })
      .prefault({}),
    learner: z
      .object({
        /** Data-parallel learners (one per GPU when the cluster has GPUs). */
        count: positiveInt.default(1),
        maxTokensPerMicroBatch: positiveInt.default(8192),
        maxSeqLen: positiveInt.default(8192),
        /** Where weights, moments and gradients live. `device`: resident on the GPU through onnxruntime's C
         * API (on a CPU node, the same code on host buffers); `host`: host arrays copied to the provider per
         * run. Default: `device` on a GPU, `host` on a CPU. */
        residency: z.enum(['device', 'host']).optional(),
      })
      .prefault({}),
    /** sync: on-policy, rollouts wait for the newest weights (the paper). async: the next batch is sampled
     * while the learner trains, accepting trajectories at most `maxStaleness` versions old. */
    schedule: z
      .object({
        mode: z.enum(['sync', 'async']).default('sync'),
        maxStaleness: z.number().int().nonnegative().default(1),
      })
      .prefault({}),
    checkpoint: z
      .object({
        every: positiveInt.default(10),
        keep: positiveInt.default(3),
        /** Default: outputs/<name>/checkpoints */
        dir: z.string().optional(),
      })
      .prefault({}),
    /** Hugging Face folders of the trained policy (dr export's format) during the run. */
    export: z
      .object({
        /** Write one every this many steps (and after the last); null: only `dr export` afterwards. */
        everySteps: positiveInt.nullable().default(null),
        dtype: z.enum(['F32', 'BF16', 'F16']).default('BF16'),
        /** Default: outputs/<name>/hf (one step_<k> folder per export) */
        dir: z.string().optional(),
      })
      .prefault({}),
    validation: z
      .object({
        /** Validate on the dev split every this many steps (and before the first and after the last). */
        every: positiveInt.default(10),
        /** Dev questions per validation. */
        limit: positiveInt.default(64),
      })
      .prefault({}),
    /** Default: outputs/<name>, or outputs/<project>/<name> */
    outputDir: z.string().optional(),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;
export type TrainConfigInput = z.input<typeof trainConfigSchema>;

export const PRESETS = ['embedded-demo', 'paper', 'smoke'] as const;
export type PresetName = (typeof PRESETS)[number];

const presetDir = join(dirname(fileURLToPath(import.meta.url)), 'presets');

export function loadPreset(name: string): Record<string, unknown> {
  if (!(PRESETS as readonly string[]).includes(name)) {
    throw new DrError(
      'CONFIG_UNKNOWN_PRESET',
      `unknown training preset '${name}'; choose one of ${PRESETS.join(', ')}`,
    );
  }
  return JSON.parse(readFileSync(join(presetDir, `${name}.json`), 'utf8')) as Record<string, unknown>;
}

/** Validates a config object (a preset named by `preset` is applied first, the object's fields override it). */
export function parseTrainConfig(raw: unknown, origin = 'train config'): TrainConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new DrError('CONFIG_INVALID', `${origin} must be a JSON object`);
  }
  const { preset, ...rest } = raw as Record<string, unknown>;
  const merged = typeof preset === 'string' ? deepMerge(loadPreset(preset), rest) : rest;
  if (preset !== undefined && typeof preset !== 'string') {
    throw new DrError('CONFIG_INVALID', `${origin}: "preset" must be a preset name (${PRESETS.join(', ')})`);
  }
  const parsed = trainConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DrError(
      'CONFIG_INVALID',
      `${origin}: ${issue.path.join('.') || '(root)'}: ${issue.message}; fix that field (see config/train.ts for every setting)`,
      {
        details: { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
      },
    );
  }
  return parsed.data;
}

/** Reads and validates a JSON config file, with `--set key.path=value` overrides applied on top (after the
 * preset); relative paths inside stay relative to the caller's cwd. */
export function loadTrainConfig(file: string, sets: readonly string[] = []): TrainConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(isAbsolute(file) ? file : resolve(file), 'utf8'));
  } catch (err) {
    throw new DrError('CONFIG_INVALID', `cannot read train config ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (sets.length > 0) {
    if (!isPlainObject(raw))
      throw new DrError('CONFIG_INVALID', `train config ${file} must be a JSON object`);
    for (const set of sets) applySet(raw, set);
  }
  return parseTrainConfig(raw, file);
}

export function outputDirOf(config: TrainConfig): string {
  return (
    config.outputDir ??
    join('outputs', ...(config.project === undefined ? [] : [config.project]), config.name)
  );
}

export function checkpointDirOf(config: TrainConfig): string {
  return config.checkpoint.dir ?? join(outputDirOf(config), 'checkpoints');
}

export function exportDirOf(config: TrainConfig): string {
  return config.export.dir ?? join(outputDirOf(config), 'hf');
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      isPlainObject(b) && isPlainObject(v) && !('kind' in v && v.kind !== b.kind) ? deepMerge(b, v) : v;
  }
  return out;
}
