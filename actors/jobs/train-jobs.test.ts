import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ActorFactory, ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import { saveCheckpoint } from '../../runtime/model/checkpoint.ts';
import { EMBEDDED_CONFIG, EMBEDDED_DIR } from '../../runtime/model/embedded.ts';
import { randomCheckpoint } from '../../runtime/model/testing.ts';
import { createHeadMonitor, type HeadMonitor } from '../../runtime/monitor/head-monitor.ts';
import { kinds as realKinds } from '../kinds.ts';
import type { TrainEvent } from '../trainer/metrics.ts';
import type { TrainerStatus } from '../trainer/protocol.ts';
import type { JobManagerArgs } from './job-manager.ts';
import type { JobRecord, JobReply } from './protocol.ts';
import { sandboxBrowse, sandboxSearch } from './testing/sandbox-tool-kinds.ts';

// Train jobs run the real TrainerActor (rollout actors over the sandbox tools, policy server, learner,
// parameter server, checkpoints) on the embedded policy's architecture and vocabulary with random weights,
// at a size that trains a step in seconds on CI. What is checked is the job around it.
let dir: string;
let systems: ActorSystem[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dr-train-jobs-'));
  await saveCheckpoint(join(dir, 'model'), randomCheckpoint(EMBEDDED_CONFIG, 3, 0.02));
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    await copyFile(join(EMBEDDED_DIR, f), join(dir, 'model', f));
});

