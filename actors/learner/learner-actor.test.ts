import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ActorFactory, ActorSystem } from '../../runtime/actor.ts';
import { saveCheckpoint } from '../../runtime/model/checkpoint.ts';
import { randomCheckpoint, tinyConfig } from '../../runtime/model/testing.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import { parameterServer } from '../params/param-server.ts';
import { WeightSubscriber, type AskFn } from '../params/weight-transfer.ts';
import { defaultAdamWConfig } from './adamw.ts';
import { prepareSamples, type TrainSample } from './batching.ts';
import { defaultGrpoLossConfig } from './grpo.ts';
import { learnerActor, learnerInboxActor } from './learner-actor.ts';
import { LearnerGroup, type LearnerGroupOptions } from './learner-group.ts';

const kinds = new Map<string, ActorFactory<never>>([
  ['learner', learnerActor as ActorFactory<never>],
  ['learner-inbox', learnerInboxActor as ActorFactory<never>],
  ['params', parameterServer as ActorFactory<never>],
]);

function batch(seed: number): TrainSample[] {
  let s = seed;
  const rnd = (): number => {
    s = (s * 48271) % 2147483647;
    return s / 2147483647;
  };
  return Array.from({ length: 12 }, (_, i) => {
    const tokenIds = Array.from({ length: 5 + Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 12));
    return {
      group: `q${i % 4}`,
      tokenIds,
      lossMask: tokenIds.map((_, j) => (j < 2 ? 0 : 1)),
      reward: rnd(),
      version: 0,
    };
  });
}

const base = (group: string, size: number, paramServer: string): LearnerGroupOptions => ({
  group,
  size,
  model: { kind: 'bigram', vocab: 12, seed: 3 },
  config: {
    loss: { ...defaultGrpoLossConfig, klCoef: 0.01 },
    optimizer: { ...defaultAdamWConfig, lr: 1e-2 },
    maxTokensPerMicroBatch: 40,
    maxSeqLen: 16,
    padId: 0,
  },
  paramServer,
  chunkBytes: 64,
});

let dir: string;
let system: ActorSystem;
let ask: AskFn;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dr-learner-'));
  system = createActorSystem({ kinds });
  ask = (t, m, o) => system.ask(t, m, o);
  for (const name of ['params/a', 'params/b']) {
    await system.spawn({ kind: 'params', name, args: { checkpointDir: join(dir, name) } });
  }
});

afterEach(async () => {
  await system.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('LearnerActor group', () => {
  it('2 learners all-reducing over actor asks publish the same weights as 1 learner on the whole batch', async () => {
    const one = await LearnerGroup.spawn((s) => system.spawn(s), ask, base('one', 1, 'params/a'));
    const two = await LearnerGroup.spawn((s) => system.spawn(s), ask, base('two', 2, 'params/b'));
    expect(two.devices).toEqual(['cpu', 'cpu']);
    for (let step = 0; step < 3; step++) {
      const samples = prepareSamples(batch(step + 1));
      const a = await one.step(samples, 'grpo', `s${step}`);
      const b = await two.step(samples, 'grpo', `s${step}`);
      expect(b.version).toBe(a.version);
      expect(b.metrics[0]!.loss).toBeCloseTo(a.metrics[0]!.loss, 6);
      expect(b.metrics[0]!.lossTokens).toBe(a.metrics[0]!.lossTokens);
      expect(b.metrics[0]!.localTokens + b.metrics[1]!.localTokens).toBe(a.metrics[0]!.localTokens);
    }
    const wa = await new WeightSubscriber(ask, 'params/a').refresh();
    const wb = await new WeightSubscriber(ask, 'params/b').refresh();
    expect(wa?.version).toBe(2);
    let maxDiff = 0;
    wa!.tensors[0]!.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - wb!.tensors[0]![i]!))));
    expect(maxDiff).toBeGreaterThan(0); // different summation order, so not bit-equal...
    expect(maxDiff).toBeLessThan(1e-6); // ...but the same update
  });

  it('resumes from a parameter-server checkpoint with the next loss equal to the uninterrupted run', async () => {
    const g = await LearnerGroup.spawn((s) => system.spawn(s), ask, base('run', 1, 'params/a'));
    await g.step(prepareSamples(batch(1)), 'grpo', 's0');
    const saved = await g.exportState();
    await ask('params/a', {
      v: 1,
      type: 'params.checkpoint',
      step: 1,
      optimizer: saved.optimizer,
      trainer: { cursor: 1 },
    });
    const want = await g.step(prepareSamples(batch(2)), 'grpo', 's1');

    // A fresh parameter server and learner (as after a crash) restore from disk.
    await system.stopActor('params/a');
    await system.stopActor('run/0');
    await system.spawn({ kind: 'params', name: 'params/a', args: { checkpointDir: join(dir, 'params/a') } });
    const restored = await ask<{ restored: { version: number; optimizer: typeof saved.optimizer } }>(
      'params/a',
      {
        v: 1,
        type: 'params.restore',
      },
    );
    const g2 = await LearnerGroup.spawn((s) => system.spawn(s), ask, base('run', 1, 'params/a'));
    await g2.load(restored.restored.version, restored.restored.optimizer);
    const got = await g2.step(prepareSamples(batch(2)), 'grpo', 's1');
    expect(got.metrics[0]!.loss).toBe(want.metrics[0]!.loss);
    expect(got.metrics[0]!.gradNorm).toBe(want.metrics[0]!.gradNorm);
    expect(got.version).toBe(want.version);
  });

  it('answers a malformed step with a typed error reply and keeps its state', async () => {
    const g = await LearnerGroup.spawn((s) => system.spawn(s), ask, base('bad', 1, 'params/a'));
    const reply = await ask<{ error?: { code: string } }>('bad/0', {
      v: 1,
      type: 'learner.step',
      tag: 'x',
      mode: 'grpo',
      samples: [{ tokenIds: [1, 2], lossMask: [0], advantage: 1 }],
    });
    expect(reply.error?.code).toBe('LEARNER_BAD_BATCH');
    await expect(g.step(prepareSamples(batch(1)), 'grpo', 'ok')).resolves.toMatchObject({ version: 0 });
  });
});

