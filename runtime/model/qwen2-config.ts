/**
 * A Qwen2-family config.json (Qwen2 / Qwen2.5 as saved by transformers 4.x or 5.x), validated with zod and
 * reduced to what the graphs need. Anything this runtime cannot compute faithfully (sliding-window
 * attention, scaled RoPE variants, another activation) is refused rather than silently approximated.
 */
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';

export interface Qwen2Config {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxPositions: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly tieWordEmbeddings: boolean;
  readonly eosTokenIds: readonly number[];
}

const positiveInt = z.number().int().positive();
const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]).nullish();

const rawConfigSchema = z.looseObject({
  model_type: z.literal('qwen2', { error: 'model_type must be "qwen2" (Qwen2 / Qwen2.5 checkpoints)' }),
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.nullish(),
  head_dim: positiveInt.nullish(),
  max_position_embeddings: positiveInt.default(32768),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().nullish(),
  rope_scaling: z.looseObject({ rope_type: z.string().optional(), type: z.string().optional() }).nullish(),
  rope_parameters: z
    .looseObject({ rope_type: z.string().optional(), rope_theta: z.number().positive().optional() })
    .nullish(),
  hidden_act: z.literal('silu', { error: 'hidden_act must be "silu" (SwiGLU MLP)' }).default('silu'),
  tie_word_embeddings: z.boolean().default(false),
  use_sliding_window: z.boolean().default(false),
  eos_token_id: tokenIds,
});

/** Validates a parsed config.json; `source` names it in error messages. */
export function parseQwen2Config(json: unknown, source = 'config.json'): Qwen2Config {
  const parsed = rawConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new DrError(
      'MODEL_CONFIG_INVALID',
      `${source} is not a usable Qwen2 config: ${z.prettifyError(parsed.error)}`,
      {
        details: { source },
      },
    );
  }
  const c = parsed.data;
  const refuse = (problem: string): never => {
    throw new DrError('MODEL_CONFIG_INVALID', `${source}: ${problem}`, { details: { source } });
  };
  if (c.use_sliding_window)
    refuse('use_sliding_window=true is not supported; this runtime computes full causal attention');
  const ropeType =
    c.rope_parameters?.rope_type ?? c.rope_scaling?.rope_type ?? c.rope_scaling?.type ?? 'default';
  if (ropeType !== 'default')
    refuse(`rope type "${ropeType}" is not supported; only the default rotary embedding is`);
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    refuse(
      `num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  if (c.head_dim == null && c.hidden_size % c.num_attention_heads !== 0) {
    refuse(
      `hidden_size (${c.hidden_size}) must be a multiple of num_attention_heads (${c.num_attention_heads})`,
    );
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (headDim % 2 !== 0) refuse(`head_dim ${headDim} must be even for rotary embeddings`);
  const eos = c.eos_token_id;
  return {
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    maxPositions: c.max_position_embeddings,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: c.rope_parameters?.rope_theta ?? c.rope_theta ?? 10000,
    tieWordEmbeddings: c.tie_word_embeddings,
    eosTokenIds: eos == null ? [] : Array.isArray(eos) ? eos : [eos],
  };
}

/** The config.json transformers writes for this config (round-trips through `parseQwen2Config`). */
export function toConfigJson(config: Qwen2Config): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    max_position_embeddings: config.maxPositions,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    hidden_act: 'silu',
    tie_word_embeddings: config.tieWordEmbeddings,
    use_sliding_window: false,
    attention_dropout: 0,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    torch_dtype: 'float32',
  };
}

/** Parameter names and shapes of a Qwen2ForCausalLM with this config, as in Hugging Face checkpoints. */
export function qwen2ParamShapes(config: Qwen2Config): Map<string, number[]> {
  const { hiddenSize: h, intermediateSize: inter, numHeads, numKvHeads, headDim, vocabSize } = config;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [vocabSize, h]]]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    shapes.set(`${p}input_layernorm.weight`, [h]);
    shapes.set(`${p}self_attn.q_proj.weight`, [numHeads * headDim, h]);
    shapes.set(`${p}self_attn.q_proj.bias`, [numHeads * headDim]);
    shapes.set(`${p}self_attn.k_proj.weight`, [numKvHeads * headDim, h]);
    shapes.set(`${p}self_attn.k_proj.bias`, [numKvHeads * headDim]);
    shapes.set(`${p}self_attn.v_proj.weight`, [numKvHeads * headDim, h]);
    shapes.set(`${p}self_attn.v_proj.bias`, [numKvHeads * headDim]);
    shapes.set(`${p}self_attn.o_proj.weight`, [h, numHeads * headDim]);
    shapes.set(`${p}post_attention_layernorm.weight`, [h]);
    shapes.set(`${p}mlp.gate_proj.weight`, [inter, h]);
    shapes.set(`${p}mlp.up_proj.weight`, [inter, h]);
    shapes.set(`${p}mlp.down_proj.weight`, [h, inter]);
  }
  shapes.set('model.norm.weight', [h]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [vocabSize, h]);
  return shapes;
}
