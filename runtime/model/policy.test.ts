import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_DIR } from './embedded.ts';
import { Policy } from './policy.ts';
import { randomCheckpoint, tinyConfig } from './testing.ts';
import { loadTokenizer } from './tokenizer.ts';

describe('Policy', () => {
  let policy: Policy;
  beforeAll(async () => {
    const tokenizer = await loadTokenizer(EMBEDDED_DIR);
    const config = tinyConfig({
      vocab_size: tokenizer.vocabSize,
      hidden_size: 16,
      intermediate_size: 16,
      num_hidden_layers: 1,
      eos_token_id: tokenizer.eosTokenId,
    });
    policy = await Policy.fromCheckpoint(randomCheckpoint(config, 4, 1), tokenizer, { intraOpThreads: 1 });
  });
  afterAll(async () => {
    await policy.release();
  });

  const prompt = () =>
    policy.tokenizer.encodeChat([{ role: 'user', content: 'Who founded Qorvath?' }], {
      addGenerationPrompt: true,
    });

  it('returns token ids, their logprobs, their text and the weight version', async () => {
    const [out] = await policy.generate([prompt()], { maxNewTokens: 12, temperature: 1, seed: 3 });
    expect(out!.tokenIds.length).toBe(out!.logprobs.length);
    expect(out!.logprobs.every((lp) => lp <= 0)).toBe(true);
    expect(out!.text).toBe(policy.tokenizer.decode(out!.tokenIds, { skipSpecialTokens: true }));
    expect(out!.weightVersion).toBe(0);
  });

  it('batches concurrent single requests and gives each the result it would get alone', async () => {
    const p = prompt();
    const options = { maxNewTokens: 10, temperature: 1 };
    const together = await Promise.all([1, 2, 3].map((seed) => policy.generateOne(p, { ...options, seed })));
    const alone = await policy.generate([p], { ...options, seed: [2] });
    expect(together[1]!.tokenIds).toEqual(alone[0]!.tokenIds);
    expect(new Set(together.map((o) => o.tokenIds.join(','))).size).toBeGreaterThan(1);
  });

  it('switches to new weights and reports their version', async () => {
    const next = randomCheckpoint(policy.config, 99, 1);
    await policy.setWeights(next.weights, 7);
    const out = await policy.generateOne(prompt(), { maxNewTokens: 3 });
    expect(out.weightVersion).toBe(7);
  });
});
