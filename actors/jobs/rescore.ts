/**
 * Re-scoring a rollout file (`rollout_step_{k}.json`) against its dataset, for `dr score --rollouts`:
 * each entry's ground truth is the dataset row at its `idx`, its solution is `message_str` after the
 * prompt, and f1/em are recomputed with the reward. An entry whose question is not the row's question is
 * refused, because the file then belongs to another dataset or another `--limit`.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import { scoreSolution } from '../rollout/reward.ts';
import type { DatasetRow } from '../rollout/datasets.ts';
import { solutionOf } from './outputs.ts';

const entrySchema = z.looseObject({
  idx: z.number().int().min(0),
  question: z.string(),
  message_str: z.string(),
});

export async function rescoreRolloutFile(path: string, rows: readonly DatasetRow[]): Promise<string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new DrError('SCORE_BAD_ROLLOUTS', `${path} is not a readable JSON rollout file`, { cause });
  }
  if (!Array.isArray(parsed))
    throw new DrError('SCORE_BAD_ROLLOUTS', `${path} must hold a JSON list of entries`);
  return parsed.map((raw, i) => {
    const entry = entrySchema.safeParse(raw);
    if (!entry.success) {
      throw new DrError('SCORE_BAD_ROLLOUTS', `${path} entry ${i} needs idx, question and message_str`);
    }
    const row = rows[entry.data.idx];
    if (row === undefined || row.question !== entry.data.question) {
      throw new DrError(
        'SCORE_ROLLOUT_MISMATCH',
        `${path} entry ${i} (idx ${entry.data.idx}) does not match the dataset's question at that index; ` +
          'score it against the dataset the rollouts were made from',
      );
    }
    const scores = scoreSolution(solutionOf(entry.data.message_str), row.groundTruth);
    return JSON.stringify({ ...entry.data, ground_truth: row.groundTruth, ...scores });
  });
}
