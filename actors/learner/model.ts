/**
 * What the learner needs from a trainable policy: named parameter tensors, per-token log-probabilities, and
 * the gradients of the GRPO and SFT losses for one micro-batch. The learner owns parameters, optimizer state,
 * gradient accumulation and the data-parallel all-reduce; a model only runs forward and backward.
 *
 * Token alignment: a micro-batch is `rows` sequences padded to `cols` tokens. Position j of every per-token
 * array describes token `inputIds[j]`, predicted from tokens 0..j-1; position 0 of each row is never in the
 * loss (its mask is 0).
 */
import type { GrpoLossConfig, GrpoSums } from './grpo.ts';

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

export interface MicroBatch {
  rows: number;
  cols: number;
  /** [rows * cols] token ids, padded with `padId`. */
  inputIds: Int32Array;
  /** [rows * cols] 1 for real tokens (prompt, responses and tool output), 0 for padding. */
  attention: Float32Array;
  /** [rows * cols] 1 on tokens the policy generated (the loss mask), 0 on prompt, tool output and padding. */
  lossMask: Float32Array;
  /** [rows * cols] the sequence advantage broadcast over its tokens (GRPO only). */
  advantage: Float32Array;
  /** [rows * cols] log-probabilities under the policy that sampled the data (GRPO only). */
  oldLogprob: Float32Array;
  /** [rows * cols] log-probabilities under the frozen reference policy (GRPO only). */
  refLogprob: Float32Array;
}

export interface GradientResult {
  /** One gradient per parameter, in `params` order; the contribution of this micro-batch only. */
  grads: Float32Array[];
  /** This micro-batch's share of the loss (it was divided by the whole batch's token count). */
  loss: number;
  sums: GrpoSums;
}

export interface TrainableModel {
  readonly params: readonly ParamSpec[];
  /** Per-token log-probabilities of `inputIds` under `weights` ([rows * cols], 0 at position 0). */
  logprobs(weights: readonly Float32Array[], mb: MicroBatch): Promise<Float32Array>;
  /** GRPO loss and its gradient; `denominator` is the token count of the whole optimizer batch. */
  grpoGradients(
    weights: readonly Float32Array[],
    mb: MicroBatch,
    config: GrpoLossConfig,
    denominator: number,
  ): Promise<GradientResult>;
  /** Token-mean negative log-likelihood of the masked tokens, and its gradient. */
  sftGradients(
    weights: readonly Float32Array[],
    mb: MicroBatch,
    denominator: number,
  ): Promise<GradientResult>;
  /** Releases sessions and buffers. */
  dispose?(): Promise<void>;
}
