import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { parseQwen2Config, qwen2ParamShapes, toConfigJson, type Qwen2Config } from './qwen2-config.ts';
import { readSafetensors, writeSafetensors, type FloatTensor } from './safetensors.ts';

const tiny: Qwen2Config = parseQwen2Config({
  model_type: 'qwen2',
  vocab_size: 11,
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  eos_token_id: 3,
});

function withCode(code: string, mentions: string) {
  return (e: unknown) => isDrError(e, code) && e.message.includes(mentions);
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('safetensors', () => {
  // Values exactly representable in bf16 and fp16 must come back unchanged; others round to nearest even.
  const exact = Float32Array.from([0, -0, 1, -2.5, 0.15625, 1024, -61440, 2 ** -14]);

  it.each(['F32', 'BF16', 'F16'] as const)(
    'round-trips exactly representable values stored as %s',
    async (dtype) => {
      const file = path.join(dir, 'w.safetensors');
      await writeSafetensors(
        file,
        { a: { shape: [2, 4], data: exact }, b: { shape: [], data: Float32Array.of(3) } },
        { dtype },
      );
      const back = await readSafetensors(file);
      expect(back.get('a')?.shape).toEqual([2, 4]);
      expect([...back.get('a')!.data]).toEqual([...exact]);
      expect([...back.get('b')!.data]).toEqual([3]);
    },
  );

  it('decodes bf16 and fp16 bit patterns written by another writer', async () => {
    // Hand-assembled file: bf16 0x3FC0 = 1.5, 0xC2F7 = -123.5; fp16 0x3555 ≈ 0.33325195, 0x0001 = 2^-24 (subnormal).
    const header = JSON.stringify({
      b: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] },
      h: { dtype: 'F16', shape: [2], data_offsets: [4, 8] },
    });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const data = Buffer.alloc(8);
    data.writeUInt16LE(0x3fc0, 0);
    data.writeUInt16LE(0xc2f7, 2);
    data.writeUInt16LE(0x3555, 4);
    data.writeUInt16LE(0x0001, 6);
    const file = path.join(dir, 'x.safetensors');
    await writeFile(file, Buffer.concat([len, Buffer.from(header), data]));
    const back = await readSafetensors(file);
    expect([...back.get('b')!.data]).toEqual([1.5, -123.5]);
    expect(back.get('h')!.data[0]).toBeCloseTo(0.33325195, 7);
    expect(back.get('h')!.data[1]).toBe(2 ** -24);
  });

  it('rounds to the nearest representable value, ties to even, when storing bf16 and fp16', async () => {
    const file = path.join(dir, 'r.safetensors');
    const store = async (values: number[], dtype: 'BF16' | 'F16') => {
      await writeSafetensors(
        file,
        { v: { shape: [values.length], data: Float32Array.from(values) } },
        { dtype },
      );
      return [...(await readSafetensors(file)).get('v')!.data];
    };
    // bf16 keeps 7 mantissa bits (ulp at 1 is 2^-7); fp16 keeps 10 (ulp 2^-10) and overflows past 65504.
    expect(await store([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 0.75 * 2 ** -7, 0.1], 'BF16')).toEqual([
      1,
      1 + 2 * 2 ** -7,
      1 + 2 ** -7,
      0.10009765625,
    ]);
    expect(await store([1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1, 70000], 'F16')).toEqual([
      1,
      1 + 2 * 2 ** -10,
      0.0999755859375,
      Infinity,
    ]);
  });

  it.each([
    [
      'a header length beyond the file',
      () => Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d]),
      'header length',
    ],
    ['a header that is not JSON', () => framed('{"a": '), 'not JSON'],
    [
      'offsets beyond the data',
      () => framed('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 4),
      'data section',
    ],
    [
      'a shape that disagrees with the byte count',
      () => framed('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 8),
      'needs 12 bytes',
    ],
    [
      'overlapping tensors',
      () =>
        framed(
          '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
          8,
        ),
      'overlap',
    ],
    [
      'an unsupported dtype',
      () => framed('{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', 8),
      'only F32, BF16 and F16',
    ],
    ['a truncated file', () => Buffer.from([1, 2, 3]), 'fewer than'],
  ])('refuses %s with MODEL_CHECKPOINT_INVALID', async (_what, bytes, mentions) => {
    const file = path.join(dir, 'bad.safetensors');
    await writeFile(file, bytes());
    await expect(readSafetensors(file)).rejects.toSatisfy(withCode('MODEL_CHECKPOINT_INVALID', mentions));
  });
});

