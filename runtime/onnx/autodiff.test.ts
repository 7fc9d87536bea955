import { describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { isDrError } from '../../config/errors.ts';
import { grad } from './autodiff.ts';
import { Graph, type Tensor } from './graph.ts';
import { gradCheck } from './gradcheck.ts';
import { OP_CASES, buildCase, fx, resetInputs, type OpCase } from './op-cases.ts';
import * as op from './ops.ts';
import type { DType } from './types.ts';

async function check(c: OpCase, dtype: DType, eps?: number): Promise<number> {
  return (await gradCheck((g) => buildCase(g, c, dtype), { eps })).maxError;
}

describe('grad matches central finite differences in float64', () => {
  test.each(OP_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    expect(await check(c, 'float64')).toBeLessThan(1e-6);
  });
});

/** Analytic gradients of a case in `dtype`, as float64 arrays (float16 bits decoded). */
async function gradients(c: OpCase, dtype: DType): Promise<number[][]> {
  resetInputs();
  const g = new Graph();
  const { loss, wrt, feeds } = buildCase(g, c, dtype);
  grad(loss, wrt).forEach((t, i) => g.output(t, `grad_${i}`));
  const s = await ort.InferenceSession.create(g.serialize().model);
  const out = await s.run(feeds);
  await s.release();
  return wrt.map((_, i) => {
    const t = out[`grad_${i}`]!;
    return t.type === 'float16'
      ? Array.from(t.data as Uint16Array, float16BitsToNumber)
      : Array.from(t.data as Float64Array, Number);
  });
}

function float16BitsToNumber(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

describe('grad graphs run in float16 on the CPU provider', () => {
  test.each(OP_CASES.map((c) => [c.name, c] as const))(
    '%s agrees with float64 to float16 precision',
    async (_name, c) => {
      const want = await gradients(c, 'float64');
      const got = await gradients(c, 'float16');
      const err = Math.max(
        ...want.flatMap((w, i) => w.map((x, j) => Math.abs(x - got[i]![j]!) / Math.max(1, Math.abs(x)))),
      );
      expect(err).toBeLessThan(2e-2);
    },
  );
});

describe('grad in float32 (ops onnxruntime runs only in float32 on CPU, and dtype casts)', () => {
  test('Cast float64 -> float32 -> float64 passes the gradient through both casts', async () => {
    const c: OpCase = {
      name: 'cast',
      inputs: { a: fx([2, 3]) },
      f: (t) => op.cast(op.mul(op.cast(t.a!, 'float32'), 2), 'float64'),
    };
    expect(await check(c, 'float64', 1e-3)).toBeLessThan(1e-4);
  });
  test('a softmax MLP block in float32 within float32 tolerance', async () => {
    const c: OpCase = {
      name: 'mlp32',
      inputs: { x: fx([3, 4]), w: fx([4, 5]), b: fx([5]) },
      f: (t) => op.logSoftmax(op.tanh(op.add(op.matmul(t.x!, t.w!), t.b!))),
    };
    expect(await check(c, 'float32')).toBeLessThan(2e-2);
  });
});

describe('grad graph structure', () => {
  test('a tensor used twice receives the sum of both gradients', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3]);
    const loss = op.reduceSum(op.add(op.mul(x, x), op.mul(x, 3)));
    const [dx] = grad(loss, [x]);
    g.output(dx!, 'dx');
    const s = await ort.InferenceSession.create(g.serialize().model);
    const r = await s.run({ x: new ort.Tensor('float64', Float64Array.from([1, -2, 0.5]), [3]) });
    expect(Array.from(r.dx!.data as Float64Array)).toEqual([5, -1, 4]);
    await s.release();
  });

  test('an explicit seed gives the vector-Jacobian product of a non-scalar output', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3]);
    const v = g.input('v', 'float64', [3]);
    const [dx] = grad(op.mul(x, x), [x], { seed: v });
    g.output(dx!, 'dx');
    const s = await ort.InferenceSession.create(g.serialize().model);
    const r = await s.run({
      x: new ort.Tensor('float64', Float64Array.of(1, 2, 3), [3]),
      v: new ort.Tensor('float64', Float64Array.of(1, 0, -1), [3]),
    });
    expect(Array.from(r.dx!.data as Float64Array)).toEqual([2, 0, -6]);
    await s.release();
  });

  test('a wrt tensor the loss does not depend on gets zeros of its shape', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2]);
    const unused = g.param('unused', 'float64', [2, 2]);
    const [, du] = grad(op.reduceSum(op.exp(x)), [x, unused]);
    expect(du!.shape).toEqual([2, 2]);
    g.output(du!, 'du');
    const s = await ort.InferenceSession.create(g.serialize().model);
    const r = await s.run({
      x: new ort.Tensor('float64', new Float64Array(2), [2]),
      unused: new ort.Tensor('float64', new Float64Array(4).fill(3), [2, 2]),
    });
    expect(Array.from(r.du!.data as Float64Array)).toEqual([0, 0, 0, 0]);
    await s.release();
  });

  test('gradients of params keep the params static shapes', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['batch', 'seq', 4]);
    const w = g.param('w', 'float32', [4, 3]);
    const b = g.param('b', 'float32', [3]);
    const [dw, db] = grad(op.reduceMean(op.add(op.matmul(x, w), b)), [w, b]);
    expect(dw!.shape).toEqual([4, 3]);
    expect(db!.shape).toEqual([3]);
  });

  test('differentiating through a non-differentiable path is refused with a typed error', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3]);
    const lo = g.input('lo', 'float64', []);
    const errs = [
      () => grad(op.reduceSum(op.clip(x, lo, 1)), [lo]),
      () => grad(op.reduceSum(x), [g.input('i', 'int64', [2])]),
      () => grad(x, [x]),
      () =>
        grad(
          op.reduceSum(
            g.addNode(
              'Split',
              [x],
              [
                { dtype: 'float64', shape: [1] },
                { dtype: 'float64', shape: [2] },
              ],
              { axis: { kind: 'int', value: 0 } },
            )[1]!,
          ),
          [x],
        ),
      () => grad(op.reduceSum(g.addNode('Erf', [x], [{ dtype: 'float64', shape: [3] }])[0]!), [x]),
    ].map((f) => {
      try {
        f();
        return 'none';
      } catch (err) {
        return isDrError(err) ? err.code : String(err);
      }
    });
    expect(errs).toEqual([
      'ONNX_NOT_DIFFERENTIABLE',
      'ONNX_NOT_DIFFERENTIABLE',
      'ONNX_BAD_SHAPE',
      'ONNX_NOT_DIFFERENTIABLE',
      'ONNX_NOT_DIFFERENTIABLE',
    ]);
  });
});

