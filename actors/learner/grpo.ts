/**
 * GRPO math as pure functions on typed arrays, following verl (the framework DeepResearcher trains with):
 * `compute_grpo_outcome_advantage`, the PPO-clip policy loss, `kl_penalty('low_var_kl')` and token-mean
 * aggregation. This is the reference the ONNX train-step graph must match, and it also yields the gradient of
 * the loss with respect to each token's log-probability (and entropy), so a model only has to chain those
 * through its own backward pass.
 *
 * Token tensors are row-major [rows, cols] Float32Arrays; `mask` is 1 on tokens the policy generated and 0
 * on prompt, padding and tool-output tokens (observation masking).
 */
import { DrError } from '../../config/errors.ts';

export interface AdvantageOptions {
  /** Added to the group std before dividing (verl: 1e-6). */
  epsilon?: number;
  /** false: subtract the group mean only (Dr. GRPO). */
  normalizeByStd?: boolean;
}

export interface GrpoLossConfig {
  /** PPO clip range below 1 (ratio >= 1 - clipRatioLow). */
  clipRatioLow: number;
  /** PPO clip range above 1 (ratio <= 1 + clipRatioHigh). */
  clipRatioHigh: number;
  /** Dual-clip bound for negative advantages (verl's clip_ratio_c, e.g. 3); null disables it, as in the
   * verl release DeepResearcher used. */
  clipRatioC: number | null;
  /** Weight of the k3 KL to the reference policy. */
  klCoef: number;
  /** Weight of the entropy bonus (subtracted from the loss). */
  entropyCoef: number;
}

export const defaultGrpoLossConfig: GrpoLossConfig = {
  clipRatioLow: 0.2,
  clipRatioHigh: 0.2,
  clipRatioC: null,
  klCoef: 0.001,
  entropyCoef: 0,
};

/** Per-token inputs of the loss, all [rows * cols]. */
export interface GrpoTokens {
  logprob: Float32Array;
  oldLogprob: Float32Array;
  refLogprob: Float32Array;
  /** Per-token advantage (the sequence advantage broadcast over its tokens). */
  advantage: Float32Array;
  mask: Float32Array;
  /** Per-token entropy of the current policy; only needed when entropyCoef != 0 or for metrics. */
  entropy?: Float32Array;
}

/** Sums over masked tokens, so that micro-batches and data-parallel shards combine by addition. */
export interface GrpoSums {
  tokens: number;
  pgLoss: number;
  kl: number;
  entropy: number;
  /** Tokens where the clipped branch set the loss. */
  clipped: number;
  /** Negative-advantage tokens where the dual-clip bound set the loss. */
  clippedLower: number;
  /** Σ (old_logprob - logprob), verl's ppo_kl. */
  ppoKl: number;
}

export interface GrpoLossResult {
  /** The loss contribution of these tokens: Σ_masked (pg + klCoef·kl − entropyCoef·H) / denominator. */
  loss: number;
  sums: GrpoSums;
  /** ∂loss/∂logprob per token (0 off the mask). */
  dLogprob: Float32Array;
  /** ∂loss/∂entropy per token (−entropyCoef/denominator on the mask). */
  dEntropy: Float32Array;
}

export interface GrpoMetrics {
  pgLoss: number;
  kl: number;
  entropy: number;
  clipFraction: number;
  clipFractionLower: number;
  ppoKl: number;
  tokens: number;
}

/** Bounds verl applies before exponentiating log-ratios, and to the k3 value. */
const LOG_RATIO_CLAMP = 20;
const K3_CLAMP = 10;

/**
 * Group-normalised outcome advantages: (r − mean_g) / (std_g + ε) with the unbiased (n − 1) std, as
 * torch.std in verl. A group of one gets mean 0 and std 1 (its advantage is r / (1 + ε)), as verl does; a
 * group whose rewards are all equal gets advantage 0 for every member.
 */
export function groupAdvantages(
  rewards: ArrayLike<number>,
  groups: ArrayLike<string | number>,
  options: AdvantageOptions = {},
): Float64Array {
  const epsilon = options.epsilon ?? 1e-6;
  const normalize = options.normalizeByStd ?? true;
  if (rewards.length !== groups.length) {
    throw new DrError(
      'LEARNER_BAD_BATCH',
      `groupAdvantages got ${rewards.length} rewards but ${groups.length} group ids; pass one group id per reward`,
    );
  }
  const members = new Map<string | number, number[]>();
  for (let i = 0; i < rewards.length; i++) {
    const g = groups[i]!;
    const list = members.get(g);
    if (list === undefined) members.set(g, [i]);
    else list.push(i);
  }
  const out = new Float64Array(rewards.length);
  for (const idx of members.values()) {
    let mean = 0;
    let std = 1;
    if (idx.length > 1) {
      mean = idx.reduce((s, i) => s + rewards[i]!, 0) / idx.length;
      const ss = idx.reduce((s, i) => s + (rewards[i]! - mean) ** 2, 0);
      std = Math.sqrt(ss / (idx.length - 1));
    }
    for (const i of idx) out[i] = normalize ? (rewards[i]! - mean) / (std + epsilon) : rewards[i]! - mean;
  }
  return out;
}

