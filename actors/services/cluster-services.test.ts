/**
 * Tool services declared in a cluster file, on a real cluster: `dr sandbox serve` as the web in its own
 * process, a head started with `--config` on a YAML file that names it as a Serper-kind search backend, a
 * worker that the head places the services on, and `dr submit research --wait --json` as a user runs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadDataset } from '../jobs/datasets.ts';
import { runDr, startHead, startWorker, type NodeProcess } from '../../runtime/testing/node-process.ts';

const DR = fileURLToPath(new URL('../../scripts/dr.js', import.meta.url));
const KINDS = fileURLToPath(new URL('../kinds.ts', import.meta.url));
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

  const submitResearch = (port: number) =>
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
        '--temperature',
        '0',
        '--wait',
        '--json',
      ],
      { [KEY_ENV]: info.apiKey },
    );

  it('places the declared services on the worker and researches through the Serper-kind backend', async () => {
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
    // The search shard runs on the worker, so the worker's environment holds the key.
    const worker = await startWorker(port, 1, ['--kinds', KINDS], { [KEY_ENV]: info.apiKey });
    nodes.push(worker);
    // The head places the services once the worker has joined, and logs each one that runs.
    for (const name of ['search/0', 'browse/0', 'policy/embedded']) {
      await nodes[0]!.waitForLog((l) => l.msg === 'service started' && l.actor === name, 90_000);
    }

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
});
