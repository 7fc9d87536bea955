/**
 * A trainable Qwen2 for the learner: the TrainableModel contract of actors/learner/model.ts (per-token
 * log-probabilities, GRPO and SFT gradients of one micro-batch, weights passed per call in `params` order),
 * run on onnxruntime sessions built once per graph kind. The learner owns parameters, optimizer state and
 * accumulation; `fusedTrainStep` builds the alternative where AdamW runs inside the same session run.
 */
import * as ort from 'onnxruntime-node';
import { DrError } from '../../config/errors.ts';
import { Graph } from '../onnx/index.ts';
import type { AdamWConfig } from '../onnx/adamw.ts';
import type { OnnxSession } from '../onnx/session.ts';
import { SessionCache, familyKey, type SessionConfig } from '../onnx/session.ts';
import { qwen2ParamShapes, type Qwen2Config } from './qwen2-config.ts';
import { weightsAsParams } from './qwen2-graph.ts';
import {
  buildGrpoLoss,
  buildLogprobs,
  buildSftLoss,
  gradName,
  withAdamW,
  withGradients,
  type EntropyMode,
} from './qwen2-train.ts';

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** One micro-batch, row-major [rows * cols] (the learner's MicroBatch). */
export interface TokenBatch {
  rows: number;
  cols: number;
  inputIds: Int32Array;
  /** 1 for real tokens, 0 for right padding. */
  attention: Float32Array;
  /** 1 on tokens in the loss. */
  lossMask: Float32Array;
  advantage: Float32Array;
  oldLogprob: Float32Array;
  refLogprob: Float32Array;
}

export interface GrpoSettings {
  clipRatioLow: number;
  clipRatioHigh: number;
  /** Dual-clip bound; null turns it off. */
  clipRatioC: number | null;
  klCoef: number;
  entropyCoef: number;
}

export interface LossSums {
  tokens: number;
  pgLoss: number;
  kl: number;
  entropy: number;
  clipped: number;
  clippedLower: number;
  ppoKl: number;
}

export interface Gradients {
  /** One per parameter, in `params` order. */
  grads: Float32Array[];
  loss: number;
  sums: LossSums;
}

/** Stands in for "no dual clip": -A · this bound never wins the min for a negative advantage. */
/** The dual-clip bound the GRPO graph reads as "no dual clip". */
export const NO_DUAL_CLIP = 1e30;

export class Qwen2Trainer {
  readonly params: readonly ParamSpec[];
  readonly #cache: SessionCache;

  constructor(
    readonly config: Qwen2Config,
    session: SessionConfig = {},
  ) {
    this.params = [...qwen2ParamShapes(config)].map(([name, shape]) => ({ name, shape }));
    // A micro-batch's forward and backward take seconds; on a worker thread they leave the learner's node
    // answering heartbeats and asks meanwhile. The weights copied in per run are small beside that.
    this.#cache = new SessionCache({ thread: 'worker', ...session });
  }

  async logprobs(weights: readonly Float32Array[], mb: TokenBatch): Promise<Float32Array> {
    const session = await this.#session('logprobs', (g) =>
      buildLogprobs(g, this.config, weightsAsParams(g, this.config)),
    );
    const out = await session.run({ ...this.#weightFeeds(weights), ...sequenceFeeds(mb) });
    return out.logprobs!.data as Float32Array;
  }

  async grpoGradients(
    weights: readonly Float32Array[],
    mb: TokenBatch,
    settings: GrpoSettings,
    denominator: number,
  ): Promise<Gradients> {
    const mode: EntropyMode = settings.entropyCoef !== 0 ? 'loss' : 'metric';
    const session = await this.#session(`grpo-${mode}`, (g) => {
      withGradients(buildGrpoLoss(g, this.config, weightsAsParams(g, this.config), { entropy: mode }));
    });
    const feeds: Record<string, ort.Tensor> = {
      ...this.#weightFeeds(weights),
      ...sequenceFeeds(mb),
      loss_mask: perToken(mb, mb.lossMask),
      advantages: perToken(mb, mb.advantage),
      old_logprobs: perToken(mb, mb.oldLogprob),
      ref_logprobs: perToken(mb, mb.refLogprob),
      denominator: scalar(denominator),
      clip_low: scalar(settings.clipRatioLow),
      clip_high: scalar(settings.clipRatioHigh),
      clip_c: scalar(settings.clipRatioC ?? NO_DUAL_CLIP),
      kl_coef: scalar(settings.klCoef),
    };
    if (mode === 'loss') feeds.entropy_coef = scalar(settings.entropyCoef);
    return this.#gradients(session, feeds);
  }

  async sftGradients(
    weights: readonly Float32Array[],
    mb: TokenBatch,
    denominator: number,
  ): Promise<Gradients> {
    const session = await this.#session('sft', (g) =>
      withGradients(buildSftLoss(g, this.config, weightsAsParams(g, this.config))),
    );
    return this.#gradients(session, {
      ...this.#weightFeeds(weights),
      ...sequenceFeeds(mb),
      loss_mask: perToken(mb, mb.lossMask),
      denominator: scalar(denominator),
    });
  }

  async dispose(): Promise<void> {
    await this.#cache.releaseAll();
  }

  async #gradients(session: OnnxSession, feeds: Record<string, ort.Tensor>): Promise<Gradients> {
    const out = await session.run(feeds);
    const num = (name: string): number => (out[name] === undefined ? 0 : Number(out[name].data[0]));
    return {
      grads: this.params.map((p) => out[gradName(p.name)]!.data as Float32Array),
      loss: num('loss'),
      sums: {
        tokens: num('tokens'),
        pgLoss: num('pg_loss'),
        kl: num('kl'),
        entropy: num('entropy'),
        clipped: num('clipped'),
        clippedLower: num('clipped_lower'),
        ppoKl: num('ppo_kl'),
      },
    };
  }

  #session(kind: string, build: (g: Graph) => void): Promise<OnnxSession> {
    return this.#cache.get(familyKey(`qwen2-${kind}`), () => {
      const g = new Graph(`qwen2_${kind.replace(/-/g, '_')}`);
      build(g);
      return g;
    });
  }

  #weightFeeds(weights: readonly Float32Array[]): Record<string, ort.Tensor> {
    if (weights.length !== this.params.length) {
      throw new DrError(
        'MODEL_BAD_WEIGHTS',
        `got ${weights.length} weight tensors for ${this.params.length} parameters`,
      );
    }
    const feeds: Record<string, ort.Tensor> = {};
    this.params.forEach((p, i) => {
      feeds[p.name] = new ort.Tensor('float32', weights[i]!, p.shape);
    });
    return feeds;
  }
}

