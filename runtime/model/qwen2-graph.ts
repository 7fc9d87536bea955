/**
 * Qwen2 (Qwen2 / Qwen2.5 decoder-only LM) as ONNX graphs built with runtime/onnx: RMSNorm, rotary position
 * embeddings, grouped-query attention with q/k/v biases, SwiGLU MLP, tied or untied LM head.
 *
 * Weights keep Hugging Face names and layouts ([out, in] matrices, applied with Gemm transB so no transpose
 * runs per call). A `WeightSource` decides whether they enter as graph inputs (trainable `param`s, or fed per
 * run) or as initializers (baked in, so onnxruntime can pre-pack them for faster inference).
 *
 * Three graph families share one layer definition:
 * - `forward` (and the train graphs in qwen2-train.ts): full causal attention over [batch, seq] with a key
 *   padding mask and explicit position ids;
 * - `prefill`: the same over a left-padded prompt batch, returning the last position's logits and every
 *   position's rotated keys and values for the cache;
 * - `decode`: one new token per row against a fixed-capacity cache fed as inputs (keys stored transposed as
 *   [batch, kvHeads, headDim, capacity] so no transpose runs per step); it returns only the new token's key
 *   and value, which the caller writes into its cache, so no cache is copied through the session.
 */
import { type DType, type Graph, type Tensor, op } from '../onnx/index.ts';
import type { FloatTensor } from './safetensors.ts';
import { qwen2ParamShapes, type Qwen2Config } from './qwen2-config.ts';

/** Supplies the weight tensor called `name` (a Hugging Face parameter name) to a graph under construction. */
export type WeightSource = (name: string) => Tensor;

/** Additive bias for masked attention scores: large enough to vanish under softmax, finite so fully masked
 * padding rows stay NaN-free. */
const MASKED = -1e9;

/** Weights as graph inputs declared with `param` (trainable, or fed per run). */
export function weightsAsParams(
  g: Graph,
  config: Qwen2Config,
  dtype: 'float32' | 'float64' = 'float32',
): WeightSource {
  const shapes = qwen2ParamShapes(config);
  const made = new Map<string, Tensor>();
  return (name) => {
    let t = made.get(name);
    if (t === undefined) {
      const shape = shapes.get(name);
      if (shape === undefined) throw new Error(`no Qwen2 parameter called ${name}`);
      t = g.param(name, dtype, shape);
      made.set(name, t);
    }
    return t;
  };
}

/** Weights baked into the graph as initializers (inference sessions; onnxruntime pre-packs them). */
export function weightsAsInitializers(g: Graph, weights: ReadonlyMap<string, FloatTensor>): WeightSource {
  const made = new Map<string, Tensor>();
  return (name) => {
    let t = made.get(name);
    if (t === undefined) {
      const w = weights.get(name);
      if (w === undefined) throw new Error(`no weight called ${name}`);
      t = g.initializer(name, { dtype: 'float32', dims: w.shape, data: w.data });
      made.set(name, t);
    }
    return t;
  };
}

/** Declares every parameter up front so graph inputs follow the checkpoint's order. */
export function declareAll(config: Qwen2Config, w: WeightSource): void {
  for (const name of qwen2ParamShapes(config).keys()) w(name);
}

/**
 * x @ W^T (+ b) for x [..., in] and W [out, in]. With initializer weights onnxruntime folds the transpose
 * once at session creation; with weights as inputs it is one copy per run, small beside the matmul.
 */
function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const y = op.matmul(x, op.transpose(weight, [1, 0]));
  return bias === null ? y : op.add(y, bias);
}

function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const variance = op.reduceMean(op.mul(x, x), [-1], true);
  return op.mul(op.div(x, op.sqrt(op.add(variance, eps))), weight);
}

