/**
 * `DeviceQwen2Trainer`: a Qwen2 learner's step with everything it touches resident on the device
 * (runtime/onnx/native): the policy's weights and AdamW moments, the frozen reference weights, the gradient
 * accumulators, and each micro-batch's old and reference log-probabilities. A step is
 *
 *   zeroGradients → logprobs (old, ref) per micro-batch → accumulate per micro-batch → apply (AdamW)
 *
 * where `accumulate` runs forward + backward and adds the gradient into the accumulators inside the same
 * session run (two accumulator sets alternate, like the params), and `apply` runs clipping and AdamW on
 * them. Per micro-batch only token ids, masks and advantages go in and a few loss sums come out. The host sees
 * gradients only when a data-parallel group all-reduces them (`readGradients`/`writeGradients`), and
 * weights only when a version is published or a checkpoint written.
 *
 * Runs are synchronous native calls on the calling thread; before each one the trainer yields to the event
 * loop, so between runs (a micro-batch's forward and backward, under a second for Qwen2.5-0.5B at 4 x 1,024
 * tokens on an H200) the node answers heartbeats and asks. koffi's `.async` calls would free the loop during a
 * run too, but measured on the H200 they made the 0.5B step 0.98 s instead of 0.66 s (each of koffi's pool
 * threads gets its own CUDA provider context) and crashed a vitest fork pool; a dedicated worker thread
 * owning the sessions is the way to free it fully.
 */
import { DrError } from '../../config/errors.ts';
import type { AdamWConfig } from '../onnx/adamw.ts';
import { adamw } from '../onnx/adamw.ts';
import { grad } from '../onnx/autodiff.ts';
import { Graph } from '../onnx/graph.ts';
import { DeviceTrainState } from '../onnx/native/device-train-state.ts';
import { NativeSession, type NativeProvider, type NativeTensor } from '../onnx/native/ort-native.ts';
import * as op from '../onnx/ops.ts';
import { qwen2ParamShapes, type Qwen2Config } from './qwen2-config.ts';
import { weightsAsParams } from './qwen2-graph.ts';
import { buildGrpoLoss, buildLogprobs, buildSftLoss, gradName, type LossGraph } from './qwen2-train.ts';
import type { FloatTensor } from './safetensors.ts';
import { NO_DUAL_CLIP, sequenceFeeds, type GrpoSettings, type LossSums, type TokenBatch } from './trainer.ts';

export interface DeviceTrainerOptions {
  provider: NativeProvider;
  deviceId?: number;
  intraOpThreads?: number;
  adamw?: AdamWConfig;
}

/** What one micro-batch's gradient run adds: its share of the loss and its loss sums. */
export interface MicroBatchSums {
  loss: number;
  sums: LossSums;
}

/** The loss one accumulate run computes. GRPO needs the micro-batch's old and reference log-probs. */
export type DeviceLoss =
  { kind: 'grpo'; settings: GrpoSettings; old: NativeTensor; ref: NativeTensor } | { kind: 'sft' };

type LossKind = 'grpo-metric' | 'grpo-loss' | 'sft';

/** The scalar outputs of each loss graph, by the LossSums field they fill. */
const GRPO_SUMS: Partial<Record<keyof LossSums, string>> = {
  tokens: 'tokens',
  pgLoss: 'pg_loss',
  kl: 'kl',
  entropy: 'entropy',
  clipped: 'clipped',
  clippedLower: 'clipped_lower',
  ppoKl: 'ppo_kl',
};
const SUM_OUTPUTS: Record<LossKind, Partial<Record<keyof LossSums, string>>> = {
  'grpo-metric': GRPO_SUMS,
  'grpo-loss': GRPO_SUMS,
  sft: { tokens: 'tokens', pgLoss: 'pg_loss' },
};

const accName = (param: string): string => `acc.${param}`;
const accNext = (param: string): string => `acc.${param}.next`;

