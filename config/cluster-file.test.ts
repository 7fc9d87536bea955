import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runDr } from '../runtime/testing/node-process.ts';
import { ClusterFileError, loadClusterFile, type ConfigIssue } from './cluster-file.ts';
import { parseSet } from './overrides.ts';

const EXAMPLES = fileURLToPath(new URL('./examples/', import.meta.url));

const dirs: string[] = [];
function write(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dr-cluster-file-'));
  dirs.push(dir);
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function issuesOf(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ClusterFileError);
    expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
    return (err as ClusterFileError).issues;
  }
  throw new Error('expected the cluster file to be refused');
}

const SERPER_YAML = `
cluster:
  nnodes: 2
search:
  backend: serper
  apiKeyEnv: MY_SERPER_KEY
  shards: 2
browse:
  reader: extractive
policies:
  qwen:
    baseUrl: http://10.0.0.5:8000/v1
    model: Qwen/Qwen2.5-7B-Instruct
    api: completions
`;

describe('cluster file', () => {
  it('lists a typo, a wrong type and a missing API-key variable together, each with its fix', () => {
    const file = write(
      'bad.yaml',
      `search:\n  backend: serper\n  apiKeyEnv: MY_SERPER_KEY\n  shrads: 2\n  topK: ten\n`,
    );

    const issues = issuesOf(() => loadClusterFile(file, { checkEnv: true, env: {} }));

    expect(issues).toHaveLength(3);
    const byPath = new Map(issues.map((i) => [i.path, i]));
    expect(byPath.get('search.shrads')?.fix).toMatch(/did you mean 'shards'/);
    expect(byPath.get('search.topK')).toMatchObject({ value: '"ten"' });
    expect(byPath.get('search.topK')?.message).toMatch(/number/);
    expect(byPath.get('search.apiKeyEnv')?.message).toMatch(/MY_SERPER_KEY is not set/);
    for (const issue of issues) expect(issue.fix.length).toBeGreaterThan(10);
  });

  it('puts every problem in one message naming the file', () => {
    const file = write('bad.json', JSON.stringify({ search: { backend: 'google' }, browse: { shards: 0 } }));

    expect(() => loadClusterFile(file)).toThrow(
      /bad\.json: 2 problems:\n {2}search\.backend = "google": .*Fix: one of serper, bing, searxng, sandbox\n {2}browse\.shards = 0: /,
    );
  });

  it('reads YAML and JSON of the same settings to the same config', () => {
    const yaml = write('c.yaml', SERPER_YAML);
    const fromYaml = loadClusterFile(yaml);
    const json = write(
      'c.json',
      JSON.stringify({
        cluster: { nnodes: 2 },
        search: { backend: 'serper', apiKeyEnv: 'MY_SERPER_KEY', shards: 2 },
        browse: { reader: 'extractive' },
        policies: {
          qwen: { baseUrl: 'http://10.0.0.5:8000/v1', model: 'Qwen/Qwen2.5-7B-Instruct', api: 'completions' },
        },
      }),
    );

    expect(loadClusterFile(json)).toEqual(fromYaml);
    expect(fromYaml.search).toMatchObject({ backend: 'serper', shards: 2, topK: 10, cacheTtlHours: 168 });
  });

  it('lets --set override a setting, add one, and keep the type of the value', () => {
    const file = write('c.yaml', SERPER_YAML);

    const c = loadClusterFile(file, {
      sets: ['search.shards=8', 'browse.allowHosts=[127.0.0.1]', 'policies.qwen.model=other'],
    });

    expect(c.search?.shards).toBe(8);
    expect(c.browse?.allowHosts).toEqual(['127.0.0.1']);
    expect(c.policies.qwen).toMatchObject({ model: 'other' });
  });

  it('takes an engine for training: a completions policy with a tokenizer and weightSync, relative paths from where it is loaded', () => {
    const file = write(
      'c.yaml',
      `policies:
  vllm:
    baseUrl: http://gpu1:8000/v1
    model: qwen
    api: completions
    tokenizer: models/qwen
    weightSync: { kind: command, dir: shared/weights, command: [systemctl, restart, vllm] }
`,
    );

    const c = loadClusterFile(file);

    expect(c.policies.vllm).toMatchObject({
      tokenizer: join(process.cwd(), 'models', 'qwen'),
      weightSync: { kind: 'command', dir: join(process.cwd(), 'shared', 'weights') },
    });
  });

  it('refuses weightSync on a chat endpoint and an unknown sync kind, together', () => {
    const file = write(
      'c.yaml',
      `policies:
  chat: { baseUrl: http://h/v1, model: m, weightSync: { kind: sglang, dir: /w } }
  other: { baseUrl: http://h/v1, model: m, api: completions, weightSync: { kind: nccl, dir: /w } }
`,
    );

    const issues = issuesOf(() => loadClusterFile(file));

    expect(issues.map((i) => i.path).sort()).toEqual([
      'policies.chat.weightSync',
      'policies.other.weightSync.kind',
    ]);
  });

  it('validates what --set wrote like the file itself', () => {
    const file = write('c.yaml', SERPER_YAML);

    const issues = issuesOf(() => loadClusterFile(file, { sets: ['search.shards=-1'] }));

    expect(issues.map((i) => i.path)).toEqual(['search.shards']);
  });

  it('refuses a --set that is not KEY.PATH=VALUE', () => {
    expect(() => parseSet('search.shards')).toThrow(/--set 'search.shards' is not KEY.PATH=VALUE/);
    expect(parseSet('a.b=3')).toEqual({ path: ['a', 'b'], value: 3 });
  });

  it('keeps secrets and node identity out of the shared file', () => {
    const file = write('c.yaml', 'cluster:\n  token: abcdefghijklmnopqrstu\n  rank: 1\n');

    const issues = issuesOf(() => loadClusterFile(file));

    expect(issues.map((i) => i.path).sort()).toEqual(['cluster.rank', 'cluster.token']);
    expect(issues.find((i) => i.path === 'cluster.token')?.fix).toMatch(/DR_CLUSTER_TOKEN/);
  });

  it('says what to do about a file that is not YAML at all', () => {
    const file = write('c.yaml', 'search: [unclosed\n');

    expect(() => loadClusterFile(file)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('ships examples that all validate', () => {
    const examples = readdirSync(EXAMPLES).filter((f) => /\.(ya?ml|json)$/.test(f));

    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const f of examples) expect(() => loadClusterFile(join(EXAMPLES, f))).not.toThrow();
  });
});

describe('dr config check', () => {
  it('exits 2 and lists the problems of an invalid file', async () => {
    const file = write('bad.yaml', 'search:\n  backend: serper\n  apiKeyEnv: DR_TEST_UNSET_KEY\n');

    const run = await runDr(['config', 'check', file], { DR_TEST_UNSET_KEY: undefined });

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/CONFIG_INVALID/);
    expect(run.stderr).toMatch(/DR_TEST_UNSET_KEY/);
  });

  it('exits 0 for a valid file and prints it with defaults filled in as JSON', async () => {
    const file = write('c.yaml', SERPER_YAML);

    const run = await runDr(['config', 'check', file, '--no-env', '--json']);

    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ search: { backend: 'serper', topK: 10 } });
  });
});

describe('dr head --config', () => {
  it('stops before binding any port when the file is invalid', async () => {
    const file = write('bad.yaml', 'search:\n  backend: serper\n  shrads: 2\n');

    const run = await runDr(['head', '--port', '0', '--config', file]);

    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/shrads/);
    expect(run.stderr).not.toMatch(/node ready|listening/);
  });
});
