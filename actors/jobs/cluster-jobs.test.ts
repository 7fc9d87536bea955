/**
 * Jobs on a real cluster: a head and two workers as separate `dr` processes on loopback running the
 * project's actor kinds, the CLI as a process, the real SearchActor (Serper protocol) and BrowseActor
 * (extractive reader) over the sandbox web's HTTP server, and a local OpenAI-compatible server as the policy.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { generateWorld, startSandboxServer, type SandboxServer } from '../sandbox/index.ts';
import { connectClient, type ClusterClient } from '../../runtime/client.ts';
import {
  runDr,
  startHead,
  startWorker,
  TEST_TOKEN,
  type NodeProcess,
} from '../../runtime/testing/node-process.ts';
import {
  startOpenAITestServer,
  type OpenAITestServer,
  type ScriptedRequest,
} from '../rollout/openai-test-server.ts';
import type { Trajectory } from '../rollout/trajectory.ts';
import type { TrainEvent } from '../trainer/metrics.ts';
import { randomEmbeddedModel } from '../trainer/testing/train-fixtures.ts';
import { loadDataset, type DatasetRow } from '../rollout/datasets.ts';
import { JobsClient } from './jobs-client.ts';
import type { JobRecord } from './protocol.ts';

const KINDS = fileURLToPath(new URL('../kinds.ts', import.meta.url));
const DATA = 'sandbox:test:7:400';

let rows: DatasetRow[];
let sandbox: SandboxServer;
beforeAll(async () => {
  rows = await loadDataset(DATA);
  sandbox = await startSandboxServer({ world: generateWorld({ seed: 7, size: 400 }) });
  // Inherited by the node processes: the SearchActor reads its Serper key from the environment.
  process.env.DR_TEST_SANDBOX_KEY = sandbox.apiKey;
});
afterAll(async () => {
  await sandbox.close();
});

/** Set by a test: answer with the first search result's title, so the answers depend on the web. */
let answerFromWeb = false;

/** Searches the question, reads the first result, then answers with the ground truth. */
function scriptedPolicy(req: ScriptedRequest): string {
  const messages = req.messages ?? [];
  const question = messages.find((m) => m.role === 'user')?.content ?? '';
  const observations = messages.filter((m) => m.content.startsWith('<tool_response>'));
  if (observations.length === 0) {
    return `<think>search</think>\n<tool_call>\n${JSON.stringify({ name: 'web_search', arguments: { query: [question] } })}\n</tool_call>`;
  }
  if (answerFromWeb) {
    const title = /^\[1\] (.+)$/m.exec(observations[0]?.content ?? '')?.[1] ?? 'nothing found';
    return `<think>the first result</think>\n<answer>${title}</answer>`;
  }
  const url = /^URL: (\S+)/m.exec(observations[0]?.content ?? '')?.[1];
  if (observations.length === 1 && url !== undefined) {
    return `<think>read it</think>\n<tool_call>\n${JSON.stringify({ name: 'browse_webpage', arguments: { url_list: [url] } })}\n</tool_call>`;
  }
  const truth = rows.find((r) => r.question === question)?.groundTruth ?? '';
  return `<think>found</think>\n<answer>${truth.split('<|answer_split|>')[0] ?? ''}</answer>`;
}

