import { afterAll, describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { trainStep } from './adamw.ts';
import { Graph, type Tensor } from './graph.ts';
import * as op from './ops.ts';
import { OnnxSession } from './session.ts';
import { TrainState } from './train-state.ts';

const sessions: OnnxSession[] = [];
afterAll(async () => Promise.all(sessions.map((s) => s.release())));

/** torch.optim.AdamW's update rule written out on plain arrays, with clip_grad_norm_ before it. */
function referenceAdamW(
  p0: number[],
  gradAt: (p: number[]) => number[],
  steps: number,
  o: { lr: number; b1: number; b2: number; eps: number; wd: number; maxNorm: number },
): number[] {
  let p = [...p0];
  let m = p.map(() => 0);
  let v = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    let gr = gradAt(p);
    const norm = Math.sqrt(gr.reduce((s, x) => s + x * x, 0));
    const coef = Math.min(1, o.maxNorm / (norm + 1e-6));
    gr = gr.map((x) => x * coef);
    p = p.map((x) => x * (1 - o.lr * o.wd));
    m = m.map((x, i) => o.b1 * x + (1 - o.b1) * gr[i]!);
    v = v.map((x, i) => o.b2 * x + (1 - o.b2) * gr[i]! * gr[i]!);
    const bc1 = 1 - o.b1 ** t;
    const bc2 = 1 - o.b2 ** t;
    p = p.map((x, i) => x - (o.lr / bc1) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + o.eps)));
  }
  return p;
}

describe('AdamW as graph ops', () => {
  test('three steps match the AdamW rule with decoupled decay, bias correction and grad-norm clipping', async () => {
    const c = [1, -2, 0.5];
    const o = { lr: 0.1, b1: 0.8, b2: 0.95, eps: 1e-8, wd: 0.05, maxNorm: 1 };
    const g = new Graph('adamw');
    const p = g.param('p', 'float64', [3]);
    const cT = g.constant(c, 'float64');
    // loss = sum(c * p) + 0.5 * sum(p^2): gradient c + p changes every step, so moments matter.
    const loss = op.add(op.reduceSum(op.mul(p, cT)), op.mul(op.reduceSum(op.mul(p, p)), 0.5));
    trainStep(loss, { beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: o.wd, maxGradNorm: o.maxNorm });
    const session = await OnnxSession.create(g);
    sessions.push(session);
    const p0 = [0.5, -1, 2];
    const state = new TrainState({ p: { dims: [3], data: Float64Array.from(p0) } });
    const first = await state.run(session, {}, o.lr);
    expect(first.gradNorm).toBeCloseTo(Math.hypot(1.5, -3, 2.5), 12);
    await state.run(session, {}, o.lr);
    await state.run(session, {}, o.lr);
    const expected = referenceAdamW(p0, (q) => q.map((x, i) => x + c[i]!), 3, o);
    Array.from(state.param('p')).forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 12));
    expect(state.step).toBe(3);
  });

  test('running a session that is not a train step over these params is refused with a typed error', async () => {
    const g = new Graph('forward-only');
    g.output(op.mul(g.param('w', 'float64', [1]), 2), 'y');
    const session = await OnnxSession.create(g);
    sessions.push(session);
    const state = new TrainState({ w: { dims: [1], data: Float64Array.of(1) } });
    await expect(state.run(session, {}, 0.1)).rejects.toMatchObject({ code: 'ONNX_NOT_A_TRAIN_STEP' });
    expect(state.step).toBe(0);
  });

  test('params excluded from decay are only moved by the gradient', async () => {
    const g = new Graph('nodecay');
    const w = g.param('w', 'float64', [1]);
    const b = g.param('b', 'float64', [1]);
    trainStep(op.reduceSum(op.mul(op.add(w, b), 0)), { weightDecay: 0.5, decays: (t) => t.name === 'w' });
    const session = await OnnxSession.create(g);
    sessions.push(session);
    const state = new TrainState({
      w: { dims: [1], data: Float64Array.of(2) },
      b: { dims: [1], data: Float64Array.of(2) },
    });
    await state.run(session, {}, 0.1);
    expect(state.param('w')[0]).toBeCloseTo(2 * (1 - 0.1 * 0.5), 12);
    expect(state.param('b')[0]).toBe(2);
  });

  test('a two-layer MLP trained with the AdamW graph fits a nonlinear boundary', async () => {
    const n = 64;
    const xs = new Float32Array(n * 2);
    const ys = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const a = (i / n) * 2 * Math.PI;
      const r = i % 2 === 0 ? 0.5 : 1.5;
      xs[2 * i] = r * Math.cos(a * 3);
      xs[2 * i + 1] = r * Math.sin(a * 3);
      ys[i] = BigInt(i % 2);
    }
    const g = new Graph('mlp');
    const x = g.input('x', 'float32', ['batch', 2]);
    const y = g.input('y', 'int64', ['batch', 1]);
    const layer = (h: Tensor, w: Tensor, b: Tensor): Tensor => op.add(op.matmul(h, w), b);
    const h = op.tanh(layer(x, g.param('w1', 'float32', [2, 16]), g.param('b1', 'float32', [16])));
    const logp = op.logSoftmax(layer(h, g.param('w2', 'float32', [16, 2]), g.param('b2', 'float32', [2])));
    const loss = op.neg(op.reduceMean(op.gatherElements(logp, y, 1)));
    trainStep(loss, { weightDecay: 0, maxGradNorm: 5, decays: (p) => p.name.startsWith('w') });
    const session = await OnnxSession.create(g, { intraOpThreads: 1 });
    sessions.push(session);

    let seed = 7;
    const rnd = (k: number, scale: number): Float32Array =>
      Float32Array.from({ length: k }, () => {
        seed = (seed * 16807) % 2147483647;
        return (seed / 2147483647 - 0.5) * 2 * scale;
      });
    const state = new TrainState({
      w1: { dims: [2, 16], data: rnd(32, 1) },
      b1: { dims: [16], data: new Float32Array(16) },
      w2: { dims: [16, 2], data: rnd(32, 0.3) },
      b2: { dims: [2], data: new Float32Array(2) },
    });
    const batch = { x: new ort.Tensor('float32', xs, [n, 2]), y: new ort.Tensor('int64', ys, [n, 1]) };
    const losses: number[] = [];
    for (let i = 0; i < 300; i++) losses.push((await state.run(session, batch, 0.03)).loss);
    expect(losses[0]!).toBeGreaterThan(0.6);
    expect(losses.at(-1)!).toBeLessThan(0.2 * losses[0]!);
  });
});
