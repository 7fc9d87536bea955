/**
 * Training graphs for a Qwen2 model: per-token log-probabilities, the SFT loss and the GRPO loss (verl's
 * PPO-clip policy loss with optional dual clip, k3 KL to a reference, optional entropy bonus, token-mean
 * over a given denominator), each either differentiated into per-parameter gradients or fused with AdamW
 * into one train step (runtime/onnx `grad` and `trainStep`).
 *
 * Token alignment (shared with the learner): a batch is `rows` sequences right-padded to `cols`; position j
 * of every per-token array describes token j predicted from tokens 0..j-1, so position 0 is never in a loss
 * and the log-probability output has 0 there.
 *
 * Inputs of every graph: input_ids, position_ids, attention_mask ([B, T] int64). The loss graphs add
 * loss_mask [B, T] and the scalar `denominator` (the token count of the whole optimizer batch, so
 * micro-batch contributions add up); GRPO adds advantages, old_logprobs, ref_logprobs [B, T] and the scalars
 * clip_low, clip_high, clip_c (dual-clip bound; a huge value turns it off), kl_coef and entropy_coef.
 */
import { type DType, type Graph, type Tensor, grad, op } from '../onnx/index.ts';
import { trainStep, type AdamWConfig } from '../onnx/adamw.ts';
import { decoderStack, declareAll, logitsOf, sequenceInputs, type WeightSource } from './qwen2-graph.ts';
import type { Qwen2Config } from './qwen2-config.ts';

/** verl's bounds on log-ratios before exp, and on the k3 value. */
const LOG_RATIO_CLAMP = 20;
const K3_CLAMP = 10;

/** Sum outputs of the loss graphs, in this order (see GrpoSums in actors/learner/grpo.ts). */
export const SUM_OUTPUTS = [
  'tokens',
  'pg_loss',
  'kl',
  'entropy',
  'clipped',
  'clipped_lower',
  'ppo_kl',
] as const;
export type SumName = (typeof SUM_OUTPUTS)[number];

export type EntropyMode = 'off' | 'metric' | 'loss';

interface TokenStats {
  /** log p(token j | < j) for j >= 1, [B, T-1]. */
  logprobs: Tensor;
  /** Entropy of the distribution predicting token j, [B, T-1] (when requested). */
  entropy: Tensor | null;
  inputs: ReturnType<typeof sequenceInputs>;
}

function tokenStats(g: Graph, config: Qwen2Config, w: WeightSource, entropy: boolean): TokenStats {
  declareAll(config, w);
  const inputs = sequenceInputs(g);
  const { hidden } = decoderStack(g, config, w, inputs.inputIds, inputs.positions, inputs.attentionMask);
  const predicting = op.slice(hidden, { starts: [0], ends: [-1], axes: [1] });
  const logp = op.logSoftmax(logitsOf(config, w, predicting), -1); // [B, T-1, V]
  const targets = op.slice(inputs.inputIds, { starts: [1], ends: [op.TO_END], axes: [1] });
  const logprobs = op.squeeze(op.gatherElements(logp, op.unsqueeze(targets, [-1]), -1), [-1]);
  const ent = entropy ? op.neg(op.reduceSum(op.mul(op.exp(logp), logp), [-1])) : null;
  return { logprobs, entropy: ent, inputs };
}

/** [B, T-1] → [B, T] with zeros at position 0 (outputs only; no gradient flows through the padding). */
function padFront(g: Graph, x: Tensor, dt: DType): Tensor {
  const batch = op.shapeOf(x, 0, 1);
  const zeros = op.constantOfShape(op.concat([batch, g.constant([1], 'int64')], 0), 0, dt);
  return op.concat([zeros, x], 1);
}

/** Tokens 1..T-1 of a [B, T] per-token input. */
function shifted(x: Tensor): Tensor {
  return op.slice(x, { starts: [1], ends: [op.TO_END], axes: [1] });
}

/** Outputs `logprobs` [B, T] (and `entropy` [B, T] when asked), 0 at position 0. */
export function buildLogprobs(
  g: Graph,
  config: Qwen2Config,
  w: WeightSource,
  options: { entropy?: boolean } = {},
): void {
  const stats = tokenStats(g, config, w, options.entropy === true);
  const dt = stats.logprobs.dtype;
  g.output(padFront(g, stats.logprobs, dt), 'logprobs');
  if (stats.entropy) g.output(padFront(g, stats.entropy, dt), 'entropy');
}

