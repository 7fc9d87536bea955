import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTrainConfig, parseTrainConfig } from './train.ts';

describe('train config', () => {
  it('gives the paper preset the paper setup: Qwen2.5-7B-Instruct, 256 x 16, 10 turns, lr 1e-6, KL 0.001', () => {
    const c = parseTrainConfig({ preset: 'paper' });
    expect(c.policy).toEqual({ kind: 'qwen2', dir: 'models/Qwen2.5-7B-Instruct' });
    expect([c.rollout.questionsPerStep, c.rollout.n, c.rollout.maxTurns]).toEqual([256, 16, 10]);
    expect(c.optimizer.lr).toBe(1e-6);
    expect(c.algorithm.klCoef).toBe(0.001);
    expect(c.schedule.mode).toBe('sync');
  });

  it('fills DeepResearcher defaults for fields a config leaves out', () => {
    const c = parseTrainConfig({
      name: 'x',
      steps: 2,
      policy: { kind: 'embedded' },
      data: { train: 'a', dev: 'b' },
    });
    expect(c.optimizer).toMatchObject({ lr: 1e-6, maxGradNorm: 1 });
    expect(c.algorithm).toMatchObject({ klCoef: 0.001, clipRatioLow: 0.2, clipRatioC: null });
    expect(c.rollout).toMatchObject({ n: 16, maxTurns: 10 });
  });

  it('lets a file override preset fields, deeply', () => {
    const c = parseTrainConfig({ preset: 'embedded-demo', steps: 3, rollout: { n: 2 } });
    expect(c.steps).toBe(3);
    expect(c.rollout.n).toBe(2);
    expect(c.rollout.questionsPerStep).toBe(8);
    expect(c.policy.kind).toBe('embedded');
  });

  it('names the bad field and the fix', () => {
    expect(() => parseTrainConfig({ preset: 'paper', optimizer: { lr: -1 } })).toThrow(/optimizer\.lr/);
    expect(() => parseTrainConfig({ preset: 'paper', typo: 1 })).toThrow(/CONFIG|typo|Unrecognized/i);
    expect(() => parseTrainConfig({ preset: 'nope' })).toThrow(/unknown training preset 'nope'/);
  });

  it('reads a config file and reports unreadable ones with a typed error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dr-cfg-'));
    try {
      await writeFile(join(dir, 'ok.json'), JSON.stringify({ preset: 'embedded-demo', name: 'mine' }));
      expect(loadTrainConfig(join(dir, 'ok.json')).name).toBe('mine');
      await writeFile(join(dir, 'bad.json'), '{ nope');
      expect(() => loadTrainConfig(join(dir, 'bad.json'))).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