// Deadlines for "eventually", generous for a loaded 2-core CI machine; a passing run never waits them out.
async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('jobs on a real cluster', () => {
  let dir: string;
  let policy: OpenAITestServer;
  let delayMs: number;
  /** Questions from this dataset row on answer slowly, so a job is surely mid-run when its head dies. */
  let slowFromRow: number | undefined;
  let head: NodeProcess;
  let port: number;
  let workers: NodeProcess[];
  let client: ClusterClient | undefined;

  const connect = async (): Promise<ClusterClient> => {
    await client?.close().catch(() => undefined);
    client = await connectClient({ head: `127.0.0.1:${port}`, token: TEST_TOKEN });
    return client;
  };

  /** The head runs the job manager itself, with its journal and outputs in the test's temp dir. */
  const headArgs = (): string[] => [
    '--kinds',
    KINDS,
    '--jobs-dir',
    join(dir, 'jobs'),
    '--outputs-dir',
    join(dir, 'outputs'),
  ];

  /** The tool actors on the head. */
  const bootTools = async (c: ClusterClient): Promise<void> => {
    const tools = [
      {
        kind: 'search',
        args: {
          shard: 0,
          backend: { kind: 'serper', baseUrl: sandbox.url, apiKeyEnv: 'DR_TEST_SANDBOX_KEY' },
          cacheDir: ':memory:',
        },
      },
      { kind: 'browse', args: { allowHosts: ['127.0.0.1'] } },
    ];
    for (const { kind, args } of tools) {
      await c
        .spawn({ kind, name: `${kind}/0`, args, placement: { kind: 'rank', rank: 0 } })
        .catch(() => undefined);
    }
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dr-cluster-jobs-'));
    delayMs = 0;
    slowFromRow = undefined;
    policy = await startOpenAITestServer({
      reply: (req) => {
        const question = req.messages?.find((m) => m.role === 'user')?.content ?? '';
        const slow =
          slowFromRow !== undefined && rows.findIndex((r) => r.question === question) >= slowFromRow;
        return { text: scriptedPolicy(req), delayMs: slow ? 3_000 : delayMs };
      },
    });
    ({ node: head, port } = await startHead(headArgs()));
    workers = [
      await startWorker(port, 1, ['--kinds', KINDS]),
      await startWorker(port, 2, ['--kinds', KINDS]),
    ];
    await bootTools(await connect());
  });

  afterEach(async () => {
    await client?.close().catch(() => undefined);
    client = undefined;
    for (const w of workers) await w.kill('SIGKILL');
    await head.kill('SIGKILL');
    await policy.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** SIGKILLs the head and starts it again on its port; back once both workers have rejoined and the
   * tools run again. */
  const restartHead = async (): Promise<void> => {
    await client?.close();
    client = undefined;
    await head.kill('SIGKILL');
    ({ node: head } = await startHead(headArgs(), port));
    await waitFor(async () => {
      const status = await (await connect()).status();
      return status.nodes.filter((n) => n.state === 'alive').length === 3 ? true : undefined;
    });
    await bootTools(await connect());
  };

  const submitArgs = (extra: string[] = []): string[] => [
    'submit',
    'evaluate',
    '--data',
    DATA,
    '--limit',
    '4',
    '--n',
    '2',
    '--policy-url',
    policy.baseURL,
    '--model',
    'policy',
    '--project',
    'p',
    '--experiment',
    'e',
    '--head',
    `127.0.0.1:${port}`,
    ...extra,
  ];

  const jobIdOf = (stdout: string): string => /submitted (\S+)/.exec(stdout)?.[1] ?? '';

  const trajectoryIds = async (jobId: string): Promise<string[]> =>
    (await readFile(join(dir, 'jobs', jobId, 'trajectories.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as Trajectory).id);

  it('runs `dr submit evaluate --wait` to the end and writes the outputs', async () => {
    const run = await runDr(submitArgs(['--wait']));
    expect(run.stderr).not.toContain('dr:');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/job-\S+ succeeded/);
    const rollout = join(dir, 'outputs', 'p', 'e', 'rollout', 'rollout_step_0.json');
    expect(run.stdout).toContain(`rollout: ${rollout}`);
    const entries = JSON.parse(await readFile(rollout, 'utf8')) as Array<{ f1: number; idx: number }>;
    expect(entries.map((e) => e.idx)).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(entries.every((e) => e.f1 === 1)).toBe(true);
    const first = entries[0] as unknown as { message_str: string };
    expect(first.message_str).toContain('"browse_webpage"');
    expect(first.message_str).toMatch(/<tool_response>\nFrom /);
    const listed = await runDr(['jobs', '--head', `127.0.0.1:${port}`]);
    expect(listed.stdout).toMatch(/evaluate\s+succeeded\s+8\/8/);
  });

  it('cancels a job with `dr cancel`', async () => {
    delayMs = 5_000;
    const submitted = await runDr(submitArgs());
    const jobId = jobIdOf(submitted.stdout);
    const cancelled = await runDr(['cancel', jobId, '--head', `127.0.0.1:${port}`]);
    expect(cancelled.stdout).toContain(`${jobId} cancelled`);
    await new Promise((r) => setTimeout(r, 1_000));
    const job = await new JobsClient(await connect()).get(jobId);
    expect(job.state).toBe('cancelled');
    expect(job.progress.done).toBeLessThan(8);
  });

  it('finishes a job after a worker is SIGKILLed mid-job, counting each trajectory once', async () => {
    delayMs = 250;
    const jobId = jobIdOf((await runDr(submitArgs(['--limit', '6']))).stdout);
    const jobs = new JobsClient(await connect());
    await waitFor(async () => ((await jobs.get(jobId)).progress.done >= 2 ? true : undefined));
    const status = await (await connect()).status();
    const victim = status.actors.find((a) => a.path === 'rollout/1' || a.path === 'rollout/0');
    const rank = victim?.node ?? 1;
    const worker = workers[rank === 2 ? 1 : 0];
    await worker?.kill('SIGKILL');
    const done = await waitFor(async () => {
      const job: JobRecord = await new JobsClient(await connect()).get(jobId);
      return job.state === 'running' ? undefined : job;
    }, 120_000);
    expect(done.state).toBe('succeeded');
    expect(done.progress).toEqual({ done: 12, total: 12 });
    const ids = await trajectoryIds(jobId);
    expect(ids).toHaveLength(12);
    expect(new Set(ids).size).toBe(12);
  });

  it('resumes a job after the head restarts', async () => {
    delayMs = 250;
    slowFromRow = 3;
    const jobId = jobIdOf((await runDr(submitArgs(['--limit', '6']))).stdout);
    await waitFor(async () =>
      (await new JobsClient(await connect()).get(jobId)).progress.done >= 2 ? true : undefined,
    );
    // Nobody asks the job manager: the restarted head spawns it and it resumes the job by itself.
    await restartHead();
    const done = await waitFor(async () => {
      const job = await new JobsClient(await connect()).get(jobId);
      return job.state === 'running' ? undefined : job;
    }, 120_000);
    expect(done.state).toBe('succeeded');
    expect(done.progress).toEqual({ done: 12, total: 12 });
    const ids = await trajectoryIds(jobId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(12);
    const log = await readFile(join(dir, 'jobs', jobId, 'log.txt'), 'utf8');
    expect(log).toContain('resuming after a job manager restart');
  });

  it('replays a recorded evaluation after the web changed: the same answers and scores', async () => {
    answerFromWeb = true;
    const other = await startSandboxServer({ world: generateWorld({ seed: 8, size: 400 }) });
    try {
      const tape = join(dir, 'web');
      const evaluate = async (experiment: string, extra: string[]) => {
        const { stdout } = await runDr(
          submitArgs(['--limit', '3', '--experiment', experiment, ...extra, '--wait', '--json']),
        );
        const job = JSON.parse(stdout) as Pick<JobRecord, 'id' | 'state' | 'result'>;
        const lines = (await readFile(join(dir, 'jobs', job.id, 'trajectories.jsonl'), 'utf8')).trim();
        const answers = Object.fromEntries(
          lines
            .split('\n')
            .map((l) => JSON.parse(l) as Trajectory)
            // Keyed by row and sample: the part of a trajectory id that is the same in every job.
            .map((t) => [t.id.slice(job.id.length + 1), t.answer]),
        );
        return { job, answers };
      };
      const recorded = await evaluate('recorded', ['--web-record', tape]);
      expect(recorded.job).toMatchObject({ state: 'succeeded' });
      expect(recorded.job.result?.web).toEqual({ recorded: tape });

      // The web changes: search/0 now answers from another world.
      const c = await connect();
      await c.stopActor('search/0');
      await c.spawn({
        kind: 'search',
        name: 'search/0',
        args: {
          shard: 0,
          backend: { kind: 'serper', baseUrl: other.url, apiKeyEnv: 'DR_TEST_SANDBOX_KEY' },
          cacheDir: ':memory:',
        },
        placement: { kind: 'rank', rank: 0 },
      });
      const live = await evaluate('live', []);
      expect(live.answers).not.toEqual(recorded.answers);

      const replayed = await evaluate('replayed', ['--web-replay', tape]);
      expect(replayed.job).toMatchObject({ state: 'succeeded' });
      expect(replayed.job.result?.web).toEqual({ replayed: tape, misses: 0 });
      expect(replayed.answers).toEqual(recorded.answers);
      expect(replayed.job.result?.summary).toEqual(recorded.job.result?.summary);
    } finally {
      answerFromWeb = false;
      await other.close();
    }
  });

  it('keeps every submitted job and finished trajectory, each once, through SIGKILLs of the head at random points', async () => {
    delayMs = 150;
    // A fixed seed keeps a failure reproducible; the kill points still fall anywhere in a job's run.
    let seed = 20261204;
    const random = (): number => ((seed = (seed * 48271) % 2147483647), seed / 2147483647);
    const submitted: string[] = [];
    const submit = async (): Promise<void> => {
      const { stdout } = await runDr(submitArgs(['--limit', '3']));
      submitted.push(jobIdOf(stdout));
    };
    await submit();
    for (let kill = 0; kill < 3; kill++) {
      await submit();
      // The first kill comes right after a submission was acknowledged; the others mid-run.
      if (kill > 0) await new Promise((r) => setTimeout(r, 200 + random() * 1_500));
      await restartHead();
    }

    const listed = await waitFor(async () => {
      const { stdout } = await runDr(['jobs', '--json', '--head', `127.0.0.1:${port}`]);
      const jobs = JSON.parse(stdout) as Pick<JobRecord, 'id' | 'state' | 'progress'>[];
      return jobs.every((j) => j.state === 'succeeded') ? jobs : undefined;
    }, 120_000);
    expect(listed.map((j) => j.id).sort()).toEqual([...submitted].sort());
    for (const job of listed) {
      expect(job.progress).toEqual({ done: 6, total: 6 });
      const ids = await trajectoryIds(job.id);
      expect(ids).toHaveLength(6);
      expect(new Set(ids).size).toBe(6);
    }
  });

  it('runs `dr submit train --wait`: the trainer on the head, rollouts on the workers', async () => {
    // A learner step or model load holds a node's event loop for longer than the suite's 2 s down-after,
    // so this cluster uses the default failure detection.
    for (const w of workers) await w.kill('SIGKILL');
    await head.kill('SIGKILL');
    const heartbeat = ['--heartbeat-ms', '1000', '--suspect-after-ms', '3000', '--down-after-ms', '10000'];
    ({ node: head, port } = await startHead([...headArgs(), ...heartbeat]));
    workers = [
      await startWorker(port, 1, ['--kinds', KINDS, ...heartbeat]),
      await startWorker(port, 2, ['--kinds', KINDS, ...heartbeat]),
    ];
    await bootTools(await connect());
    // The embedded policy's architecture and vocabulary with random weights: a step takes seconds.
    const model = await randomEmbeddedModel(join(dir, 'model'));
    const out = join(dir, 'outputs', 'cli-train');
    const configFile = join(dir, 'train.json');
    await writeFile(
      configFile,
      JSON.stringify({
        name: 'cli-train',
        steps: 2,
        policy: { kind: 'embedded', dir: model },
        data: { train: 'sandbox:train:7:400', dev: 'sandbox:dev:7:400' },
        rollout: { questionsPerStep: 1, n: 2, maxTurns: 1, maxTokensPerTurn: 8, workers: 2 },
        learner: { maxTokensPerMicroBatch: 2048, maxSeqLen: 1024 },
        validation: { every: 100, limit: 1 },
        outputDir: out,
      }),
    );
    const running = runDr([
      'submit',
      'train',
      '--config',
      configFile,
      '--wait',
      '--head',
      `127.0.0.1:${port}`,
    ]);
    // While the job runs, its rollout workers are spread over the worker nodes and the trainer is on the head.
    const c = await connect();
    let placed: { path: string; node: number }[] = [];
    await vi.waitUntil(
      async () => {
        placed = (await c.status()).actors;
        return placed.filter((a) => a.path.startsWith('rollout/job-')).length === 2;
      },
      { timeout: 120_000, interval: 200 },
    );
    const rollouts = placed.filter((a) => a.path.startsWith('rollout/job-'));
    expect(new Set(rollouts.map((a) => a.node))).toEqual(new Set([1, 2]));
    expect(placed.find((a) => a.path.startsWith('trainer/job-'))?.node).toBe(0);
    const run = await running;
    expect(run.stderr).not.toContain('dr:');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/job-\S+ succeeded/);
    // --wait polls: the last step may first be seen as running or already as succeeded.
    expect(run.stdout).toContain('progress running');
    expect(run.stdout).toMatch(/progress (running|succeeded) 2\/2/);
    expect(run.stdout).toContain(`metrics: ${join(out, 'metrics.jsonl')}`);
    expect(run.stdout).toMatch(/steps: 2\/2, held-out F1: \d/);
    const events = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TrainEvent);
    expect(events.filter((e) => e.type === 'step').map((e) => e.step)).toEqual([1, 2]);
    // The finished job keeps no actors on the workers.
    const left = (await c.status()).actors.map((a) => a.path);
    expect(left.filter((p) => /^(rollout|learner|params)\/job-/.test(p))).toEqual([]);

    // A config the schema refuses never reaches the cluster.
    await writeFile(configFile, JSON.stringify({ name: 'bad', steps: 0 }));
    const bad = await runDr(['submit', 'train', '--config', configFile, '--head', `127.0.0.1:${port}`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/dr: CONFIG_INVALID: .*steps/);
  }, 300_000);
});
