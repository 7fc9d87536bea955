import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../config/log.ts';
import type { ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import { Qwen2Generator } from '../../runtime/model/generate.ts';
import { randomCheckpoint, tinyQwen25VocabConfig } from '../../runtime/model/testing.ts';
import { loadTokenizer, type TextTokenizer } from '../../runtime/model/tokenizer.ts';
import { parameterServer } from '../params/param-server.ts';
import { publishWeights, WeightSubscriber } from '../params/weight-transfer.ts';
import { PolicyServer } from './policy-server.ts';

// Real Qwen2.5 vocabulary ids (the tokenizer's), tiny random body.
const config = tinyQwen25VocabConfig();
const ckpt = (seed: number) => randomCheckpoint(config, seed, 0.5);
const specs = [...ckpt(1).weights].map(([name, t]) => ({ name, shape: [...t.shape] }));

let system: ActorSystem;
let server: PolicyServer;
let tokenizer: TextTokenizer;
let client: OpenAI;

beforeAll(async () => {
  system = createActorSystem({ kinds: new Map([['params', parameterServer]]) });
  await system.spawn({ kind: 'params', name: 'params', args: { checkpointDir: '/nonexistent-not-written' } });
  const ask = <R>(t: string, m: unknown, o?: { timeoutMs?: number }) => system.ask<R>(t, m, o);
  await publishWeights(
    ask,
    'params',
    0,
    specs,
    [...ckpt(1).weights.values()].map((t) => t.data),
  );
  tokenizer = await loadTokenizer();
  server = await PolicyServer.start({
    config,
    tokenizer,
    weights: new WeightSubscriber(ask, 'params'),
    modelName: 'tiny',
    log: silentLogger,
  });
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server.close();
  await system.stop();
});

type Choice = {
  text: string;
  finish_reason: string;
  logprobs: { tokens: string[]; token_logprobs: number[] };
};

describe('policy server (OpenAI-compatible completions over the published weights)', () => {
  it('answers token-id prompts with vLLM-style token ids and logprobs from the weights it was refreshed to', async () => {
    expect(await server.refresh()).toBe(0);
    const prompt = tokenizer.encode(
      '<|im_start|>user\nWhat is the capital?<|im_end|>\n<|im_start|>assistant\n',
    );
    const body = {
      model: 'tiny',
      prompt,
      max_tokens: 6,
      temperature: 0,
      logprobs: 0,
      return_tokens_as_token_ids: true,
    };
    const r = (await client.completions.create(body as never)) as unknown as {
      system_fingerprint: string;
      choices: Choice[];
    };
    const choice = r.choices[0]!;
    expect(r.system_fingerprint).toBe('dr-weights-v0');
    const ids = choice.logprobs.tokens.map((t) => Number(/^token_id:(\d+)$/.exec(t)![1]));
    expect(choice.logprobs.token_logprobs).toHaveLength(ids.length);
    expect(choice.text).toBe(tokenizer.decode(ids));
    // the same greedy tokens as generating directly with the version-0 weights
    const direct = await Qwen2Generator.create(ckpt(1));
    const [want] = await direct.generate([prompt], { maxNewTokens: 6, temperature: 0 });
    await direct.release();
    expect(ids).toEqual(want!.tokenIds);
  });

  it('serves concurrent requests and switches weights only when refreshed', async () => {
    const ask = <R>(t: string, m: unknown, o?: { timeoutMs?: number }) => system.ask<R>(t, m, o);
    await publishWeights(
      ask,
      'params',
      1,
      specs,
      [...ckpt(2).weights.values()].map((t) => t.data),
    );
    const req = (text: string) =>
      client.completions.create({
        model: 'tiny',
        prompt: text,
        max_tokens: 3,
        temperature: 0,
      }) as unknown as Promise<{ system_fingerprint: string }>;
    const before = await Promise.all(['a', 'b', 'c'].map(req));
    expect(before.map((r) => r.system_fingerprint)).toEqual([
      'dr-weights-v0',
      'dr-weights-v0',
      'dr-weights-v0',
    ]);
    expect(await server.refresh()).toBe(1);
    expect((await req('a')).system_fingerprint).toBe('dr-weights-v1');
  });

  it('refuses a malformed request with an OpenAI-shaped 400', async () => {
    await expect(
      client.completions.create({ model: 'tiny', prompt: [999_999_999], max_tokens: 2 }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      client.completions.create({ model: 'tiny', prompt: '', max_tokens: 2 }),
    ).rejects.toMatchObject({ status: 400 });
  });
});
