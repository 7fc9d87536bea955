/**
 * Small deterministic Qwen2 models for tests and benchmarks: a config and seeded random weights with the
 * scale of a freshly initialised model (normal(0, std) matrices, norms near 1).
 */
import { parseQwen2Config, qwen2ParamShapes, type Qwen2Config } from './qwen2-config.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { FloatTensor } from './safetensors.ts';
import { SeededRandom } from './sampling.ts';

export function tinyConfig(overrides: Record<string, unknown> = {}): Qwen2Config {
  return parseQwen2Config({
    model_type: 'qwen2',
    vocab_size: 64,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rope_theta: 10000,
    tie_word_embeddings: false,
    eos_token_id: 63,
    ...overrides,
  });
}

/** A one-layer, 16-wide Qwen2 with Qwen2.5's full vocabulary (tied), so the vendored Qwen2.5 tokenizer's ids
 * are all valid: for tests of servers and policies that tokenize real text. */
export function tinyQwen25VocabConfig(): Qwen2Config {
  return tinyConfig({
    vocab_size: 151936,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    tie_word_embeddings: true,
    eos_token_id: 151645,
  });
}

/** The benchmarks' Qwen2 family: `hidden` wide (3x MLP, heads of 32, KV heads of 64), `layers` deep, tied. */
export function benchConfig(hidden: number, layers: number, vocab: number): Qwen2Config {
  return tinyConfig({
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: hidden * 3,
    num_hidden_layers: layers,
    num_attention_heads: Math.max(2, hidden / 32),
    num_key_value_heads: Math.max(1, hidden / 64),
    tie_word_embeddings: true,
    eos_token_id: 0,
  });
}

/** Seeded weights: matrices ~ normal(0, std), biases ~ normal(0, std), norm weights ~ 1 + normal(0, 0.1). */
export function randomCheckpoint(config: Qwen2Config, seed = 1, std = 0.2): Checkpoint {
  const rng = new SeededRandom(seed);
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const weights = new Map<string, FloatTensor>();
  for (const [name, shape] of qwen2ParamShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const isNorm = name.endsWith('norm.weight');
    for (let i = 0; i < data.length; i++) data[i] = isNorm ? 1 + 0.1 * normal() : std * normal();
    weights.set(name, { shape, data });
  }
  return { config, weights };
}
