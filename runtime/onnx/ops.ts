/**
 * Op builders: each validates its operands, infers the output dtype and shape, and appends one standard
 * ONNX node (opset >= 17) to the operands' graph. A `number` operand becomes a scalar constant of the other
 * operand's dtype. Which of these have gradients is listed in `autodiff.ts` (and the README).
 */
import { DrError } from '../../config/errors.ts';
import { attr, typedArrayFrom, type AttrValue, type Graph, type Tensor } from './graph.ts';
import { broadcastShapes } from './shape-inference.ts';
import { ONNX_ELEM_TYPE, formatShape, isFloat, normAxis, type DType, type Dim, type Shape } from './types.ts';

export type TensorLike = Tensor | number;

/** The largest int64 Slice bound, meaning "to the end". */
export const TO_END = Number.MAX_SAFE_INTEGER;

function one(
  g: Graph,
  op: string,
  inputs: readonly (Tensor | null)[],
  dtype: DType,
  shape: Shape,
  attrs: Record<string, AttrValue> = {},
): Tensor {
  return g.addNode(op, inputs, [{ dtype, shape }], attrs)[0]!;
}

function graphOf(...xs: TensorLike[]): Graph {
  for (const x of xs) if (typeof x !== 'number') return x.graph;
  throw new DrError(
    'ONNX_NO_TENSOR',
    'an op needs at least one Tensor operand (numbers alone have no graph)',
  );
}

function dtypeOf(...xs: TensorLike[]): DType {
  for (const x of xs) if (typeof x !== 'number') return x.dtype;
  throw new DrError('ONNX_NO_TENSOR', 'an op needs at least one Tensor operand');
}

/** Lifts numbers to scalar constants of `dtype`. */
export function lift(g: Graph, x: TensorLike, dtype: DType): Tensor {
  return typeof x === 'number' ? g.constant(x, dtype) : x;
}

function sameDtype(op: string, ...ts: Tensor[]): DType {
  const d = ts[0]!.dtype;
  for (const t of ts) {
    if (t.dtype !== d)
      throw new DrError(
        'ONNX_DTYPE_MISMATCH',
        `${op}: operands ${ts.map(String).join(', ')} differ in dtype; Cast one first`,
      );
  }
  return d;
}

function requireFloat(op: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new DrError('ONNX_DTYPE_MISMATCH', `${op} needs a float tensor, got ${t}`);
}

function int64s(g: Graph, values: readonly number[]): Tensor {
  return g.constant(values, 'int64');
}

// ---- elementwise -------------------------------------------------------------------------------------

function binary(op: string, a: TensorLike, b: TensorLike, outDtype?: DType): Tensor {
  const g = graphOf(a, b);
  const dt = dtypeOf(a, b);
  const ta = lift(g, a, dt);
  const tb = lift(g, b, dt);
  const d = sameDtype(op, ta, tb);
  return one(g, op, [ta, tb], outDtype ?? d, broadcastShapes(op, ta.shape, tb.shape));
}

