/**
 * Where a learner's weights, optimizer state and gradient accumulators live, and what runs on them. The
 * Learner (learner.ts) owns the step's order (micro-batches, token counts, the all-reduce, metrics); an
 * engine owns the memory:
 *
 * - `HostEngine`: weights, AdamW moments and gradients in host arrays; any TrainableModel computes one
 *   micro-batch's gradient per call (the bigram reference model, or Qwen2 through onnxruntime-node), AdamW
 *   runs in JavaScript. What CPU nodes run.
 * - `DeviceEngine` (device-engine.ts): all of it resident on the GPU through onnxruntime's C API; the host
 *   sees gradients only for a multi-learner all-reduce and weights only when they are published.
 */
import { DrError } from '../../config/errors.ts';
import { adamwStep, initAdamWState, type AdamWConfig, type AdamWState } from './adamw.ts';
import { emptySums, type GrpoLossConfig, type GrpoSums } from './grpo.ts';
import type { MicroBatch, ParamSpec, TrainableModel } from './model.ts';

export type LearnerMode = 'grpo' | 'sft';

/** Everything needed to continue training bit-exactly. */
export interface LearnerState {
  weights: Float32Array[];
  optimizer: AdamWState;
}

export interface LearnerEngine {
  readonly params: readonly ParamSpec[];
  /** Optimizer steps taken. */
  readonly step: number;
  /**
   * Opens a step over `mbs`: zeroes the gradient accumulators and, for GRPO, computes every micro-batch's
   * old (current weights) and reference log-probabilities before any weight changes.
   */
  begin(mbs: readonly MicroBatch[], mode: LearnerMode, loss: GrpoLossConfig): Promise<void>;
  /** Adds micro-batch `index`'s gradient to the accumulators; returns its share of the loss and its sums. */
  accumulate(index: number, denominator: number): Promise<{ loss: number; sums: GrpoSums }>;
  /** The accumulated gradients as host arrays (read only for a multi-learner all-reduce). */
  readGradients(): Float32Array[];
  /** Replaces the accumulated gradients with `grads` (the all-reduced sum). */
  writeGradients(grads: readonly Float32Array[]): void;
  /**
   * Clipping and AdamW on the accumulated gradients; closes the step. A non-finite gradient norm changes
   * nothing and throws LEARNER_NONFINITE_GRADIENT.
   */
  apply(optimizer: AdamWConfig): Promise<{ gradNorm: number }>;
  /** The current weights on the host, in `params` order (what a published version carries). */
  weights(): readonly Float32Array[];
  exportState(): LearnerState;
  loadState(state: LearnerState): void;
  dispose(): Promise<void>;
}

/** Refuses a state whose tensors do not match `params` (resuming with another model). */
export function checkStateShapes(params: readonly ParamSpec[], state: LearnerState): void {
  const sizes = params.map((p) => p.shape.reduce((a, b) => a * b, 1));
  const ok = (ts: readonly Float32Array[]): boolean =>
    ts.length === sizes.length && ts.every((t, i) => t.length === sizes[i]);
  if (!ok(state.weights) || !ok(state.optimizer.m) || !ok(state.optimizer.v)) {
    throw new DrError(
      'LEARNER_BAD_WEIGHTS',
      'the learner state does not match the model parameter shapes; resume with the model it was saved from',
    );
  }
}

const copyAll = (ts: readonly Float32Array[]): Float32Array[] => ts.map((t) => Float32Array.from(t));

export class HostEngine implements LearnerEngine {
  private weightsNow: Float32Array[];
  private optimizer: AdamWState;
  private readonly reference: readonly Float32Array[];
  private grads: Float32Array[] = [];
  private mbs: readonly MicroBatch[] = [];
  private mode: LearnerMode = 'grpo';
  private loss: GrpoLossConfig | null = null;

  constructor(
    private readonly model: TrainableModel,
    initial: readonly Float32Array[],
    /** The KL anchor; frozen at the initial policy unless given. */
    reference?: readonly Float32Array[],
  ) {
    if (initial.length !== model.params.length) {
      throw new DrError(
        'LEARNER_BAD_WEIGHTS',
        `learner got ${initial.length} weight tensors for a model with ${model.params.length} parameters`,
      );
    }
    this.weightsNow = copyAll(initial);
    this.reference = reference ?? copyAll(initial);
    this.optimizer = initAdamWState(this.weightsNow);
  }

  get params(): readonly ParamSpec[] {
    return this.model.params;
  }

  get step(): number {
    return this.optimizer.step;
  }

  async begin(mbs: readonly MicroBatch[], mode: LearnerMode, loss: GrpoLossConfig): Promise<void> {
    this.mbs = mbs;
    this.mode = mode;
    this.loss = loss;
    this.grads = this.weightsNow.map((w) => new Float32Array(w.length));
    if (mode !== 'grpo') return;
    // verl recomputes the old log-probs with the weights before the step; it does not trust the sampler's.
    for (const mb of mbs) {
      mb.oldLogprob = await this.model.logprobs(this.weightsNow, mb);
      mb.refLogprob = loss.klCoef !== 0 ? await this.model.logprobs(this.reference, mb) : mb.oldLogprob;
    }
  }

  async accumulate(index: number, denominator: number): Promise<{ loss: number; sums: GrpoSums }> {
    const mb = this.mbs[index]!;
    const r =
      this.mode === 'grpo'
        ? await this.model.grpoGradients(this.weightsNow, mb, this.loss!, denominator)
        : await this.model.sftGradients(this.weightsNow, mb, denominator);
    for (let p = 0; p < this.grads.length; p++) {
      const g = this.grads[p]!;
      const d = r.grads[p]!;
      for (let i = 0; i < g.length; i++) g[i] = g[i]! + d[i]!;
    }
    return { loss: r.loss, sums: { ...emptySums(), ...r.sums } };
  }

  readGradients(): Float32Array[] {
    return this.grads;
  }

  writeGradients(grads: readonly Float32Array[]): void {
    grads.forEach((g, p) => {
      if (g !== this.grads[p]) this.grads[p]!.set(g);
    });
  }

  async apply(optimizer: AdamWConfig): Promise<{ gradNorm: number }> {
    try {
      return adamwStep(this.weightsNow, this.grads, this.optimizer, optimizer);
    } finally {
      this.grads = [];
      this.mbs = [];
    }
  }

  weights(): readonly Float32Array[] {
    return this.weightsNow;
  }

  exportState(): LearnerState {
    return {
      weights: copyAll(this.weightsNow),
      optimizer: { step: this.optimizer.step, m: copyAll(this.optimizer.m), v: copyAll(this.optimizer.v) },
    };
  }

  loadState(state: LearnerState): void {
    checkStateShapes(this.params, state);
    this.weightsNow = copyAll(state.weights);
    this.optimizer = {
      step: state.optimizer.step,
      m: copyAll(state.optimizer.m),
      v: copyAll(state.optimizer.v),
    };
  }

  async dispose(): Promise<void> {
    await this.model.dispose?.();
  }
}
