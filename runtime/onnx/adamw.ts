/**
 * AdamW as graph ops (decoupled weight decay, bias correction from a step input, optional global-norm
 * gradient clipping), so that the optimizer update happens inside the same session run as forward and
 * backward. Params and moments are graph inputs; their updates are graph outputs with predictable names
 * (`stateNames`) so the caller can feed each step's outputs to the next step.
 */
import { DrError } from '../../config/errors.ts';
import { grad } from './autodiff.ts';
import type { Graph, Tensor } from './graph.ts';
import * as op from './ops.ts';

export interface AdamWConfig {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global L2 norm of all gradients to this value before the update (torch clip_grad_norm_). */
  maxGradNorm?: number;
  /** Which params decay (default: all); biases and norm scales are usually excluded. */
  decays?: (param: Tensor) => boolean;
}

/** Graph input/output names of one param's optimizer state. */
export interface StateNames {
  readonly m: string;
  readonly v: string;
  readonly nextParam: string;
  readonly nextM: string;
  readonly nextV: string;
}

export function stateNames(param: string): StateNames {
  return {
    m: `${param}.adam_m`,
    v: `${param}.adam_v`,
    nextParam: `${param}.next`,
    nextM: `${param}.adam_m.next`,
    nextV: `${param}.adam_v.next`,
  };
}

/** A param with its two AdamW moments, in whatever tensor type a runner holds them. */
export interface ParamSlot<T> {
  p: T;
  m: T;
  v: T;
}

/** The train-step inputs (the `front` params and moments) and outputs (written into `back`) by graph name. */
export function stateBindings<T>(
  front: ReadonlyMap<string, ParamSlot<T>>,
  back: ReadonlyMap<string, ParamSlot<T>>,
): { inputs: Record<string, T>; outputs: Record<string, T> } {
  const inputs: Record<string, T> = {};
  const outputs: Record<string, T> = {};
  for (const [name, f] of front) {
    const n = stateNames(name);
    const b = back.get(name)!;
    inputs[name] = f.p;
    inputs[n.m] = f.m;
    inputs[n.v] = f.v;
    outputs[n.nextParam] = b.p;
    outputs[n.nextM] = b.m;
    outputs[n.nextV] = b.v;
  }
  return { inputs, outputs };
}

/** Scalar graph inputs every AdamW graph takes: learning rate and the 1-based step count (float). */
export const ADAMW_LR = 'adamw.lr';
export const ADAMW_STEP = 'adamw.step';
/** Graph output with the global gradient norm before clipping. */
export const GRAD_NORM = 'grad_norm';

export interface AdamWGraph {
  readonly params: readonly Tensor[];
  readonly lr: Tensor;
  readonly step: Tensor;
  readonly gradNorm: Tensor;
}

/** Appends one AdamW update of `params` given `grads`, declaring moment inputs and marking the updated values as outputs. */
export function adamw(
  params: readonly Tensor[],
  grads: readonly Tensor[],
  config: AdamWConfig = {},
): AdamWGraph {
  const first = params[0];
  if (!first) throw new DrError('ONNX_NO_PARAMS', 'adamw needs at least one param');
  if (grads.length !== params.length)
    throw new DrError('ONNX_BAD_SHAPE', `adamw: ${params.length} params but ${grads.length} gradients`);
  const g: Graph = first.graph;
  const dt = first.dtype;
  const b1 = config.beta1 ?? 0.9;
  const b2 = config.beta2 ?? 0.999;
  const eps = config.eps ?? 1e-8;
  const wd = config.weightDecay ?? 0.01;
  const lr = g.input(ADAMW_LR, dt, []);
  const step = g.input(ADAMW_STEP, dt, []);

  const gs = grads.map((gr) => op.cast(gr, dt));
  const sq = gs.map((gr) => op.reduceSum(op.mul(gr, gr)));
  const gradNorm = op.sqrt(sq.reduce((a, b) => op.add(a, b)));
  g.output(gradNorm, GRAD_NORM);
  const scale =
    config.maxGradNorm === undefined ? null : op.min(op.div(config.maxGradNorm, op.add(gradNorm, 1e-6)), 1);

  const bc1 = op.sub(1, op.pow(g.constant(b1, dt), step));
  const bc2 = op.sub(1, op.pow(g.constant(b2, dt), step));
  const stepSize = op.div(lr, bc1);
  const sqrtBc2 = op.sqrt(bc2);

  params.forEach((p, i) => {
    if (p.dtype !== dt)
      throw new DrError(
        'ONNX_DTYPE_MISMATCH',
        `adamw: all params must share one dtype, ${p} differs from ${first}`,
      );
    const names = stateNames(p.name);
    const gr = scale ? op.mul(gs[i]!, scale) : gs[i]!;
    const m = g.input(names.m, dt, p.shape);
    const v = g.input(names.v, dt, p.shape);
    const m1 = op.add(op.mul(m, b1), op.mul(gr, 1 - b1));
    const v1 = op.add(op.mul(v, b2), op.mul(op.mul(gr, gr), 1 - b2));
    const denom = op.add(op.div(op.sqrt(v1), sqrtBc2), eps);
    const decayed = wd !== 0 && (config.decays?.(p) ?? true) ? op.mul(p, op.sub(1, op.mul(lr, wd))) : p;
    const next = op.sub(decayed, op.mul(stepSize, op.div(m1, denom)));
    g.output(next, names.nextParam);
    g.output(m1, names.nextM);
    g.output(v1, names.nextV);
  });
  return { params, lr, step, gradNorm };
}

/** Name of the loss output of a train-step graph. */
export const LOSS = 'loss';

/**
 * Turns a forward graph ending in `loss` into a train step: gradients of every param (or `params`), an
 * AdamW update, and outputs `loss`, `grad_norm` and each param's next value and moments.
 */
export function trainStep(
  loss: Tensor,
  config: AdamWConfig & { params?: readonly Tensor[] } = {},
): AdamWGraph {
  const params = config.params ?? loss.graph.params;
  loss.graph.output(loss, LOSS);
  return adamw(params, grad(loss, params), config);
}