export const add = (a: TensorLike, b: TensorLike): Tensor => binary('Add', a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => binary('Sub', a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => binary('Mul', a, b);
export const div = (a: TensorLike, b: TensorLike): Tensor => binary('Div', a, b);
export const pow = (a: TensorLike, b: TensorLike): Tensor => binary('Pow', a, b);
export const min = (a: TensorLike, b: TensorLike): Tensor => binary('Min', a, b);
export const max = (a: TensorLike, b: TensorLike): Tensor => binary('Max', a, b);
export const equal = (a: TensorLike, b: TensorLike): Tensor => binary('Equal', a, b, 'bool');
export const less = (a: TensorLike, b: TensorLike): Tensor => binary('Less', a, b, 'bool');
export const lessOrEqual = (a: TensorLike, b: TensorLike): Tensor => binary('LessOrEqual', a, b, 'bool');
export const greater = (a: TensorLike, b: TensorLike): Tensor => binary('Greater', a, b, 'bool');
export const greaterOrEqual = (a: TensorLike, b: TensorLike): Tensor =>
  binary('GreaterOrEqual', a, b, 'bool');

function logical(op: string, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'bool' || b.dtype !== 'bool')
    throw new DrError('ONNX_DTYPE_MISMATCH', `${op} needs bool operands, got ${a} and ${b}`);
  return one(a.graph, op, [a, b], 'bool', broadcastShapes(op, a.shape, b.shape));
}
export const and = (a: Tensor, b: Tensor): Tensor => logical('And', a, b);
export const or = (a: Tensor, b: Tensor): Tensor => logical('Or', a, b);
export function not(a: Tensor): Tensor {
  if (a.dtype !== 'bool') throw new DrError('ONNX_DTYPE_MISMATCH', `Not needs a bool operand, got ${a}`);
  return one(a.graph, 'Not', [a], 'bool', a.shape);
}

function unary(op: string, x: Tensor, float = true): Tensor {
  if (float) requireFloat(op, x);
  return one(x.graph, op, [x], x.dtype, x.shape);
}
export const neg = (x: Tensor): Tensor => unary('Neg', x, false);
export const abs = (x: Tensor): Tensor => unary('Abs', x, false);
export const sqrt = (x: Tensor): Tensor => unary('Sqrt', x);
export const exp = (x: Tensor): Tensor => unary('Exp', x);
export const log = (x: Tensor): Tensor => unary('Log', x);
export const sigmoid = (x: Tensor): Tensor => unary('Sigmoid', x);
export const tanh = (x: Tensor): Tensor => unary('Tanh', x);
export const relu = (x: Tensor): Tensor => unary('Relu', x);
export const sin = (x: Tensor): Tensor => unary('Sin', x);
export const cos = (x: Tensor): Tensor => unary('Cos', x);
export const reciprocal = (x: Tensor): Tensor => unary('Reciprocal', x);
export const sign = (x: Tensor): Tensor => unary('Sign', x, false);
export const identity = (x: Tensor): Tensor => unary('Identity', x, false);

/** x * sigmoid(x), composed so that it differentiates with the primitives. */
export const silu = (x: Tensor): Tensor => mul(x, sigmoid(x));

/** Clamps to [lo, hi]; either bound may be omitted (PPO ratio clipping). */
export function clip(x: Tensor, lo?: TensorLike, hi?: TensorLike): Tensor {
  const g = x.graph;
  const l = lo === undefined ? null : lift(g, lo, x.dtype);
  const h = hi === undefined ? null : lift(g, hi, x.dtype);
  for (const b of [l, h]) {
    if (b && (b.rank !== 0 || b.dtype !== x.dtype))
      throw new DrError('ONNX_BAD_SHAPE', `Clip bounds must be ${x.dtype} scalars, got ${b}`);
  }
  return one(g, 'Clip', [x, l, h], x.dtype, x.shape);
}

export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (cond.dtype !== 'bool')
    throw new DrError('ONNX_DTYPE_MISMATCH', `Where needs a bool condition, got ${cond}`);
  const g = cond.graph;
  const dt = dtypeOf(a, b);
  const ta = lift(g, a, dt);
  const tb = lift(g, b, dt);
  sameDtype('Where', ta, tb);
  return one(g, 'Where', [cond, ta, tb], dt, broadcastShapes('Where', cond.shape, ta.shape, tb.shape));
}

export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x;
  return one(x.graph, 'Cast', [x], to, x.shape, { to: attr.int(ONNX_ELEM_TYPE[to]) });
}

// ---- linear algebra ----------------------------------------------------------------------------------

