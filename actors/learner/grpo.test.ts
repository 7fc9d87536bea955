import { describe, expect, it } from 'vitest';
import {
  defaultGrpoLossConfig,
  groupAdvantages,
  grpoLoss,
  k3Kl,
  k3KlGrad,
  type GrpoLossConfig,
  type GrpoTokens,
} from './grpo.ts';
import { isDrError } from '../../config/errors.ts';

const noKl: GrpoLossConfig = { ...defaultGrpoLossConfig, klCoef: 0 };

function tokens(
  rows: { lp: number; old: number; ref?: number; adv: number; mask?: number; ent?: number }[],
): GrpoTokens {
  return {
    logprob: Float32Array.from(rows.map((r) => r.lp)),
    oldLogprob: Float32Array.from(rows.map((r) => r.old)),
    refLogprob: Float32Array.from(rows.map((r) => r.ref ?? r.lp)),
    advantage: Float32Array.from(rows.map((r) => r.adv)),
    mask: Float32Array.from(rows.map((r) => r.mask ?? 1)),
    entropy: Float32Array.from(rows.map((r) => r.ent ?? 0)),
  };
}

describe('groupAdvantages', () => {
  it('gives every member of a zero-variance group advantage 0', () => {
    const adv = groupAdvantages([0.5, 0.5, 0.5, -1, -1], ['a', 'a', 'a', 'b', 'b']);
    expect(Array.from(adv)).toEqual([0, 0, 0, 0, 0]);
  });

  it('normalises by the unbiased group std plus epsilon', () => {
    // group [1, 0]: mean 0.5, unbiased std sqrt(0.5) = 0.70710678
    const adv = groupAdvantages([1, 0, 3, 0, 0], [7, 7, 9, 9, 9]);
    const s = Math.SQRT1_2 + 1e-6;
    expect(adv[0]).toBeCloseTo(0.5 / s, 12);
    expect(adv[1]).toBeCloseTo(-0.5 / s, 12);
    // group [3, 0, 0]: mean 1, unbiased std sqrt((4 + 1 + 1) / 2) = sqrt(3)
    expect(adv[2]).toBeCloseTo(2 / (Math.sqrt(3) + 1e-6), 12);
    expect(adv[3]).toBeCloseTo(-1 / (Math.sqrt(3) + 1e-6), 12);
  });

  it('treats a group of one as mean 0 and std 1, as verl does', () => {
    const adv = groupAdvantages([0.8], ['only']);
    expect(adv[0]).toBeCloseTo(0.8 / (1 + 1e-6), 12);
  });

  it('subtracts the mean only when std normalisation is off', () => {
    const adv = groupAdvantages([1, 0], ['g', 'g'], { normalizeByStd: false });
    expect(Array.from(adv)).toEqual([0.5, -0.5]);
  });

  it('refuses mismatched rewards and group ids with a typed error', () => {
    let caught: unknown;
    try {
      groupAdvantages([1, 2], ['g']);
    } catch (err) {
      caught = err;
    }
    expect(isDrError(caught, 'LEARNER_BAD_BATCH')).toBe(true);
  });
});

describe('grpoLoss policy term (PPO clip)', () => {
  it('clips a positive advantage above 1 + eps and a negative one below 1 - eps, with zero gradient', () => {
    const r = grpoLoss(
      tokens([
        { lp: Math.log(1.5), old: 0, adv: 1 }, // ratio 1.5 > 1.2: loss -1.2, clipped
        { lp: Math.log(0.5), old: 0, adv: -1 }, // ratio 0.5 < 0.8: loss 0.8, clipped
      ]),
      noKl,
    );
    expect(r.sums.pgLoss).toBeCloseTo(-1.2 + 0.8, 6);
    expect(r.loss).toBeCloseTo((-1.2 + 0.8) / 2, 6);
    expect(r.sums.clipped).toBe(2);
    expect(Array.from(r.dLogprob)).toEqual([0, 0]);
  });

  it('keeps the unclipped term where it is the pessimistic one, with gradient -A * ratio / N', () => {
    const r = grpoLoss(
      tokens([
        { lp: Math.log(0.5), old: 0, adv: 1 }, // -0.5 vs -0.8: unclipped
        { lp: Math.log(1.5), old: 0, adv: -1 }, // 1.5 vs 1.2: unclipped
        { lp: Math.log(1.1), old: 0, adv: 2 }, // inside the range
      ]),
      noKl,
    );
    expect(r.sums.pgLoss).toBeCloseTo(-0.5 + 1.5 - 2.2, 6);
    expect(r.sums.clipped).toBe(0);
    expect(r.dLogprob[0]).toBeCloseTo(-0.5 / 3, 6);
    expect(r.dLogprob[1]).toBeCloseTo(1.5 / 3, 6);
    expect(r.dLogprob[2]).toBeCloseTo(-2.2 / 3, 6);
  });

  it('bounds a negative-advantage loss at -A * c when dual clip is on', () => {
    const r = grpoLoss(tokens([{ lp: Math.log(4), old: 0, adv: -1 }]), { ...noKl, clipRatioC: 3 });
    expect(r.loss).toBeCloseTo(3, 6);
    expect(r.sums.clippedLower).toBe(1);
    expect(r.dLogprob[0]).toBe(0);
    const off = grpoLoss(tokens([{ lp: Math.log(4), old: 0, adv: -1 }]), noKl);
    expect(off.loss).toBeCloseTo(4, 5);
  });
});

