/**
 * `DeviceTrainState`: TrainState's contract (one forward + backward + AdamW run per optimizer step of a
 * graph built with `trainStep`/`adamw`) with the parameters and both AdamW moments resident in device
 * memory. Two sets of device tensors alternate: a step reads the front set and writes the back set through
 * IO binding, then they swap, so no weight or moment crosses the bus during training. The host sees the
 * weights only when it asks (`param`, `params`: to publish a version or write a checkpoint) and the batch is
 * the only thing copied in per step. On the CPU provider the same code keeps everything in host buffers.
 */
import { DrError } from '../../../config/errors.ts';
import { ADAMW_LR, ADAMW_STEP, GRAD_NORM, LOSS, stateBindings, type ParamSlot } from '../adamw.ts';
import { NativeSession, type NativeProvider, type NativeTensor } from './ort-native.ts';

export interface HostBatchValue {
  data: Float32Array | BigInt64Array;
  dims: readonly number[];
}

type Slot = ParamSlot<NativeTensor>;

export class DeviceTrainState {
  readonly session: NativeSession;
  #front = new Map<string, Slot>();
  #back = new Map<string, Slot>();
  #step = 0;
  readonly #lr: NativeTensor;
  readonly #stepT: NativeTensor;
  readonly #loss: NativeTensor;
  readonly #gradNorm: NativeTensor;
  readonly #hasLoss: boolean;

  /**
   * Builds the session for `model` (a fused train-step graph, or an AdamW-only graph whose gradients are
   * batch inputs: `loss: false`) and uploads the initial params; moments start at 0.
   */
  constructor(
    model: Uint8Array,
    params: ReadonlyMap<string, { dims: readonly number[]; data: Float32Array }>,
    options: { provider: NativeProvider; deviceId?: number; intraOpThreads?: number; loss?: boolean },
  ) {
    this.session = NativeSession.create(model, options);
    this.#hasLoss = options.loss ?? true;
    const s = this.session;
    for (const [name, { dims, data }] of params) {
      const slot = (): Slot => ({ p: s.allocate(dims), m: s.allocate(dims), v: s.allocate(dims) });
      const front = slot();
      s.write(front.p, data);
      s.zero(front.m);
      s.zero(front.v);
      this.#front.set(name, front);
      this.#back.set(name, slot());
    }
    const scalar = (): NativeTensor => s.wrap(new Float32Array(1), []);
    this.#lr = scalar();
    this.#stepT = scalar();
    this.#loss = scalar();
    this.#gradNorm = scalar();
  }

  get step(): number {
    return this.#step;
  }

  get paramNames(): string[] {
    return [...this.#front.keys()];
  }

  /** The current params as device tensors, to bind as inputs of other sessions on the same device (valid
   * until the next step). */
  get deviceParams(): Record<string, NativeTensor> {
    return Object.fromEntries([...this.#front].map(([name, slot]) => [name, slot.p]));
  }

  /**
   * One optimizer step on `batch`: host arrays (copied in for this run) or device tensors (bound as they
   * are, e.g. another session's outputs). Returns the loss (0 for a graph without one) and the pre-clip grad
   * norm. A non-finite norm leaves params, moments and the step count as they were (`applied: false`): the
   * update went into the back set, which is simply not swapped in.
   */
  run(
    batch: Readonly<Record<string, HostBatchValue | NativeTensor>>,
    lr: number,
  ): { loss: number; gradNorm: number; applied: boolean } {
    const s = this.session;
    (this.#lr.host as Float32Array)[0] = lr;
    (this.#stepT.host as Float32Array)[0] = this.#step + 1;
    const wrapped: NativeTensor[] = [];
    const inputs: Record<string, NativeTensor> = { [ADAMW_LR]: this.#lr, [ADAMW_STEP]: this.#stepT };
    for (const [name, v] of Object.entries(batch)) {
      if ('handle' in v) inputs[name] = v;
      else {
        const t = s.wrap(v.data, v.dims);
        wrapped.push(t);
        inputs[name] = t;
      }
    }
    const state = stateBindings(this.#front, this.#back);
    Object.assign(inputs, state.inputs);
    const outputs: Record<string, NativeTensor> = { [GRAD_NORM]: this.#gradNorm, ...state.outputs };
    if (this.#hasLoss) outputs[LOSS] = this.#loss;
    try {
      s.run(inputs, outputs);
    } finally {
      for (const t of wrapped) s.release(t);
    }
    const gradNorm = (this.#gradNorm.host as Float32Array)[0]!;
    const applied = Number.isFinite(gradNorm);
    if (applied) {
      [this.#front, this.#back] = [this.#back, this.#front];
      this.#step++;
    }
    return { loss: this.#hasLoss ? (this.#loss.host as Float32Array)[0]! : 0, gradNorm, applied };
  }

  /** Every param's two moments, copied to the host (for a checkpoint). */
  moments(): Map<string, { m: Float32Array; v: Float32Array }> {
    return new Map(
      [...this.#front].map(([n, slot]) => [
        n,
        { m: this.session.read(slot.m), v: this.session.read(slot.v) },
      ]),
    );
  }

  /** Replaces params, moments and the step count (a resume). */
  load(state: {
    step: number;
    params: ReadonlyMap<string, Float32Array>;
    moments: ReadonlyMap<string, { m: Float32Array; v: Float32Array }>;
  }): void {
    for (const [name, slot] of this.#front) {
      const p = state.params.get(name);
      const mv = state.moments.get(name);
      if (p === undefined || mv === undefined)
        throw new DrError('ONNX_UNKNOWN_PARAM', `the state to load has no ${name}; it is of another model`);
      this.session.write(slot.p, p);
      this.session.write(slot.m, mv.m);
      this.session.write(slot.v, mv.v);
    }
    this.#step = state.step;
  }

  /** The current value of one param, copied to the host (into `into` when given). */
  param(name: string, into?: Float32Array): Float32Array {
    const slot = this.#front.get(name);
    if (slot === undefined) throw new DrError('ONNX_UNKNOWN_PARAM', `no param called ${name}`);
    return this.session.read(slot.p, into);
  }

  /** Every param, copied to the host (what publishing a weight version needs). */
  params(): Map<string, Float32Array> {
    return new Map(this.paramNames.map((n) => [n, this.param(n)]));
  }

  dispose(): void {
    for (const set of [this.#front, this.#back])
      for (const slot of set.values()) for (const t of [slot.p, slot.m, slot.v]) this.session.release(t);
    for (const t of [this.#lr, this.#stepT, this.#loss, this.#gradNorm]) this.session.release(t);
    this.session.dispose();
  }
}
