import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qwen2Generator } from './generate.ts';
import { referenceLogits } from './qwen2-reference.ts';
import { randomCheckpoint, tinyConfig } from './testing.ts';

function logSoftmaxAt(row: Float32Array, token: number): number {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let z = 0;
  for (const x of row) z += Math.exp(x - max);
  return row[token]! - max - Math.log(z);
}

describe.each([
  ['untied head, grouped-query attention', tinyConfig()],
  [
    'tied embeddings, one kv head per query head',
    tinyConfig({ tie_word_embeddings: true, num_key_value_heads: 4, rope_theta: 1e6 }),
  ],
])('Qwen2 graphs (%s)', (_name, config) => {
  const checkpoint = randomCheckpoint(config, 5);
  let gen: Qwen2Generator;
  beforeAll(async () => {
    gen = await Qwen2Generator.create(checkpoint, { intraOpThreads: 1 });
  });
  afterAll(async () => {
    await gen.release();
  });

  it('full-forward logits equal a float64 reference implementation within 1e-4', async () => {
    const sequences = [
      [3, 14, 15, 9, 26, 5, 35],
      [8, 9, 7],
    ];
    const { data, dims } = await gen.logits(sequences);
    const [, seq, vocab] = dims as [number, number, number];
    const padded = sequences.map((s) => [...s, ...Array<number>(seq - s.length).fill(0)]);
    const ref = referenceLogits(
      config,
      checkpoint.weights,
      padded,
      padded.map((s) => s.map((_, t) => t)),
      sequences.map((s) => padded[0]!.map((_, t) => (t < s.length ? 1 : 0))),
    );
    let worst = 0;
    sequences.forEach((s, b) =>
      s.forEach((_, t) => {
        for (let v = 0; v < vocab; v++)
          worst = Math.max(worst, Math.abs(data[(b * seq + t) * vocab + v]! - ref[b]![t]![v]!));
      }),
    );
    expect(worst).toBeLessThan(1e-4);
  });

  it.each([0, 1])(
    'KV-cache decoding at temperature %d reproduces the full forward pass token by token',
    async (temperature) => {
      // Rows of different prompt lengths stop at different times (token 7 ends a row), so the batch is
      // compacted and the cache grows past its first block along the way.
      const prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [20], [30, 31]];
      const results = await gen.generate(prompts, {
        maxNewTokens: 70,
        temperature,
        seed: 11,
        stopTokenIds: [7],
      });
      expect(results.some((r) => r.finishReason === 'stop')).toBe(true);
      expect(results.some((r) => r.finishReason === 'length' && r.tokenIds.length === 70)).toBe(true);
      const sequences = prompts.map((p, i) => [...p, ...results[i]!.tokenIds]);
      const { data, dims } = await gen.logits(sequences);
      const [, seq, vocab] = dims as [number, number, number];
      let worst = 0;
      results.forEach((r, b) =>
        r.tokenIds.forEach((token, j) => {
          const at = b * seq + prompts[b]!.length - 1 + j;
          const row = data.subarray(at * vocab, (at + 1) * vocab);
          worst = Math.max(worst, Math.abs(logSoftmaxAt(row, token) - r.logprobs[j]!));
          if (temperature === 0) expect(row[token]).toBe(Math.max(...row));
        }),
      );
      expect(worst).toBeLessThan(1e-4);
    },
  );
});

describe('generation', () => {
  const config = tinyConfig();
  const checkpoint = randomCheckpoint(config, 9, 0.5);
  let gen: Qwen2Generator;
  beforeAll(async () => {
    gen = await Qwen2Generator.create(checkpoint, { intraOpThreads: 1 });
  });
  afterAll(async () => {
    await gen.release();
  });

  it('is reproducible for a seed and gives a row the same sample alone or in a batch', async () => {
    const options = { maxNewTokens: 25, temperature: 1, topP: 0.9, stopTokenIds: [] };
    const batch = await gen.generate([[1, 2], [3, 4, 5, 6], [7]], { ...options, seed: [100, 200, 300] });
    const again = await gen.generate([[1, 2], [3, 4, 5, 6], [7]], { ...options, seed: [100, 200, 300] });
    const alone = await gen.generate([[3, 4, 5, 6]], { ...options, seed: [200] });
    expect(again).toEqual(batch);
    expect(alone[0]!.tokenIds).toEqual(batch[1]!.tokenIds);
    const otherSeed = await gen.generate([[3, 4, 5, 6]], { ...options, seed: [201] });
    expect(otherSeed[0]!.tokenIds).not.toEqual(alone[0]!.tokenIds);
  });

  it('stops a row at the first token whose text completes a stop string, keeping that token', async () => {
    const letters = (ids: readonly number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join('');
    const free = await gen.generate([[1, 2, 3]], {
      maxNewTokens: 40,
      temperature: 1,
      seed: 4,
      stopTokenIds: [],
    });
    const text = letters(free[0]!.tokenIds);
    const stop = text.slice(10, 12); // occurs in the free run, first ending at or before character 12
    const firstEnd = text.indexOf(stop) + stop.length;
    const stopped = await gen.generate(
      [[1, 2, 3]],
      { maxNewTokens: 40, temperature: 1, seed: 4, stopTokenIds: [], stop: [stop] },
      letters,
    );
    expect(stopped[0]!.finishReason).toBe('stop');
    expect(stopped[0]!.tokenIds).toEqual(free[0]!.tokenIds.slice(0, firstEnd));
  });

  it('refuses an empty prompt and stop strings without a detokenizer', async () => {
    await expect(gen.generate([[]], { maxNewTokens: 3 })).rejects.toMatchObject({ code: 'MODEL_BAD_PROMPT' });
    await expect(gen.generate([[1]], { maxNewTokens: 3, stop: ['x'] })).rejects.toMatchObject({
      code: 'MODEL_BAD_PROMPT',
    });
  });
});