/** The SFT (or GRPO) loss fused with AdamW: one session run per optimizer step (run it with TrainState). */
export function fusedTrainStepGraph(
  config: Qwen2Config,
  loss: 'sft' | 'grpo',
  adamw: AdamWConfig = {},
  dtype: 'float32' | 'float64' = 'float32',
): Graph {
  const g = new Graph(`qwen2_${loss}_step`);
  const w = weightsAsParams(g, config, dtype);
  withAdamW(
    loss === 'sft' ? buildSftLoss(g, config, w) : buildGrpoLoss(g, config, w, { entropy: 'off' }),
    adamw,
  );
  return g;
}

/** input_ids, position_ids (0.. per row) and attention_mask of a right-padded batch. */
export function sequenceFeeds(
  mb: Pick<TokenBatch, 'rows' | 'cols' | 'inputIds' | 'attention'>,
): Record<string, ort.Tensor> {
  const n = mb.rows * mb.cols;
  if (mb.inputIds.length !== n || mb.attention.length !== n) {
    throw new DrError(
      'MODEL_BAD_BATCH',
      `a ${mb.rows}x${mb.cols} batch needs ${n} input ids and attention values`,
    );
  }
  const ids = new BigInt64Array(n);
  const positions = new BigInt64Array(n);
  const mask = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    ids[i] = BigInt(mb.inputIds[i]!);
    positions[i] = BigInt(i % mb.cols);
    mask[i] = mb.attention[i]! !== 0 ? 1n : 0n;
  }
  const dims = [mb.rows, mb.cols];
  return {
    input_ids: new ort.Tensor('int64', ids, dims),
    position_ids: new ort.Tensor('int64', positions, dims),
    attention_mask: new ort.Tensor('int64', mask, dims),
  };
}

function perToken(mb: TokenBatch, data: Float32Array): ort.Tensor {
  if (data.length !== mb.rows * mb.cols) {
    throw new DrError(
      'MODEL_BAD_BATCH',
      `a per-token array has ${data.length} values for a ${mb.rows}x${mb.cols} batch`,
    );
  }
  return new ort.Tensor('float32', data, [mb.rows, mb.cols]);
}

function scalar(x: number): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.of(x), []);
}
