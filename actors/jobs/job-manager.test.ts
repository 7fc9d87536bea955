import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ActorFactory, ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import {
  startOpenAITestServer,
  type OpenAITestServer,
  type ScriptedRequest,
} from '../rollout/openai-test-server.ts';
import { createHeadMonitor, type HeadMonitor } from '../../runtime/monitor/head-monitor.ts';
import { kinds as realKinds } from '../kinds.ts';
import type { Trajectory } from '../rollout/trajectory.ts';
import { loadDataset, type DatasetRow } from '../rollout/datasets.ts';
import { sandboxBrowse, sandboxSearch } from './testing/sandbox-tool-kinds.ts';
import { jobManager, type JobManagerArgs } from './job-manager.ts';
import { JobsClient } from './jobs-client.ts';
import type { JobRecord, JobReply } from './protocol.ts';

const DATA = 'sandbox:test:7:400';

let rows: DatasetRow[];
const truthOf = (question: string): string => rows.find((r) => r.question === question)?.groundTruth ?? '';

beforeAll(async () => {
  rows = await loadDataset(DATA);
});

/** A policy that searches the question, then answers: right for even dataset rows, wrong for odd ones. */
function scriptedPolicy(req: ScriptedRequest): string {
  const messages = req.messages ?? [];
  const question = messages.find((m) => m.role === 'user')?.content ?? '';
  if (!messages.some((m) => m.content.startsWith('<tool_response>'))) {
    return `<think>look it up</think>\n<tool_call>\n${JSON.stringify({ name: 'web_search', arguments: { query: [question] } })}\n</tool_call>`;
  }
  const idx = rows.findIndex((r) => r.question === question);
  const answer = idx % 2 === 0 ? (truthOf(question).split('<|answer_split|>')[0] ?? '') : 'no idea';
  return `<think>found it</think>\n<answer>${answer}</answer>`;
}

