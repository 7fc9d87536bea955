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

  it('re-scores a rollout file against its dataset and refuses a file from another dataset', async () => {
    const data = join(dir, 'data.jsonl');
    const row = (q: string, gt: string, i: number) =>
      JSON.stringify({
        data_source: 'nq',
        prompt: [{ role: 'user', content: q }],
        ability: 'qa',
        reward_model: { ground_truth: gt, style: 'rule' },
        extra_info: { index: `nq_${i}`, split: 'test' },
      });
    await writeFile(
      data,
      `${row('Capital of France?', 'Paris', 0)}\n${row('Largest city?', 'New York City', 1)}\n`,
    );
    // The system prompt quotes the answer format; only the text after the first assistant turn is scored.
    const prompt = (q: string) =>
      `<|im_start|>system\nReply as <think>...</think><answer>...</answer><|im_end|>\n<|im_start|>user\n${q}<|im_end|>\n<|im_start|>assistant\n`;
    const rollouts = join(dir, 'rollout_step_0.json');
    await writeFile(
      rollouts,
      JSON.stringify([
        {
          idx: 0,
          question: 'Capital of France?',
          message_str: `${prompt('Capital of France?')}<think>x</think><answer>Paris</answer><|im_end|>\n`,
        },
        {
          idx: 1,
          question: 'Largest city?',
          message_str: `${prompt('Largest city?')}<think>x</think><answer>New York</answer><|im_end|>\n`,
        },
      ]),
    );
    const result = await dr('score', '--rollouts', rollouts, '--data', data);
    expect(result.code).toBe(0);
    const rows = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { idx: number; f1: number; em: number });
    expect(rows.map((r) => [r.idx, r.f1, r.em])).toEqual([
      [0, 1, 1],
      [1, 0.8, 0],
    ]);

    await writeFile(rollouts, JSON.stringify([{ idx: 1, question: 'Capital of France?', message_str: '' }]));
    const mismatch = await dr('score', '--rollouts', rollouts, '--data', data);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('SCORE_ROLLOUT_MISMATCH');
  });
});
