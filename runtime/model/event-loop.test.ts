/**
 * The node that hosts the learner and the policy server must keep answering heartbeats while the model
 * works: a micro-batch or a prefill on the main thread stalled it for seconds (see event-loop-check.ts).
 * A 1 ms interval fires at most once across a run that blocks the main thread, so counting its ticks tells
 * where the run happened without depending on how fast this machine is.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { EMBEDDED_CONFIG } from './embedded.ts';
import { Qwen2Generator } from './generate.ts';
import { randomCheckpoint } from './testing.ts';
import { Qwen2Trainer } from './trainer.ts';
import { ticksDuring } from '../testing/probes.ts';

const checkpoint = randomCheckpoint(EMBEDDED_CONFIG, 3, 0.05);
const trainer = new Qwen2Trainer(EMBEDDED_CONFIG, { intraOpThreads: 1 });
afterAll(() => trainer.dispose());

function microBatch(rows: number, cols: number) {
  const n = rows * cols;
  return {
    rows,
    cols,
    inputIds: Int32Array.from({ length: n }, (_, i) => (i * 7919) % EMBEDDED_CONFIG.vocabSize),
    attention: new Float32Array(n).fill(1),
    lossMask: new Float32Array(n).fill(1),
    advantage: new Float32Array(n).fill(0.5),
    oldLogprob: new Float32Array(n).fill(-3),
    refLogprob: new Float32Array(n).fill(-3),
  };
}

describe('the embedded policy keeps the event loop free', () => {
  test('while the learner computes a GRPO micro-batch and its log-probabilities', async () => {
    const weights = trainer.params.map((p) => checkpoint.weights.get(p.name)!.data);
    const mb = microBatch(2, 256);
    const settings = {
      clipRatioLow: 0.2,
      clipRatioHigh: 0.2,
      clipRatioC: null,
      klCoef: 0.001,
      entropyCoef: 0,
    };
    await trainer.grpoGradients(weights, microBatch(1, 4), settings, 4); // builds the session
    const grads = await trainer.grpoGradients(weights, mb, settings, 512);
    expect(grads.grads.every((g) => g.every(Number.isFinite))).toBe(true);
    expect(await ticksDuring(() => trainer.grpoGradients(weights, mb, settings, 512))).toBeGreaterThanOrEqual(
      3,
    );
    expect(await ticksDuring(() => trainer.logprobs(weights, mb))).toBeGreaterThanOrEqual(3);
  });

  test('while the generator prefills a batch of long prompts', async () => {
    const generator = await Qwen2Generator.create(checkpoint, { intraOpThreads: 1 });
    const prompts = Array.from({ length: 8 }, (_, b) =>
      Array.from({ length: 384 }, (_, i) => (i * 31 + b) % 8000),
    );
    const ticks = await ticksDuring(() => generator.generate(prompts, { maxNewTokens: 1, temperature: 0 }));
    expect(ticks).toBeGreaterThanOrEqual(3);
    await generator.release();
  });
});