export interface LossGraph {
  loss: Tensor;
  params: readonly Tensor[];
}

/** Token-mean negative log-likelihood of the masked tokens over `denominator`; outputs the sums. */
export function buildSftLoss(g: Graph, config: Qwen2Config, w: WeightSource): LossGraph {
  const stats = tokenStats(g, config, w, false);
  const dt = stats.logprobs.dtype;
  const mask = shifted(g.input('loss_mask', dt, ['batch', 'seq']));
  const denominator = g.input('denominator', dt, []);
  const nll = op.reduceSum(op.mul(mask, op.neg(stats.logprobs)));
  const tokens = op.reduceSum(mask);
  g.output(tokens, 'tokens');
  g.output(nll, 'pg_loss');
  return { loss: op.div(nll, denominator), params: g.params };
}

/**
 * The GRPO loss of the learner issue (see the file comment for its inputs); outputs the sums (`entropy`
 * unless `entropy` is 'off'; the `entropy_coef` input exists only in 'loss' mode).
 */
export function buildGrpoLoss(
  g: Graph,
  config: Qwen2Config,
  w: WeightSource,
  options: { entropy?: EntropyMode } = {},
): LossGraph {
  const mode = options.entropy ?? 'metric';
  const stats = tokenStats(g, config, w, mode !== 'off');
  const lp = stats.logprobs;
  const dt = lp.dtype;
  const perToken = (name: string): Tensor => shifted(g.input(name, dt, ['batch', 'seq']));
  const scalar = (name: string): Tensor => g.input(name, dt, []);
  const mask = perToken('loss_mask');
  const adv = perToken('advantages');
  const old = perToken('old_logprobs');
  const ref = perToken('ref_logprobs');
  const denominator = scalar('denominator');
  const clipLow = scalar('clip_low');
  const clipHigh = scalar('clip_high');
  const clipC = scalar('clip_c');
  const klCoef = scalar('kl_coef');

  const logRatio = op.clip(op.sub(lp, old), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
  const ratio = op.exp(logRatio);
  const negAdv = op.neg(adv);
  const unclipped = op.mul(negAdv, ratio);
  const clipped = op.mul(negAdv, op.clip(ratio, op.sub(1, clipLow), op.add(clipHigh, 1)));
  const pg1 = op.max(unclipped, clipped);
  const bound = op.mul(negAdv, clipC);
  const negative = op.less(adv, 0);
  const pg = op.where(negative, op.min(pg1, bound), pg1);

  const d = op.clip(op.sub(ref, lp), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
  const k3 = op.clip(op.sub(op.sub(op.exp(d), d), 1), -K3_CLAMP, K3_CLAMP);

  const masked = (x: Tensor): Tensor => op.reduceSum(op.mul(mask, x));
  const flag = (b: Tensor): Tensor => masked(op.cast(b, dt));
  let perTokenLoss = op.add(pg, op.mul(klCoef, k3));
  if (stats.entropy && mode === 'loss')
    perTokenLoss = op.sub(perTokenLoss, op.mul(scalar('entropy_coef'), stats.entropy));
  g.output(op.reduceSum(mask), 'tokens');
  g.output(masked(pg), 'pg_loss');
  g.output(masked(k3), 'kl');
  if (stats.entropy) g.output(masked(stats.entropy), 'entropy');
  g.output(flag(op.greater(clipped, unclipped)), 'clipped');
  g.output(flag(op.and(negative, op.greater(pg1, bound))), 'clipped_lower');
  g.output(masked(op.neg(logRatio)), 'ppo_kl');
  return { loss: op.div(masked(perTokenLoss), denominator), params: g.params };
}

/** Name of the gradient output of a parameter. */
export function gradName(param: string): string {
  return `grad.${param}`;
}

/** Adds `loss` and one `grad.<param>` output per parameter (the learner accumulates and steps). */
export function withGradients(lossGraph: LossGraph): void {
  const { loss, params } = lossGraph;
  loss.graph.output(loss, 'loss');
  grad(loss, params).forEach((gr, i) => loss.graph.output(gr, gradName(params[i]!.name)));
}

/** Adds gradients and an AdamW update in the same graph (see runtime/onnx TrainState for running it). */
export function withAdamW(lossGraph: LossGraph, adamw: AdamWConfig = {}): void {
  trainStep(lossGraph.loss, { ...adamw, params: lossGraph.params });
}