describe('LearnerActor with a Qwen2 on the device-resident engine', () => {
  it('trains, publishes and resumes like the host engine (CPU fallback of the native binding)', async () => {
    const modelDir = join(dir, 'qwen2');
    await saveCheckpoint(modelDir, randomCheckpoint(tinyConfig({ tie_word_embeddings: true }), 4, 0.1));
    const qwen2 = (
      group: string,
      paramServer: string,
      residency: 'device' | 'host',
    ): LearnerGroupOptions => ({
      ...base(group, 1, paramServer),
      model: { kind: 'qwen2', dir: modelDir },
      config: { ...base(group, 1, paramServer).config, maxTokensPerMicroBatch: 48, maxSeqLen: 16 },
      residency,
      chunkBytes: 1 << 16,
    });
    const device = await LearnerGroup.spawn((s) => system.spawn(s), ask, qwen2('dev', 'params/a', 'device'));
    const host = await LearnerGroup.spawn((s) => system.spawn(s), ask, qwen2('host', 'params/b', 'host'));
    for (let step = 0; step < 2; step++) {
      const samples = prepareSamples(batch(step + 1));
      const a = await device.step(samples, 'grpo', `s${step}`);
      const b = await host.step(samples, 'grpo', `s${step}`);
      expect(a.metrics[0]!.microBatches).toBeGreaterThan(1);
      expect(a.metrics[0]!.loss).toBeCloseTo(b.metrics[0]!.loss, 5);
      expect(a.version).toBe(b.version);
    }
    const wa = await new WeightSubscriber(ask, 'params/a').refresh();
    const wb = await new WeightSubscriber(ask, 'params/b').refresh();
    let maxDiff = 0;
    wa!.tensors.forEach((t, p) =>
      t.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - wb!.tensors[p]![i]!)))),
    );
    expect(maxDiff).toBeLessThan(1e-5);

    // The exported optimizer state and the published weights resume a fresh device learner exactly.
    const saved = await device.exportState();
    const again = await LearnerGroup.spawn((s) => system.spawn(s), ask, qwen2('dev2', 'params/a', 'device'));
    await again.load(wa!.version, saved.optimizer);
    const want = await device.step(prepareSamples(batch(3)), 'grpo', 's2');
    const got = await again.step(prepareSamples(batch(3)), 'grpo', 's2');
    expect(got.metrics[0]!.loss).toBe(want.metrics[0]!.loss);
    expect(got.metrics[0]!.gradNorm).toBe(want.metrics[0]!.gradNorm);
  });
});
