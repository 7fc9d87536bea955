/**
 * What the trainer needs from the rollout side: n scored rollouts for each of a batch of questions, each
 * with its token ids, loss mask (observation masking) and the weight version that sampled it. The cluster
 * implementation (actor-rollout-source.ts) fans the work out to RolloutActors; tests may use any other.
 */
export interface Question {
  id: string;
  question: string;
  /** Aliases joined by `<|answer_split|>`. */
  groundTruth: string;
  dataSource?: string;
}

export interface ScoredRollout {
  questionId: string;
  /** Which of the question's n rollouts this is. */
  sample?: number;
  /** The whole rendered conversation (the rollout file's `message_str`). */
  messageStr?: string;
  /** The final `<answer>`, when there was one. */
  answer?: string;
  tokenIds: number[];
  lossMask: number[];
  /** DeepResearcher's reward: word-set F1 of the answer, −1 on a format error. */
  reward: number;
  formatError: boolean;
  turns: number;
  /** Tokens the policy generated (the loss tokens). */
  responseTokens: number;
  toolCalls: number;
  /** Tool calls that failed (the tool, not the policy's call, went wrong). */
  toolErrors: number;
  /** Total tool time of the trajectory. */
  toolMs: number;
  /** Oldest weight version that sampled a turn of it. */
  weightVersion: number;
}

export interface RolloutRequest {
  /** Deterministic seed of this batch's sampling. */
  seed: number;
  /** train: sampled with the training temperature; validate: one greedy rollout per question. */
  purpose: 'train' | 'validate';
}

export interface RolloutSource {
  run(questions: readonly Question[], n: number, request: RolloutRequest): Promise<ScoredRollout[]>;
}