/** Batched matrix product (numpy matmul over rank >= 2 operands, batch dims broadcast). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  sameDtype('MatMul', a, b);
  if (a.rank < 2 || b.rank < 2)
    throw new DrError(
      'ONNX_BAD_SHAPE',
      `MatMul needs rank >= 2 operands, got ${a} and ${b}; Unsqueeze vectors first`,
    );
  const [m, k1] = a.shape.slice(-2) as [Dim, Dim];
  const [k2, n] = b.shape.slice(-2) as [Dim, Dim];
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
    throw new DrError('ONNX_SHAPE_MISMATCH', `MatMul: inner dims differ, ${a} @ ${b}`);
  }
  const batch = broadcastShapes('MatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  return one(a.graph, 'MatMul', [a, b], a.dtype, [...batch, m, n]);
}

export interface GemmOptions {
  alpha?: number;
  beta?: number;
  transA?: boolean;
  transB?: boolean;
}

/** alpha * op(A) @ op(B) + beta * C for 2-D A and B. */
export function gemm(a: Tensor, b: Tensor, c: Tensor | null = null, o: GemmOptions = {}): Tensor {
  sameDtype('Gemm', a, b, ...(c ? [c] : []));
  if (a.rank !== 2 || b.rank !== 2)
    throw new DrError('ONNX_BAD_SHAPE', `Gemm needs 2-D A and B, got ${a} and ${b}`);
  const [m, ka] = o.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, n] = o.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb)
    throw new DrError('ONNX_SHAPE_MISMATCH', `Gemm: inner dims differ, ${a} and ${b}`);
  const shape = c ? broadcastShapes('Gemm', [m, n], c.shape) : [m, n];
  return one(a.graph, 'Gemm', [a, b, c], a.dtype, shape, {
    alpha: attr.float(o.alpha ?? 1),
    beta: attr.float(o.beta ?? 1),
    transA: attr.int(o.transA ? 1 : 0),
    transB: attr.int(o.transB ? 1 : 0),
  });
}

// ---- normalisation and reductions --------------------------------------------------------------------

export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('Softmax', x);
  return one(x.graph, 'Softmax', [x], x.dtype, x.shape, { axis: attr.int(normAxis(axis, x.rank)) });
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  requireFloat('LogSoftmax', x);
  return one(x.graph, 'LogSoftmax', [x], x.dtype, x.shape, { axis: attr.int(normAxis(axis, x.rank)) });
}

function reduce(op: string, x: Tensor, axes: readonly number[] | undefined, keepdims: boolean): Tensor {
  const all = axes === undefined;
  const norm = (axes ?? x.shape.map((_, i) => i))
    .map((a) => normAxis(a, x.rank, `${op} axis`))
    .sort((p, q) => p - q);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!norm.includes(i)) shape.push(d);
    else if (keepdims) shape.push(1);
  });
  const inputs = all ? [x] : [x, int64s(x.graph, norm)];
  return one(x.graph, op, inputs, x.dtype, shape, { keepdims: attr.int(keepdims ? 1 : 0) });
}
/** Sum over `axes` (all axes when omitted). */
export const reduceSum = (x: Tensor, axes?: readonly number[], keepdims = false): Tensor =>
  reduce('ReduceSum', x, axes, keepdims);
export const reduceMean = (x: Tensor, axes?: readonly number[], keepdims = false): Tensor =>
  reduce('ReduceMean', x, axes, keepdims);
export const reduceMax = (x: Tensor, axes?: readonly number[], keepdims = false): Tensor =>
  reduce('ReduceMax', x, axes, keepdims);

// ---- indexing ----------------------------------------------------------------------------------------

/** numpy take along `axis` (embedding lookup with axis 0). */
export function gather(data: Tensor, indices: Tensor, axis = 0): Tensor {
  requireIndex('Gather', indices);
  const a = normAxis(axis, data.rank);
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return one(data.graph, 'Gather', [data, indices], data.dtype, shape, { axis: attr.int(a) });
}

/** out[i][j] = data[index[i][j]][j] for axis 0 (token log-probs: gatherElements(logp, ids, -1)). */
export function gatherElements(data: Tensor, indices: Tensor, axis = 0): Tensor {
  requireIndex('GatherElements', indices);
  if (indices.rank !== data.rank)
    throw new DrError(
      'ONNX_BAD_SHAPE',
      `GatherElements needs indices of the data's rank, got ${data} and ${indices}`,
    );
  return one(data.graph, 'GatherElements', [data, indices], data.dtype, indices.shape, {
    axis: attr.int(normAxis(axis, data.rank)),
  });
}

