import { describe, expect, it } from 'vitest';
import { adamwStep, defaultAdamWConfig, initAdamWState } from './adamw.ts';
import { ChunkInbox, ringAllReduce } from './allreduce.ts';
import {
  buildMicroBatches,
  informativeGroups,
  prepareSamples,
  shardByTokens,
  type TrainSample,
} from './batching.ts';
import { BigramModel } from './bigram-model.ts';
import { defaultGrpoLossConfig } from './grpo.ts';
import { HostEngine } from './engine.ts';
import { memoryPorts } from './testing/memory-ports.ts';
import { Learner, type LearnerConfig } from './learner.ts';

/** In-memory ring for `size` learners: each rank's inbox receives what its left neighbour sends. */
function samples(count: number, vocab: number, seed: number): TrainSample[] {
  let s = seed;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  return Array.from({ length: count }, (_, i) => {
    const len = 4 + Math.floor(rnd() * 9);
    const tokenIds = Array.from({ length: len }, () => Math.floor(rnd() * vocab));
    // prompt of 2 tokens, then alternating generated / tool-output stretches
    const lossMask = tokenIds.map((_, j) => (j < 2 ? 0 : j % 5 === 4 ? 0 : 1));
    return { group: `q${i % 3}`, tokenIds, lossMask, reward: Math.round(rnd() * 4) / 4, version: 0 };
  });
}

const config: LearnerConfig = {
  loss: { ...defaultGrpoLossConfig, klCoef: 0.01, entropyCoef: 0.001 },
  optimizer: { ...defaultAdamWConfig, lr: 1e-2 },
  maxTokensPerMicroBatch: 64,
  maxSeqLen: 16,
  padId: 0,
};

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('AdamW', () => {
  it('takes the torch.optim.AdamW first step by hand', () => {
    const w = [Float32Array.from([1.0])];
    const st = initAdamWState(w);
    adamwStep(w, [Float32Array.from([0.5])], st, {
      ...defaultAdamWConfig,
      lr: 0.1,
      weightDecay: 0.01,
      maxGradNorm: null,
    });
    // decay: 1 * (1 - 0.001) = 0.999; m̂ = 0.5, v̂ = 0.25, step = 0.1 * 0.5 / (0.5 + 1e-8)
    expect(w[0]![0]).toBeCloseTo(0.999 - 0.1, 6);
    expect(st.m[0]![0]).toBeCloseTo(0.05, 7);
    expect(st.v[0]![0]).toBeCloseTo(0.00025, 9);
  });

  it('clips the global gradient norm before the moments see it', () => {
    const w = [Float32Array.from([0, 0])];
    const st = initAdamWState(w);
    const { gradNorm } = adamwStep(w, [Float32Array.from([3, 4])], st, {
      ...defaultAdamWConfig,
      maxGradNorm: 1,
    });
    expect(gradNorm).toBeCloseTo(5, 6);
    expect(st.m[0]![0]).toBeCloseTo(0.1 * 0.6, 6);
    expect(st.m[0]![1]).toBeCloseTo(0.1 * 0.8, 6);
  });

  it('refuses a non-finite gradient and leaves the weights alone', () => {
    const w = [Float32Array.from([1, 2])];
    const st = initAdamWState(w);
    expect(() => adamwStep(w, [Float32Array.from([NaN, 1])], st, defaultAdamWConfig)).toThrow(/not finite/);
    expect(Array.from(w[0]!)).toEqual([1, 2]);
    expect(st.step).toBe(0);
  });
});

describe('batching', () => {
  it('packs micro-batches within the token budget and never puts position 0 in the loss', () => {
    const prepared = prepareSamples(samples(12, 10, 3));
    const mbs = buildMicroBatches(prepared, { maxTokens: 40, maxSeqLen: 10, padId: 0 });
    expect(mbs.reduce((n, mb) => n + mb.rows, 0)).toBe(12);
    for (const mb of mbs) {
      expect(mb.rows * mb.cols).toBeLessThanOrEqual(40);
      expect(mb.cols).toBeLessThanOrEqual(10);
      for (let r = 0; r < mb.rows; r++) expect(mb.lossMask[r * mb.cols]).toBe(0);
    }
  });

  it('balances shards by tokens and keeps every sample exactly once', () => {
    const ss = samples(20, 10, 5);
    const shards = shardByTokens(ss, 3);
    expect(shards.flat().length).toBe(20);
    expect(new Set(shards.flat()).size).toBe(20);
    const loads = shards.map((s) => s.reduce((n, x) => n + x.tokenIds.length, 0));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(12);
  });

  it('keeps only the groups whose rewards differ, in their order', () => {
    const s = (group: string, reward: number): { group: string; reward: number } => ({ group, reward });
    const samples = [s('a', 1), s('b', 0), s('a', 0), s('c', -1), s('b', 0), s('c', -1), s('a', 1)];

    const kept = informativeGroups(samples);

    expect(kept).toEqual([s('a', 1), s('a', 0), s('a', 1)]);
  });

  it('refuses a sample whose mask does not match its tokens', () => {
    const bad = { group: 'g', tokenIds: [1, 2, 3], lossMask: [0, 1], reward: 1, version: 0 };
    expect(() => prepareSamples([bad])).toThrow(/mask entries/);
  });
});

