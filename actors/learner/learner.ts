/**
 * One data-parallel learner's train step, independent of actors: micro-batches with gradient accumulation,
 * old and reference log-probabilities, the GRPO (or SFT) gradient, a ring all-reduce of gradients and loss
 * statistics across learners, gradient clipping and AdamW. Every learner of a group applies the same summed
 * gradient to the same weights, so their weights stay identical and rank 0's copy is the published one.
 */
import { DrError } from '../../config/errors.ts';
import { adamwStep, initAdamWState, type AdamWConfig, type AdamWState } from './adamw.ts';
import { flatten, ringAllReduce, unflattenInto, type CollectivePort } from './allreduce.ts';
import { buildMicroBatches, maskedTokenCount, type PreparedSample } from './batching.ts';
import { sumsToMetrics, type GrpoLossConfig, type GrpoSums } from './grpo.ts';
import type { MicroBatch, TrainableModel } from './model.ts';

export type LearnerMode = 'grpo' | 'sft';

export interface LearnerConfig {
  loss: GrpoLossConfig;
  optimizer: AdamWConfig;
  /** Padded tokens per micro-batch; gradients accumulate over as many micro-batches as the shard needs. */
  maxTokensPerMicroBatch: number;
  maxSeqLen: number;
  padId: number;
}

export interface StepMetrics {
  mode: LearnerMode;
  step: number;
  loss: number;
  pgLoss: number;
  kl: number;
  entropy: number;
  clipFraction: number;
  clipFractionLower: number;
  ppoKl: number;
  gradNorm: number;
  /** Loss tokens over all learners. */
  lossTokens: number;
  /** Real (non-padding) tokens this learner ran forward and backward. */
  localTokens: number;
  microBatches: number;
  seconds: number;
  /** localTokens / seconds, for this learner. */
  tokensPerSecond: number;
}

/** Everything needed to continue training bit-exactly. */
export interface LearnerState {
  weights: Float32Array[];
  optimizer: AdamWState;
}

const SUM_FIELDS = ['tokens', 'pgLoss', 'kl', 'entropy', 'clipped', 'clippedLower', 'ppoKl'] as const;

export class Learner {
  private weights: Float32Array[];
  private optimizer: AdamWState;
  private readonly reference: readonly Float32Array[];

  constructor(
    private readonly model: TrainableModel,
    initial: readonly Float32Array[],
    private readonly config: LearnerConfig,
    private readonly port: CollectivePort | null = null,
    reference?: readonly Float32Array[],
  ) {
    if (initial.length !== model.params.length) {
      throw new DrError(
        'LEARNER_BAD_WEIGHTS',
        `learner got ${initial.length} weight tensors for a model with ${model.params.length} parameters`,
      );
    }
    this.weights = initial.map((w) => Float32Array.from(w));
    // The KL anchor is frozen at the initial policy unless told otherwise.
    this.reference = reference ?? initial.map((w) => Float32Array.from(w));
    this.optimizer = initAdamWState(this.weights);
  }

  get step(): number {
    return this.optimizer.step;
  }

  currentWeights(): readonly Float32Array[] {
    return this.weights;
  }

  exportState(): LearnerState {
    return {
      weights: this.weights.map((w) => Float32Array.from(w)),
      optimizer: {
        step: this.optimizer.step,
        m: this.optimizer.m.map((x) => Float32Array.from(x)),
        v: this.optimizer.v.map((x) => Float32Array.from(x)),
      },
    };
  }

  loadState(state: LearnerState): void {
    const sizes = this.model.params.map((p) => p.shape.reduce((a, b) => a * b, 1));
    const ok = (ts: readonly Float32Array[]): boolean =>
      ts.length === sizes.length && ts.every((t, i) => t.length === sizes[i]);
    if (!ok(state.weights) || !ok(state.optimizer.m) || !ok(state.optimizer.v)) {
      throw new DrError(
        'LEARNER_BAD_WEIGHTS',
        'the learner state does not match the model parameter shapes; resume with the model it was saved from',
      );
    }
    this.weights = state.weights.map((w) => Float32Array.from(w));
    this.optimizer = {
      step: state.optimizer.step,
      m: state.optimizer.m.map((x) => Float32Array.from(x)),
      v: state.optimizer.v.map((x) => Float32Array.from(x)),
    };
  }