function framed(header: string, dataBytes = 0): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(header)));
  return Buffer.concat([len, Buffer.from(header), Buffer.alloc(dataBytes)]);
}

describe('Qwen2 config.json', () => {
  it('reads transformers 4.x and 5.x spellings of rope_theta and fills defaults', () => {
    const base = {
      model_type: 'qwen2',
      vocab_size: 10,
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 2,
      num_attention_heads: 4,
    };
    expect(parseQwen2Config({ ...base, rope_theta: 1e6 }).ropeTheta).toBe(1e6);
    const v5 = parseQwen2Config({
      ...base,
      num_key_value_heads: 2,
      rope_parameters: { rope_type: 'default', rope_theta: 5e5 },
    });
    expect(v5).toMatchObject({
      ropeTheta: 5e5,
      numKvHeads: 2,
      headDim: 2,
      rmsNormEps: 1e-6,
      tieWordEmbeddings: false,
    });
    expect(parseQwen2Config(toConfigJson(v5))).toEqual(v5);
  });

  it.each([
    [{ model_type: 'llama' }, 'model_type'],
    [{ hidden_size: -8 }, 'hidden_size'],
    [{ num_key_value_heads: 3 }, 'multiple of num_key_value_heads'],
    [{ use_sliding_window: true }, 'use_sliding_window'],
    [{ rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'yarn'],
    [{ hidden_act: 'gelu' }, 'silu'],
  ])('refuses %o with MODEL_CONFIG_INVALID', (change, mentions) => {
    const json = {
      ...toConfigJson(tiny),
      num_attention_heads: 4,
      hidden_size: 8,
      head_dim: undefined,
      ...change,
    };
    expect(() => parseQwen2Config(json)).toThrow(
      expect.objectContaining({ code: 'MODEL_CONFIG_INVALID', message: expect.stringContaining(mentions) }),
    );
  });
});

describe('Qwen2 checkpoint folder', () => {
  function randomWeights(config: Qwen2Config): Map<string, FloatTensor> {
    let seed = 1;
    const weights = new Map<string, FloatTensor>();
    for (const [name, shape] of qwen2ParamShapes(config)) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(
        () => (seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5,
      );
      weights.set(name, { shape, data });
    }
    return weights;
  }

  it('saves and loads config and weights, in bf16 within bf16 precision', async () => {
    const weights = randomWeights(tiny);
    await saveCheckpoint(dir, { config: tiny, weights }, { dtype: 'BF16' });
    const back = await loadCheckpoint(dir);
    expect(back.config).toEqual(tiny);
    expect([...back.weights.keys()].sort()).toEqual([...weights.keys()].sort());
    const q = 'model.layers.0.self_attn.q_proj.weight';
    back.weights
      .get(q)!
      .data.forEach((v, i) => expect(Math.abs(v - weights.get(q)!.data[i]!)).toBeLessThanOrEqual(2 ** -9));
  });

  it('loads sharded checkpoints listed in model.safetensors.index.json', async () => {
    const weights = randomWeights(tiny);
    const names = [...weights.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(path.join(dir, file), new Map(shard.map((n) => [n, weights.get(n)!])));
      for (const n of shard) weightMap[n] = file;
    }
    await writeFile(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(toConfigJson(tiny)));
    const back = await loadCheckpoint(dir);
    expect([...back.weights.get('model.norm.weight')!.data]).toEqual([
      ...weights.get('model.norm.weight')!.data,
    ]);
  });

  it('names the missing tensor of an incomplete checkpoint', async () => {
    const weights = randomWeights(tiny);
    weights.delete('model.layers.0.mlp.up_proj.weight');
    await saveCheckpoint(dir, { config: tiny, weights });
    await expect(loadCheckpoint(dir)).rejects.toSatisfy(
      withCode('MODEL_CHECKPOINT_INVALID', 'model.layers.0.mlp.up_proj.weight'),
    );
  });

  it('names a tensor whose shape disagrees with config.json', async () => {
    await saveCheckpoint(dir, { config: tiny, weights: randomWeights(tiny) });
    const json = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...json, intermediate_size: 16 }));
    await expect(loadCheckpoint(dir)).rejects.toSatisfy(
      withCode('MODEL_CHECKPOINT_INVALID', 'gate_proj.weight has shape [12,8]'),
    );
  });

  it('refuses a folder without config.json with a typed error', async () => {
    await expect(loadCheckpoint(dir)).rejects.toSatisfy(withCode('MODEL_CONFIG_INVALID', 'config.json'));
  });
});