afterEach(async () => {
  for (const s of systems) await s.stop();
  systems = [];
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function startHead(monitor?: HeadMonitor): Promise<ActorSystem> {
  const system = createActorSystem({
    kinds: new Map<string, ActorFactory<never>>([
      ...realKinds,
      ['search', sandboxSearch],
      ['browse', sandboxBrowse],
      ...(monitor === undefined ? [] : [monitor.kind]),
    ]),
  });
  systems.push(system);
  for (const kind of ['search', 'browse']) await system.spawn({ kind, name: `${kind}/0` });
  if (monitor !== undefined) await system.spawn({ kind: 'monitor', name: 'monitor' });
  const args: JobManagerArgs = {
    dataDir: join(dir, 'jobs'),
    outputsDir: join(dir, 'outputs'),
    trainerPollMs: 100,
  };
  await system.spawn({ kind: 'jobs', name: 'jobs', args });
  return system;
}

const trainConfig = (name: string, steps: number) => ({
  name,
  steps,
  policy: { kind: 'embedded', dir: join(dir, 'model') },
  data: { train: 'sandbox:train:7:400', dev: 'sandbox:dev:7:400' },
  rollout: { questionsPerStep: 1, n: 2, maxTurns: 1, maxTokensPerTurn: 8, workers: 1 },
  learner: { maxTokensPerMicroBatch: 2048, maxSeqLen: 1024 },
  checkpoint: { every: 1 },
  validation: { every: 100, limit: 1 },
  outputDir: join(dir, 'outputs', name),
});

async function submit(system: ActorSystem, train: unknown, resume?: boolean): Promise<JobRecord> {
  const config = resume === undefined ? { train } : { train, resume };
  return (await system.ask<JobReply>('jobs', { v: 1, type: 'jobs.submit', kind: 'train', config })).job;
}

const get = async (system: ActorSystem, jobId: string): Promise<JobRecord> =>
  (await system.ask<JobReply>('jobs', { v: 1, type: 'jobs.get', jobId })).job;

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const ended = (system: ActorSystem, jobId: string): Promise<JobRecord> =>
  waitFor(async () => {
    const job = await get(system, jobId);
    return job.state === 'running' || job.state === 'queued' ? undefined : job;
  });

async function events(file: string): Promise<TrainEvent[]> {
  return (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as TrainEvent);
}

describe('train jobs', () => {
  it('runs a train job in a TrainerActor, following its steps and reporting them to the monitor', async () => {
    const monitor = createHeadMonitor({ tokens: ['t'] });
    const head = await startHead(monitor);
    const submitted = await submit(head, trainConfig('run', 2));
    expect(submitted.config).toMatchObject({
      resume: false,
      train: { steps: 2, algorithm: { klCoef: 0.001 } },
    });

    const seen = new Set<string>();
    const job = await waitFor(async () => {
      const view = monitor.jobs.jobs().find((j) => j.id === submitted.id);
      if (view !== undefined) seen.add(`${view.state} ${view.progress.done}/${view.progress.total}`);
      const j = await get(head, submitted.id);
      return j.state === 'running' || j.state === 'queued' ? undefined : j;
    });
    expect(job.error).toBeUndefined();
    expect(job).toMatchObject({ state: 'succeeded', progress: { done: 2, total: 2 } });
    const metrics = join(dir, 'outputs', 'run', 'metrics.jsonl');
    expect(job.result?.paths).toEqual({ metrics, checkpoints: join(dir, 'outputs', 'run', 'checkpoints') });
    expect(job.result?.summary).toMatchObject({ step: 2, steps: 2, version: 2 });
    expect((await events(metrics)).filter((e) => e.type === 'step').map((e) => e.step)).toEqual([1, 2]);

    const status = await head.ask<TrainerStatus>(`trainer/${job.id}`, { v: 1, type: 'trainer.status' });
    expect(status).toMatchObject({ state: 'succeeded', step: 2 });
    const logs = await head.ask<{ lines: string[] }>('jobs', { v: 1, type: 'jobs.logs', jobId: job.id });
    expect(logs.lines.join('\n')).toMatch(/step 2\/2 version 2: reward -?\d/);

    // The dashboard saw the job run and finish, with its files as links.
    await waitFor(async () =>
      monitor.jobs.jobs().find((j) => j.id === job.id)?.state === 'succeeded' ? true : undefined,
    );
    expect(seen.has('running 0/2')).toBe(true);
    expect(monitor.jobs.jobs().find((j) => j.id === job.id)).toMatchObject({
      kind: 'train',
      progress: { done: 2, total: 2 },
      results: [
        { label: 'metrics', href: metrics },
        { label: 'checkpoints', href: join(dir, 'outputs', 'run', 'checkpoints') },
      ],
    });
  }, 180_000);

  it('cancels a train job: the trainer stops and the job stays cancelled', async () => {
    const head = await startHead();
    const submitted = await submit(head, trainConfig('cancel', 50));
    await waitFor(async () => ((await get(head, submitted.id)).progress.done >= 1 ? true : undefined));
    const { job } = await head.ask<JobReply>('jobs', { v: 1, type: 'jobs.cancel', jobId: submitted.id });
    expect(job.state).toBe('cancelled');
    const status = await waitFor(async () => {
      const s = await head.ask<TrainerStatus>(`trainer/${job.id}`, { v: 1, type: 'trainer.status' });
      return s.state === 'running' || s.state === 'starting' ? undefined : s;
    });
    expect(status.state).toBe('cancelled');
    expect(status.step).toBeLessThan(50);
    expect((await get(head, job.id)).state).toBe('cancelled');
  }, 180_000);

  it('a second head on the journal of a running one gets no job manager, so the job keeps one trainer', async () => {
    const first = await startHead();
    const submitted = await submit(first, trainConfig('shared-journal', 4));
    const metrics = join(dir, 'outputs', 'shared-journal', 'metrics.jsonl');
    await waitFor(async () => {
      const written = await events(metrics).catch(() => []);
      return written.some((e) => e.type === 'checkpoint') ? true : undefined;
    });
    // Another cluster's head started from the same folder: replaying the journal would resume the first
    // head's running job beside it.
    await expect(startHead()).rejects.toThrow(/journal\.lock is held by a job manager/);

    const job = await ended(first, submitted.id);
    expect(job.error).toBeUndefined();
    expect(job.state).toBe('succeeded');
    const all = await events(metrics);
    expect(all.filter((e) => e.type === 'resumed')).toEqual([]);
    expect(all.filter((e) => e.type === 'step').map((e) => e.step)).toEqual([1, 2, 3, 4]);
  }, 180_000);

  it('resumes a train job from its last checkpoint after a head restart', async () => {
    const first = await startHead();
    const submitted = await submit(first, trainConfig('restart', 3));
    const metrics = join(dir, 'outputs', 'restart', 'metrics.jsonl');
    // The head goes down once the first checkpoint is on disk.
    await waitFor(async () => {
      const written = await events(metrics).catch(() => []);
      return written.some((e) => e.type === 'checkpoint') ? true : undefined;
    });
    await first.stop();
    systems = systems.filter((s) => s !== first);

    const second = await startHead();
    const job = await ended(second, submitted.id);
    expect(job.error).toBeUndefined();
    expect(job).toMatchObject({ state: 'succeeded', progress: { done: 3, total: 3 } });
    const all = await events(metrics);
    const resumed = all.find((e) => e.type === 'resumed');
    expect(resumed?.step).toBeGreaterThanOrEqual(1);
    // After the restart the run continues where its checkpoint left off: no step is trained twice after it.
    const after = all.slice(all.indexOf(resumed!) + 1).filter((e) => e.type === 'step');
    expect(after.map((e) => e.step)).toEqual(
      Array.from({ length: 3 - resumed!.step }, (_, i) => resumed!.step + i + 1),
    );
    const logs = await second.ask<{ lines: string[] }>('jobs', { v: 1, type: 'jobs.logs', jobId: job.id });
    expect(logs.lines.join('\n')).toContain('trainer started, resuming from the last checkpoint');
  }, 180_000);
});
