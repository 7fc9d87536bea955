/**
 * The device-resident engine against the host engine, both driven by the same Learner: same Qwen2, batch,
 * loss and optimizer, with several micro-batches per step so the gradients accumulate on the device. CI runs
 * the CPU provider (the native binding's fallback: "device" tensors are host buffers); on the GPU machine
 * `DR_TEST_ONNX_PROVIDER=cuda NVIDIA_TF32_OVERRIDE=0` puts both engines on CUDA.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { randomCheckpoint, tinyConfig } from '../../runtime/model/testing.ts';
import { Qwen2Trainer } from '../../runtime/model/trainer.ts';
import { defaultAdamWConfig } from './adamw.ts';
import { buildMicroBatches, prepareSamples, shardByTokens, type TrainSample } from './batching.ts';
import { DeviceEngine } from './device-engine.ts';
import { HostEngine, type LearnerEngine } from './engine.ts';
import { defaultGrpoLossConfig } from './grpo.ts';
import { Learner, type LearnerConfig, type StepMetrics } from './learner.ts';
import { memoryPorts } from './testing/memory-ports.ts';

const provider = process.env.DR_TEST_ONNX_PROVIDER === 'cuda' ? 'cuda' : 'cpu';
const model = tinyConfig({ tie_word_embeddings: true });
const ckpt = randomCheckpoint(model, 9, 0.1);
const initial = new Map([...ckpt.weights].map(([n, w]) => [n, w.data]));

const config: LearnerConfig = {
  loss: { ...defaultGrpoLossConfig, klCoef: 0.01, entropyCoef: 0.001 },
  optimizer: { ...defaultAdamWConfig, lr: 1e-3 },
  // Small micro-batches: every step below accumulates over several of them.
  maxTokensPerMicroBatch: 48,
  maxSeqLen: 24,
  padId: 0,
};

function samples(count: number, seed: number): TrainSample[] {
  let s = seed;
  const rnd = (): number => ((s = (s * 48271) % 2147483647), s / 2147483647);
  return Array.from({ length: count }, (_, i) => {
    const tokenIds = Array.from({ length: 8 + Math.floor(rnd() * 14) }, () =>
      Math.floor(rnd() * model.vocabSize),
    );
    const lossMask = tokenIds.map((_, j) => (j < 3 || j % 7 === 6 ? 0 : 1));
    return { group: `q${i % 3}`, tokenIds, lossMask, reward: rnd(), version: 0 };
  });
}

const engines: LearnerEngine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.dispose();
});

function deviceEngine(): DeviceEngine {
  const e = new DeviceEngine(model, initial, { provider, optimizer: config.optimizer });
  engines.push(e);
  return e;
}

function hostEngine(): HostEngine {
  const trainer = new Qwen2Trainer(model, { provider, thread: 'main' });
  const e = new HostEngine(
    trainer,
    trainer.params.map((p) => Float32Array.from(initial.get(p.name)!)),
  );
  engines.push(e);
  return e;
}

/** The largest relative L2 difference over parameters. */
function worstRelative(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let worst = 0;
  a.forEach((x, p) => {
    const y = b[p]!;
    let num = 0;
    let den = 0;
    for (let i = 0; i < x.length; i++) {
      num += (x[i]! - y[i]!) ** 2;
      den += y[i]! ** 2;
    }
    worst = Math.max(worst, Math.sqrt(num / Math.max(den, 1e-30)));
  });
  return worst;
}

function expectSameMetrics(got: StepMetrics, want: StepMetrics): void {
  expect(got.microBatches).toBe(want.microBatches);
  expect(got.lossTokens).toBe(want.lossTokens);
  expect(got.localTokens).toBe(want.localTokens);
  for (const k of ['loss', 'pgLoss', 'kl', 'entropy', 'clipFraction', 'ppoKl', 'gradNorm'] as const)
    expect(Math.abs(got[k] - want[k])).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[k])));
}

