import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveCheckpoint } from '../../runtime/model/checkpoint.ts';
import { randomCheckpoint, tinyConfig } from '../../runtime/model/testing.ts';
import { defaultAdamWConfig } from './adamw.ts';
import { buildMicroBatches, prepareSamples, shardByTokens, type TrainSample } from './batching.ts';
import { defaultGrpoLossConfig, grpoLoss } from './grpo.ts';
import { HostEngine } from './engine.ts';
import { memoryPorts } from './testing/memory-ports.ts';
import { Learner, type LearnerConfig } from './learner.ts';
import { loadTrainableModel } from './models.ts';
import type { TrainableModel } from './model.ts';

let dir: string;
let model: TrainableModel;
let initial: Float32Array[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dr-qwen2-'));
  await saveCheckpoint(dir, randomCheckpoint(tinyConfig(), 4, 0.1));
  ({ model, initial } = await loadTrainableModel({ kind: 'qwen2', dir }, 'cpu'));
});
afterAll(async () => {
  await model.dispose?.();
  await rm(dir, { recursive: true, force: true });
});

function samples(count: number, seed: number): TrainSample[] {
  let s = seed;
  const rnd = (): number => ((s = (s * 48271) % 2147483647), s / 2147483647);
  return Array.from({ length: count }, (_, i) => {
    const tokenIds = Array.from({ length: 6 + Math.floor(rnd() * 10) }, () => Math.floor(rnd() * 64));
    const lossMask = tokenIds.map((_, j) => (j < 3 || j % 6 === 5 ? 0 : 1));
    return { group: `q${i % 2}`, tokenIds, lossMask, reward: rnd(), version: 0 };
  });
}

const config: LearnerConfig = {
  loss: { ...defaultGrpoLossConfig, klCoef: 0.01, entropyCoef: 0.001 },
  optimizer: { ...defaultAdamWConfig, lr: 1e-3 },
  maxTokensPerMicroBatch: 64,
  maxSeqLen: 32,
  padId: 0,
};

describe('Qwen2 GRPO train graph', () => {
  it('matches the TypeScript GRPO reference on loss and sums', async () => {
    const [mb] = buildMicroBatches(prepareSamples(samples(4, 9)), {
      maxTokens: 1000,
      maxSeqLen: 32,
      padId: 0,
    });
    const lp = await model.logprobs(initial, mb!);
    // a policy that moved: old and reference log-probs differ from the current ones
    mb!.oldLogprob = lp.map((x, i) => x + 0.3 * Math.sin(i));
    mb!.refLogprob = lp.map((x, i) => x - 0.2 * Math.cos(i));
    const cfg = { ...defaultGrpoLossConfig, klCoef: 0.05 };
    const total = mb!.lossMask.reduce((a, b) => a + b, 0);
    const graph = await model.grpoGradients(initial, mb!, cfg, total);
    const ref = grpoLoss(
      {
        logprob: lp,
        oldLogprob: mb!.oldLogprob,
        refLogprob: mb!.refLogprob,
        advantage: mb!.advantage,
        mask: mb!.lossMask,
      },
      cfg,
    );
    expect(graph.loss).toBeCloseTo(ref.loss, 5);
    expect(graph.sums.tokens).toBe(ref.sums.tokens);
    expect(graph.sums.clipped).toBe(ref.sums.clipped);
    expect(graph.sums.kl).toBeCloseTo(ref.sums.kl, 4);
    expect(graph.sums.clipped).toBeGreaterThan(0);
  });

  it('gives 2 data-parallel learners the same update as 1 learner on the whole batch', async () => {
    const batch = prepareSamples(samples(8, 5));
    const ports = memoryPorts(2);
    const single = new Learner(new HostEngine(model, initial), config);
    const pair = ports.map((p) => new Learner(new HostEngine(model, initial), config, p));
    const shards = shardByTokens(batch, 2);
    const a = await single.trainStep(batch, 'grpo', 's0');
    const b = await Promise.all(pair.map((l, r) => l.trainStep(shards[r]!, 'grpo', 's0')));
    expect(a.microBatches).toBeGreaterThan(1);
    expect(b[0]!.loss).toBeCloseTo(a.loss, 5);
    expect(b[0]!.gradNorm).toBeCloseTo(a.gradNorm, 4);
    let maxDiff = 0;
    single
      .currentWeights()
      .forEach((w, p) =>
        w.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - pair[0]!.currentWeights()[p]![i]!)))),
      );
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('lowers the SFT loss over a few steps', async () => {
    const batch = prepareSamples(samples(4, 3));
    const l = new Learner(new HostEngine(model, initial), {
      ...config,
      optimizer: { ...config.optimizer, lr: 1e-2 },
    });
    const first = await l.trainStep(batch, 'sft', 'a');
    let last = first;
    for (let i = 0; i < 5; i++) last = await l.trainStep(batch, 'sft', `b${i}`);
    expect(last.loss).toBeLessThan(first.loss * 0.9);
  });
});
