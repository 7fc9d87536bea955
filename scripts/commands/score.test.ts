import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const DR = new URL('../dr.js', import.meta.url).pathname;

async function dr(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [DR, ...args]);
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('dr score', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dr-score-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('adds f1 and em to every line, in order, keeping the other fields', async () => {
    const input = join(dir, 'in.jsonl');
    await writeFile(
      input,
      [
        { id: 'a', solution_str: '<think>x</think><answer>Paris</answer>', ground_truth: 'Paris' },
        { id: 'b', solution_str: '<think>x</think>', ground_truth: 'Paris' },
        {
          id: 'c',
          solution_str: '<answer>New York</answer>',
          ground_truth: 'New York City<|answer_split|>NYC',
        },
      ]
        .map((o) => JSON.stringify(o))
        .join('\n') + '\n',
    );
    const output = join(dir, 'out.jsonl');
    const result = await dr('score', '--input', input, '--output', output);
    expect(result.code).toBe(0);
    const rows = (await readFile(output, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; f1: number; em: number });
    expect(rows.map((r) => [r.id, r.f1, r.em])).toEqual([
      ['a', 1, 1],
      ['b', -1, -1],
      ['c', 0.8, 0],
    ]);

    const toStdout = await dr('score', '--input', input);
    expect(toStdout.stdout).toBe(await readFile(output, 'utf8'));
  });

  it('refuses a bad line with a typed error naming it and writes nothing', async () => {
    const input = join(dir, 'in.jsonl');
    await writeFile(input, '{"solution_str":"<answer>a</answer>","ground_truth":"a"}\n{"solution_str":3}\n');
    const output = join(dir, 'out.jsonl');
    const result = await dr('score', '--input', input, '--output', output);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('SCORE_BAD_LINE');
    expect(result.stderr).toContain('line 2');
    await expect(readFile(output)).rejects.toThrow();
  });
});
