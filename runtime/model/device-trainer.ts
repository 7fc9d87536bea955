/**
 * `DeviceGrpoTrainer`: a Qwen2 GRPO optimizer step with everything the step touches resident on the device
 * (runtime/onnx/native): the policy's weights and AdamW moments, the reference policy's weights, and the old
 * and reference log-probabilities, which one log-probs session writes into device tensors that the fused
 * forward + backward + AdamW session then reads. Per step only the micro-batch (token ids, masks,
 * advantages) is copied in, and only the loss and gradient norm come out; `weights()` copies the weights out
 * when a version is published or a checkpoint written.
 *
 * One micro-batch per optimizer step (no gradient accumulation yet), which is what the fused graph computes.
 */
import type { AdamWConfig } from '../onnx/adamw.ts';
import { Graph } from '../onnx/graph.ts';
import { DeviceTrainState } from '../onnx/native/device-train-state.ts';
import { NativeSession, type NativeProvider, type NativeTensor } from '../onnx/native/ort-native.ts';
import { qwen2ParamShapes, type Qwen2Config } from './qwen2-config.ts';
import { buildLogprobs } from './qwen2-train.ts';
import type { FloatTensor } from './safetensors.ts';
import { weightsAsParams } from './qwen2-graph.ts';
import {
  fusedTrainStepGraph,
  NO_DUAL_CLIP,
  sequenceFeeds,
  type GrpoSettings,
  type TokenBatch,
} from './trainer.ts';

export interface DeviceTrainerOptions {
  provider: NativeProvider;
  deviceId?: number;
  intraOpThreads?: number;
  adamw?: AdamWConfig;
}

export class DeviceGrpoTrainer {
  readonly #state: DeviceTrainState;
  readonly #logprobs: NativeSession;
  readonly #ref: Record<string, NativeTensor>;

  constructor(
    readonly config: Qwen2Config,
    weights: ReadonlyMap<string, FloatTensor>,
    options: DeviceTrainerOptions,
  ) {
    const params = new Map(
      [...qwen2ParamShapes(config).keys()].map((n) => {
        const w = weights.get(n)!;
        return [n, { dims: w.shape, data: w.data }] as const;
      }),
    );
    const session = {
      provider: options.provider,
      deviceId: options.deviceId,
      intraOpThreads: options.intraOpThreads,
    };
    this.#state = new DeviceTrainState(
      fusedTrainStepGraph(config, 'grpo', options.adamw).serialize().model,
      params,
      session,
    );
    const g = new Graph('qwen2_logprobs');
    buildLogprobs(g, config, weightsAsParams(g, config));
    this.#logprobs = NativeSession.create(g.serialize().model, session);
    this.#ref = {};
    for (const [name, { dims, data }] of params) {
      const t = this.#logprobs.allocate(dims);
      this.#logprobs.write(t, data);
      this.#ref[name] = t;
    }
  }

  get step(): number {
    return this.#state.step;
  }

  /** One GRPO optimizer step on `mb` (its old/ref log-probs are computed here, on the device). */
  grpoStep(
    mb: TokenBatch,
    settings: GrpoSettings,
    denominator: number,
    lr: number,
  ): { loss: number; gradNorm: number } {
    const { rows, cols } = mb;
    const lp = this.#logprobs;
    const dims = [rows, cols];
    const seq = Object.fromEntries(
      Object.entries(sequenceFeeds(mb)).map(([name, t]) => [name, lp.wrap(t.data as BigInt64Array, dims)]),
    );
    const old = lp.allocate(dims);
    const ref = lp.allocate(dims);
    try {
      lp.run({ ...this.#state.deviceParams, ...seq }, { logprobs: old });
      lp.run({ ...this.#ref, ...seq }, { logprobs: ref });
      const scalar = (v: number) => ({ data: Float32Array.of(v), dims: [] });
      return this.#state.run(
        {
          ...seq,
          loss_mask: { data: mb.lossMask, dims },
          advantages: { data: mb.advantage, dims },
          old_logprobs: old,
          ref_logprobs: ref,
          denominator: scalar(denominator),
          clip_low: scalar(settings.clipRatioLow),
          clip_high: scalar(settings.clipRatioHigh),
          clip_c: scalar(settings.clipRatioC ?? NO_DUAL_CLIP),
          kl_coef: scalar(settings.klCoef),
        },
        lr,
      );
    } finally {
      for (const t of [old, ref, ...Object.values(seq)]) lp.release(t);
    }
  }

  /** The current weights, copied to the host. */
  weights(): Map<string, Float32Array> {
    return this.#state.params();
  }

  dispose(): void {
    this.#state.dispose();
    for (const t of Object.values(this.#ref)) this.#logprobs.release(t);
    this.#logprobs.dispose();
  }
}