describe('k3 KL', () => {
  it('equals exp(d) - d - 1 with d = ref - logprob, and its gradient 1 - exp(d)', () => {
    expect(k3Kl(-1, -2)).toBeCloseTo(Math.exp(-1), 12); // d = -1: e^-1 + 1 - 1
    expect(k3Kl(-2, -1)).toBeCloseTo(Math.E - 2, 12); // d = 1
    expect(k3Kl(-1.3, -1.3)).toBe(0);
    expect(k3KlGrad(-1, -2)).toBeCloseTo(1 - Math.exp(-1), 12);
    expect(k3KlGrad(-2, -1)).toBeCloseTo(1 - Math.E, 12);
  });

  it('clamps the estimate at 10 and stops its gradient there', () => {
    expect(k3Kl(-20, -5)).toBe(10); // d = 15: e^15 - 16 is far above 10
    expect(k3KlGrad(-20, -5)).toBe(0);
  });

  it('enters the loss weighted by klCoef and token-averaged', () => {
    const r = grpoLoss(
      tokens([
        { lp: -1, old: -1, ref: -2, adv: 0 },
        { lp: -2, old: -2, ref: -1, adv: 0 },
      ]),
      { ...defaultGrpoLossConfig, klCoef: 0.001 },
    );
    const klMean = (Math.exp(-1) + Math.E - 2) / 2;
    expect(r.loss).toBeCloseTo(0.001 * klMean, 9);
    expect(r.dLogprob[0]).toBeCloseTo((0.001 * (1 - Math.exp(-1))) / 2, 9);
  });
});

describe('masking and aggregation', () => {
  it('ignores masked tokens entirely, whatever their values', () => {
    const live = [
      { lp: -0.5, old: -0.6, ref: -0.4, adv: 1.3, ent: 2 },
      { lp: -1.5, old: -1.2, ref: -1.0, adv: -0.7, ent: 1 },
    ];
    const base = grpoLoss(tokens(live), { ...defaultGrpoLossConfig, entropyCoef: 0.01 });
    const withObs = grpoLoss(
      tokens([live[0]!, { lp: -30, old: 5, ref: 9, adv: 100, mask: 0, ent: 50 }, live[1]!]),
      { ...defaultGrpoLossConfig, entropyCoef: 0.01 },
    );
    expect(withObs.loss).toBeCloseTo(base.loss, 7);
    expect(withObs.sums.tokens).toBe(2);
    expect(withObs.dLogprob[1]).toBe(0);
    expect(withObs.dEntropy[1]).toBe(0);
    expect(withObs.dLogprob[2]).toBeCloseTo(base.dLogprob[1]!, 7);
  });

  it('subtracts the entropy bonus and gives its gradient per token', () => {
    const r = grpoLoss(
      tokens([
        { lp: -1, old: -1, adv: 0, ent: 2 },
        { lp: -1, old: -1, adv: 0, ent: 4 },
      ]),
      {
        ...noKl,
        entropyCoef: 0.1,
      },
    );
    expect(r.loss).toBeCloseTo(-0.1 * 3, 7);
    expect(Array.from(r.dEntropy).map((x) => Number(x.toFixed(7)))).toEqual([-0.05, -0.05]);
  });

  it('adds up micro-batch contributions to the full-batch token mean when given the global token count', () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({
      lp: -1 - 0.1 * i,
      old: -1 - 0.05 * i,
      ref: -1.2,
      adv: i % 2 === 0 ? 0.9 : -0.6,
      mask: i === 3 ? 0 : 1,
    }));
    const full = grpoLoss(tokens(rows));
    const a = grpoLoss(tokens(rows.slice(0, 4)), defaultGrpoLossConfig, full.sums.tokens);
    const b = grpoLoss(tokens(rows.slice(4)), defaultGrpoLossConfig, full.sums.tokens);
    expect(a.loss + b.loss).toBeCloseTo(full.loss, 7);
    expect(a.dLogprob[0]).toBeCloseTo(full.dLogprob[0]!, 9);
  });

  it('has dLogprob equal to the finite-difference slope of the loss', () => {
    const rows = [
      { lp: -0.9, old: -1.0, ref: -1.4, adv: 0.8 },
      { lp: -2.1, old: -2.0, ref: -1.1, adv: -1.1 },
      { lp: -0.3, old: -0.7, ref: -0.2, adv: 0.4 }, // ratio e^0.4 = 1.49: clipped
    ];
    const cfg = { ...defaultGrpoLossConfig, klCoef: 0.05 };
    const r = grpoLoss(tokens(rows), cfg);
    const h = 1e-3;
    rows.forEach((_, i) => {
      const up = rows.map((x, j) => (j === i ? { ...x, lp: x.lp + h } : x));
      const down = rows.map((x, j) => (j === i ? { ...x, lp: x.lp - h } : x));
      const fd = (grpoLoss(tokens(up), cfg).loss - grpoLoss(tokens(down), cfg).loss) / (2 * h);
      expect(r.dLogprob[i]).toBeCloseTo(fd, 4);
    });
  });
});
