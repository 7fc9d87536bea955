import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { afterEach, describe, expect, it } from 'vitest';
import { generateWorld } from '../../actors/sandbox/world.ts';
import { injectionFromFlags } from './sandbox.ts';

const DR = new URL('../dr.js', import.meta.url).pathname;
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dr(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [DR, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function exit(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

function firstLine(child: ChildProcess): Promise<string> {
  const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  return new Promise((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`dr exited with ${code} before printing`)));
  });
}

describe('dr sandbox', () => {
  it('serves the sandbox web, prints its endpoints, applies flag injection, and stops on SIGTERM', async () => {
    const child = dr([
      'sandbox',
      '--size',
      '60',
      '--seed',
      '4',
      '--json',
      '--inject-path',
      '/wiki/',
      '--fail-500',
      '1',
    ]);
    const done = exit(child);
    const info = JSON.parse(await firstLine(child)) as { url: string; searchUrl: string; apiKey: string };
    const r = await fetch(info.searchUrl, {
      method: 'POST',
      headers: { 'X-API-KEY': info.apiKey },
      body: JSON.stringify({ q: 'river' }),
    });
    expect(r.status).toBe(200);
    const top = ((await r.json()) as { organic: Array<{ link: string }> }).organic[0];
    expect(top?.link.startsWith(`${info.url}/`)).toBe(true);
    const page = generateWorld({ seed: 4, size: 60 }).entities[0];
    expect((await fetch(`${info.url}/wiki/${page?.slug}`)).status).toBe(500);
    expect((await fetch(`${info.url}/`)).status).toBe(200);
    child.kill('SIGTERM');
    expect((await done).code).toBe(0);
  });

  it('exports train/dev/test parquet splits that read back with hyparquet', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dr-sandbox-'));
    dirs.push(out);
    const { code } = await exit(dr(['sandbox', 'export', '--size', '80', '--out', out]));
    expect(code).toBe(0);
    for (const split of ['train', 'dev', 'test']) {
      const rows = (await parquetReadObjects({
        file: await asyncBufferFromFile(join(out, `${split}.parquet`)),
      })) as Array<{
        extra_info: { split: string };
      }>;
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.extra_info.split === split)).toBe(true);
    }
  });

  it('rejects a malformed latency spec with a typed error and exit code 1', async () => {
    const { code, stderr } = await exit(dr(['sandbox', '--size', '40', '--latency', 'gaussian:3']));
    expect(code).toBe(1);
    expect(stderr).toContain('SANDBOX_BAD_INJECTION');
  });

  it('builds one injection rule from the flags, and refuses malformed ones with a typed error', () => {
    const base = { seed: '1', size: '100', port: '0', host: '127.0.0.1', apiKey: 'k' };
    expect(injectionFromFlags(base)).toEqual({});
    expect(
      injectionFromFlags({
        ...base,
        injectPath: '/search',
        latency: 'pareto:10:1.5',
        rateLimit: '200:50',
        fail429: '0.1',
      }),
    ).toEqual({
      rules: [
        {
          pathPrefix: '/search',
          latency: { kind: 'pareto', scaleMs: 10, alpha: 1.5 },
          rateLimit: { perSecond: 200, burst: 50 },
          faults: { rateLimit429: 0.1 },
        },
      ],
    });
    for (const bad of [{ rateLimit: '0' }, { rateLimit: '10:0.5' }, { fail500: '2' }, { latency: 'fixed' }]) {
      expect(() => injectionFromFlags({ ...base, ...bad })).toThrow(
        expect.objectContaining({ code: expect.stringMatching(/^SANDBOX_BAD_(OPTIONS|INJECTION)$/) }),
      );
    }
  });
});