  /**
   * One optimizer step on this learner's shard. All learners of the group must call it with the same `tag`;
   * the token-mean is over the loss tokens of all shards together.
   */
  async trainStep(shard: readonly PreparedSample[], mode: LearnerMode, tag: string): Promise<StepMetrics> {
    const started = performance.now();
    const mbs = buildMicroBatches(shard, {
      maxTokens: this.config.maxTokensPerMicroBatch,
      maxSeqLen: this.config.maxSeqLen,
      padId: this.config.padId,
    });
    const tokenCount = new Float32Array([maskedTokenCount(mbs)]);
    const globalTokens = (await this.allReduce(tokenCount, `${tag}:tokens`))[0]!;
    if (globalTokens <= 0) {
      throw new DrError(
        'LEARNER_EMPTY_BATCH',
        'the batch has no tokens in the loss (every trajectory is prompt or tool output); check the rollout loss masks',
      );
    }

    if (mode === 'grpo') await this.fillLogprobs(mbs);
    const grads = this.weights.map((w) => new Float32Array(w.length));
    const sums: GrpoSums = { tokens: 0, pgLoss: 0, kl: 0, entropy: 0, clipped: 0, clippedLower: 0, ppoKl: 0 };
    let loss = 0;
    let localTokens = 0;
    for (const mb of mbs) {
      const r =
        mode === 'grpo'
          ? await this.model.grpoGradients(this.weights, mb, this.config.loss, globalTokens)
          : await this.model.sftGradients(this.weights, mb, globalTokens);
      for (let p = 0; p < grads.length; p++) {
        const g = grads[p]!;
        const d = r.grads[p]!;
        for (let i = 0; i < g.length; i++) g[i] = g[i]! + d[i]!;
      }
      for (const f of SUM_FIELDS) sums[f] += r.sums[f];
      loss += r.loss;
      for (let i = 0; i < mb.attention.length; i++) localTokens += mb.attention[i]!;
    }

    // Gradients and statistics travel in one collective: [grads..., loss, sums...].
    const flat = flatten([...grads, Float32Array.from([loss, ...SUM_FIELDS.map((f) => sums[f])])]);
    await this.allReduce(flat, `${tag}:grads`);
    unflattenInto(flat, grads);
    const stats = flat.subarray(flat.length - 1 - SUM_FIELDS.length);
    const total = Object.fromEntries(SUM_FIELDS.map((f, i) => [f, stats[i + 1]!])) as unknown as GrpoSums;

    const { gradNorm } = adamwStep(this.weights, grads, this.optimizer, this.config.optimizer);
    const seconds = (performance.now() - started) / 1000;
    const m = sumsToMetrics(total);
    return {
      mode,
      step: this.optimizer.step,
      loss: stats[0]!,
      pgLoss: m.pgLoss,
      kl: m.kl,
      entropy: m.entropy,
      clipFraction: m.clipFraction,
      clipFractionLower: m.clipFractionLower,
      ppoKl: m.ppoKl,
      gradNorm,
      lossTokens: globalTokens,
      localTokens,
      microBatches: mbs.length,
      seconds,
      tokensPerSecond: seconds > 0 ? localTokens / seconds : 0,
    };
  }

  /** Old log-probabilities from the weights before this step (verl recomputes them, it does not trust the
   * sampler's), reference ones from the frozen reference weights. */
  private async fillLogprobs(mbs: readonly MicroBatch[]): Promise<void> {
    for (const mb of mbs) {
      mb.oldLogprob = await this.model.logprobs(this.weights, mb);
      mb.refLogprob =
        this.config.loss.klCoef !== 0 ? await this.model.logprobs(this.reference, mb) : mb.oldLogprob;
    }
  }

  private async allReduce(data: Float32Array, tag: string): Promise<Float32Array> {
    return this.port === null ? data : ringAllReduce(this.port, data, tag);
  }
}