/** cos and sin of the rotary angles for int64 positions [B, T], shaped [B, T, 1, headDim] to broadcast over heads. */
function rotaryTables(
  g: Graph,
  config: Qwen2Config,
  positions: Tensor,
  dt: DType,
): { cos: Tensor; sin: Tensor } {
  const half = config.headDim / 2;
  const invFreq: number[] = [];
  for (let i = 0; i < half; i++) invFreq.push(1 / config.ropeTheta ** ((2 * i) / config.headDim));
  const angles = op.mul(op.unsqueeze(op.cast(positions, dt), [-1]), g.constant(invFreq, dt));
  const full = op.unsqueeze(op.concat([angles, angles], -1), [2]);
  return { cos: op.cos(full), sin: op.sin(full) };
}

/** x * cos + rotate_half(x) * sin for x [B, T, heads, headDim]. */
function applyRotary(x: Tensor, rot: { cos: Tensor; sin: Tensor }, headDim: number): Tensor {
  const half = headDim / 2;
  const x1 = op.slice(x, { starts: [0], ends: [half], axes: [-1] });
  const x2 = op.slice(x, { starts: [half], ends: [headDim], axes: [-1] });
  const rotated = op.concat([op.neg(x2), x1], -1);
  return op.add(op.mul(x, rot.cos), op.mul(rotated, rot.sin));
}

interface LayerIO {
  q: Tensor; // [B, T, H, D] rotated
  k: Tensor; // [B, T, KV, D] rotated
  v: Tensor; // [B, T, KV, D]
}

function projectQkv(
  config: Qwen2Config,
  w: WeightSource,
  layer: number,
  x: Tensor,
  rot: { cos: Tensor; sin: Tensor },
): LayerIO {
  const { numHeads: h, numKvHeads: kv, headDim: d } = config;
  const p = `model.layers.${layer}.self_attn.`;
  const q = op.reshape(linear(x, w(`${p}q_proj.weight`), w(`${p}q_proj.bias`)), [0, 0, h, d]);
  const k = op.reshape(linear(x, w(`${p}k_proj.weight`), w(`${p}k_proj.bias`)), [0, 0, kv, d]);
  const v = op.reshape(linear(x, w(`${p}v_proj.weight`), w(`${p}v_proj.bias`)), [0, 0, kv, d]);
  return { q: applyRotary(q, rot, d), k: applyRotary(k, rot, d), v };
}

function mlp(config: Qwen2Config, w: WeightSource, layer: number, x: Tensor): Tensor {
  const p = `model.layers.${layer}.mlp.`;
  const gate = linear(x, w(`${p}gate_proj.weight`), null);
  const up = linear(x, w(`${p}up_proj.weight`), null);
  return linear(op.mul(op.silu(gate), up), w(`${p}down_proj.weight`), null);
}

/**
 * Causal self-attention over the whole sequence. Queries are grouped as [B, KV, G, T, D] against keys
 * [B, KV, 1, T, D], so grouped-query attention broadcasts instead of copying keys per query head.
 * `bias` is the additive mask [B, 1, 1, T, T].
 */
function fullAttention(config: Qwen2Config, io: LayerIO, bias: Tensor): Tensor {
  const { numHeads: h, numKvHeads: kv, headDim: d } = config;
  const groups = h / kv;
  const q = op.transpose(op.reshape(op.mul(io.q, d ** -0.5), [0, 0, kv, groups, d]), [0, 2, 3, 1, 4]);
  const kT = op.unsqueeze(op.transpose(io.k, [0, 2, 3, 1]), [2]); // [B, KV, 1, D, T]
  const v = op.unsqueeze(op.transpose(io.v, [0, 2, 1, 3]), [2]); // [B, KV, 1, T, D]
  const probs = op.softmax(op.add(op.matmul(q, kT), bias), -1);
  const out = op.matmul(probs, v); // [B, KV, G, T, D]
  return op.reshape(op.transpose(out, [0, 3, 1, 2, 4]), [0, 0, h * d]);
}

