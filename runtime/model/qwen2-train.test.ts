import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Graph } from '../onnx/index.ts';
import { OnnxSession } from '../onnx/session.ts';
import { qwen2ParamShapes } from './qwen2-config.ts';
import { weightsAsParams } from './qwen2-graph.ts';
import { referenceLogits } from './qwen2-reference.ts';
import { buildGrpoLoss, buildSftLoss, gradName, withGradients } from './qwen2-train.ts';
import { randomCheckpoint, tinyConfig } from './testing.ts';
import { Qwen2Trainer, sequenceFeeds, type GrpoSettings, type TokenBatch } from './trainer.ts';

const config = tinyConfig({ vocab_size: 40, hidden_size: 16, intermediate_size: 24 });
const checkpoint = randomCheckpoint(config, 21, 0.3);

// Two right-padded rows; the loss covers a response span of each.
const rows = 2;
const cols = 7;
const batch: TokenBatch = {
  rows,
  cols,
  inputIds: Int32Array.from([3, 9, 17, 4, 25, 30, 2, 5, 6, 11, 39, 0, 0, 0]),
  attention: Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]),
  lossMask: Float32Array.from([0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0]),
  advantage: Float32Array.from([0, 0, 0, 1, 1, -1, -1, 0, 0, 0.5, 0.5, 0, 0, 0]),
  oldLogprob: new Float32Array(rows * cols),
  refLogprob: new Float32Array(rows * cols),
};

function referenceLogprobs(): number[] {
  const ids = Array.from({ length: rows }, (_, r) =>
    Array.from(batch.inputIds.subarray(r * cols, (r + 1) * cols)),
  );
  const mask = Array.from({ length: rows }, (_, r) =>
    Array.from(batch.attention.subarray(r * cols, (r + 1) * cols)),
  );
  const logits = referenceLogits(
    config,
    checkpoint.weights,
    ids,
    ids.map((row) => row.map((_, t) => t)),
    mask,
  );
  const out: number[] = [];
  ids.forEach((row, r) =>
    row.forEach((token, t) => {
      if (t === 0) return out.push(0);
      const l = logits[r]![t - 1]!;
      const max = Math.max(...l);
      out.push(l[token]! - max - Math.log(l.reduce((z, x) => z + Math.exp(x - max), 0)));
    }),
  );
  return out;
}

describe('Qwen2 train graphs', () => {
  const trainer = new Qwen2Trainer(config, { intraOpThreads: 1 });
  const weights = trainer.params.map((p) => checkpoint.weights.get(p.name)!.data);
  let logprobs: Float32Array;
  beforeAll(async () => {
    logprobs = await trainer.logprobs(weights, batch);
  });
  afterAll(async () => {
    await trainer.dispose();
  });

  it('gives per-token log-probabilities of the reference model, 0 at position 0', () => {
    const ref = referenceLogprobs();
    batch.attention.forEach((a, i) => {
      if (a === 1) expect(Math.abs(logprobs[i]! - ref[i]!)).toBeLessThan(1e-4);
    });
    expect(logprobs[0]).toBe(0);
    expect(logprobs[cols]).toBe(0);
  });

  it('computes the GRPO loss with clipping on both sides, dual clip and k3 KL as hand-derived', async () => {
    // Ratios by construction: token 3 at 1.5 with A=1 (clipped to 1.2), token 4 at 1.1 with A=1 (inside),
    // token 5 at 0.5 with A=-1 (clipped to 0.8), token 6 at 4 with A=-1 (dual clip at 3), row 2 at 1 with A=0.5.
    const ratios = [1, 1, 1, 1.5, 1.1, 0.5, 4, 1, 1, 1, 1, 1, 1, 1];
    const old = Float32Array.from(logprobs, (lp, i) => lp - Math.log(ratios[i]!));
    const ref = Float32Array.from(logprobs, (lp, i) => lp + (i === 9 ? 1 : 0)); // one token with KL: d = 1
    const settings: GrpoSettings = {
      clipRatioLow: 0.2,
      clipRatioHigh: 0.2,
      clipRatioC: 3,
      klCoef: 0.1,
      entropyCoef: 0,
    };
    const r = await trainer.grpoGradients(
      weights,
      { ...batch, oldLogprob: old, refLogprob: ref },
      settings,
      10,
    );
    const pg = -1.2 + -1.1 + 0.8 + 3 + -0.5 + -0.5;
    const kl = Math.E - 2;
    expect(r.sums.tokens).toBe(6);
    expect(r.sums.pgLoss).toBeCloseTo(pg, 4);
    expect(r.sums.kl).toBeCloseTo(kl, 4);
    expect(r.sums.clipped).toBe(2);
    expect(r.sums.clippedLower).toBe(1);
    expect(r.loss).toBeCloseTo((pg + 0.1 * kl) / 10, 5);
    // The clipped tokens carry no gradient: with only them in the mask, every gradient is zero.
    const onlyClipped = Float32Array.from(batch.lossMask, (m, i) => (i === 3 || i === 5 || i === 6 ? 1 : 0));
    const z = await trainer.grpoGradients(
      weights,
      { ...batch, lossMask: onlyClipped, oldLogprob: old, refLogprob: ref },
      settings,
      3,
    );
    expect(z.grads.every((g) => g.every((x) => x === 0))).toBe(true);
  });

  it('gives the SFT loss as the masked token-mean negative log-likelihood', async () => {
    const r = await trainer.sftGradients(weights, batch, 6);
    const nll = -[3, 4, 5, 6, 9, 10].reduce((s, i) => s + logprobs[i]!, 0);
    expect(r.sums.tokens).toBe(6);
    expect(r.loss).toBeCloseTo(nll / 6, 4);
  });
});

