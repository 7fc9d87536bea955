/**
 * One entry of a rollout file (`rollout_step_{k}.json`, the original's `{idx, question, message_str}` plus
 * our scores), as evaluations (actors/jobs/outputs.ts) and training runs (actors/trainer/rollout-files.ts)
 * both write it.
 */
export interface RolloutEntry {
  idx: number;
  question: string;
  /** The whole rendered conversation (prompt and response). */
  message_str: string;
  sample: number;
  data_source: string;
  ground_truth: string;
  answer: string | null;
  f1: number;
  em: number;
  /** MBE verdict: 1 correct, 0 incorrect, null when not judged or the judge could not tell. */
  mbe: number | null;
  end: string;
}
