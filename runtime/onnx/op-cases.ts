/**
 * The op table the gradient tests run: one small forward expression per differentiable op (broadcasting,
 * named dims, repeated indices), with deterministic inputs. Shared by autodiff.test.ts (float64 finite
 * differences on CPU) and gpu-check.ts (CPU vs CUDA parity on the GPU machine).
 */
import * as ort from 'onnxruntime-node';
import { float32ToFloat16Bits, type Graph, type Tensor } from './graph.ts';
import * as op from './ops.ts';
import type { DType, Dim } from './types.ts';

export type Gen = 'any' | 'pos' | 'nonzero';
export interface InputSpec {
  dims: number[];
  /** Declared shape when it differs from the fed dims (named dynamic dims). */
  decl?: Dim[];
  gen?: Gen;
  dtype?: DType;
  /** Fixed data for non-float inputs (indices, conditions). */
  data?: number[];
}
export interface OpCase {
  name: string;
  inputs: Record<string, InputSpec>;
  f: (t: Record<string, Tensor>, g: Graph) => Tensor;
}

let seed = 12345;
/** Restarts the input generator so every run of the table sees the same data. */
export function resetInputs(): void {
  seed = 12345;
}
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

export const fx = (dims: number[], gen: Gen = 'any', decl?: Dim[]): InputSpec => ({ dims, gen, decl });
const ints = (dims: number[], data: number[]): InputSpec => ({ dims, dtype: 'int64', data });
const bools = (dims: number[], data: number[]): InputSpec => ({ dims, dtype: 'bool', data });

