import { describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { isDrError } from '../../config/errors.ts';
import { grad } from './autodiff.ts';
import { Graph, type Tensor } from './graph.ts';
import { gradCheck } from './gradcheck.ts';
import * as op from './ops.ts';
import type { DType, Dim } from './types.ts';

type Gen = 'any' | 'pos' | 'nonzero';
interface InputSpec {
  dims: number[];
  /** Declared shape when it differs from the fed dims (named dynamic dims). */
  decl?: Dim[];
  gen?: Gen;
  dtype?: DType;
  /** Fixed data for non-float inputs (indices, conditions). */
  data?: number[];
}
interface Case {
  name: string;
  inputs: Record<string, InputSpec>;
  f: (t: Record<string, Tensor>, g: Graph) => Tensor;
}

let seed = 12345;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
function values(n: number, gen: Gen): number[] {
  return Array.from({ length: n }, () => {
    const u = rand();
    if (gen === 'pos') return 0.5 + 1.5 * u;
    if (gen === 'nonzero') return (u < 0.5 ? -1 : 1) * (0.3 + rand());
    return 2 * u - 1;
  });
}

const fx = (dims: number[], gen: Gen = 'any', decl?: Dim[]): InputSpec => ({ dims, gen, decl });
const ints = (dims: number[], data: number[]): InputSpec => ({ dims, dtype: 'int64', data });
const bools = (dims: number[], data: number[]): InputSpec => ({ dims, dtype: 'bool', data });

const CASES: Case[] = [
  { name: 'Add broadcasts a row vector', inputs: { a: fx([2, 3]), b: fx([3]) }, f: (t) => op.add(t.a!, t.b!) },
  { name: 'Add broadcasts both sides', inputs: { a: fx([2, 1, 3]), b: fx([4, 1]) }, f: (t) => op.add(t.a!, t.b!) },
  { name: 'Sub broadcasts a column', inputs: { a: fx([2, 3]), b: fx([2, 1]) }, f: (t) => op.sub(t.a!, t.b!) },
  { name: 'Mul outer-product broadcast', inputs: { a: fx([3, 1]), b: fx([1, 4]) }, f: (t) => op.mul(t.a!, t.b!) },
  { name: 'Div with a broadcast denominator', inputs: { a: fx([2, 3]), b: fx([3], 'pos') }, f: (t) => op.div(t.a!, t.b!) },
  { name: 'Pow in base and exponent', inputs: { a: fx([2, 3], 'pos'), b: fx([3]) }, f: (t) => op.pow(t.a!, t.b!) },
  { name: 'Neg', inputs: { a: fx([2, 3]) }, f: (t) => op.neg(t.a!) },
  { name: 'Abs', inputs: { a: fx([2, 3], 'nonzero') }, f: (t) => op.abs(t.a!) },
  { name: 'Sqrt', inputs: { a: fx([2, 3], 'pos') }, f: (t) => op.sqrt(t.a!) },
  { name: 'Exp', inputs: { a: fx([2, 3]) }, f: (t) => op.exp(t.a!) },
  { name: 'Log', inputs: { a: fx([2, 3], 'pos') }, f: (t) => op.log(t.a!) },
  { name: 'Reciprocal', inputs: { a: fx([2, 3], 'pos') }, f: (t) => op.reciprocal(t.a!) },
  { name: 'Sigmoid', inputs: { a: fx([2, 3]) }, f: (t) => op.sigmoid(t.a!) },
  { name: 'Tanh', inputs: { a: fx([2, 3]) }, f: (t) => op.tanh(t.a!) },
  { name: 'Relu', inputs: { a: fx([2, 3], 'nonzero') }, f: (t) => op.relu(t.a!) },
  { name: 'Sin', inputs: { a: fx([2, 3]) }, f: (t) => op.sin(t.a!) },
  { name: 'Cos', inputs: { a: fx([2, 3]) }, f: (t) => op.cos(t.a!) },
  { name: 'SiLU (composite)', inputs: { a: fx([2, 3]) }, f: (t) => op.silu(t.a!) },
  { name: 'Max with broadcasting', inputs: { a: fx([2, 3]), b: fx([3]) }, f: (t) => op.max(t.a!, t.b!) },
  { name: 'Min with broadcasting', inputs: { a: fx([2, 3]), b: fx([2, 1]) }, f: (t) => op.min(t.a!, t.b!) },
  { name: 'Clip to [-0.5, 0.5]', inputs: { a: fx([2, 4], 'nonzero') }, f: (t) => op.clip(t.a!, -0.5, 0.5) },
  { name: 'Clip with only an upper bound', inputs: { a: fx([2, 4], 'nonzero') }, f: (t) => op.clip(t.a!, undefined, 0.5) },
  {
    name: 'Where with a broadcast condition and operands',
    inputs: { c: bools([3], [1, 0, 1]), a: fx([2, 3]), b: fx([2, 1]) },
    f: (t) => op.where(t.c!, t.a!, t.b!),
  },
  { name: 'MatMul 2-D', inputs: { a: fx([2, 3]), b: fx([3, 4]) }, f: (t) => op.matmul(t.a!, t.b!) },
  { name: 'MatMul batched activations times a 2-D weight', inputs: { a: fx([2, 2, 3]), b: fx([3, 4]) }, f: (t) => op.matmul(t.a!, t.b!) },
  { name: 'MatMul with broadcast batch dims', inputs: { a: fx([2, 1, 2, 3]), b: fx([3, 3, 2]) }, f: (t) => op.matmul(t.a!, t.b!) },
  {
    name: 'Gemm with transposes, alpha, beta and a broadcast C',
    inputs: { a: fx([3, 2]), b: fx([4, 3]), c: fx([4]) },
    f: (t) => op.gemm(t.a!, t.b!, t.c!, { alpha: 0.7, beta: 1.3, transA: true, transB: true }),
  },
  { name: 'Gemm plain', inputs: { a: fx([2, 3]), b: fx([3, 4]) }, f: (t) => op.gemm(t.a!, t.b!, null, { alpha: 2 }) },
  { name: 'Softmax on the last axis', inputs: { a: fx([2, 4]) }, f: (t) => op.softmax(t.a!, -1) },
  { name: 'Softmax on axis 0', inputs: { a: fx([3, 2]) }, f: (t) => op.softmax(t.a!, 0) },
  { name: 'LogSoftmax', inputs: { a: fx([2, 4]) }, f: (t) => op.logSoftmax(t.a!) },
  { name: 'ReduceSum over one axis', inputs: { a: fx([2, 3, 2]) }, f: (t) => op.reduceSum(t.a!, [1]) },
  { name: 'ReduceSum over all axes', inputs: { a: fx([2, 3]) }, f: (t) => op.reduceSum(t.a!) },
  { name: 'ReduceMean keeping dims', inputs: { a: fx([2, 3, 2]) }, f: (t) => op.reduceMean(t.a!, [0, 2], true) },
  { name: 'ReduceMax', inputs: { a: fx([3, 4]) }, f: (t) => op.reduceMax(t.a!, [1]) },
  { name: 'Reshape', inputs: { a: fx([2, 6]) }, f: (t) => op.reshape(t.a!, [3, -1]) },
  { name: 'Transpose', inputs: { a: fx([2, 3, 4]) }, f: (t) => op.transpose(t.a!, [1, 2, 0]) },
  { name: 'Concat of three', inputs: { a: fx([2, 1]), b: fx([2, 3]), c: fx([2, 2]) }, f: (t) => op.concat([t.a!, t.b!, t.c!], 1) },
  {
    name: 'Slice with negative starts on two axes',
    inputs: { a: fx([4, 5]) },
    f: (t) => op.slice(t.a!, { starts: [1, -3], ends: [3, op.TO_END], axes: [0, 1] }),
  },
  { name: 'Unsqueeze', inputs: { a: fx([2, 3]) }, f: (t) => op.unsqueeze(t.a!, [0, 2]) },
  { name: 'Squeeze', inputs: { a: fx([2, 1, 3]) }, f: (t) => op.squeeze(t.a!, [1]) },
  { name: 'Expand', inputs: { a: fx([3, 1]) }, f: (t) => op.expand(t.a!, [2, 3, 4]) },
  { name: 'Trilu lower with offset', inputs: { a: fx([3, 4]) }, f: (t) => op.trilu(t.a!, false, 1) },
  { name: 'Trilu upper', inputs: { a: fx([3, 3]) }, f: (t) => op.trilu(t.a!, true) },
  {
    name: 'Gather rows with repeated indices (embedding)',
    inputs: { e: fx([5, 3]), i: ints([2, 3], [1, 4, 1, 0, 1, -1]) },
    f: (t) => op.gather(t.e!, t.i!),
  },
  {
    name: 'GatherElements on the last axis with repeats',
    inputs: { a: fx([2, 4]), i: ints([2, 3], [0, 3, 3, 2, 2, 1]) },
    f: (t) => op.gatherElements(t.a!, t.i!, -1),
  },
  { name: 'Identity', inputs: { a: fx([2, 2]) }, f: (t) => op.identity(t.a!) },
  {
    name: 'Add with named dims reduces broadcast axes at run time',
    inputs: { a: fx([2, 3], 'any', ['n', 'm']), b: fx([1, 3], 'any', ['one', 'm']) },
    f: (t) => op.add(t.a!, t.b!),
  },
  {
    name: 'Mul of unknown-size operands',
    inputs: { a: fx([2, 1], 'any', ['n', 'p']), b: fx([2, 3], 'any', ['n', 'q']) },
    f: (t) => op.mul(t.a!, t.b!),
  },
  {
    name: 'Concat of named-dim operands',
    inputs: { a: fx([2, 2], 'any', ['n', 'past']), b: fx([2, 1], 'any', ['n', 'seq']) },
    f: (t) => op.concat([t.a!, t.b!], 1),
  },
  {
    name: 'Slice of a named-dim operand',
    inputs: { a: fx([3, 4], 'any', ['n', 'seq']) },
    f: (t) => op.slice(t.a!, { starts: [-2], ends: [op.TO_END], axes: [1] }),
  },
  {
    name: 'ReduceMean and Reshape over named dims',
    inputs: { a: fx([2, 3, 2], 'any', ['b', 's', 2]) },
    f: (t) => op.reshape(op.reduceMean(t.a!, [1], true), [0, -1]),
  },
  {
    name: 'Gather from a named-dim table',
    inputs: { e: fx([4, 2], 'any', ['v', 2]), i: ints([3], [3, 0, 3]) },
    f: (t) => op.gather(t.e!, t.i!),
  },
];

function feedFor(spec: InputSpec, dtype: DType): ort.Tensor {
  const n = spec.dims.reduce((a, b) => a * b, 1);
  if (spec.data) {
    if (dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(spec.data, BigInt), spec.dims);
    return new ort.Tensor('bool', Uint8Array.from(spec.data), spec.dims);
  }
  const v = values(n, spec.gen ?? 'any');
  return dtype === 'float64' ? new ort.Tensor('float64', Float64Array.from(v), spec.dims) : new ort.Tensor('float32', Float32Array.from(v), spec.dims);
}

/** loss = 0.5 * sum(y^2) + 0.25 * sum(y): every element of y gets a different upstream gradient. */
function scalarLoss(y: Tensor): Tensor {
  return op.add(op.mul(op.reduceSum(op.mul(y, y)), 0.5), op.mul(op.reduceSum(y), 0.25));
}

async function check(c: Case, dtype: DType, eps?: number): Promise<number> {
  const feeds: Record<string, ort.Tensor> = {};
  const result = await gradCheck((g) => {
    const t: Record<string, Tensor> = {};
    const wrt: Tensor[] = [];
    for (const [name, spec] of Object.entries(c.inputs)) {
      const dt = spec.dtype ?? dtype;
      t[name] = g.input(name, dt, spec.decl ?? spec.dims);
      feeds[name] = feedFor(spec, dt);
      if (!spec.data) wrt.push(t[name]);
    }
    const y = c.f(t, g);
    return { loss: scalarLoss(op.cast(y, dtype)), wrt };
  }, feeds, { eps });
  return result.maxError;
}

describe('grad matches central finite differences in float64', () => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    expect(await check(c, 'float64')).toBeLessThan(1e-6);
  });
});