describe('grad of composite blocks', () => {
  test('causal multi-head attention with RMSNorm, rotate-half and a padding mask matches finite differences', async () => {
    const [B, T, H, D] = [2, 3, 2, 2];
    const E = H * D;
    const vals = (n: number, scale: number): Float64Array =>
      Float64Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + scale) * scale);
    const result = await gradCheck((g) => {
      const x = g.input('x', 'float64', ['batch', 'seq', E]);
      const keep = g.input('keep', 'bool', ['batch', 'seq']);
      const wq = g.param('wq', 'float64', [E, E]);
      const wk = g.param('wk', 'float64', [E, E]);
      const wv = g.param('wv', 'float64', [E, E]);
      const norm = g.param('norm', 'float64', [E]);
      const h = op.mul(op.div(x, op.sqrt(op.add(op.reduceMean(op.mul(x, x), [-1], true), 1e-6))), norm);
      const heads = (w: Tensor): Tensor =>
        op.transpose(op.reshape(op.matmul(h, w), [0, 0, H, D]), [0, 2, 1, 3]);
      const rotate = (t: Tensor): Tensor =>
        op.add(
          t,
          op.concat(
            [
              op.neg(op.slice(t, { starts: [D / 2], ends: [D], axes: [-1] })),
              op.slice(t, { starts: [0], ends: [D / 2], axes: [-1] }),
            ],
            -1,
          ),
        );
      const q = rotate(heads(wq));
      const k = rotate(heads(wk));
      const scores = op.mul(op.matmul(q, op.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(D));
      const seq = op.dimOf(x, 1);
      const allowed = op.and(op.causalMask(g, seq, seq), op.unsqueeze(keep, [1, 2]));
      const probs = op.softmax(op.where(allowed, scores, -1e9), -1);
      const out = op.reshape(op.transpose(op.matmul(probs, heads(wv)), [0, 2, 1, 3]), [0, 0, E]);
      const loss = op.reduceSum(op.mul(out, op.tanh(x)));
      return {
        loss,
        wrt: [x, wq, wk, wv, norm],
        feeds: {
          x: new ort.Tensor('float64', vals(B * T * E, 1), [B, T, E]),
          keep: new ort.Tensor('bool', Uint8Array.of(1, 1, 1, 0, 1, 1), [B, T]),
          wq: new ort.Tensor('float64', vals(E * E, 0.5), [E, E]),
          wk: new ort.Tensor('float64', vals(E * E, 0.7), [E, E]),
          wv: new ort.Tensor('float64', vals(E * E, 0.9), [E, E]),
          norm: new ort.Tensor('float64', vals(E, 1.1), [E]),
        },
      };
    });
    expect(result.maxError).toBeLessThan(1e-6);
    expect(Math.max(...Array.from(result.analytic.wq!, Math.abs))).toBeGreaterThan(1e-3);
  });
});