export const OP_CASES: OpCase[] = [
  {
    name: 'Add broadcasts a row vector',
    inputs: { a: fx([2, 3]), b: fx([3]) },
    f: (t) => op.add(t.a!, t.b!),
  },
  {
    name: 'Add broadcasts both sides',
    inputs: { a: fx([2, 1, 3]), b: fx([4, 1]) },
    f: (t) => op.add(t.a!, t.b!),
  },
  { name: 'Sub broadcasts a column', inputs: { a: fx([2, 3]), b: fx([2, 1]) }, f: (t) => op.sub(t.a!, t.b!) },
  {
    name: 'Mul outer-product broadcast',
    inputs: { a: fx([3, 1]), b: fx([1, 4]) },
    f: (t) => op.mul(t.a!, t.b!),
  },
  {
    name: 'Div with a broadcast denominator',
    inputs: { a: fx([2, 3]), b: fx([3], 'pos') },
    f: (t) => op.div(t.a!, t.b!),
  },
  {
    name: 'Pow in base and exponent',
    inputs: { a: fx([2, 3], 'pos'), b: fx([3]) },
    f: (t) => op.pow(t.a!, t.b!),
  },
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
  {
    name: 'Clip with only an upper bound',
    inputs: { a: fx([2, 4], 'nonzero') },
    f: (t) => op.clip(t.a!, undefined, 0.5),
  },
  {
    name: 'Where with a broadcast condition and operands',
    inputs: { c: bools([3], [1, 0, 1]), a: fx([2, 3]), b: fx([2, 1]) },
    f: (t) => op.where(t.c!, t.a!, t.b!),
  },
  { name: 'MatMul 2-D', inputs: { a: fx([2, 3]), b: fx([3, 4]) }, f: (t) => op.matmul(t.a!, t.b!) },
  {
    name: 'MatMul batched activations times a 2-D weight',
    inputs: { a: fx([2, 2, 3]), b: fx([3, 4]) },
    f: (t) => op.matmul(t.a!, t.b!),
  },
  {
    name: 'MatMul with a transposed 2-D weight (x @ W^T)',
    inputs: { a: fx([2, 2, 3]), w: fx([4, 3]) },
    f: (t) => op.matmul(t.a!, op.transpose(t.w!, [1, 0])),
  },
  {
    name: 'Gemm gradient through a transpose with transA',
    inputs: { a: fx([3, 2]), w: fx([4, 3]) },
    f: (t) =>
      op.transpose(op.gemm(t.a!, op.transpose(t.w!, [1, 0]), null, { transA: true, alpha: 0.5 }), [1, 0]),
  },
  {
    name: 'MatMul with broadcast batch dims',
    inputs: { a: fx([2, 1, 2, 3]), b: fx([3, 3, 2]) },
    f: (t) => op.matmul(t.a!, t.b!),
  },
  {
    name: 'Gemm with transposes, alpha, beta and a broadcast C',
    inputs: { a: fx([3, 2]), b: fx([4, 3]), c: fx([4]) },
    f: (t) => op.gemm(t.a!, t.b!, t.c!, { alpha: 0.7, beta: 1.3, transA: true, transB: true }),
  },
  {
    name: 'Gemm plain',
    inputs: { a: fx([2, 3]), b: fx([3, 4]) },
    f: (t) => op.gemm(t.a!, t.b!, null, { alpha: 2 }),
  },
  { name: 'Softmax on the last axis', inputs: { a: fx([2, 4]) }, f: (t) => op.softmax(t.a!, -1) },
  { name: 'Softmax on axis 0', inputs: { a: fx([3, 2]) }, f: (t) => op.softmax(t.a!, 0) },
  { name: 'LogSoftmax', inputs: { a: fx([2, 4]) }, f: (t) => op.logSoftmax(t.a!) },
  { name: 'ReduceSum over one axis', inputs: { a: fx([2, 3, 2]) }, f: (t) => op.reduceSum(t.a!, [1]) },
  { name: 'ReduceSum over all axes', inputs: { a: fx([2, 3]) }, f: (t) => op.reduceSum(t.a!) },
  {
    name: 'ReduceMean keeping dims',
    inputs: { a: fx([2, 3, 2]) },
    f: (t) => op.reduceMean(t.a!, [0, 2], true),
  },
  { name: 'ReduceMax', inputs: { a: fx([3, 4]) }, f: (t) => op.reduceMax(t.a!, [1]) },
  { name: 'Reshape', inputs: { a: fx([2, 6]) }, f: (t) => op.reshape(t.a!, [3, -1]) },
  { name: 'Transpose', inputs: { a: fx([2, 3, 4]) }, f: (t) => op.transpose(t.a!, [1, 2, 0]) },
  {
    name: 'Concat of three',
    inputs: { a: fx([2, 1]), b: fx([2, 3]), c: fx([2, 2]) },
    f: (t) => op.concat([t.a!, t.b!, t.c!], 1),
  },
  {
    name: 'Slice with negative starts on two axes',
    inputs: { a: fx([4, 5]) },
    f: (t) => op.slice(t.a!, { starts: [1, -3], ends: [3, op.TO_END], axes: [0, 1] }),
  },
  {
    // onnxruntime's transpose optimizer pushes the Transpose through the gradient's Pad.
    name: 'Slice of a transposed tensor',
    inputs: { a: fx([2, 3, 4]) },
    f: (t) => op.slice(op.transpose(t.a!, [0, 2, 1]), { starts: [1], ends: [3], axes: [-1] }),
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
  {
    name: 'token log-probs: GatherElements of LogSoftmax',
    inputs: { a: fx([2, 3, 5]), i: ints([2, 3, 1], [0, 4, 4, 2, 1, 3]) },
    f: (t) => op.gatherElements(op.logSoftmax(t.a!, -1), t.i!, -1),
  },
  {
    name: 'token log-probs used twice (entropy-style fan-out)',
    inputs: { a: fx([2, 4]), i: ints([2, 1], [3, 0]) },
    f: (t) => {
      const lp = op.logSoftmax(t.a!, -1);
      return op.add(op.gatherElements(lp, t.i!, -1), op.reduceSum(op.mul(op.exp(lp), lp), [-1], true));
    },
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

export function feedFor(spec: InputSpec, dtype: DType): ort.Tensor {
  const n = spec.dims.reduce((a, b) => a * b, 1);
  if (spec.data) {
    if (dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(spec.data, BigInt), spec.dims);
    return new ort.Tensor('bool', Uint8Array.from(spec.data), spec.dims);
  }
  const v = values(n, spec.gen ?? 'any');
  if (dtype === 'float64') return new ort.Tensor('float64', Float64Array.from(v), spec.dims);
  if (dtype === 'float16')
    return new ort.Tensor('float16', Uint16Array.from(v, float32ToFloat16Bits), spec.dims);
  return new ort.Tensor('float32', Float32Array.from(v), spec.dims);
}

/** loss = 0.5 * sum(y^2) + 0.25 * sum(y): every element of y gets a different upstream gradient. */
export function scalarLoss(y: Tensor): Tensor {
  return op.add(op.mul(op.reduceSum(op.mul(y, y)), 0.5), op.mul(op.reduceSum(y), 0.25));
}

/** Declares the case's inputs in `g` (float ones in `dtype`), returns the loss, the float inputs and feeds. */
export function buildCase(
  g: Graph,
  c: OpCase,
  dtype: DType,
): { loss: Tensor; wrt: Tensor[]; feeds: Record<string, ort.Tensor> } {
  const t: Record<string, Tensor> = {};
  const wrt: Tensor[] = [];
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, spec] of Object.entries(c.inputs)) {
    const dt = spec.dtype ?? dtype;
    t[name] = g.input(name, dt, spec.decl ?? spec.dims);
    feeds[name] = feedFor(spec, dt);
    if (!spec.data) wrt.push(t[name]);
  }
  return { loss: scalarLoss(op.cast(c.f(t, g), dtype)), wrt, feeds };
}