/** Additive attention bias [B, 1, 1, T, T] from a key padding mask [B, T] (1 = token, 0 = padding). */
function causalPaddingBias(g: Graph, attentionMask: Tensor, dt: DType): Tensor {
  const t = op.dimOf(attentionMask, 1);
  const causal = op.causalMask(g, t, t); // [T, T]
  const keyOk = op.unsqueeze(op.cast(attentionMask, 'bool'), [1, 2, 3]); // [B, 1, 1, 1, T]
  return op.where(op.and(causal, keyOk), g.constant(0, dt), g.constant(MASKED, dt));
}

function lmHead(config: Qwen2Config, w: WeightSource, hidden: Tensor): Tensor {
  return linear(
    hidden,
    config.tieWordEmbeddings ? w('model.embed_tokens.weight') : w('lm_head.weight'),
    null,
  );
}

export interface ForwardOutputs {
  /** Final hidden states after the last norm, [B, T, hidden]. */
  hidden: Tensor;
  /** Per layer, rotated keys and values [B, T, KV, D]. */
  keys: Tensor[];
  values: Tensor[];
}

/**
 * The decoder stack over int64 `inputIds` [B, T] at int64 `positions` [B, T] with key padding mask
 * `attentionMask` [B, T] (int64, 1 = token).
 */
export function decoderStack(
  g: Graph,
  config: Qwen2Config,
  w: WeightSource,
  inputIds: Tensor,
  positions: Tensor,
  attentionMask: Tensor,
): ForwardOutputs {
  const embed = w('model.embed_tokens.weight');
  const rot = rotaryTables(g, config, positions, embed.dtype);
  const bias = causalPaddingBias(g, attentionMask, embed.dtype);
  let x = op.gather(embed, inputIds, 0);
  const keys: Tensor[] = [];
  const values: Tensor[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    const io = projectQkv(config, w, i, rmsNorm(x, w(`${p}input_layernorm.weight`), config.rmsNormEps), rot);
    keys.push(io.k);
    values.push(io.v);
    const attn = fullAttention(config, io, bias);
    x = op.add(x, linear(attn, w(`${p}self_attn.o_proj.weight`), null));
    x = op.add(x, mlp(config, w, i, rmsNorm(x, w(`${p}post_attention_layernorm.weight`), config.rmsNormEps)));
  }
  return { hidden: rmsNorm(x, w('model.norm.weight'), config.rmsNormEps), keys, values };
}

/** Standard data inputs of the full-sequence graphs. */
export function sequenceInputs(g: Graph): { inputIds: Tensor; positions: Tensor; attentionMask: Tensor } {
  return {
    inputIds: g.input('input_ids', 'int64', ['batch', 'seq']),
    positions: g.input('position_ids', 'int64', ['batch', 'seq']),
    attentionMask: g.input('attention_mask', 'int64', ['batch', 'seq']),
  };
}

/** Logits [B, T, V] of every position. Inputs: input_ids, position_ids, attention_mask. Output: logits. */
export function buildForward(g: Graph, config: Qwen2Config, w: WeightSource): void {
  declareAll(config, w);
  const { inputIds, positions, attentionMask } = sequenceInputs(g);
  const { hidden } = decoderStack(g, config, w, inputIds, positions, attentionMask);
  g.output(lmHead(config, w, hidden), 'logits');
}

/** Full logits [B, T, V] from final hidden states (used by the train graphs). */
export function logitsOf(config: Qwen2Config, w: WeightSource, hidden: Tensor): Tensor {
  return lmHead(config, w, hidden);
}

/**
 * Prefill over a left-padded prompt batch. Inputs: input_ids, position_ids, attention_mask [B, T].
 * Outputs: logits [B, V] of the last position, key.{i} and value.{i} [B, T, KV, D] for every layer.
 */