/** Scatters `updates` at `indices` into a copy of `data` (`reduction: 'add'` accumulates duplicates). */
export function scatterElements(
  data: Tensor,
  indices: Tensor,
  updates: Tensor,
  axis = 0,
  reduction: 'none' | 'add' = 'none',
): Tensor {
  requireIndex('ScatterElements', indices);
  return one(data.graph, 'ScatterElements', [data, indices, updates], data.dtype, data.shape, {
    axis: attr.int(normAxis(axis, data.rank)),
    reduction: attr.string(reduction),
  });
}

export function scatterND(
  data: Tensor,
  indices: Tensor,
  updates: Tensor,
  reduction: 'none' | 'add' = 'none',
): Tensor {
  requireIndex('ScatterND', indices);
  return one(data.graph, 'ScatterND', [data, indices, updates], data.dtype, data.shape, {
    reduction: attr.string(reduction),
  });
}

function requireIndex(op: string, t: Tensor): void {
  if (t.dtype !== 'int64' && t.dtype !== 'int32')
    throw new DrError('ONNX_DTYPE_MISMATCH', `${op} needs int64 or int32 indices, got ${t}`);
}

// ---- shape manipulation ------------------------------------------------------------------------------

/** ONNX Reshape: 0 copies the input dim, -1 is inferred; `shape` may be a runtime int64 tensor. */
export function reshape(x: Tensor, shape: readonly number[] | Tensor): Tensor {
  if (typeof (shape as Tensor).graph === 'object') {
    const s = shape as Tensor;
    const len = s.shape[0];
    if (s.rank !== 1 || typeof len !== 'number')
      throw new DrError('ONNX_BAD_SHAPE', `Reshape needs a 1-D shape tensor of static length, got ${s}`);
    return one(
      x.graph,
      'Reshape',
      [x, s],
      x.dtype,
      Array.from({ length: len }, () => null),
    );
  }
  const dims = shape as readonly number[];
  const out: Dim[] = dims.map((d, i) => (d === 0 ? (x.shape[i] ?? null) : d === -1 ? null : d));
  const minus = dims.indexOf(-1);
  if (minus >= 0) {
    if (dims.lastIndexOf(-1) !== minus)
      throw new DrError('ONNX_BAD_SHAPE', `Reshape: at most one -1 in ${formatShape(dims)}`);
    out[minus] = inferMinusOne(x.shape, out);
  }
  return one(x.graph, 'Reshape', [x, int64s(x.graph, dims)], x.dtype, out);
}

function inferMinusOne(from: Shape, to: Dim[]): Dim {
  const rest = [...from];
  let known = 1;
  for (const d of to) {
    if (d === null) continue;
    const at = rest.indexOf(d);
    if (typeof d === 'string' && at >= 0) rest.splice(at, 1);
    else if (typeof d === 'number') known *= d;
    else return null;
  }
  let left = 1;
  for (const d of rest) {
    if (typeof d !== 'number') return rest.length === 1 && known === 1 ? d : null;
    left *= d;
  }
  if (left % known !== 0)
    throw new DrError(
      'ONNX_BAD_SHAPE',
      `Reshape: ${formatShape(from)} does not split into ${formatShape(to)}`,
    );
  return left / known;
}

export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  if (p.length !== x.rank || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new DrError('ONNX_BAD_AXIS', `Transpose: ${formatShape(p)} is not a permutation of ${x.rank} axes`);
  }
  return one(
    x.graph,
    'Transpose',
    [x],
    x.dtype,
    p.map((i) => x.shape[i]!),
    { perm: attr.ints(p) },
  );
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  const first = xs[0];
  if (!first) throw new DrError('ONNX_BAD_SHAPE', 'Concat needs at least one tensor');
  sameDtype('Concat', ...xs);
  const a = normAxis(axis, first.rank);
  const shape: Dim[] = [...first.shape];
  let total: Dim = 0;
  for (const t of xs) {
    if (t.rank !== first.rank)
      throw new DrError('ONNX_BAD_SHAPE', `Concat: ranks differ, ${xs.map(String).join(', ')}`);
    t.shape.forEach((d, i) => {
      if (i !== a && typeof d === 'number' && typeof shape[i] === 'number' && d !== shape[i]) {
        throw new DrError(
          'ONNX_SHAPE_MISMATCH',
          `Concat on axis ${a}: ${xs.map(String).join(', ')} differ on axis ${i}`,
        );
      }
      if (i !== a && typeof shape[i] !== 'number' && typeof d === 'number') shape[i] = d;
    });
    const d = t.shape[a]!;
    total = typeof total === 'number' && typeof d === 'number' ? total + d : null;
  }
  shape[a] = total;
  return one(first.graph, 'Concat', xs, first.dtype, shape, { axis: attr.int(a) });
}