/** Low-variance (k3) KL estimate of one token, with verl's clamps: exp(d) − d − 1, d = ref − logprob. */
export function k3Kl(logprob: number, refLogprob: number): number {
  const d = clamp(refLogprob - logprob, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
  return clamp(Math.exp(d) - d - 1, -K3_CLAMP, K3_CLAMP);
}

/** ∂k3/∂logprob, zero where a clamp is active (as autograd through torch.clamp gives). */
export function k3KlGrad(logprob: number, refLogprob: number): number {
  const raw = refLogprob - logprob;
  if (raw < -LOG_RATIO_CLAMP || raw > LOG_RATIO_CLAMP) return 0;
  const kld = Math.exp(raw) - raw - 1;
  if (kld < -K3_CLAMP || kld > K3_CLAMP) return 0;
  return 1 - Math.exp(raw);
}

/**
 * The GRPO loss over masked tokens, token-mean aggregated over `denominator` tokens (default: the masked
 * tokens given). Pass the token count of the whole optimizer batch as `denominator` when these tokens are one
 * micro-batch or one data-parallel shard: the contributions then add up to the full-batch token mean.
 */
export function grpoLoss(
  t: GrpoTokens,
  config: GrpoLossConfig = defaultGrpoLossConfig,
  denominator?: number,
): GrpoLossResult {
  const n = t.mask.length;
  for (const [name, arr] of [
    ['logprob', t.logprob],
    ['oldLogprob', t.oldLogprob],
    ['refLogprob', t.refLogprob],
    ['advantage', t.advantage],
  ] as const) {
    if (arr.length !== n) {
      throw new DrError(
        'LEARNER_BAD_BATCH',
        `grpoLoss: ${name} has ${arr.length} entries but mask has ${n}; all token arrays must share one shape`,
      );
    }
  }
  if (t.entropy !== undefined && t.entropy.length !== n) {
    throw new DrError(
      'LEARNER_BAD_BATCH',
      `grpoLoss: entropy has ${t.entropy.length} entries but mask has ${n}`,
    );
  }
  const sums: GrpoSums = { tokens: 0, pgLoss: 0, kl: 0, entropy: 0, clipped: 0, clippedLower: 0, ppoKl: 0 };
  for (let i = 0; i < n; i++) if (t.mask[i]! !== 0) sums.tokens += t.mask[i]!;
  const denom = denominator ?? sums.tokens;
  const dLogprob = new Float32Array(n);
  const dEntropy = new Float32Array(n);
  if (denom <= 0) return { loss: 0, sums, dLogprob, dEntropy };

  const lo = 1 - config.clipRatioLow;
  const hi = 1 + config.clipRatioHigh;
  for (let i = 0; i < n; i++) {
    const m = t.mask[i]!;
    if (m === 0) continue;
    const a = t.advantage[i]!;
    const rawLogRatio = t.logprob[i]! - t.oldLogprob[i]!;
    const logRatio = clamp(rawLogRatio, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
    const ratioGradLive = rawLogRatio >= -LOG_RATIO_CLAMP && rawLogRatio <= LOG_RATIO_CLAMP;
    const ratio = Math.exp(logRatio);
    const unclipped = -a * ratio;
    const clipped = -a * clamp(ratio, lo, hi);
    let pg = Math.max(unclipped, clipped);
    // The unclipped branch carries the gradient unless the clipped (constant) one is strictly larger.
    let grad = clipped > unclipped ? 0 : -a * ratio;
    if (clipped > unclipped) sums.clipped += m;
    if (config.clipRatioC !== null && a < 0) {
      const bound = -a * config.clipRatioC;
      if (pg > bound) {
        pg = bound;
        grad = 0;
        sums.clippedLower += m;
      }
    }
    if (!ratioGradLive) grad = 0;
    const kl = k3Kl(t.logprob[i]!, t.refLogprob[i]!);
    const ent = t.entropy?.[i] ?? 0;
    sums.pgLoss += m * pg;
    sums.kl += m * kl;
    sums.entropy += m * ent;
    sums.ppoKl += m * -logRatio;
    dLogprob[i] = (m * (grad + config.klCoef * k3KlGrad(t.logprob[i]!, t.refLogprob[i]!))) / denom;
    dEntropy[i] = (-m * config.entropyCoef) / denom;
  }
  const loss = (sums.pgLoss + config.klCoef * sums.kl - config.entropyCoef * sums.entropy) / denom;
  return { loss, sums, dLogprob, dEntropy };
}

export function emptySums(): GrpoSums {
  return { tokens: 0, pgLoss: 0, kl: 0, entropy: 0, clipped: 0, clippedLower: 0, ppoKl: 0 };
}

export function addSums(a: GrpoSums, b: GrpoSums): GrpoSums {
  return {
    tokens: a.tokens + b.tokens,
    pgLoss: a.pgLoss + b.pgLoss,
    kl: a.kl + b.kl,
    entropy: a.entropy + b.entropy,
    clipped: a.clipped + b.clipped,
    clippedLower: a.clippedLower + b.clippedLower,
    ppoKl: a.ppoKl + b.ppoKl,
  };
}

/** Token means of the summed statistics (verl's masked_mean of each). */
export function sumsToMetrics(s: GrpoSums): GrpoMetrics {
  const d = s.tokens > 0 ? s.tokens : 1;
  return {
    pgLoss: s.pgLoss / d,
    kl: s.kl / d,
    entropy: s.entropy / d,
    clipFraction: s.clipped / d,
    clipFractionLower: s.clippedLower / d,
    ppoKl: s.ppoKl / d,
    tokens: s.tokens,
  };
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}
