import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import type { ActorFactory } from '../../runtime/actor.ts';
import { kinds as realKinds } from '../kinds.ts';
import { sandboxBrowse, sandboxSearch } from '../jobs/testing/sandbox-tool-kinds.ts';
import type { TrainEvent } from './metrics.ts';
import type { TrainerStatus } from './protocol.ts';
import { randomEmbeddedModel, sandboxToolSystem } from './testing/train-fixtures.ts';

// The embedded policy's shape with random weights, so the whole job — rollout actors over the sandbox tools
// tokenizing with the model's own vocabulary, the policy server, learner, parameter server, checkpoints —
// runs on CI in seconds. Random weights answer badly; what is checked here is the machinery.
let dir: string;
let system: ActorSystem;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dr-train-job-'));
  await randomEmbeddedModel(join(dir, 'model'));
  system = await sandboxToolSystem();
});

afterAll(async () => {
  await system.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Actors of `job` still in the directory (its parameter server, learners and rollout workers). */
async function jobActors(job: string): Promise<string[]> {
  const names = (await system.actors()).map((a) => a.name);
  return names.filter((n) => ['params', 'learner', 'rollout'].some((p) => n.startsWith(`${p}/${job}`)));
}

async function waitForEnd(name: string): Promise<TrainerStatus> {
  return waitFor(system, name);
}

async function waitFor(on: ActorSystem, name: string): Promise<TrainerStatus> {
  for (;;) {
    const s = await on.ask<TrainerStatus>(name, { v: 1, type: 'trainer.status' });
    if (s.state !== 'starting' && s.state !== 'running') return s;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('TrainerActor (train job through rollout actors, sandbox tools and the policy server)', () => {
  it('runs GRPO steps end to end, versioning weights, writing metrics and checkpoints', async () => {
    const out = join(dir, 'out');
    await system.spawn({
      kind: 'trainer',
      name: 'trainer/job-1',
      args: {
        jobId: 'job-1',
        config: {
          name: 'ci',
          steps: 2,
          policy: { kind: 'embedded', dir: join(dir, 'model') },
          data: { train: 'sandbox:train:7:400', dev: 'sandbox:dev:7:400' },
          rollout: { questionsPerStep: 1, n: 2, maxTurns: 2, maxTokensPerTurn: 8, workers: 2 },
          optimizer: { lr: 1e-3 },
          learner: { maxTokensPerMicroBatch: 2048, maxSeqLen: 1024 },
          checkpoint: { every: 1 },
          validation: { every: 2, limit: 1 },
          outputDir: out,
        },
      },
    });
    const status = await waitForEnd('trainer/job-1');
    expect(status.error).toBeNull();
    expect(status.state).toBe('succeeded');
    expect(status.step).toBe(2);
    expect(status.version).toBe(2);
    const events = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TrainEvent);
    const steps = events.filter((e) => e.type === 'step');
    expect(steps.map((e) => e.step)).toEqual([1, 2]);
    expect(
      steps.every(
        (e) => e.rollout.rollouts === 2 && (e.learner?.lossTokens ?? 0) > 0 && e.stalenessMax === 0,
      ),
    ).toBe(true);
    expect(events.filter((e) => e.type === 'checkpoint').map((e) => e.step)).toEqual([1, 2]);
    expect(events.filter((e) => e.type === 'validation')).toHaveLength(2);
    expect(events.at(-1)?.type).toBe('done');
    // Trajectories were tokenized with the model's own 8,192-token vocabulary: an id outside it would have
    // failed the learner's embedding lookup and the job.
    expect(steps.every((e) => e.rollout.responseLengthMean > 0)).toBe(true);
    // A finished job keeps no actors (a learner holds its model's memory until stopped).
    expect(await jobActors('job-1')).toEqual([]);
  }, 180_000);

  it('continues from the last checkpoint when the trainer is restarted mid-job', async () => {
    const out = join(dir, 'out-restart');
    const args = {
      jobId: 'job-2',
      config: {
        name: 'ci-restart',
        steps: 3,
        policy: { kind: 'embedded', dir: join(dir, 'model') },
        data: { train: 'sandbox:train:7:400', dev: 'sandbox:dev:7:400' },
        rollout: { questionsPerStep: 1, n: 2, maxTurns: 1, maxTokensPerTurn: 8, workers: 1 },
        checkpoint: { every: 1 },
        validation: { every: 10, limit: 1 },
        outputDir: out,
      },
    };
    await system.spawn({ kind: 'trainer', name: 'trainer/job-2', args });
    // Stopped once the first checkpoint is on disk. Not at status step 1: the step is reported before its
    // checkpoint is written, and a trainer stopped in between leaves nothing to resume from.
    const metrics = join(out, 'metrics.jsonl');
    for (;;) {
      const written = await readFile(metrics, 'utf8').catch(() => '');
      if (written.includes('"type":"checkpoint"')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // As a supervised restart does: the incarnation stops, a new one starts with the same args.
    await system.stopActor('trainer/job-2');
    await system.spawn({ kind: 'trainer', name: 'trainer/job-2', args });
    const status = await waitForEnd('trainer/job-2');
    expect(status.error).toBeNull();
    expect(status.state).toBe('succeeded');
    expect(status.step).toBe(3);
    const events = (await readFile(metrics, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TrainEvent);
    const resumed = events.find((e) => e.type === 'resumed');
    expect(resumed).toBeDefined();
    const after = events.slice(events.indexOf(resumed!) + 1).filter((e) => e.type === 'step');
    expect(after.map((e) => e.step)).toEqual(
      Array.from({ length: 3 - resumed!.step }, (_, i) => resumed!.step + i + 1),
    );
    // The restart reused the job's actors (the resume above depends on it); the end of the job stopped them.
    expect(await jobActors('job-2')).toEqual([]);
  }, 180_000);

  it('refuses a second trainer on the outputs of a running one, even from another actor system', async () => {
    const out = join(dir, 'out-twice');
    const args = {
      jobId: 'job-3',
      config: {
        name: 'ci-twice',
        steps: 40,
        policy: { kind: 'embedded', dir: join(dir, 'model') },
        data: { train: 'sandbox:train:7:400', dev: 'sandbox:dev:7:400' },
        rollout: { questionsPerStep: 1, n: 2, maxTurns: 1, maxTokensPerTurn: 8, workers: 1 },
        checkpoint: { every: 1 },
        validation: { every: 100, limit: 1 },
        outputDir: out,
      },
    };
    await system.spawn({ kind: 'trainer', name: 'trainer/job-3', args });
    const metrics = join(out, 'metrics.jsonl');
    for (;;) {
      const written = await readFile(metrics, 'utf8').catch(() => '');
      if (written.includes('"type":"checkpoint"')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Another cluster (here: another actor system) that was told to run the same job, as a head replaying a
    // journal it shares with this one does.
    const other = createActorSystem({
      kinds: new Map<string, ActorFactory<never>>([
        ...realKinds,
        ['search', sandboxSearch],
        ['browse', sandboxBrowse],
      ]),
    });
    try {
      for (const kind of ['search', 'browse']) await other.spawn({ kind, name: `${kind}/0` });
      await other.spawn({ kind: 'trainer', name: 'trainer/job-3', args: { ...args, resume: true } });
      const second = await waitFor(other, 'trainer/job-3');
      expect(second.state).toBe('failed');
      expect(second.error?.code).toBe('TRAIN_ALREADY_RUNNING');
      expect(second.error?.message).toContain(join(out, 'trainer.lock'));
    } finally {
      await other.stop();
    }
    const first = await system.ask<TrainerStatus>('trainer/job-3', { v: 1, type: 'trainer.status' });
    expect(first.state).toBe('running');
    await system.ask('trainer/job-3', { v: 1, type: 'trainer.cancel' });
    expect((await waitForEnd('trainer/job-3')).state).toBe('cancelled');
    expect(await jobActors('job-3')).toEqual([]);
    const events = (await readFile(metrics, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TrainEvent);
    expect(events.filter((e) => e.type === 'resumed')).toEqual([]);
    expect(events.filter((e) => e.type === 'validation')).toHaveLength(1);
    const steps = events.filter((e) => e.type === 'step').map((e) => e.step);
    expect(steps).toEqual(steps.map((_, i) => i + 1));
  }, 180_000);

  it('refuses an invalid config at spawn with a typed error naming the field', async () => {
    await expect(
      system.spawn({
        kind: 'trainer',
        name: 'trainer/bad',
        args: { jobId: 'bad', config: { name: 'x', steps: 0 } },
      }),
    ).rejects.toThrow(/steps|policy|data/);
  });
});