export function buildPrefill(g: Graph, config: Qwen2Config, w: WeightSource): void {
  declareAll(config, w);
  const { inputIds, positions, attentionMask } = sequenceInputs(g);
  const { hidden, keys, values } = decoderStack(g, config, w, inputIds, positions, attentionMask);
  const last = op.slice(hidden, { starts: [-1], ends: [op.TO_END], axes: [1] }); // [B, 1, H]
  g.output(op.reshape(lmHead(config, w, last), [-1, config.vocabSize]), 'logits');
  keys.forEach((k, i) => g.output(k, `key.${i}`));
  values.forEach((v, i) => g.output(v, `value.${i}`));
}

/**
 * One decode step against a cache of capacity S. Inputs: input_ids, position_ids [B, 1]; cache_mask [B, S]
 * (int64, 1 = a valid cached token); past_key.{i} [B, KV, D, S]; past_value.{i} [B, KV, S, D].
 * Outputs: logits [B, V]; key.{i}, value.{i} [B, 1, KV, D] of the new token.
 */
export function buildDecode(g: Graph, config: Qwen2Config, w: WeightSource): void {
  declareAll(config, w);
  const { numHeads: h, numKvHeads: kv, headDim: d } = config;
  const groups = h / kv;
  const inputIds = g.input('input_ids', 'int64', ['batch', 1]);
  const positions = g.input('position_ids', 'int64', ['batch', 1]);
  const cacheMask = g.input('cache_mask', 'int64', ['batch', 'capacity']);
  const rot = rotaryTables(g, config, positions, 'float32');
  const bias = op.unsqueeze(
    op.where(op.cast(cacheMask, 'bool'), g.constant(0, 'float32'), g.constant(MASKED, 'float32')),
    [1, 2],
  ); // [B, 1, 1, S]
  let x = op.gather(w('model.embed_tokens.weight'), inputIds, 0);
  for (let i = 0; i < config.numLayers; i++) {
    const pastKeyT = g.input(`past_key.${i}`, 'float32', ['batch', kv, d, 'capacity']);
    const pastValue = g.input(`past_value.${i}`, 'float32', ['batch', kv, 'capacity', d]);
    const p = `model.layers.${i}.`;
    const io = projectQkv(config, w, i, rmsNorm(x, w(`${p}input_layernorm.weight`), config.rmsNormEps), rot);
    g.output(io.k, `key.${i}`);
    g.output(io.v, `value.${i}`);
    // One query per row: its heads fold into the matmul rows, [B, KV, G, D].
    const q = op.reshape(op.mul(io.q, d ** -0.5), [-1, kv, groups, d]);
    const kNew = op.reshape(io.k, [-1, kv, 1, d]);
    const vNew = op.reshape(io.v, [-1, kv, 1, d]);
    const cached = op.add(op.matmul(q, pastKeyT), bias); // [B, KV, G, S]
    const own = op.reduceSum(op.mul(q, kNew), [-1], true); // [B, KV, G, 1]
    const probs = op.softmax(op.concat([cached, own], -1), -1);
    const pCached = op.slice(probs, {
      starts: g.constant([0], 'int64'),
      ends: op.shapeOf(pastKeyT, 3, 4),
      axes: [-1],
    });
    const pOwn = op.slice(probs, { starts: [-1], ends: [op.TO_END], axes: [-1] });
    const attn = op.add(op.matmul(pCached, pastValue), op.mul(pOwn, vNew)); // [B, KV, G, D]
    x = op.add(x, linear(op.reshape(attn, [-1, 1, h * d]), w(`${p}self_attn.o_proj.weight`), null));
    x = op.add(x, mlp(config, w, i, rmsNorm(x, w(`${p}post_attention_layernorm.weight`), config.rmsNormEps)));
  }
  const hidden = rmsNorm(x, w('model.norm.weight'), config.rmsNormEps);
  g.output(op.reshape(lmHead(config, w, hidden), [-1, config.vocabSize]), 'logits');
}
