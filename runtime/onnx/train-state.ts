/**
 * Host-side state of an AdamW train-step graph (see `adamw.ts`): the current params and moments, and a
 * second set of buffers that each run writes its updates into (preallocated outputs). The two sets swap
 * after every step, so a training loop allocates no per-step weight buffers and memory stays flat.
 */
import * as ort from 'onnxruntime-node';
import { DrError } from '../../config/errors.ts';
import { ADAMW_LR, ADAMW_STEP, GRAD_NORM, LOSS, stateBindings, type ParamSlot } from './adamw.ts';
import type { Feeds, OnnxSession } from './session.ts';

export type FloatArray = Float32Array | Float64Array;

export interface ParamValue {
  readonly dims: readonly number[];
  readonly data: FloatArray;
}

type Slot = ParamSlot<ort.Tensor>;

export interface StepResult {
  readonly loss: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
}

export class TrainState {
  readonly dtype: 'float32' | 'float64';
  #front = new Map<string, Slot>();
  #back = new Map<string, Slot>();
  #step = 0;
  readonly #plans: ({ feeds: Feeds; fetches: Record<string, ort.Tensor | null> } | undefined)[] = [];
  readonly #checked = new WeakSet<OnnxSession>();
  readonly #lr: ort.Tensor;
  readonly #stepT: ort.Tensor;

  /** Copies the initial params; moments start at zero. */
  constructor(params: Readonly<Record<string, ParamValue>>) {
    const entries = Object.entries(params);
    const first = entries[0];
    if (!first) throw new DrError('ONNX_NO_PARAMS', 'TrainState needs at least one param');
    this.dtype = first[1].data instanceof Float64Array ? 'float64' : 'float32';
    const scalar = (): ort.Tensor =>
      new ort.Tensor(this.dtype, this.dtype === 'float64' ? new Float64Array(1) : new Float32Array(1), []);
    this.#lr = scalar();
    this.#stepT = scalar();
    for (const [name, { dims, data }] of entries) {
      const size = dims.reduce((a, b) => a * b, 1);
      if (data.length !== size)
        throw new DrError(
          'ONNX_BAD_SHAPE',
          `param ${name}: ${data.length} values for dims [${dims.join(', ')}]`,
        );
      if ((data instanceof Float64Array ? 'float64' : 'float32') !== this.dtype)
        throw new DrError('ONNX_DTYPE_MISMATCH', `param ${name} is not ${this.dtype} like the others`);
      const make = (init?: FloatArray): ort.Tensor => {
        const buf = this.dtype === 'float64' ? new Float64Array(size) : new Float32Array(size);
        if (init) buf.set(init);
        return new ort.Tensor(this.dtype, buf, [...dims]);
      };
      this.#front.set(name, { p: make(data), m: make(), v: make() });
      this.#back.set(name, { p: make(), m: make(), v: make() });
    }
  }

  /** Completed optimizer steps. */
  get step(): number {
    return this.#step;
  }

  /** Current value of a param (a view; valid until the next step). */
  param(name: string): FloatArray {
    const s = this.#front.get(name);
    if (!s) throw new DrError('ONNX_UNKNOWN_PARAM', `no param called ${name}`);
    return s.p.data as FloatArray;
  }

  get paramNames(): string[] {
    return [...this.#front.keys()];
  }

  /** Feeds the params alone (for a forward graph that shares the train graph's param names). */
  paramFeeds(): Feeds {
    const feeds: Feeds = {};
    for (const [name, s] of this.#front) feeds[name] = s.p;
    return feeds;
  }

  /** One forward + backward + AdamW run of `session` (built with `trainStep`/`adamw`) on `batch`. */
  async run(session: OnnxSession, batch: Feeds, lr: number): Promise<StepResult> {
    const plan = (this.#plans[this.#step % 2] ??= this.#plan());
    if (!this.#checked.has(session)) {
      const missing = [...Object.keys(plan.fetches), ...Object.keys(plan.feeds)].filter(
        (n) => !session.outputNames.includes(n) && !session.inputNames.includes(n),
      );
      if (missing.length) {
        throw new DrError(
          'ONNX_NOT_A_TRAIN_STEP',
          `the session lacks ${missing.join(', ')}; build it with trainStep/adamw over exactly these params: ${this.paramNames.join(', ')}`,
        );
      }
      this.#checked.add(session);
    }
    (this.#lr.data as FloatArray)[0] = lr;
    (this.#stepT.data as FloatArray)[0] = this.#step + 1;
    const out = await session.run(Object.assign(plan.feeds, batch), plan.fetches);
    for (const k of Object.keys(batch)) delete plan.feeds[k];
    [this.#front, this.#back] = [this.#back, this.#front];
    this.#step++;
    return { loss: Number(out[LOSS]!.data[0]), gradNorm: Number(out[GRAD_NORM]!.data[0]) };
  }

  /** Feeds and fetches for the current front/back assignment; two plans alternate, so none is rebuilt per step. */
  #plan(): { feeds: Feeds; fetches: Record<string, ort.Tensor | null> } {
    const { inputs, outputs } = stateBindings(this.#front, this.#back);
    return {
      feeds: { [ADAMW_LR]: this.#lr, [ADAMW_STEP]: this.#stepT, ...inputs },
      fetches: { [LOSS]: null, [GRAD_NORM]: null, ...outputs },
    };
  }
}
