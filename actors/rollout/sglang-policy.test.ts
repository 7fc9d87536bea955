/**
 * SglangPolicy against an HTTP server speaking SGLang's native /generate (the project's policy server in
 * `weightApi: 'sglang'` mode, a real Qwen2 behind it), and against one that answers something else.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { silentLogger } from '../../config/log.ts';
import { Qwen2Generator } from '../../runtime/model/generate.ts';
import { randomCheckpoint, tinyQwen25VocabConfig } from '../../runtime/model/testing.ts';
import { loadTokenizer, type TextTokenizer } from '../../runtime/model/tokenizer.ts';
import { PolicyServer } from '../trainer/policy-server.ts';
import { SglangPolicy } from './sglang-policy.ts';

const config = tinyQwen25VocabConfig();
const model = randomCheckpoint(config, 3, 0.5);

let tokenizer: TextTokenizer;
let engine: PolicyServer;
beforeAll(async () => {
  tokenizer = await loadTokenizer();
  engine = await PolicyServer.start({
    config,
    tokenizer,
    modelName: 'tiny',
    weightApi: 'sglang',
    log: silentLogger,
  });
  await engine.install(model.weights, 7);
});
afterAll(async () => {
  await engine.close();
});

describe('SGLang /generate policy', () => {
  it('sends token ids and gets back the sampled ids, their logprobs and the weight version the engine reports', async () => {
    const policy = new SglangPolicy({ baseURL: engine.baseURL });
    const ids = tokenizer.encode('<|im_start|>user\nWho?<|im_end|>\n<|im_start|>assistant\n');

    const gen = await policy.generate(
      { messages: [], prompt: { text: tokenizer.decode(ids), tokenIds: ids } },
      { maxTokens: 5, temperature: 0, topP: 1, stop: [] },
    );

    const direct = await Qwen2Generator.create(model);
    const [want] = await direct.generate([ids], { maxNewTokens: 5, temperature: 0 });
    await direct.release();
    expect(gen.tokenIds).toEqual(want!.tokenIds);
    expect(gen.logprobs).toHaveLength(gen.tokenIds!.length);
    for (const [i, lp] of gen.logprobs!.entries()) expect(lp).toBeCloseTo(want!.logprobs[i]!, 5);
    expect(gen.text).toBe(tokenizer.decode(gen.tokenIds!));
    expect(gen.weightVersion).toBe(7);
    expect(gen.finishReason).toBe('length');
  });

  it('refuses a reply that is not a /generate reply with POLICY_BAD_RESPONSE', async () => {
    const other: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ text: 'hi' }] }));
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const policy = new SglangPolicy({
        baseURL: `http://127.0.0.1:${(other.address() as AddressInfo).port}/v1`,
      });
      const err = await policy
        .generate(
          { messages: [], prompt: { text: 'x', tokenIds: [1] } },
          { maxTokens: 2, temperature: 0, topP: 1, stop: [] },
        )
        .catch((e: unknown) => e);
      expect(isDrError(err, 'POLICY_BAD_RESPONSE')).toBe(true);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });
});
