/**
 * The learner's engine for a Qwen2 on a GPU: weights, AdamW moments, gradient accumulators, the reference
 * weights and each micro-batch's old/reference log-probs stay on the device (runtime/model/device-trainer.ts
 * over onnxruntime's C API). A step moves only token ids, masks and advantages in and a few loss sums out;
 * a multi-learner group copies the summed gradient out and back once for its all-reduce.
 *
 * `weights()` copies the weights to the host once per optimizer step, into host arrays reused from step to
 * step, cached until the next step: publishing a version and writing a checkpoint of one step share a copy.
 */
import { DeviceQwen2Trainer, type DeviceLoss } from '../../runtime/model/device-trainer.ts';
import type { NativeProvider, NativeTensor } from '../../runtime/onnx/native/ort-native.ts';
import { qwen2ParamShapes, type Qwen2Config } from '../../runtime/model/qwen2-config.ts';
import { nonFiniteGradient, type AdamWConfig } from './adamw.ts';
import { checkStateShapes, type LearnerEngine, type LearnerMode, type LearnerState } from './engine.ts';
import { emptySums, type GrpoLossConfig, type GrpoSums } from './grpo.ts';
import type { MicroBatch, ParamSpec } from './model.ts';

export class DeviceEngine implements LearnerEngine {
  readonly params: readonly ParamSpec[];
  readonly #trainer: DeviceQwen2Trainer;
  #mbs: readonly MicroBatch[] = [];
  /** Per micro-batch of the open step, the loss it trains (GRPO's holds its device log-probs). */
  #losses: DeviceLoss[] = [];
  #logprobs: NativeTensor[] = [];
  #weights: { step: number; tensors: readonly Float32Array[] } | null = null;

  constructor(
    config: Qwen2Config,
    initial: ReadonlyMap<string, Float32Array>,
    options: { provider: NativeProvider; deviceId?: number; optimizer: AdamWConfig },
  ) {
    const o = options.optimizer;
    this.#trainer = new DeviceQwen2Trainer(config, initial, {
      provider: options.provider,
      deviceId: options.deviceId,
      adamw: {
        beta1: o.beta1,
        beta2: o.beta2,
        eps: o.eps,
        weightDecay: o.weightDecay,
        ...(o.maxGradNorm === null ? {} : { maxGradNorm: o.maxGradNorm }),
      },
    });
    this.params = [...qwen2ParamShapes(config)].map(([name, shape]) => ({ name, shape }));
  }

  get step(): number {
    return this.#trainer.step;
  }

  async begin(mbs: readonly MicroBatch[], mode: LearnerMode, loss: GrpoLossConfig): Promise<void> {
    this.#releaseLogprobs();
    this.#trainer.zeroGradients();
    this.#mbs = mbs;
    this.#losses = [];
    for (const mb of mbs) {
      if (mode === 'sft') {
        this.#losses.push({ kind: 'sft' });
        continue;
      }
      const old = await this.#trainer.logprobs(mb, 'policy');
      this.#logprobs.push(old);
      const ref = loss.klCoef !== 0 ? await this.#trainer.logprobs(mb, 'reference') : old;
      if (ref !== old) this.#logprobs.push(ref);
      this.#losses.push({ kind: 'grpo', settings: loss, old, ref });
    }
  }

  async accumulate(index: number, denominator: number): Promise<{ loss: number; sums: GrpoSums }> {
    const r = await this.#trainer.accumulate(this.#mbs[index]!, this.#losses[index]!, denominator);
    return { loss: r.loss, sums: { ...emptySums(), ...r.sums } };
  }

  readGradients(): Float32Array[] {
    return this.#trainer.readGradients();
  }

  writeGradients(grads: readonly Float32Array[]): void {
    this.#trainer.writeGradients(grads);
  }

  async apply(optimizer: AdamWConfig): Promise<{ gradNorm: number }> {
    try {
      const { gradNorm, applied } = await this.#trainer.apply(optimizer.lr);
      if (!applied) throw nonFiniteGradient();
      return { gradNorm };
    } finally {
      this.#releaseLogprobs();
      this.#mbs = [];
      this.#losses = [];
    }
  }

  weights(): readonly Float32Array[] {
    if (this.#weights?.step !== this.step)
      this.#weights = { step: this.step, tensors: this.#trainer.weights() };
    return this.#weights.tensors;
  }

  exportState(): LearnerState {
    const { step, m, v } = this.#trainer.moments();
    return { weights: this.weights().map((w) => Float32Array.from(w)), optimizer: { step, m, v } };
  }

  loadState(state: LearnerState): void {
    checkStateShapes(this.params, state);
    this.#trainer.load({ weights: state.weights, ...state.optimizer });
    this.#weights = null;
  }

  async dispose(): Promise<void> {
    this.#trainer.dispose();
  }

  #releaseLogprobs(): void {
    for (const t of this.#logprobs) this.#trainer.release(t);
    this.#logprobs = [];
  }
}