export interface SliceSpec {
  starts: readonly number[] | Tensor;
  ends: readonly number[] | Tensor;
  axes?: readonly number[];
  steps?: readonly number[];
}

/** ONNX Slice; bounds are clamped like Python slicing, TO_END means "to the end". */
export function slice(x: Tensor, spec: SliceSpec): Tensor {
  const g = x.graph;
  const isT = (v: unknown): v is Tensor => typeof (v as Tensor).graph === 'object';
  const n = isT(spec.starts) ? spec.starts.shape[0] : spec.starts.length;
  if (typeof n !== 'number') throw new DrError('ONNX_BAD_SHAPE', 'Slice: starts must have a static length');
  const axes = (spec.axes ?? Array.from({ length: n }, (_, i) => i)).map((a) =>
    normAxis(a, x.rank, 'Slice axis'),
  );
  const steps = spec.steps ?? axes.map(() => 1);
  const shape: Dim[] = [...x.shape];
  axes.forEach((a, i) => {
    const dim = x.shape[a]!;
    const st = isT(spec.starts) ? null : spec.starts[i]!;
    const en = isT(spec.ends) ? null : spec.ends[i]!;
    const step = steps[i]!;
    if (step === 0) throw new DrError('ONNX_BAD_SHAPE', 'Slice: step 0');
    if (st !== null && en !== null && typeof dim === 'number') shape[a] = sliceLength(dim, st, en, step);
    else if (st === 0 && en === TO_END && step === 1) shape[a] = dim;
    else
      shape[a] = typeof dim === 'string' && st !== null && en !== null ? trimmedDim(dim, st, en, step) : null;
  });
  const starts = isT(spec.starts) ? spec.starts : int64s(g, spec.starts);
  const ends = isT(spec.ends) ? spec.ends : int64s(g, spec.ends);
  return one(g, 'Slice', [x, starts, ends, int64s(g, axes), int64s(g, steps)], x.dtype, shape);
}

/**
 * A named dim with `k` items dropped from its ends (step 1, start >= 0, end negative or TO_END) is named
 * `${dim}-${k}`: its size is max(0, dim - k) however the k splits between the ends, so x[1:] and x[:-1]
 * of one dim get one name and their elementwise combinations keep static gradient reductions.
 */
function trimmedDim(dim: string, start: number, end: number, step: number): Dim {
  if (step !== 1 || start < 0 || (end >= 0 && end !== TO_END)) return null;
  const k = start + (end === TO_END ? 0 : -end);
  return k === 0 ? dim : `${dim}-${k}`;
}

function sliceLength(dim: number, start: number, end: number, step: number): number {
  const clampIdx = (v: number, lo: number, hi: number): number =>
    Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
  if (step > 0) {
    const s = clampIdx(start, 0, dim);
    const e = clampIdx(end, 0, dim);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  const s = clampIdx(start, -1, dim - 1);
  const e = clampIdx(end, -1, dim - 1);
  return Math.max(0, Math.ceil((e - s) / step));
}

export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.rank + axes.length;
  const norm = axes.map((a) => normAxis(a, rank, 'Unsqueeze axis')).sort((p, q) => p - q);
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : x.shape[j++]!);
  return one(x.graph, 'Unsqueeze', [x, int64s(x.graph, norm)], x.dtype, shape);
}