// A deadline for "eventually", generous for a loaded 2-core CI machine; a passing run never waits it out.
async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('job manager', () => {
  let dir: string;
  let policy: OpenAITestServer;
  let judge: OpenAITestServer;
  let systems: ActorSystem[] = [];
  let delayMs = 0;
  /** Questions from this dataset row on answer slowly (2 s a turn): a job surely has work left mid-run. */
  let slowFromRow: number | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dr-jobs-'));
    delayMs = 0;
    slowFromRow = undefined;
    policy = await startOpenAITestServer({
      reply: (req) => {
        const question = req.messages?.find((m) => m.role === 'user')?.content ?? '';
        const slow =
          slowFromRow !== undefined && rows.findIndex((r) => r.question === question) >= slowFromRow;
        return { text: scriptedPolicy(req), delayMs: slow ? 2_000 : delayMs };
      },
    });
    judge = await startOpenAITestServer({
      reply: (req) => {
        const prompt = req.messages?.[0]?.content ?? '';
        return prompt.includes('Predicted answer: "no idea"')
          ? '{"rationale": "no answer", "judgement": "incorrect"}'
          : '{"rationale": "matches", "judgement": "correct"}';
      },
    });
  });
  afterEach(async () => {
    for (const s of systems) await s.stop();
    systems = [];
    await policy.close();
    await judge.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function startHead(
    overrides: Partial<JobManagerArgs> = {},
    monitor?: HeadMonitor,
  ): Promise<ActorSystem> {
    const system = createActorSystem({
      kinds: new Map<string, ActorFactory<never>>([
        ...realKinds,
        ['jobs', jobManager],
        ['search', sandboxSearch],
        ['browse', sandboxBrowse],
        ...(monitor === undefined ? [] : [monitor.kind]),
      ]),
    });
    systems.push(system);
    await system.spawn({ kind: 'search', name: 'search/0' });
    await system.spawn({ kind: 'browse', name: 'browse/0' });
    if (monitor !== undefined) await system.spawn({ kind: 'monitor', name: 'monitor' });
    const args: JobManagerArgs = {
      dataDir: join(dir, 'jobs'),
      outputsDir: join(dir, 'outputs'),
      rolloutActors: 2,
      leaseCheckMs: 100,
      ...overrides,
    };
    await system.spawn({ kind: 'jobs', name: 'jobs', args });
    return system;
  }

  const evaluateConfig = (extra: Record<string, unknown> = {}) => ({
    data: DATA,
    limit: 6,
    n: 2,
    project: 'proj',
    experiment: 'exp',
    policy: { kind: 'chat', baseURL: policy.baseURL, model: 'policy' },
    judge: { baseURL: judge.baseURL, model: 'judge' },
    date: '2026-11-25T00:00:00.000Z',
    ...extra,
  });

  const get = async (system: ActorSystem, jobId: string): Promise<JobRecord> =>
    (await system.ask<JobReply>('jobs', { v: 1, type: 'jobs.get', jobId })).job;

  const finished = (system: ActorSystem, jobId: string): Promise<JobRecord> =>
    waitFor(async () => {
      const job = await get(system, jobId);
      return job.state === 'running' || job.state === 'queued' ? undefined : job;
    });

  it('runs an evaluate job on the sandbox and writes the rollout file and the score table', async () => {
    const monitor = createHeadMonitor({ tokens: ['t'] });
    const head = await startHead({}, monitor);
    const { job } = await head.ask<JobReply>('jobs', {
      v: 1,
      type: 'jobs.submit',
      kind: 'evaluate',
      config: evaluateConfig(),
    });
    expect(['queued', 'running']).toContain(job.state);
    const done = await finished(head, job.id);
    expect(done.state).toBe('succeeded');
    expect(done.progress).toEqual({ done: 12, total: 12 });

    const rolloutFile = join(dir, 'outputs', 'proj', 'exp', 'rollout', 'rollout_step_0.json');
    expect(done.result?.paths.rollout).toBe(rolloutFile);
    const entries = JSON.parse(await readFile(rolloutFile, 'utf8')) as Array<Record<string, unknown>>;
    expect(entries).toHaveLength(12);
    expect(entries.map((e) => e.idx)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    expect(entries[0]).toMatchObject({ question: rows[0]?.question, sample: 0, f1: 1, em: 1, mbe: 1 });
    expect(entries[2]).toMatchObject({ question: rows[1]?.question, f1: 0, em: 0, mbe: 0 });
    expect(String(entries[0]?.message_str)).toContain('<|im_start|>user\n<tool_response>');
    // Half the questions are answered right: F1, EM and MBE are all 50%.
    const table = await readFile(String(done.result?.paths.table), 'utf8');
    expect(table).toContain('| sandbox | 12 | 50.00 | 50.00 | 50.00 | 0 |');
    expect(judge.requests).toHaveLength(12);
    // The dashboard's jobs table got every change, ending with the result files as absolute paths.
    await waitFor(async () => (monitor.jobs.jobs()[0]?.state === 'succeeded' ? true : undefined));
    expect(monitor.jobs.jobs()).toEqual([
      expect.objectContaining({
        id: job.id,
        kind: 'evaluate',
        progress: { done: 12, total: 12 },
        submittedAt: Date.parse(done.createdAt),
        startedAt: Date.parse(String(done.startedAt)),
        finishedAt: Date.parse(String(done.finishedAt)),
        results: expect.arrayContaining([{ label: 'rollout', href: rolloutFile }]),
      }),
    ]);
  });

  it('runs a research job with n rollouts and reports each answer', async () => {
    const head = await startHead();
    const question = rows[0]?.question ?? '';
    const { job } = await head.ask<JobReply>('jobs', {
      v: 1,
      type: 'jobs.submit',
      kind: 'research',
      config: { question, n: 3, policy: { kind: 'chat', baseURL: policy.baseURL, model: 'policy' } },
    });
    const done = await finished(head, job.id);
    expect(done).toMatchObject({ state: 'succeeded', progress: { done: 3, total: 3 } });
    const answer = truthOf(question).split('<|answer_split|>')[0];
    expect(done.result?.summary).toEqual([0, 1, 2].map((sample) => ({ sample, answer, end: 'answer' })));
    const saved = JSON.parse(await readFile(String(done.result?.paths.trajectories), 'utf8')) as Trajectory[];
    expect(saved.map((t) => t.id)).toEqual([0, 1, 2].map((s) => `${job.id}/0#${s}`));

    // A finished job reads the same after a head restart.
    await head.stop();
    systems = systems.filter((s) => s !== head);
    const restarted = await startHead();
    expect(await get(restarted, job.id)).toEqual(done);
  });

  it('refuses a bad config with a typed error and lists and logs jobs', async () => {
    const head = await startHead();
    const jobs = new JobsClient(head);
    await expect(jobs.submit('evaluate', { data: DATA, n: 0 })).rejects.toMatchObject({
      code: 'JOBS_BAD_CONFIG',
    });
    // A train config is checked against config/train.ts: the failing field is named.
    await expect(
      jobs.submit('train', {
        train: { name: 'x', steps: 0, policy: { kind: 'embedded' }, data: { train: DATA, dev: DATA } },
      }),
    ).rejects.toMatchObject({ code: 'JOBS_BAD_CONFIG', message: expect.stringContaining('steps') });
    const research = await jobs.submit('research', {
      question: rows[0]?.question,
      policy: { kind: 'chat', baseURL: policy.baseURL, model: 'p' },
    });
    expect(research).toMatchObject({ kind: 'research', config: { n: 1, maxTurns: 10 } });
    expect((await jobs.list()).map((j) => j.id)).toEqual([research.id]);
    expect((await jobs.logs(research.id)).lines.join('\n')).toContain('submitted research job');
    await expect(jobs.get('nope')).rejects.toMatchObject({ code: 'JOBS_NOT_FOUND' });
  });

  it('answers refusals without restarting: a job submitted after many refusals still runs', async () => {
    const head = await startHead();
    const jobs = new JobsClient(head);
    for (let i = 0; i < 20; i++) {
      await expect(jobs.submit('evaluate', { data: DATA, n: 0 })).rejects.toMatchObject({
        code: 'JOBS_BAD_CONFIG',
      });
    }
    const job = await jobs.submit('research', {
      question: rows[0]?.question,
      policy: { kind: 'chat', baseURL: policy.baseURL, model: 'p' },
    });
    const done = await waitFor(async () => {
      const j = await jobs.get(job.id);
      return j.state === 'succeeded' ? j : undefined;
    });
    expect(done.tools).toMatchObject({ calls: 1, errors: 0 });
  });

  it('cancels a running job: it stays cancelled and its rollouts stop', async () => {
    delayMs = 300;
    const head = await startHead();
    const { job } = await head.ask<JobReply>('jobs', {
      v: 1,
      type: 'jobs.submit',
      kind: 'evaluate',
      config: evaluateConfig(),
    });
    await waitFor(async () => ((await get(head, job.id)).state === 'running' ? true : undefined));
    const cancelled = await head.ask<JobReply>('jobs', { v: 1, type: 'jobs.cancel', jobId: job.id });
    expect(cancelled.job.state).toBe('cancelled');
    // Once the cancel has reached the rollout actors, no trajectory takes another turn.
    await new Promise((r) => setTimeout(r, 500));
    const requestsAfterCancel = policy.requests.length;
    await new Promise((r) => setTimeout(r, 1_000));
    const after = await get(head, job.id);
    expect(after.state).toBe('cancelled');
    expect(after.progress.done).toBeLessThan(12);
    expect(policy.requests.length).toBe(requestsAfterCancel);
  });

  it('resumes a job after a head restart without running or counting a trajectory twice', async () => {
    // All trajectories run at once: with one delay for all they finish together, and a loaded machine could
    // see the job done before the head stops. The slow half keeps it mid-run.
    delayMs = 150;
    slowFromRow = 4;
    const first = await startHead();
    const { job } = await first.ask<JobReply>('jobs', {
      v: 1,
      type: 'jobs.submit',
      kind: 'evaluate',
      config: evaluateConfig({ limit: 8 }),
    });
    await waitFor(async () => ((await get(first, job.id)).progress.done >= 4 ? true : undefined));
    await first.stop();
    systems = systems.filter((s) => s !== first);

    const second = await startHead();
    const done = await finished(second, job.id);
    expect(done.state).toBe('succeeded');
    expect(done.progress).toEqual({ done: 16, total: 16 });
    const lines = (await readFile(join(dir, 'jobs', job.id, 'trajectories.jsonl'), 'utf8'))
      .trim()
      .split('\n');
    const ids = lines.map((l) => (JSON.parse(l) as Trajectory).id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(16);
    const entries = JSON.parse(await readFile(String(done.result?.paths.rollout), 'utf8')) as unknown[];
    expect(entries).toHaveLength(16);
    const logs = await second.ask<{ lines: string[] }>('jobs', { v: 1, type: 'jobs.logs', jobId: job.id });
    expect(logs.lines.join('\n')).toContain('resuming after a job manager restart');
  });

  it('re-runs the trajectories of a rollout actor that was lost mid-job', async () => {
    // Each rollout actor holds one sample of every question; the slow questions keep rollout/1 busy when it
    // is stopped, however late the stop comes on a loaded machine.
    delayMs = 150;
    slowFromRow = 3;
    const head = await startHead();
    const { job } = await head.ask<JobReply>('jobs', {
      v: 1,
      type: 'jobs.submit',
      kind: 'evaluate',
      config: evaluateConfig(),
    });
    await waitFor(async () => ((await get(head, job.id)).state === 'running' ? true : undefined));
    await new Promise((r) => setTimeout(r, 200));
    await head.stopActor('rollout/1');
    const done = await finished(head, job.id);
    expect(done.state).toBe('succeeded');
    expect(done.progress).toEqual({ done: 12, total: 12 });
    const logs = await head.ask<{ lines: string[] }>('jobs', { v: 1, type: 'jobs.logs', jobId: job.id });
    expect(logs.lines.join('\n')).toMatch(/re-running \d+ trajectories/);
  });
});