describe('grad in float32 (ops onnxruntime runs only in float32 on CPU, and dtype casts)', () => {
  test('Cast float64 -> float32 -> float64 passes the gradient through both casts', async () => {
    const c: Case = { name: 'cast', inputs: { a: fx([2, 3]) }, f: (t) => op.cast(op.mul(op.cast(t.a!, 'float32'), 2), 'float64') };
    expect(await check(c, 'float64', 1e-3)).toBeLessThan(1e-4);
  });
  test('a softmax MLP block in float32 within float32 tolerance', async () => {
    const c: Case = {
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

  test('a wrt tensor the loss does not depend on gets zeros of its shape', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2]);
    const unused = g.param('unused', 'float64', [2, 2]);
    const [, du] = grad(op.reduceSum(op.exp(x)), [x, unused]);
    expect(du!.shape).toEqual([2, 2]);
    g.output(du!, 'du');
    const s = await ort.InferenceSession.create(g.serialize().model);
    const r = await s.run({ x: new ort.Tensor('float64', new Float64Array(2), [2]), unused: new ort.Tensor('float64', new Float64Array(4).fill(3), [2, 2]) });
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
    ].map((f) => {
      try {
        f();
        return 'none';
      } catch (err) {
        return isDrError(err) ? err.code : String(err);
      }
    });
    expect(errs).toEqual(['ONNX_NOT_DIFFERENTIABLE', 'ONNX_NOT_DIFFERENTIABLE', 'ONNX_BAD_SHAPE']);
  });
});
