import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseTrainConfig, type TrainConfig } from '../../config/train.ts';
import type { ActorFactory, ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import { learnerActor, learnerInboxActor } from '../learner/learner-actor.ts';
import { LearnerGroup } from '../learner/learner-group.ts';
import { parameterServer } from '../params/param-server.ts';
import { ParamsClient } from '../params/params-client.ts';
import type { AskFn } from '../params/weight-transfer.ts';
import type { TrainEvent } from './metrics.ts';
import { BigramTaskSource, bigramQuestions, TASK_VOCAB } from './testing/bigram-task.ts';
import type { ScoredRollout } from './rollout-source.ts';
import { runTraining, type TrainSummary } from './trainer.ts';

const kinds = new Map<string, ActorFactory<never>>([
  ['learner', learnerActor as ActorFactory<never>],
  ['learner-inbox', learnerInboxActor as ActorFactory<never>],
  ['params', parameterServer as ActorFactory<never>],
]);

let dir: string;
const systems: ActorSystem[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dr-trainer-'));
});
afterEach(async () => {
  for (const s of systems.splice(0)) await s.stop();
  await rm(dir, { recursive: true, force: true });
});

function config(over: Record<string, unknown> = {}): TrainConfig {
  return parseTrainConfig({
    name: 'toy',
    seed: 5,
    steps: 20,
    policy: { kind: 'bigram', vocab: TASK_VOCAB, seed: 1 },
    data: { train: 'toy', dev: 'toy' },
    rollout: { questionsPerStep: 6, n: 8 },
    optimizer: { lr: 0.3, weightDecay: 0 },
    algorithm: { klCoef: 0.001 },
    learner: { count: 2, maxTokensPerMicroBatch: 32, maxSeqLen: 8 },
    checkpoint: { every: 4, dir: join(dir, 'ckpt') },
    validation: { every: 10, limit: 6 },
    ...over,
  });
}

async function train(
  cfg: TrainConfig,
  resume = false,
  rescore: (r: ScoredRollout) => ScoredRollout = (r) => r,
): Promise<{ summary: TrainSummary; events: TrainEvent[]; source: BigramTaskSource }> {
  const system = createActorSystem({ kinds });
  systems.push(system);
  const ask: AskFn = (t, m, o) => system.ask(t, m, o);
  await system.spawn({
    kind: 'params',
    name: 'params',
    args: { checkpointDir: cfg.checkpoint.dir!, keepCheckpoints: cfg.checkpoint.keep },
  });
  const learners = await LearnerGroup.spawn((s) => system.spawn(s), ask, {
    group: 'learner',
    size: cfg.learner.count,
    model: { kind: 'bigram', vocab: TASK_VOCAB, seed: 1 },
    config: {
      loss: { ...cfg.algorithm },
      optimizer: cfg.optimizer,
      maxTokensPerMicroBatch: cfg.learner.maxTokensPerMicroBatch,
      maxSeqLen: cfg.learner.maxSeqLen,
      padId: 0,
    },
    paramServer: 'params',
  });
  const source = new BigramTaskSource(ask, 'params');
  const events: TrainEvent[] = [];
  const questions = bigramQuestions(6, 3);
  const summary = await runTraining(
    cfg,
    {
      job: 'job-1',
      source: { run: async (q, n, req) => (await source.run(q, n, req)).map(rescore) },
      learners,
      params: new ParamsClient(ask, 'params'),
      trainSet: questions,
      devSet: questions,
      emit: (e) => void events.push(e),
    },
    { resume },
  );
  return { summary, events, source };
}

describe('training loop (reduced size, 2 data-parallel learners)', () => {
  it('raises reward and held-out F1, publishing a version per step that the next batch samples with', async () => {
    const { summary, events, source } = await train(config());
    const steps = events.filter((e) => e.type === 'step');
    expect(steps).toHaveLength(20);
    const early = steps.slice(0, 3).reduce((s, e) => s + e.rollout.rewardMean, 0) / 3;
    const late = steps.slice(-3).reduce((s, e) => s + e.rollout.rewardMean, 0) / 3;
    expect(late).toBeGreaterThan(early + 0.2);
    expect(summary.validation.after).toBeGreaterThan(summary.validation.before);
    // validation(v0), then batch k samples with the version published by step k
    expect(source.versionsSeen.slice(0, 4)).toEqual([0, 0, 1, 2]);
    expect(steps.every((e) => e.stalenessMax === 0 && e.dropped === 0)).toBe(true);
    expect(steps[0]!.learner?.kl).toBe(0);
    expect(steps[5]!.learner?.kl).toBeGreaterThan(0);
    expect(events.filter((e) => e.type === 'checkpoint').map((e) => e.step)).toEqual([4, 8, 12, 16, 20]);
    expect((await readdir(join(dir, 'ckpt'))).filter((n) => n.startsWith('step_')).sort()).toEqual([
      'step_00000012',
      'step_00000016',
      'step_00000020',
    ]);
  });

  it('resumes from the last checkpoint with the next loss equal to the uninterrupted run', async () => {
    const straight = await train(config({ steps: 6, checkpoint: { every: 3, dir: join(dir, 'a') } }));
    await train(config({ steps: 3, checkpoint: { every: 3, dir: join(dir, 'b') } }));
    const resumed = await train(config({ steps: 6, checkpoint: { every: 3, dir: join(dir, 'b') } }), true);
    expect(resumed.events[0]).toMatchObject({ type: 'resumed', step: 3, version: 3 });
    expect(resumed.summary.history.map((h) => h.step)).toEqual([4, 5, 6]);
    expect(resumed.summary.history.map((h) => h.loss)).toEqual(
      straight.summary.history.slice(3).map((h) => h.loss),
    );
  });

  it('trains only on groups whose rewards differ when uniform groups are dropped, and still learns', async () => {
    const { events, summary } = await train(
      config({ algorithm: { klCoef: 0.001, dropUniformGroups: true } }),
    );

    const steps = events.filter((e) => e.type === 'step');
    const mixed = steps.filter((e) => e.rollout.rewardStd > 0);
    expect(steps.every((e) => e.trainedRollouts <= e.rollout.rollouts)).toBe(true);
    expect(steps.some((e) => e.trainedRollouts < e.rollout.rollouts)).toBe(true);
    expect(steps.filter((e) => e.learner !== undefined).length).toBe(summary.version);
    expect(mixed.length).toBeGreaterThan(0);
    expect(summary.validation.after).toBeGreaterThan(summary.validation.before);
  });

  it('makes no update on a step where every group scored alike', async () => {
    const { events, summary } = await train(
      config({ steps: 3, algorithm: { klCoef: 0.001, dropUniformGroups: true } }),
      false,
      (r) => ({ ...r, reward: 0 }),
    );

    const steps = events.filter((e) => e.type === 'step');
    expect(steps.map((e) => [e.version, e.trainedRollouts, e.learner])).toEqual([
      [0, 0, undefined],
      [0, 0, undefined],
      [0, 0, undefined],
    ]);
    expect(summary.version).toBe(0);
  });

  it('samples the next batch while the learner trains in async mode, within the staleness bound', async () => {
    const { events, summary } = await train(
      config({ steps: 6, schedule: { mode: 'async', maxStaleness: 1 } }),
    );
    const steps = events.filter((e) => e.type === 'step');
    expect(steps[0]!.stalenessMax).toBe(0);
    expect(steps.slice(1).every((e) => e.stalenessMax === 1 && e.dropped === 0)).toBe(true);
    expect(summary.version).toBe(6);
  });
});
