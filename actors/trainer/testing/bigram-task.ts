/**
 * A small learnable task for testing the training machinery end to end without a language model: each
 * question is one token, the answer is a set of tokens, the policy is the bigram reference model sampling
 * `answerLength` tokens after the question token, and the reward is the word-set F1 of the sampled tokens
 * against the answer set (−1 when the policy emits the "malformed" token 0 first, as a format error). The
 * source pulls the latest weights from the parameter server before every batch, like a rollout worker.
 */
import { Rng } from '../rng.ts';
import type { Question, RolloutRequest, RolloutSource, ScoredRollout } from '../rollout-source.ts';
import { WeightSubscriber, type AskFn } from '../../params/weight-transfer.ts';

export const TASK_VOCAB = 24;

/** Questions are tokens 1..count; each answer is 3 distinct tokens from the upper half of the vocabulary. */
export function bigramQuestions(count: number, seed: number): Question[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const answer = new Set<number>();
    while (answer.size < 3) answer.add(12 + rng.int(TASK_VOCAB - 12));
    return { id: `q${i + 1}`, question: String(i + 1), groundTruth: [...answer].join(' ') };
  });
}

export class BigramTaskSource implements RolloutSource {
  readonly subscriber: WeightSubscriber;
  /** Versions seen per batch, for tests of version propagation. */
  readonly versionsSeen: number[] = [];

  constructor(
    ask: AskFn,
    paramServer: string,
    private readonly answerLength = 3,
  ) {
    this.subscriber = new WeightSubscriber(ask, paramServer);
  }

  async run(questions: readonly Question[], n: number, request: RolloutRequest): Promise<ScoredRollout[]> {
    await this.subscriber.refresh();
    const w = this.subscriber.weights;
    if (w === null) throw new Error('no weights published yet');
    this.versionsSeen.push(w.version);
    const table = w.tensors[0]!;
    const rng = new Rng(request.seed);
    const out: ScoredRollout[] = [];
    for (const q of questions) {
      const target = new Set(q.groundTruth.split(' '));
      for (let k = 0; k < n; k++) {
        const tokens = [Number(q.question)];
        for (let t = 0; t < this.answerLength; t++) {
          tokens.push(
            this.sample(table, tokens[tokens.length - 1]!, request.purpose === 'validate' ? null : rng),
          );
        }
        const formatError = tokens[1] === 0;
        const said = new Set(tokens.slice(1).map(String));
        const common = [...said].filter((x) => target.has(x)).length;
        const f1 =
          common === 0
            ? 0
            : (2 * (common / said.size) * (common / target.size)) /
              (common / said.size + common / target.size);
        out.push({
          questionId: q.id,
          tokenIds: tokens,
          lossMask: tokens.map((_, j) => (j === 0 ? 0 : 1)),
          reward: formatError ? -1 : f1,
          formatError,
          turns: 1,
          responseTokens: this.answerLength,
          toolCalls: 0,
          toolErrors: 0,
          toolMs: 0,
          weightVersion: w.version,
        });
      }
    }
    return out;
  }

  /** Samples from softmax(row), or takes the argmax when `rng` is null (greedy validation). */
  private sample(table: Float32Array, prev: number, rng: Rng | null): number {
    const row = table.subarray(prev * TASK_VOCAB, (prev + 1) * TASK_VOCAB);
    if (rng === null) return row.indexOf(Math.max(...row));
    const max = Math.max(...row);
    const p = Array.from(row, (x) => Math.exp(x - max));
    let u = rng.next() * p.reduce((a, b) => a + b, 0);
    for (let k = 0; k < p.length; k++) {
      u -= p[k]!;
      if (u <= 0) return k;
    }
    return p.length - 1;
  }
}
