/**
 * Tool services declared in a cluster file, on a real cluster: `dr sandbox serve` as the web in its own
 * process, a head started with `--config` on a YAML file that names it as a Serper-kind search backend, a
 * worker that the head places the services on, and `dr submit research --wait --json` as a user runs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadDataset } from '../rollout/datasets.ts';
import { parseQwen2Config, qwen2ParamShapes } from '../../runtime/model/qwen2-config.ts';
import { readEventFile } from '../../runtime/monitor/testing/tensorboard-reader.ts';
import type { TrainEvent } from '../trainer/metrics.ts';
import type { TrainRolloutEntry } from '../trainer/rollout-files.ts';
import type { Trajectory } from '../rollout/trajectory.ts';
import { connectClient } from '../../runtime/client.ts';
import {
  runDr,
  startHead,
  startWorker,
  TEST_TOKEN,
  type NodeProcess,
} from '../../runtime/testing/node-process.ts';
import type { SearchStats, WebSearchReply } from '../search/protocol.ts';

const DR = fileURLToPath(new URL('../../scripts/dr.js', import.meta.url));
const KINDS = fileURLToPath(new URL('../kinds.ts', import.meta.url));
const SMOKE = fileURLToPath(new URL('../../config/presets/smoke.json', import.meta.url));
// The embedded policy was trained on this world (seed 1, 1,000 entities) with top-5 search responses.
const WORLD = { seed: 1, size: 1000 };
const KEY_ENV = 'DR_TEST_SERPER_KEY';

interface SandboxInfo {
  url: string;
  apiKey: string;
}

let sandbox: ChildProcess;
let info: SandboxInfo;
let question: string;

beforeAll(async () => {
  sandbox = spawn(
    process.execPath,
    [DR, 'sandbox', 'serve', '--seed', String(WORLD.seed), '--size', String(WORLD.size), '--json'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, DR_EXIT_WITH_PARENT: '1' } },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: sandbox.stdout! }).once('line', resolve);
    sandbox.once('exit', (code) => reject(new Error(`dr sandbox serve exited with ${code}`)));
  });
  info = JSON.parse(line) as SandboxInfo;
  const rows = await loadDataset(`sandbox:dev:${WORLD.seed}:${WORLD.size}`);
  question = rows[0]!.question;
}, 60_000);

afterAll(async () => {
  const exited = new Promise((r) => sandbox.once('exit', r));
  sandbox.kill('SIGTERM');
  await exited;
});

describe('tool services from a cluster file', () => {
  let dir: string;
  let nodes: NodeProcess[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dr-services-'));
    nodes = [];
  });
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await rm(dir, { recursive: true, force: true });
  });

  /** A head on `file` (or none) that keeps its journal and outputs in the test's temp dir. */
  const head = async (file?: string): Promise<number> => {
    const extra = ['--kinds', KINDS, '--jobs-dir', join(dir, 'jobs'), '--outputs-dir', join(dir, 'out')];
    const { node, port } = await startHead(file === undefined ? extra : [...extra, '--config', file]);
    nodes.push(node);
    return port;
  };

  const submitResearch = (port: number, extra: string[] = ['--temperature', '0']) =>
    runDr(
      [
        'submit',
        'research',
        '--head',
        `127.0.0.1:${port}`,
        '--question',
        question,
        '--policy',
        'embedded',
        ...extra,
        '--wait',
        '--json',
      ],
      { [KEY_ENV]: info.apiKey },
    );

  /** A head on a cluster file with the sandbox as a Serper-kind search backend, and a worker the head
   * places the services on (the worker's environment holds the key). */
  const sandboxCluster = async (): Promise<number> => {
    const file = join(dir, 'cluster.yaml');
    await writeFile(
      file,
      stringify({
        cluster: { nnodes: 2 },
        search: {
          backend: 'serper',
          baseUrl: info.url,
          apiKeyEnv: KEY_ENV,
          topK: 5,
          cacheDir: ':memory:',
          placement: { rank: 1 },
        },
        browse: { reader: 'extractive', allowHosts: ['127.0.0.1'], placement: { rank: 1 } },
        policies: { embedded: { checkpoint: 'embedded', placement: { rank: 1 } } },
      }),
    );
    process.env[KEY_ENV] = info.apiKey;
    const port = await head(file);
    delete process.env[KEY_ENV];
    const worker = await startWorker(port, 1, ['--kinds', KINDS], { [KEY_ENV]: info.apiKey });
    nodes.push(worker);
    // The head places the services once the worker has joined, and logs each one that runs.
    for (const name of ['search/0', 'browse/0', 'policy/embedded']) {
      await nodes[0]!.waitForLog((l) => l.msg === 'service started' && l.actor === name, 90_000);
    }
    return port;
  };

  it("answers a repeated query from the head's cache after the search shard's node is SIGKILLed", async () => {
    const file = join(dir, 'cluster.yaml');
    await writeFile(
      file,
      stringify({
        cluster: { nnodes: 3 },
        search: {
          backend: 'serper',
          baseUrl: info.url,
          apiKeyEnv: KEY_ENV,
          cacheDir: join(dir, 'cache'),
          placement: { rank: 1 },
        },
      }),
    );
    process.env[KEY_ENV] = info.apiKey;
    const port = await head(file);
    delete process.env[KEY_ENV];
    for (const rank of [1, 2])
      nodes.push(await startWorker(port, rank, ['--kinds', KINDS], { [KEY_ENV]: info.apiKey }));
    await nodes[0]!.waitForLog((l) => l.msg === 'service started' && l.actor === 'search/0', 90_000);
    const client = await connectClient({ head: `127.0.0.1:${port}`, token: TEST_TOKEN });
    try {
      const search = () =>
        client.ask<WebSearchReply>('search/0', { v: 1, type: 'web_search', queries: [question] });
      const first = await search();
      expect(first.results[0]?.error).toBeUndefined();
      expect(first.results[0]?.cached).toBe(false);
      expect(first.results[0]!.hits.length).toBeGreaterThan(0);

      await nodes[1]!.kill('SIGKILL');
      await expect
        .poll(
          async () => {
            const shard = (await client.status()).actors.find((a) => a.name === 'search/0');
            return shard !== undefined && shard.node !== 1 && shard.state === 'running';
          },
          { timeout: 60_000, interval: 250 },
        )
        .toBe(true);

      const again = await search();
      expect(again.results[0]).toMatchObject({ cached: true, hits: first.results[0]!.hits });
      const stats = await client.ask<SearchStats>('search/0', { v: 1, type: 'search.stats' });
      expect(stats).toMatchObject({ cacheHits: 1, apiCalls: 0 });
      // The entry lives in the head's file, not in one a shard keeps on its own node.
      expect(await readdir(join(dir, 'cache'))).toContain('search-cache.sqlite');
      expect(await readdir(join(dir, 'cache'))).not.toContain('search-cache-0.sqlite');
    } finally {
      await client.close();
    }
  });

  it('places the declared services on the worker and researches through the Serper-kind backend', async () => {
    const port = await sandboxCluster();

    const run = await submitResearch(port);

    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as {
      id: string;
      state: string;
      toolCalls: number;
      toolErrors: number;
    };
    expect(result).toMatchObject({ state: 'succeeded', toolErrors: 0 });
    expect(result.toolCalls).toBeGreaterThanOrEqual(1);
    expect(result.id).toMatch(/\S/);
  }, 180_000);

  it('keeps a research job with --search-budget 2 to at most 2 search calls, and says so in its result', async () => {
    const port = await sandboxCluster();

    // Eight sampled rollouts of the embedded policy would search at least once each without the budget.
    const run = await submitResearch(port, ['--n', '8', '--temperature', '1', '--search-budget', '2']);

    expect(run.code, run.stderr).toBe(0);
    const job = JSON.parse(run.stdout) as {
      state: string;
      result: {
        paths: { trajectories: string };
        budget: { searchCalls: { limit: number; used: number }; exhausted: string[]; refused: number };
        stopped?: { code: string };
      };
    };
    expect(job.state).toBe('succeeded');
    const trajectories = JSON.parse(await readFile(job.result.paths.trajectories, 'utf8')) as Trajectory[];
    expect(trajectories).toHaveLength(8);
    const searches = trajectories.reduce((s, t) => s + t.toolStats.searchCalls, 0);
    expect(searches).toBeLessThanOrEqual(2);
    expect(job.result.budget.searchCalls).toEqual({ limit: 2, used: searches });
    expect(job.result.budget.exhausted).toEqual(['searchCalls']);
    expect(job.result.budget.refused).toBe(trajectories.reduce((s, t) => s + t.toolStats.refused, 0));
    expect(job.result.budget.refused).toBeGreaterThan(0);
    expect(job.result.stopped?.code).toBe('JOB_BUDGET_EXHAUSTED');
    // Every rollout still finished and was recorded; the refused calls were not tool failures.
    expect(trajectories.every((t) => t.toolStats.failures === 0)).toBe(true);
  }, 180_000);

  it('refuses the same job at once with JOB_TOOLS_UNAVAILABLE on a cluster without a search service', async () => {
    const file = join(dir, 'cluster.json');
    await writeFile(file, JSON.stringify({ policies: { embedded: { checkpoint: 'embedded' } } }));
    const port = await head(file);

    const run = await submitResearch(port);

    expect(run.code).not.toBe(0);
    const result = JSON.parse(run.stdout) as {
      id: unknown;
      state: string;
      error: { code: string; message: string };
    };
    expect(result).toMatchObject({ id: null, state: 'refused', error: { code: 'JOB_TOOLS_UNAVAILABLE' } });
    expect(result.error.message).toMatch(/search/);
    expect(result.error.message).toContain('`search:`');
  }, 120_000);

  it('trains with the smoke preset, keeps rollout files and TensorBoard events, and `dr export` writes a Qwen2 HF folder', async () => {
    const port = await sandboxCluster();
    const out = join(dir, 'smoke');

    const train = await runDr([
      'submit',
      'train',
      '--config',
      SMOKE,
      '--set',
      `outputDir=${out}`,
      '--head',
      `127.0.0.1:${port}`,
      '--wait',
      '--json',
    ]);

    expect(train.code, train.stderr).toBe(0);
    const job = JSON.parse(train.stdout) as { state: string; toolCalls: number; toolErrors: number };
    expect(job).toMatchObject({ state: 'succeeded', toolErrors: 0 });
    expect(job.toolCalls).toBeGreaterThan(0);
    // The original's rollout files, one per train step and validation, each entry readable on its own.
    const events = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TrainEvent);
    const steps = events.filter((e) => e.type === 'step');
    expect(steps.map((e) => e.rolloutFile)).toEqual([
      'rollout/rollout_step_1.json',
      'rollout/rollout_step_2.json',
    ]);
    const entries = JSON.parse(
      await readFile(join(out, 'rollout', 'rollout_step_2.json'), 'utf8'),
    ) as TrainRolloutEntry[];
    expect(entries).toHaveLength(16); // 4 questions x 4 rollouts
    const trainRows = await loadDataset('sandbox:train:1');
    for (const e of entries) {
      expect(trainRows[e.idx]?.question).toBe(e.question);
      expect(e.message_str).toContain(e.question);
      expect(e.weight_version).toBe(1);
      expect(e.f1).toBe(e.reward); // as in evaluation files: the F1, or -1 for a broken format
    }
    // TensorBoard scalars per step, beside metrics.jsonl.
    const eventFile = (await readdir(out)).find((f) => f.startsWith('events.out.tfevents.'));
    const scalars = readEventFile(join(out, eventFile!)).filter((e) => 'train/reward_mean' in e.values);
    expect(scalars.map((e) => [e.step, e.values['train/reward_mean']])).toEqual(
      steps.map((e) => [e.step, Math.fround(e.rollout.rewardMean)]),
    );
    // export.everySteps wrote the last step's HF folder during the run.
    expect(events.find((e) => e.type === 'export')).toMatchObject({
      step: 2,
      path: join(out, 'hf', 'step_2'),
    });

    const hf = join(dir, 'hf');
    const exported = await runDr(['export', '--checkpoint', join(out, 'checkpoints'), '--out', hf]);

    expect(exported.code, exported.stderr).toBe(0);
    const config = parseQwen2Config(JSON.parse(await readFile(join(hf, 'config.json'), 'utf8')));
    const header = await readSafetensorsHeader(join(hf, 'model.safetensors'));
    const stored = Object.fromEntries(Object.entries(header).filter(([k]) => k !== '__metadata__'));
    expect(Object.fromEntries(Object.entries(stored).map(([k, v]) => [k, v.shape]))).toEqual(
      Object.fromEntries(qwen2ParamShapes(config)),
    );
    expect(new Set(Object.values(stored).map((v) => v.dtype))).toEqual(new Set(['BF16']));
    expect(header.__metadata__).toMatchObject({ format: 'pt', dr_step: '2', dr_weight_version: '2' });
  }, 240_000);
});

/** The JSON header of a safetensors file: name → {dtype, shape, data_offsets}, plus __metadata__. */
async function readSafetensorsHeader(
  file: string,
): Promise<Record<string, { dtype: string; shape: number[] }> & { __metadata__?: Record<string, string> }> {
  const bytes = await readFile(file);
  const length = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as never;
}
