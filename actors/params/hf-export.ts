/**
 * Trained weights out of the project: a training checkpoint (checkpoint.ts) or a published version, written
 * as a Hugging Face folder that transformers, vLLM and SGLang load (runtime/model/hf-export.ts), with the
 * config and tokenizer of the model folder training started from.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DrError } from '../../config/errors.ts';
import { loadConfig } from '../../runtime/model/checkpoint.ts';
import { exportHfFolder, type HfExportOptions, type HfExportResult } from '../../runtime/model/hf-export.ts';
import type { FloatTensor } from '../../runtime/model/safetensors.ts';
import { latestCheckpoint, readCheckpoint } from './checkpoint.ts';
import type { TensorSpec } from './weights-codec.ts';

export type WeightsExportOptions = Omit<HfExportOptions, 'base'>;

/** Named tensors (checkpoint order, Hugging Face names) → an HF folder at `outDir`. */
export async function exportWeights(
  outDir: string,
  base: string,
  specs: readonly TensorSpec[],
  tensors: readonly Float32Array[],
  options: WeightsExportOptions = {},
): Promise<HfExportResult> {
  const config = await loadConfig(base);
  const weights = new Map<string, FloatTensor>(
    specs.map((s, i) => [s.name, { shape: s.shape, data: tensors[i]! }]),
  );
  return exportHfFolder(outDir, { config, weights }, { ...options, base });
}

export interface CheckpointExport extends HfExportResult {
  checkpoint: string;
  step: number;
  version: number;
  base: string;
}

/**
 * `dr export`: `checkpoint` is one step folder or a checkpoints folder (its latest.json is followed). The
 * base model folder is the one the checkpoint records unless `base` names another.
 */
export async function exportCheckpoint(
  checkpoint: string,
  outDir: string,
  options: WeightsExportOptions & { base?: string } = {},
): Promise<CheckpointExport> {
  const dir = (await isFile(join(checkpoint, 'latest.json')))
    ? await latestCheckpoint(checkpoint)
    : checkpoint;
  if (dir === null || !(await isFile(join(dir, 'meta.json'))))
    throw new DrError(
      'EXPORT_NO_CHECKPOINT',
      `${checkpoint} holds no training checkpoint (meta.json, or latest.json naming one); pass a step_NNNNNNNN folder or the job's checkpoints folder`,
    );
  const c = await readCheckpoint(dir);
  const base = options.base ?? c.base;
  if (base === undefined)
    throw new DrError(
      'EXPORT_NO_BASE_MODEL',
      `checkpoint ${dir} does not record the model it was trained from; pass --base MODEL_DIR (the folder with its config.json and tokenizer)`,
    );
  const { base: _ignored, ...rest } = options;
  const result = await exportWeights(outDir, base, c.specs, c.weights, {
    ...rest,
    metadata: { dr_step: String(c.step), dr_weight_version: String(c.version), ...rest.metadata },
  });
  return { ...result, checkpoint: dir, step: c.step, version: c.version, base };
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}
