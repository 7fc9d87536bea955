/**
 * What the agent did, step by step: each train and validation batch of a run as the original's rollout file,
 * `<outputDir>/rollout/rollout_step_{k}.json` (validation: `val_step_{k}.json`), a JSON list of `{idx,
 * question, message_str}` entries (idx: the question's row in its dataset) with our reward, F1, turns and
 * tool calls beside them. With `project` set, `<outputDir>` is `outputs/{project}/{experiment}` as there.
 */
import { join } from 'node:path';
import { writeFileAtomically } from '../../runtime/durable-file.ts';
import type { RolloutEntry } from '../rollout/rollout-entry.ts';
import type { Question, ScoredRollout } from './rollout-source.ts';

/** The evaluation's rollout entry (the original's idx, question, message_str and ours), with what a train
 * step adds: reward, format error, turns, tool calls and the weight version that sampled it. */
export interface TrainRolloutEntry extends Omit<RolloutEntry, 'em' | 'mbe' | 'end'> {
  reward: number;
  format_error: boolean;
  turns: number;
  tool_calls: number;
  tool_errors: number;
  weight_version: number;
}

export type RolloutPurpose = 'train' | 'validate';

export function rolloutFileName(purpose: RolloutPurpose, step: number): string {
  return join('rollout', `${purpose === 'train' ? 'rollout' : 'val'}_step_${step}.json`);
}

export class RolloutFiles {
  private readonly rows = new Map<string, { idx: number; question: Question }>();

  /** `datasets`: the train and dev questions, in dataset order (idx is a question's position there). */
  constructor(
    private readonly outputDir: string,
    datasets: { train: readonly Question[]; dev: readonly Question[] },
  ) {
    for (const [purpose, list] of [
      ['train', datasets.train],
      ['validate', datasets.dev],
    ] as const)
      list.forEach((question, idx) => this.rows.set(`${purpose}:${question.id}`, { idx, question }));
  }

  /** Writes one batch's file; returns its path relative to the output folder. */
  async write(purpose: RolloutPurpose, step: number, rollouts: readonly ScoredRollout[]): Promise<string> {
    const entries = rollouts.map((r) => this.entry(purpose, r));
    const name = rolloutFileName(purpose, step);
    await writeFileAtomically(join(this.outputDir, name), JSON.stringify(entries, null, 1));
    return name;
  }

  private entry(purpose: RolloutPurpose, r: ScoredRollout): TrainRolloutEntry {
    const row = this.rows.get(`${purpose}:${r.questionId}`);
    return {
      idx: row?.idx ?? -1,
      question: row?.question.question ?? '',
      message_str: r.messageStr ?? '',
      sample: r.sample ?? 0,
      data_source: row?.question.dataSource ?? '',
      ground_truth: row?.question.groundTruth ?? '',
      answer: r.answer ?? null,
      reward: r.reward,
      f1: r.reward,
      format_error: r.formatError,
      turns: r.turns,
      tool_calls: r.toolCalls,
      tool_errors: r.toolErrors,
      weight_version: r.weightVersion,
    };
  }
}