describe('ring all-reduce', () => {
  it('gives every rank the same bits: the element-wise sum', async () => {
    const ports = memoryPorts(3);
    const inputs = [0, 1, 2].map((r) => Float32Array.from({ length: 10 }, (_, i) => (r + 1) * 0.1 + i));
    const want = Array.from({ length: 10 }, (_, i) => inputs.reduce((s, x) => s + x[i]!, 0));
    const outs = await Promise.all(
      ports.map((p, r) => ringAllReduce(p, Float32Array.from(inputs[r]!), 't1')),
    );
    for (const o of outs) expect(maxAbsDiff(o, want)).toBeLessThan(1e-5);
    expect(Array.from(outs[1]!)).toEqual(Array.from(outs[0]!));
    expect(Array.from(outs[2]!)).toEqual(Array.from(outs[0]!));
  });

  it('times out with a typed error when a peer never sends', async () => {
    const inbox = new ChunkInbox();
    await expect(inbox.take(1, 'k', 20)).rejects.toMatchObject({ code: 'LEARNER_ALLREDUCE_TIMEOUT' });
  });
});

describe('Learner train step', () => {
  const model = new BigramModel(10);
  const init = model.init(7);

  it('gives the same update whether the shard runs as one micro-batch or many', async () => {
    const batch = prepareSamples(samples(16, 10, 11));
    const one = new Learner(new HostEngine(model, init), { ...config, maxTokensPerMicroBatch: 1_000 });
    const many = new Learner(new HostEngine(model, init), { ...config, maxTokensPerMicroBatch: 16 });
    const a = await one.trainStep(batch, 'grpo', 's1');
    const b = await many.trainStep(batch, 'grpo', 's1');
    expect(b.microBatches).toBeGreaterThan(a.microBatches);
    expect(a.microBatches).toBe(1);
    expect(b.loss).toBeCloseTo(a.loss, 6);
    expect(maxAbsDiff(one.currentWeights()[0]!, many.currentWeights()[0]!)).toBeLessThan(1e-6);
  });

  it('gives 2 data-parallel learners on halves of the batch the same update as 1 learner on all of it', async () => {
    const batch = prepareSamples(samples(16, 10, 13));
    const single = new Learner(new HostEngine(model, init), config);
    const ports = memoryPorts(2);
    const pair = ports.map((p) => new Learner(new HostEngine(model, init), config, p));
    const shards = shardByTokens(batch, 2);
    for (let step = 0; step < 3; step++) {
      const ref = await single.trainStep(batch, 'grpo', `s${step}`);
      const dp = await Promise.all(pair.map((l, r) => l.trainStep(shards[r]!, 'grpo', `s${step}`)));
      expect(dp[0]!.loss).toBeCloseTo(ref.loss, 6);
      expect(dp[0]!.lossTokens).toBe(ref.lossTokens);
      expect(dp[0]!.gradNorm).toBeCloseTo(ref.gradNorm, 5);
    }
    expect(Array.from(pair[1]!.currentWeights()[0]!)).toEqual(Array.from(pair[0]!.currentWeights()[0]!));
    expect(maxAbsDiff(pair[0]!.currentWeights()[0]!, single.currentWeights()[0]!)).toBeLessThan(1e-6);
  });

  it('lowers the SFT loss on the data it is trained on', async () => {
    const batch = prepareSamples(samples(8, 10, 17));
    const l = new Learner(new HostEngine(model, init), {
      ...config,
      optimizer: { ...config.optimizer, lr: 0.05 },
    });
    const first = await l.trainStep(batch, 'sft', 'a');
    let last = first;
    for (let i = 0; i < 20; i++) last = await l.trainStep(batch, 'sft', `b${i}`);
    expect(last.loss).toBeLessThan(first.loss * 0.8);
  });

  it('continues bit-exactly from an exported state', async () => {
    const batches = [21, 22, 23].map((s) => prepareSamples(samples(8, 10, s)));
    const straight = new Learner(new HostEngine(model, init), config);
    await straight.trainStep(batches[0]!, 'grpo', 'a');
    const saved = straight.exportState();
    await straight.trainStep(batches[1]!, 'grpo', 'b');
    const want = await straight.trainStep(batches[2]!, 'grpo', 'c');

    const resumed = new Learner(new HostEngine(model, init), config);
    resumed.loadState(saved);
    await resumed.trainStep(batches[1]!, 'grpo', 'b');
    const got = await resumed.trainStep(batches[2]!, 'grpo', 'c');
    expect(got.loss).toBe(want.loss);
    expect(got.step).toBe(3);
    expect(Array.from(resumed.currentWeights()[0]!)).toEqual(Array.from(straight.currentWeights()[0]!));
  });
});