describe('Qwen2 train-graph gradients match finite differences in float64', () => {
  const params = [...qwen2ParamShapes(config)];
  const values = new Map(
    params.map(([name]) => [name, Float64Array.from(checkpoint.weights.get(name)!.data)]),
  );
  const ratios = Float64Array.from({ length: rows * cols }, (_, i) => 0.9 + 0.02 * (i % 5)); // inside the clip range

  async function lossSession(kind: 'sft' | 'grpo'): Promise<OnnxSession> {
    const g = new Graph(`fd_${kind}`);
    const w = weightsAsParams(g, config, 'float64');
    withGradients(
      kind === 'sft' ? buildSftLoss(g, config, w) : buildGrpoLoss(g, config, w, { entropy: 'loss' }),
    );
    return OnnxSession.create(g, { intraOpThreads: 1 });
  }

  function feeds(kind: 'sft' | 'grpo', oldLogprobs: Float64Array): Record<string, ort.Tensor> {
    const f64 = (data: ArrayLike<number>, dims: number[]) =>
      new ort.Tensor('float64', Float64Array.from(data), dims);
    const out: Record<string, ort.Tensor> = {
      ...sequenceFeeds(batch),
      loss_mask: f64(batch.lossMask, [rows, cols]),
      denominator: f64([6], []),
    };
    for (const [name, shape] of params) out[name] = new ort.Tensor('float64', values.get(name)!, shape);
    if (kind === 'grpo') {
      Object.assign(out, {
        advantages: f64(batch.advantage, [rows, cols]),
        old_logprobs: f64(oldLogprobs, [rows, cols]),
        ref_logprobs: f64(
          oldLogprobs.map((x) => x - 0.3),
          [rows, cols],
        ),
        clip_low: f64([0.2], []),
        clip_high: f64([0.2], []),
        clip_c: f64([3], []),
        kl_coef: f64([0.5], []),
        entropy_coef: f64([0.05], []),
      });
    }
    return out;
  }

  it.each(['sft', 'grpo'] as const)('%s loss', async (kind) => {
    const session = await lossSession(kind);
    try {
      // Old log-probs put every ratio strictly inside the clip range, where the loss is smooth.
      let oldLogprobs = new Float64Array(rows * cols);
      if (kind === 'grpo') {
        const trainer = new Qwen2Trainer(config, { intraOpThreads: 1 });
        const lp = await trainer.logprobs(
          params.map(([name]) => checkpoint.weights.get(name)!.data),
          batch,
        );
        await trainer.dispose();
        oldLogprobs = Float64Array.from(lp, (x, i) => x - Math.log(ratios[i]!));
      }
      const run = async () => session.run(feeds(kind, oldLogprobs));
      const base = await run();
      const h = 1e-6;
      let worst = 0;
      for (const [name, shape] of params) {
        const v = values.get(name)!;
        const analytic = base[gradName(name)]!.data as Float64Array;
        expect(analytic.length).toBe(shape.reduce((a, b) => a * b, 1));
        for (const i of [0, Math.floor(v.length / 2), v.length - 1]) {
          const keep = v[i]!;
          v[i] = keep + h;
          const up = Number((await run()).loss!.data[0]);
          v[i] = keep - h;
          const down = Number((await run()).loss!.data[0]);
          v[i] = keep;
          const numeric = (up - down) / (2 * h);
          worst = Math.max(worst, Math.abs(numeric - analytic[i]!) / Math.max(1e-3, Math.abs(numeric)));
        }
      }
      expect(worst).toBeLessThan(1e-5);
    } finally {
      await session.release();
    }
  });
});