describe(`DeviceEngine (${provider} provider)`, () => {
  it('takes the host engine’s GRPO steps with gradients accumulated over micro-batches (1e-4 relative)', async () => {
    const batch = prepareSamples(samples(10, 5));
    const device = new Learner(deviceEngine(), config);
    const host = new Learner(hostEngine(), config);
    for (const tag of ['a', 'b', 'c']) {
      const want = await host.trainStep(batch, 'grpo', tag);
      const got = await device.trainStep(batch, 'grpo', tag);
      expect(want.microBatches).toBeGreaterThan(2);
      expectSameMetrics(got, want);
    }
    const worst = worstRelative(device.currentWeights(), host.currentWeights());
    console.log(
      `device vs host engine on ${provider}: worst relative weight difference ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-4);
    expect(worstRelative(device.currentWeights(), [...initial.values()])).toBeGreaterThan(1e-6);
    expect(device.step).toBe(3);
  });

  it('takes the same SFT steps, and GRPO steps without KL or entropy terms', async () => {
    const batch = prepareSamples(samples(6, 8));
    const plain = { ...config, loss: { ...defaultGrpoLossConfig, klCoef: 0, entropyCoef: 0 } };
    const device = new Learner(deviceEngine(), plain);
    const host = new Learner(hostEngine(), plain);
    for (const [mode, tag] of [
      ['sft', 'a'],
      ['grpo', 'b'],
      ['sft', 'c'],
    ] as const)
      expectSameMetrics(await device.trainStep(batch, mode, tag), await host.trainStep(batch, mode, tag));
    expect(worstRelative(device.currentWeights(), host.currentWeights())).toBeLessThan(1e-4);
  });

  it('gives 2 data-parallel device learners the update of 1 on the whole batch', async () => {
    const batch = prepareSamples(samples(12, 3));
    const single = new Learner(deviceEngine(), config);
    const pair = memoryPorts(2).map((port) => new Learner(deviceEngine(), config, port));
    const shards = shardByTokens(batch, 2);
    const want = await single.trainStep(batch, 'grpo', 's0');
    const got = await Promise.all(pair.map((l, r) => l.trainStep(shards[r]!, 'grpo', 's0')));
    expect(got[0]!.loss).toBeCloseTo(want.loss, 5);
    expect(got[0]!.gradNorm).toBeCloseTo(want.gradNorm, 4);
    // The ring all-gather copies each chunk's sum, so the two ranks hold the very same bits.
    expect(worstRelative(pair[0]!.currentWeights(), pair[1]!.currentWeights())).toBe(0);
    expect(worstRelative(pair[0]!.currentWeights(), single.currentWeights())).toBeLessThan(1e-5);
  });

  it('resumes from exported state exactly where the original went on', async () => {
    const batches = [1, 2, 3].map((seed) => prepareSamples(samples(6, seed)));
    const straight = new Learner(deviceEngine(), config);
    await straight.trainStep(batches[0]!, 'grpo', 'a');
    const saved = straight.exportState();
    await straight.trainStep(batches[1]!, 'grpo', 'b');
    const want = await straight.trainStep(batches[2]!, 'grpo', 'c');

    const resumed = new Learner(deviceEngine(), config);
    resumed.loadState(saved);
    expect(resumed.step).toBe(1);
    await resumed.trainStep(batches[1]!, 'grpo', 'b');
    const got = await resumed.trainStep(batches[2]!, 'grpo', 'c');
    expect(got.loss).toBe(want.loss);
    expect(worstRelative(resumed.currentWeights(), straight.currentWeights())).toBe(0);
  });

  it('refuses a non-finite gradient with LEARNER_NONFINITE_GRADIENT and keeps weights, moments and step', async () => {
    const engine = deviceEngine();
    const mbs = buildMicroBatches(prepareSamples(samples(4, 4)), {
      maxTokens: 48,
      maxSeqLen: 24,
      padId: 0,
    });
    const before = engine.exportState();
    await engine.begin(mbs, 'grpo', config.loss);
    await engine.accumulate(0, 100);
    const poisoned = engine.readGradients();
    poisoned[0]![0] = Number.NaN;
    engine.writeGradients(poisoned);
    let err: unknown;
    try {
      await engine.apply(config.optimizer);
    } catch (e) {
      err = e;
    }
    expect(isDrError(err, 'LEARNER_NONFINITE_GRADIENT')).toBe(true);
    const after = engine.exportState();
    expect(after.optimizer.step).toBe(0);
    expect(worstRelative(after.weights, before.weights)).toBe(0);
    expect(worstRelative(after.optimizer.m, before.optimizer.m)).toBe(0);
    // And the next step goes through.
    await engine.begin(mbs, 'grpo', config.loss);
    await engine.accumulate(0, 100);
    expect((await engine.apply(config.optimizer)).gradNorm).toBeGreaterThan(0);
    expect(engine.step).toBe(1);
  });

  it('refuses a state of another model with LEARNER_BAD_WEIGHTS', () => {
    const engine = deviceEngine();
    const state = engine.exportState();
    state.weights.pop();
    expect(() => engine.loadState(state)).toThrow(expect.objectContaining({ code: 'LEARNER_BAD_WEIGHTS' }));
  });
});
