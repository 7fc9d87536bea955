/**
 * One data-parallel learner's train step, independent of actors and of where the tensors live (engine.ts):
 * micro-batches with gradient accumulation, old and reference log-probabilities, the GRPO (or SFT) gradient,
 * a ring all-reduce of gradients and loss statistics across learners, gradient clipping and AdamW. Every
 * learner of a group applies the same summed gradient to the same weights, so their weights stay identical
 * and rank 0's copy is the published one.
 */
import { DrError } from '../../config/errors.ts';
import type { AdamWConfig } from './adamw.ts';
import { flatten, ringAllReduce, unflattenInto, type CollectivePort } from './allreduce.ts';
import { buildMicroBatches, maskedTokenCount, type PreparedSample } from './batching.ts';
import type { LearnerEngine, LearnerMode, LearnerState } from './engine.ts';
import { emptySums, sumsToMetrics, type GrpoLossConfig, type GrpoSums } from './grpo.ts';

export type { LearnerMode, LearnerState } from './engine.ts';

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

const SUM_FIELDS = ['tokens', 'pgLoss', 'kl', 'entropy', 'clipped', 'clippedLower', 'ppoKl'] as const;

export class Learner {
  constructor(
    private readonly engine: LearnerEngine,
    private readonly config: LearnerConfig,
    private readonly port: CollectivePort | null = null,
  ) {}

  get step(): number {
    return this.engine.step;
  }

  /** The current weights on the host (a device engine copies them out). */
  currentWeights(): readonly Float32Array[] {
    return this.engine.weights();
  }

  exportState(): LearnerState {
    return this.engine.exportState();
  }

  loadState(state: LearnerState): void {
    this.engine.loadState(state);
  }

  dispose(): Promise<void> {
    return this.engine.dispose();
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

    await this.engine.begin(mbs, mode, this.config.loss);
    const sums: GrpoSums = emptySums();
    let loss = 0;
    let localTokens = 0;
    for (let i = 0; i < mbs.length; i++) {
      const r = await this.engine.accumulate(i, globalTokens);
      for (const f of SUM_FIELDS) sums[f] += r.sums[f];
      loss += r.loss;
      for (const a of mbs[i]!.attention) localTokens += a;
    }

    // Gradients and statistics travel in one collective: [grads..., loss, sums...].
    const stats = Float32Array.from([loss, ...SUM_FIELDS.map((f) => sums[f])]);
    if (this.port !== null) {
      const grads = this.engine.readGradients();
      const flat = flatten([...grads, stats]);
      await this.allReduce(flat, `${tag}:grads`);
      unflattenInto(flat, [...grads, stats]);
      this.engine.writeGradients(grads);
    }
    const total = Object.fromEntries(SUM_FIELDS.map((f, i) => [f, stats[i + 1]!])) as unknown as GrpoSums;

    const { gradNorm } = await this.engine.apply(this.config.optimizer);
    const seconds = (performance.now() - started) / 1000;
    const m = sumsToMetrics(total);
    return {
      mode,
      step: this.engine.step,
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

  private async allReduce(data: Float32Array, tag: string): Promise<Float32Array> {
    return this.port === null ? data : ringAllReduce(this.port, data, tag);
  }
}