export function squeeze(x: Tensor, axes: readonly number[]): Tensor {
  const norm = axes.map((a) => normAxis(a, x.rank, 'Squeeze axis'));
  for (const a of norm) {
    const d = x.shape[a];
    if (typeof d === 'number' && d !== 1)
      throw new DrError('ONNX_BAD_SHAPE', `Squeeze: axis ${a} of ${x} is not 1`);
  }
  return one(
    x.graph,
    'Squeeze',
    [x, int64s(x.graph, norm)],
    x.dtype,
    x.shape.filter((_, i) => !norm.includes(i)),
  );
}

/** Broadcasts `x` to `shape` (numbers, or a runtime int64 tensor). */
export function expand(x: Tensor, shape: readonly number[] | Tensor): Tensor {
  if (typeof (shape as Tensor).graph === 'object') {
    const s = shape as Tensor;
    const len = s.shape[0];
    if (s.rank !== 1 || typeof len !== 'number')
      throw new DrError('ONNX_BAD_SHAPE', `Expand needs a 1-D shape tensor of static length, got ${s}`);
    const target: Dim[] = Array.from({ length: len }, () => null);
    const out = target.map((_, i) => {
      const d = x.shape[x.rank - len + i];
      return d !== undefined && d !== 1 ? d : null;
    });
    return one(x.graph, 'Expand', [x, s], x.dtype, out);
  }
  const dims = shape as readonly number[];
  return one(
    x.graph,
    'Expand',
    [x, int64s(x.graph, dims)],
    x.dtype,
    broadcastShapes('Expand', x.shape, dims),
  );
}

/** Lower (default) or upper triangle of the last two axes, offset by `k` diagonals. */
export function trilu(x: Tensor, upper = false, k = 0): Tensor {
  const inputs = k === 0 ? [x] : [x, x.graph.constant(k, 'int64')];
  return one(x.graph, 'Trilu', inputs, x.dtype, x.shape, { upper: attr.int(upper ? 1 : 0) });
}

/**
 * Zero-pads `x`: `pads` = [begin per axis..., end per axis...] over `axes` (default all axes); a runtime
 * int64 `pads` tensor must cover all axes. The node always lists every axis: onnxruntime 1.29's transpose
 * optimizer permutes Pad's `pads` as if they covered every axis even when the opset-18 `axes` input is set.
 */
export function pad(
  x: Tensor,
  pads: readonly number[] | Tensor,
  axes?: readonly number[],
  value = 0,
): Tensor {
  const g = x.graph;
  if (!Array.isArray(pads)) {
    const t = pads as Tensor;
    if (axes !== undefined || t.shape[0] !== 2 * x.rank) {
      throw new DrError(
        'ONNX_BAD_SHAPE',
        `Pad with runtime pads needs them for all ${x.rank} axes ([${2 * x.rank}]), got ${t}`,
      );
    }
    return one(
      g,
      'Pad',
      [x, t, g.constant(value, x.dtype)],
      x.dtype,
      x.shape.map(() => null),
      { mode: attr.string('constant') },
    );
  }
  const p = pads as readonly number[];
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.rank, 'Pad axis'));
  if (p.length !== 2 * ax.length)
    throw new DrError(
      'ONNX_BAD_SHAPE',
      `Pad: ${p.length} pads for ${ax.length} axes; give a begin and an end per axis`,
    );
  const full = new Array<number>(2 * x.rank).fill(0);
  ax.forEach((a, i) => {
    full[a] = p[i]!;
    full[a + x.rank] = p[i + ax.length]!;
  });
  const shape = x.shape.map((d, a) =>
    typeof d === 'number'
      ? d + full[a]! + full[a + x.rank]!
      : full[a] === 0 && full[a + x.rank] === 0
        ? d
        : null,
  );
  return one(g, 'Pad', [x, int64s(g, full), g.constant(value, x.dtype)], x.dtype, shape, {
    mode: attr.string('constant'),
  });
}

// ---- shape values ------------------------------------------------------------------------------------

/** The runtime shape of `x` as int64 [rank] (or dims start..end). */
export function shapeOf(x: Tensor, start = 0, end = x.rank): Tensor {
  const s = start < 0 ? start + x.rank : start;
  const e = Math.min(end < 0 ? end + x.rank : end, x.rank);
  const attrs: Record<string, AttrValue> = {};
  if (s !== 0) attrs.start = attr.int(s);
  if (e !== x.rank) attrs.end = attr.int(e);
  return one(x.graph, 'Shape', [x], 'int64', [Math.max(0, e - s)], attrs);
}

