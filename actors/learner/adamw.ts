/**
 * AdamW over flat Float32Array parameters, with the semantics of torch.optim.AdamW (decoupled weight decay
 * applied before the moment update, bias-corrected moments) and global-norm gradient clipping as
 * torch.nn.utils.clip_grad_norm_ (scale by max_norm / (norm + 1e-6) when the norm exceeds max_norm).
 * Moments are kept in float32 like the parameters, so a checkpoint round-trips them exactly.
 */
import { DrError } from '../../config/errors.ts';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm bound; null disables clipping. */
  maxGradNorm: number | null;
}

export const defaultAdamWConfig: AdamWConfig = {
  lr: 1e-6,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  maxGradNorm: 1.0,
};

/** Optimizer state; plain data so it can be checkpointed and shipped between actors. */
export interface AdamWState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export function initAdamWState(params: readonly Float32Array[]): AdamWState {
  return {
    step: 0,
    m: params.map((p) => new Float32Array(p.length)),
    v: params.map((p) => new Float32Array(p.length)),
  };
}

/** What every engine throws when a step's gradient norm is not finite (and the step was not taken). */
export function nonFiniteGradient(): DrError {
  return new DrError(
    'LEARNER_NONFINITE_GRADIENT',
    'the gradient norm is not finite; the step was skipped. Lower the learning rate or check the batch',
  );
}

/** L2 norm over all gradients together. */
export function globalGradNorm(grads: readonly Float32Array[]): number {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  return Math.sqrt(ss);
}

/**
 * One AdamW step in place on `params` and `state`. Returns the gradient norm before clipping. A non-finite
 * norm skips the update (a poisoned batch must not destroy the weights) and throws so the caller can log it.
 */
export function adamwStep(
  params: Float32Array[],
  grads: readonly Float32Array[],
  state: AdamWState,
  config: AdamWConfig,
): { gradNorm: number } {
  if (grads.length !== params.length || state.m.length !== params.length) {
    throw new DrError(
      'LEARNER_BAD_GRADIENTS',
      `AdamW got ${grads.length} gradients for ${params.length} parameters; the model and optimizer disagree`,
    );
  }
  const gradNorm = globalGradNorm(grads);
  if (!Number.isFinite(gradNorm)) throw nonFiniteGradient();
  const scale =
    config.maxGradNorm !== null && gradNorm > config.maxGradNorm ? config.maxGradNorm / (gradNorm + 1e-6) : 1;
  state.step += 1;
  const { lr, beta1, beta2, eps, weightDecay } = config;
  const bc1 = 1 - beta1 ** state.step;
  const bc2 = 1 - beta2 ** state.step;
  const stepSize = lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  for (let p = 0; p < params.length; p++) {
    const w = params[p]!;
    const g = grads[p]!;
    const m = state.m[p]!;
    const v = state.v[p]!;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]! * scale;
      w[i] = w[i]! * (1 - lr * weightDecay);
      m[i] = beta1 * m[i]! + (1 - beta1) * gi;
      v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi;
      w[i] = w[i]! - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2Sqrt + eps);
    }
  }
  return { gradNorm };
}
