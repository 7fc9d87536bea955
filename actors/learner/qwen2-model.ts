/**
 * A Qwen2-family policy as a TrainableModel: runtime/model's training graphs (per-token log-probabilities,
 * and the GRPO and SFT losses differentiated into per-parameter gradients) run on onnxruntime, on the CUDA
 * provider when the learner sits on a GPU node. Weights are fed as graph inputs, so one compiled session per
 * graph serves every weight version and every micro-batch shape.
 */
import * as ort from 'onnxruntime-node';
import { Graph } from '../../runtime/onnx/index.ts';
import { OnnxSession } from '../../runtime/onnx/session.ts';
import { qwen2ParamShapes, type Qwen2Config } from '../../runtime/model/qwen2-config.ts';
import { weightsAsParams } from '../../runtime/model/qwen2-graph.ts';
import {
  buildGrpoLoss,
  buildLogprobs,
  buildSftLoss,
  gradName,
  SUM_OUTPUTS,
  withGradients,
} from '../../runtime/model/qwen2-train.ts';
import { emptySums, type GrpoLossConfig, type GrpoSums } from './grpo.ts';
import type { GradientResult, MicroBatch, ParamSpec, TrainableModel } from './model.ts';

/** verl's sums in graph-output order, mapped to GrpoSums fields. */
const SUM_FIELDS: Record<(typeof SUM_OUTPUTS)[number], keyof GrpoSums> = {
  tokens: 'tokens',
  pg_loss: 'pgLoss',
  kl: 'kl',
  entropy: 'entropy',
  clipped: 'clipped',
  clipped_lower: 'clippedLower',
  ppo_kl: 'ppoKl',
};

/** Stands in for "no dual clip": a bound no loss reaches. */
const NO_DUAL_CLIP = 1e30;

export interface Qwen2ModelOptions {
  provider?: 'cpu' | 'cuda';
  intraOpThreads?: number;
}

export class Qwen2TrainableModel implements TrainableModel {
  readonly params: readonly ParamSpec[];
  private readonly sessions = new Map<string, Promise<OnnxSession>>();

  constructor(
    readonly config: Qwen2Config,
    private readonly options: Qwen2ModelOptions = {},
  ) {
    this.params = [...qwen2ParamShapes(config)].map(([name, shape]) => ({ name, shape }));
  }

  /** 'cuda' or 'cpu': what the sessions actually run on (known after the first run). */
  async provider(): Promise<'cpu' | 'cuda'> {
    return (await this.session('logprobs')).provider;
  }

  async logprobs(weights: readonly Float32Array[], mb: MicroBatch): Promise<Float32Array> {
    const out = await (
      await this.session('logprobs')
    ).run({ ...this.weightFeeds(weights), ...this.sequenceFeeds(mb) }, ['logprobs']);
    return out.logprobs!.data as Float32Array;
  }

  async grpoGradients(
    weights: readonly Float32Array[],
    mb: MicroBatch,
    config: GrpoLossConfig,
    denominator: number,
  ): Promise<GradientResult> {
    const withEntropy = config.entropyCoef !== 0;
    const n = [mb.rows, mb.cols];
    const feeds: Record<string, ort.Tensor> = {
      ...this.weightFeeds(weights),
      ...this.sequenceFeeds(mb),
      loss_mask: new ort.Tensor('float32', mb.lossMask, n),
      advantages: new ort.Tensor('float32', mb.advantage, n),
      old_logprobs: new ort.Tensor('float32', mb.oldLogprob, n),
      ref_logprobs: new ort.Tensor('float32', mb.refLogprob, n),
      denominator: scalar(denominator),
      clip_low: scalar(config.clipRatioLow),
      clip_high: scalar(config.clipRatioHigh),
      clip_c: scalar(config.clipRatioC ?? NO_DUAL_CLIP),
      kl_coef: scalar(config.klCoef),
    };
    if (withEntropy) feeds.entropy_coef = scalar(config.entropyCoef);
    return this.gradients(withEntropy ? 'grpo-entropy' : 'grpo', feeds);
  }

  async sftGradients(
    weights: readonly Float32Array[],
    mb: MicroBatch,
    denominator: number,
  ): Promise<GradientResult> {
    return this.gradients('sft', {
      ...this.weightFeeds(weights),
      ...this.sequenceFeeds(mb),
      loss_mask: new ort.Tensor('float32', mb.lossMask, [mb.rows, mb.cols]),
      denominator: scalar(denominator),
    });
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }

  private async gradients(kind: string, feeds: Record<string, ort.Tensor>): Promise<GradientResult> {
    const session = await this.session(kind);
    const out = await session.run(feeds);
    const sums = emptySums();
    for (const name of SUM_OUTPUTS) {
      const t = out[name];
      if (t !== undefined) sums[SUM_FIELDS[name]] = (t.data as Float32Array)[0]!;
    }
    return {
      grads: this.params.map((p) => out[gradName(p.name)]!.data as Float32Array),
      loss: (out.loss!.data as Float32Array)[0]!,
      sums,
    };
  }

  private session(kind: string): Promise<OnnxSession> {
    let s = this.sessions.get(kind);
    if (s === undefined) {
      const g = new Graph(`qwen2-${kind}`);
      const w = weightsAsParams(g, this.config);
      if (kind === 'logprobs') buildLogprobs(g, this.config, w);
      else if (kind === 'sft') withGradients(buildSftLoss(g, this.config, w));
      else
        withGradients(
          buildGrpoLoss(g, this.config, w, { entropy: kind === 'grpo-entropy' ? 'loss' : 'metric' }),
        );
      s = OnnxSession.create(g, {
        provider: this.options.provider ?? 'cpu',
        ...(this.options.intraOpThreads === undefined ? {} : { intraOpThreads: this.options.intraOpThreads }),
      });
      this.sessions.set(kind, s);
    }
    return s;
  }

  private weightFeeds(weights: readonly Float32Array[]): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    this.params.forEach((p, i) => (feeds[p.name] = new ort.Tensor('float32', weights[i]!, [...p.shape])));
    return feeds;
  }

  /** Right-padded rows: positions count from 0 in every row; padding is masked out of attention. */
  private sequenceFeeds(mb: MicroBatch): Record<string, ort.Tensor> {
    const n = mb.rows * mb.cols;
    const ids = new BigInt64Array(n);
    const pos = new BigInt64Array(n);
    const att = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      ids[i] = BigInt(mb.inputIds[i]!);
      pos[i] = BigInt(i % mb.cols);
      att[i] = mb.attention[i]! !== 0 ? 1n : 0n;
    }
    const dims = [mb.rows, mb.cols];
    return {
      input_ids: new ort.Tensor('int64', ids, dims),
      position_ids: new ort.Tensor('int64', pos, dims),
      attention_mask: new ort.Tensor('int64', att, dims),
    };
  }
}

function scalar(x: number): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.from([x]), []);
}