export class DeviceQwen2Trainer {
  readonly paramNames: readonly string[];
  readonly #options: DeviceTrainerOptions;
  readonly #shapes: Map<string, number[]>;
  /** Params and moments, and the AdamW-only session that updates them from the accumulated gradients. */
  readonly #state: DeviceTrainState;
  readonly #logprobs: NativeSession;
  readonly #ref: Record<string, NativeTensor> = {};
  readonly #loss = new Map<LossKind, NativeSession>();
  #acc: Record<string, NativeTensor> = {};
  #accBack: Record<string, NativeTensor> = {};
  readonly #scalars = new Map<string, NativeTensor>();
  #disposed = false;
  #host: Float32Array[] | undefined;
  /** Log-prob tensors given to the caller and not yet released. */
  readonly #handedOut = new Set<NativeTensor>();

  constructor(
    readonly config: Qwen2Config,
    weights: ReadonlyMap<string, FloatTensor | Float32Array>,
    options: DeviceTrainerOptions,
  ) {
    this.#options = options;
    this.#shapes = qwen2ParamShapes(config);
    this.paramNames = [...this.#shapes.keys()];
    const params = new Map(
      this.paramNames.map((n) => {
        const w = weights.get(n);
        if (w === undefined)
          throw new DrError(
            'MODEL_BAD_WEIGHTS',
            `the initial weights have no ${n}; load the model's own checkpoint`,
          );
        return [n, { dims: this.#shapes.get(n)!, data: w instanceof Float32Array ? w : w.data }] as const;
      }),
    );
    this.#state = new DeviceTrainState(applyGraph(config, options.adamw).serialize().model, params, {
      ...this.#session(),
      loss: false,
    });
    const s = this.#state.session;
    for (const [name, { dims }] of params) {
      for (const set of [this.#acc, this.#accBack]) set[name] = s.allocate(dims);
    }
    const g = new Graph('qwen2_logprobs');
    buildLogprobs(g, config, weightsAsParams(g, config));
    this.#logprobs = NativeSession.create(g.serialize().model, this.#session());
    for (const [name, { dims, data }] of params) {
      const t = this.#logprobs.allocate(dims);
      this.#logprobs.write(t, data);
      this.#ref[name] = t;
    }
  }

  get step(): number {
    return this.#state.step;
  }

  /** Starts a step's accumulation from zero. */
  zeroGradients(): void {
    for (const t of Object.values(this.#acc)) this.#state.session.zero(t);
  }

  /**
   * Per-token log-probabilities of `mb` under the current (`policy`) or frozen reference weights, left on the
   * device for `accumulate`. The caller releases them with `release`.
   */
  async logprobs(mb: TokenBatch, weights: 'policy' | 'reference'): Promise<NativeTensor> {
    const lp = this.#logprobs;
    const out = lp.allocate([mb.rows, mb.cols]);
    const seq = this.#sequence(lp, mb);
    try {
      await this.#turn();
      lp.run({ ...(weights === 'policy' ? this.#state.deviceParams : this.#ref), ...seq }, { logprobs: out });
      this.#handedOut.add(out);
      return out;
    } catch (err) {
      lp.release(out);
      throw err;
    } finally {
      for (const t of Object.values(seq)) lp.release(t);
    }
  }

  release(tensor: NativeTensor): void {
    if (this.#handedOut.delete(tensor)) this.#logprobs.release(tensor);
  }

  /** Forward + backward of one micro-batch, its gradient added to the accumulators on the device. */
  async accumulate(mb: TokenBatch, loss: DeviceLoss, denominator: number): Promise<MicroBatchSums> {
    const kind: LossKind =
      loss.kind === 'sft' ? 'sft' : loss.settings.entropyCoef !== 0 ? 'grpo-loss' : 'grpo-metric';
    const session = this.#lossSession(kind);
    const dims = [mb.rows, mb.cols];
    const seq = this.#sequence(session, mb);
    const perToken = { loss_mask: session.wrap(checkedPerToken(mb, mb.lossMask), dims) };
    const inputs: Record<string, NativeTensor> = {
      ...this.#state.deviceParams,
      ...seq,
      ...perToken,
      denominator: this.#scalar('denominator', denominator),
    };
    if (loss.kind === 'grpo') {
      const s = loss.settings;
      Object.assign(perToken, { advantages: session.wrap(checkedPerToken(mb, mb.advantage), dims) });
      Object.assign(inputs, perToken, {
        old_logprobs: loss.old,
        ref_logprobs: loss.ref,
        clip_low: this.#scalar('clip_low', s.clipRatioLow),
        clip_high: this.#scalar('clip_high', s.clipRatioHigh),
        clip_c: this.#scalar('clip_c', s.clipRatioC ?? NO_DUAL_CLIP),
        kl_coef: this.#scalar('kl_coef', s.klCoef),
      });
      if (kind === 'grpo-loss') inputs.entropy_coef = this.#scalar('entropy_coef', s.entropyCoef);
    }
    const outputs: Record<string, NativeTensor> = { loss: this.#scalar('out.loss', 0) };
    for (const out of Object.values(SUM_OUTPUTS[kind])) outputs[out] = this.#scalar(`out.${out}`, 0);
    for (const name of this.paramNames) {
      inputs[accName(name)] = this.#acc[name]!;
      outputs[accNext(name)] = this.#accBack[name]!;
    }
    try {
      await this.#turn();
      session.run(inputs, outputs);
    } finally {
      for (const t of [...Object.values(seq), ...Object.values(perToken)]) session.release(t);
    }
    [this.#acc, this.#accBack] = [this.#accBack, this.#acc];
    const value = (name: string): number => (outputs[name]!.host as Float32Array)[0]!;
    const sums: LossSums = { tokens: 0, pgLoss: 0, kl: 0, entropy: 0, clipped: 0, clippedLower: 0, ppoKl: 0 };
    for (const [field, out] of Object.entries(SUM_OUTPUTS[kind])) sums[field as keyof LossSums] = value(out);
    return { loss: value('loss'), sums };
  }

  /** The accumulated gradients, copied to the host (for an all-reduce across learners). */
  readGradients(): Float32Array[] {
    return this.paramNames.map((n) => this.#state.session.read(this.#acc[n]!));
  }

  /** Replaces the accumulated gradients (the all-reduced sum). */
  writeGradients(grads: readonly Float32Array[]): void {
    this.paramNames.forEach((n, i) => this.#state.session.write(this.#acc[n]!, grads[i]!));
  }

  /** Clipping and AdamW on the accumulated gradients. A non-finite norm changes nothing (`applied: false`). */
  async apply(lr: number): Promise<{ gradNorm: number; applied: boolean }> {
    const grads = Object.fromEntries(this.paramNames.map((n) => [gradName(n), this.#acc[n]!]));
    await this.#turn();
    const { gradNorm, applied } = this.#state.run(grads, lr);
    return { gradNorm, applied };
  }

  /**
   * The current weights copied to the host, in `paramNames` order, into host arrays this trainer keeps and
   * reuses (valid until the next call): publishing every step then costs no fresh allocation.
   */
  weights(): readonly Float32Array[] {
    this.#host ??= this.paramNames.map((n) => new Float32Array(size(this.#shapes.get(n)!)));
    this.paramNames.forEach((n, i) => this.#state.param(n, this.#host![i]!));
    return this.#host;
  }

  moments(): { step: number; m: Float32Array[]; v: Float32Array[] } {
    const mv = this.#state.moments();
    return {
      step: this.#state.step,
      m: this.paramNames.map((n) => mv.get(n)!.m),
      v: this.paramNames.map((n) => mv.get(n)!.v),
    };
  }

  /** Replaces weights, moments and the step count (a resume), all in `paramNames` order. */
  load(state: {
    weights: readonly Float32Array[];
    step: number;
    m: readonly Float32Array[];
    v: readonly Float32Array[];
  }): void {
    const byName = <T>(xs: readonly T[]): Map<string, T> =>
      new Map(this.paramNames.map((n, i) => [n, xs[i]!]));
    this.#state.load({
      step: state.step,
      params: byName(state.weights),
      moments: byName(this.paramNames.map((_, i) => ({ m: state.m[i]!, v: state.v[i]! }))),
    });
  }

  /** Releases every tensor and session; a step in progress fails at its next run. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const s = this.#state.session;
    for (const t of [...Object.values(this.#acc), ...Object.values(this.#accBack)]) s.release(t);
    for (const t of [...Object.values(this.#ref), ...this.#handedOut]) this.#logprobs.release(t);
    for (const t of this.#scalars.values()) s.release(t);
    for (const session of this.#loss.values()) session.dispose();
    this.#logprobs.dispose();
    this.#state.dispose();
  }

  /** Lets the event loop run (timers, sockets) before the next native call; refuses after `dispose`. */
  async #turn(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.#disposed)
      throw new DrError('ONNX_SESSION_RELEASED', 'the device trainer was disposed during this step');
  }

  #session(): { provider: NativeProvider; deviceId?: number; intraOpThreads?: number } {
    const { provider, deviceId, intraOpThreads } = this.#options;
    return { provider, deviceId, intraOpThreads };
  }

  /** Built on first use: each loss graph's session holds its own activation arena. */
  #lossSession(kind: LossKind): NativeSession {
    let session = this.#loss.get(kind);
    if (session === undefined) {
      session = NativeSession.create(accumulateGraph(this.config, kind).serialize().model, this.#session());
      this.#loss.set(kind, session);
    }
    return session;
  }

  /**
   * A host scalar tensor reused across runs (its value rewritten per run). Host tensors belong to no
   * session's allocator, and runs never overlap, so every loss session shares one per name.
   */
  #scalar(name: string, value: number): NativeTensor {
    let t = this.#scalars.get(name);
    if (t === undefined) {
      t = this.#state.session.wrap(new Float32Array(1), []);
      this.#scalars.set(name, t);
    }
    (t.host as Float32Array)[0] = value;
    return t;
  }

  #sequence(session: NativeSession, mb: TokenBatch): Record<string, NativeTensor> {
    const dims = [mb.rows, mb.cols];
    return Object.fromEntries(
      Object.entries(sequenceFeeds(mb)).map(([name, t]) => [
        name,
        session.wrap(t.data as BigInt64Array, dims),
      ]),
    );
  }
}

/** A loss graph whose gradients are added to accumulator inputs: `acc.<p>.next = acc.<p> + ∂loss/∂p`. */
function accumulateGraph(config: Qwen2Config, kind: LossKind): Graph {
  const g = new Graph(`qwen2_${kind.replace(/-/g, '_')}_accumulate`);
  const w = weightsAsParams(g, config);
  const lossGraph: LossGraph =
    kind === 'sft'
      ? buildSftLoss(g, config, w)
      : buildGrpoLoss(g, config, w, { entropy: kind === 'grpo-loss' ? 'loss' : 'metric' });
  g.output(lossGraph.loss, 'loss');
  const grads = grad(lossGraph.loss, lossGraph.params);
  lossGraph.params.forEach((p, i) => {
    g.output(op.add(g.input(accName(p.name), 'float32', p.shape), grads[i]!), accNext(p.name));
  });
  return g;
}

/** AdamW (with clipping) whose gradients are inputs named `grad.<param>`. */
function applyGraph(config: Qwen2Config, adamwConfig: AdamWConfig = {}): Graph {
  const g = new Graph('qwen2_adamw_apply');
  const params = [...qwen2ParamShapes(config)].map(([name, shape]) => g.param(name, 'float32', shape));
  adamw(
    params,
    params.map((p) => g.input(gradName(p.name), 'float32', p.shape)),
    adamwConfig,
  );
  return g;
}

function checkedPerToken(mb: TokenBatch, data: Float32Array): Float32Array {
  if (data.length !== mb.rows * mb.cols)
    throw new DrError(
      'MODEL_BAD_BATCH',
      `a per-token array has ${data.length} values for a ${mb.rows}x${mb.cols} batch`,
    );
  return data;
}

function size(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
