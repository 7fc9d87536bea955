import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readRunHistory, runFile, type HistoryPanel } from './run-history.ts';

const PANELS: HistoryPanel[] = [
  {
    id: 'reward',
    title: 'Reward',
    unit: '',
    lines: [
      { label: 'train', type: 'step', field: 'rollout.rewardMean' },
      { label: 'held-out', type: 'validation', field: 'stats.rewardMean' },
    ],
  },
  { id: 'kl', title: 'KL', unit: '', lines: [{ label: 'kl', type: 'step', field: 'learner.kl' }] },
];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'run-history-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function metrics(lines: unknown[]): string {
  const file = join(dir, 'run', 'metrics.jsonl');
  mkdirSync(join(dir, 'run'), { recursive: true });
  writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return file;
}

describe('a run history', () => {
  it('charts every step of the run by step, the latest record of a repeated step winning', async () => {
    const file = metrics([
      { type: 'validation', step: 0, stats: { rewardMean: 0.1 }, rolloutFile: 'rollout/val_step_0.json' },
      {
        type: 'step',
        step: 1,
        rollout: { rewardMean: 0.2 },
        learner: { kl: 0.01 },
        rolloutFile: 'rollout/rollout_step_1.json',
      },
      { type: 'step', step: 2, rollout: { rewardMean: 0.3 } },
      { type: 'resumed', step: 1, version: 1 },
      { type: 'step', step: 2, rollout: { rewardMean: 0.35 }, learner: { kl: 0.02 } },
      '{"type":"step","step":3,"rollout":{"rew',
      { type: 'checkpoint', path: '/x' },
    ]);

    const h = await readRunHistory(file, PANELS);

    expect(h.panels[0]).toEqual({
      id: 'reward',
      title: 'Reward',
      unit: '',
      x: [0, 1, 2],
      series: [
        { label: 'train', values: [null, 0.2, 0.35] },
        { label: 'held-out', values: [0.1, null, null] },
      ],
    });
    expect(h.panels[1]).toMatchObject({ x: [1, 2], series: [{ label: 'kl', values: [0.01, 0.02] }] });
    expect(h.steps).toEqual([
      { step: 0, type: 'validation', files: [{ label: 'rolloutFile', path: 'rollout/val_step_0.json' }] },
      { step: 1, type: 'step', files: [{ label: 'rolloutFile', path: 'rollout/rollout_step_1.json' }] },
    ]);
    // The half-written last line and the record without a step.
    expect(h.skipped).toBe(2);
  });

  it('serves files inside the run folder only', async () => {
    const file = metrics([]);
    mkdirSync(join(dir, 'run', 'rollout'));
    writeFileSync(join(dir, 'run', 'rollout', 'rollout_step_1.json'), '[]');
    writeFileSync(join(dir, 'secret.json'), '{}');
    writeFileSync(join(dir, 'run', 'weights.bin'), 'x');
    symlinkSync(join(dir, 'secret.json'), join(dir, 'run', 'link.json'));

    expect(await runFile(file, 'rollout/rollout_step_1.json')).toEqual({
      path: join(dir, 'run', 'rollout', 'rollout_step_1.json'),
      type: 'application/json',
    });
    for (const wanted of [
      '../secret.json',
      'rollout/../../secret.json',
      join(dir, 'secret.json'),
      'link.json',
      'weights.bin',
      'missing.json',
      '.',
    ])
      expect(await runFile(file, wanted), wanted).toBeUndefined();
  });
});