/** The runtime size of one axis as an int64 scalar (a static dim becomes a constant). */
export function dimOf(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.rank);
  const d = x.shape[a];
  if (typeof d === 'number') return x.graph.constant(d, 'int64');
  const t = squeeze(shapeOf(x, a, a + 1), [0]);
  if (typeof d === 'string') DIM_VALUES.set(t, d);
  return t;
}

/** Scalars known to hold the size of a named dim (made by `dimOf`), so `range` and masks keep that name. */
const DIM_VALUES = new WeakMap<Tensor, string>();

/** The value of a scalar operand when it is a number, a scalar constant, or a named dim from `dimOf`. */
function scalarValue(x: TensorLike): number | string | null {
  if (typeof x === 'number') return x;
  const named = DIM_VALUES.get(x);
  if (named !== undefined) return named;
  const c = x.graph.constantValue(x);
  return c && c.dims.length === 0 ? Number(c.data[0]) : null;
}

/** 1-D [start, start+delta, ... < limit]; operands are scalars of one numeric dtype. */
export function range(start: TensorLike, limit: TensorLike, delta: TensorLike = 1): Tensor {
  const g = graphOf(start, limit, delta);
  const dt = dtypeOf(start, limit, delta);
  const ts = [start, limit, delta].map((v) => lift(g, v, dt));
  sameDtype('Range', ...ts);
  const [s0, l0, d0] = [start, limit, delta].map(scalarValue);
  let len: Dim = null;
  if (typeof s0 === 'number' && typeof l0 === 'number' && typeof d0 === 'number')
    len = Math.max(0, Math.ceil((l0 - s0) / d0));
  else if (s0 === 0 && d0 === 1 && typeof l0 === 'string') len = l0;
  return one(g, 'Range', ts, dt, [len]);
}

/** A tensor of runtime shape `shape` (int64 1-D) filled with `value`; `known` states its static shape when the caller knows it. */
export function constantOfShape(shape: Tensor, value: number, dtype: DType, known?: Shape): Tensor {
  const len = shape.shape[0];
  if (shape.rank !== 1 || typeof len !== 'number' || shape.dtype !== 'int64') {
    throw new DrError(
      'ONNX_BAD_SHAPE',
      `ConstantOfShape needs a 1-D int64 shape of static length, got ${shape}`,
    );
  }
  return one(
    shape.graph,
    'ConstantOfShape',
    [shape],
    dtype,
    known ?? Array.from({ length: len }, () => null),
    {
      value: attr.tensor({ dtype, dims: [1], data: typedArrayFrom(dtype, [value]) }),
    },
  );
}

/** Zeros shaped and typed like `x`. */
export function zerosLike(x: Tensor): Tensor {
  return constantOfShape(shapeOf(x), 0, x.dtype, x.shape);
}

/**
 * Causal attention mask as bool [qLen, kLen]: query i (at absolute position kLen - qLen + i, so a KV cache
 * of kLen - qLen earlier positions is supported) may attend to key j when j <= kLen - qLen + i.
 */
export function causalMask(g: Graph, qLen: TensorLike, kLen: TensorLike): Tensor {
  if (typeof qLen === 'number' && typeof kLen === 'number') {
    const bits: number[] = [];
    for (let i = 0; i < qLen; i++) for (let j = 0; j < kLen; j++) bits.push(j <= kLen - qLen + i ? 1 : 0);
    return g.constant(bits, 'bool', [qLen, kLen]);
  }
  const q = lift(g, qLen, 'int64');
  const k = lift(g, kLen, 'int64');
  const offset = sub(k, q);
  const rows = unsqueeze(add(range(g.constant(0, 'int64'), q, g.constant(1, 'int64')), offset), [1]);
  const cols = unsqueeze(range(g.constant(0, 'int64'), k, g.constant(1, 'int64')), [0]);
  return lessOrEqual(cols, rows);
}
