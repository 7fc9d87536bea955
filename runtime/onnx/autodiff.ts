/**
 * Reverse-mode differentiation over a built graph. `grad(loss, wrt)` appends the backward pass to the
 * same graph as standard ONNX ops, so one session run computes loss and gradients. Gradients of broadcast
 * operands are summed back to the operand's shape (constant axes when the shapes say which axes were
 * expanded, axes computed at run time otherwise), and a value used by several nodes sums their gradients.
 */
import { DrError } from '../../config/errors.ts';
import type { Graph, Node, Tensor } from './graph.ts';
import * as op from './ops.ts';
import { expandedAxes, sameShape } from './shape-inference.ts';
import { isFloat, isStatic, type Shape } from './types.ts';

export interface GradOptions {
  /** d(output)/d(loss) to start from; defaults to ones for a single-element loss. */
  seed?: Tensor;
}

interface GradContext {
  readonly node: Node;
  /** Gradient of the node's (single) output. */
  readonly gy: Tensor;
  /** needs[i]: input i lies on a path from a `wrt` tensor to the loss. */
  readonly needs: readonly boolean[];
}

type GradRule = (ctx: GradContext) => readonly (Tensor | null)[];

/** Gradients that are zeros except for `updates` scattered at `indices` along `axis` (from GatherElements). */
const SPARSE_GRADS = new WeakMap<Tensor, { indices: Tensor; updates: Tensor; axis: number }>();

/** d loss / d wrt[i] for each i; a `wrt` tensor that the loss does not depend on gets zeros. */
export function grad(loss: Tensor, wrt: readonly Tensor[], options: GradOptions = {}): Tensor[] {
  const g = loss.graph;
  if (!isFloat(loss.dtype))
    throw new DrError('ONNX_NOT_DIFFERENTIABLE', `the loss ${loss} is not a float tensor`);
  for (const w of wrt) {
    if (w.graph !== g)
      throw new DrError('ONNX_FOREIGN_TENSOR', `${w} belongs to another graph than the loss`);
    if (!isFloat(w.dtype))
      throw new DrError(
        'ONNX_NOT_DIFFERENTIABLE',
        `cannot differentiate with respect to ${w}: not a float tensor`,
      );
  }
  const nodes = [...g.nodes];
  const active = new Set<Tensor>(wrt);
  for (const n of nodes) {
    if (n.inputs.some((t) => t !== null && active.has(t))) {
      for (const o of n.outputs) if (isFloat(o.dtype)) active.add(o);
    }
  }

  const pending = new Map<Tensor, Tensor[]>();
  const seed = options.seed ?? onesSeed(loss);
  if (seed.dtype !== loss.dtype || seed.rank !== loss.rank) {
    throw new DrError('ONNX_BAD_SHAPE', `grad seed ${seed} must match the loss ${loss} in dtype and rank`);
  }
  pending.set(loss, [seed]);
  const lossAt = loss.producer ? nodes.indexOf(loss.producer) : -1;
  for (let i = lossAt; i >= 0; i--) {
    const node = nodes[i]!;
    const out = node.outputs[0];
    if (!out || !node.outputs.some((o) => pending.has(o))) continue;
    const needs = node.inputs.map((t) => t !== null && active.has(t));
    if (!needs.some(Boolean)) continue;
    const rule = node.outputs.length === 1 ? RULES[node.opType] : undefined;
    const parts = pending.get(out)!;
    if (!rule)
      throw new DrError(
        'ONNX_NOT_DIFFERENTIABLE',
        `${node.opType} (producing ${out}) has no gradient rule; see runtime/onnx/README.md for the differentiable ops`,
      );
    const gy = sumAll(parts);
    const gins = rule({ node, gy, needs });
    node.inputs.forEach((t, k) => {
      const gin = gins[k];
      if (t === null || !needs[k]) return;
      if (!gin)
        throw new DrError(
          'ONNX_NOT_DIFFERENTIABLE',
          `${node.opType}: input ${k} (${t}) is not differentiable`,
        );
      const list = pending.get(t);
      if (list) list.push(gin);
      else pending.set(t, [gin]);
    });
  }
  return wrt.map((w) => {
    const parts = pending.get(w);
    return parts ? sumAll(parts) : op.zerosLike(w);
  });
}

function onesSeed(loss: Tensor): Tensor {
  if (!loss.shape.every((d) => d === 1)) {
    throw new DrError(
      'ONNX_BAD_SHAPE',
      `grad needs a single-element loss or an explicit seed, got ${loss}; reduce it first`,
    );
  }
  return loss.graph.constant(
    loss.shape.length === 0 ? 1 : [1],
    loss.dtype,
    loss.shape.map(() => 1),
  );
}

function sumAll(parts: Tensor[]): Tensor {
  return parts.reduce((acc, t) => op.add(acc, t));
}

// ---- helpers -----------------------------------------------------------------------------------------

/** One node whose output shape the caller knows better than generic inference (it equals `shape`). */
function known(
  g: Graph,
  opType: string,
  inputs: (Tensor | null)[],
  like: { dtype: Tensor['dtype']; shape: Shape },
  attrs = {},
): Tensor {
  return g.addNode(opType, inputs, [{ dtype: like.dtype, shape: like.shape }], attrs)[0]!;
}

/** `t` reshaped to `x`'s shape (constant target when static). */
function reshapeLike(t: Tensor, x: Tensor): Tensor {
  if (sameShape(t.shape, x.shape)) return t;
  if (isStatic(x.shape)) return op.reshape(t, x.shape);
  return known(t.graph, 'Reshape', [t, op.shapeOf(x)], x);
}

/** `t` broadcast to `x`'s shape (a constant target when static, so `x` itself need not be computed). */
function expandLike(t: Tensor, x: Tensor): Tensor {
  if (sameShape(t.shape, x.shape)) return t;
  return isStatic(x.shape) ? op.expand(t, x.shape) : known(t.graph, 'Expand', [t, op.shapeOf(x)], x);
}

/** Sums `gy` over the axes along which `x` was broadcast, giving `x`'s shape. */
export function unbroadcast(gy: Tensor, x: Tensor): Tensor {
  if (sameShape(gy.shape, x.shape)) return gy;
  const g = gy.graph;
  const { axes, known: isKnown } = expandedAxes(x.shape, gy.shape);
  if (isKnown) {
    const lead = gy.rank - x.rank;
    let r = axes.length ? op.reduceSum(gy, axes, true) : gy;
    if (lead > 0)
      r = op.squeeze(
        r,
        Array.from({ length: lead }, (_, i) => i),
      );
    return reshapeLike(r, x);
  }
  const lead = gy.rank - x.rank;
  const xs =
    lead > 0 ? op.concat([g.constant(Array(lead).fill(1), 'int64'), op.shapeOf(x)], 0) : op.shapeOf(x);
  const isOne = op.equal(xs, 1);
  const nz = g.addNode('NonZero', [isOne], [{ dtype: 'int64', shape: [1, null] }])[0]!;
  const axesT = op.reshape(nz, [-1]);
  const summed = g.addNode('ReduceSum', [gy, axesT], [{ dtype: gy.dtype, shape: gy.shape.map(() => null) }], {
    keepdims: { kind: 'int', value: 1 },
    noop_with_empty_axes: { kind: 'int', value: 1 },
  })[0]!;
  return known(g, 'Reshape', [summed, op.shapeOf(x)], x);
}

function constInts(g: Graph, t: Tensor | null | undefined, what: string): number[] {
  const v = t ? g.constantValue(t) : undefined;
  if (!v) throw new DrError('ONNX_NOT_DIFFERENTIABLE', `${what} must be constant to differentiate`);
  return Array.from(v.data as ArrayLike<number | bigint>, Number);
}

function intAttr(node: Node, name: string, fallback: number): number {
  const a = node.attrs[name];
  return a && a.kind === 'int' ? a.value : fallback;
}

function swapLast2(t: Tensor): Tensor {
  const perm = t.shape.map((_, i) => i);
  perm[t.rank - 2] = t.rank - 1;
  perm[t.rank - 1] = t.rank - 2;
  return op.transpose(t, perm);
}

function in0(ctx: GradContext): Tensor {
  return ctx.node.inputs[0]!;
}
function out0(ctx: GradContext): Tensor {
  return ctx.node.outputs[0]!;
}

function reducedAxes(ctx: GradContext): number[] {
  const x = in0(ctx);
  const axesIn = ctx.node.inputs[1];
  return axesIn ? constInts(x.graph, axesIn, `${ctx.node.opType} axes`) : x.shape.map((_, i) => i);
}

/** The incoming gradient of a reduction with the reduced axes restored as size 1. */
function keptGrad(ctx: GradContext): Tensor {
  const axes = reducedAxes(ctx);
  return intAttr(ctx.node, 'keepdims', 1) === 1 ? ctx.gy : op.unsqueeze(ctx.gy, axes);
}

/** How many input elements fed each output element of a reduction: the product of the reduced dims. */
function reducedCount(ctx: GradContext): Tensor {
  const x = in0(ctx);
  const g = x.graph;
  const dims = reducedAxes(ctx).map((a) => x.shape[a < 0 ? a + x.rank : a]!);
  if (dims.every((d) => typeof d === 'number'))
    return g.constant(
      (dims as number[]).reduce((a, b) => a * b, 1),
      x.dtype,
    );
  const size = (t: Tensor): Tensor => g.addNode('Size', [t], [{ dtype: 'int64', shape: [] }])[0]!;
  return op.cast(op.div(size(x), size(out0(ctx))), x.dtype);
}

function sliceAlong(gy: Tensor, axis: number, start: Tensor, end: Tensor, like: Tensor): Tensor {
  const g = gy.graph;
  return known(
    g,
    'Slice',
    [gy, op.unsqueeze(start, [0]), op.unsqueeze(end, [0]), g.constant([axis], 'int64')],
    like,
  );
}

// ---- rules -------------------------------------------------------------------------------------------

const RULES: Readonly<Record<string, GradRule>> = {
  Identity: ({ gy }) => [gy],
  Add: (ctx) => {
    const [a, b] = ctx.node.inputs as Tensor[];
    return [ctx.needs[0] ? unbroadcast(ctx.gy, a!) : null, ctx.needs[1] ? unbroadcast(ctx.gy, b!) : null];
  },
  Sub: (ctx) => {
    const [a, b] = ctx.node.inputs as Tensor[];
    return [
      ctx.needs[0] ? unbroadcast(ctx.gy, a!) : null,
      ctx.needs[1] ? unbroadcast(op.neg(ctx.gy), b!) : null,
    ];
  },
  Mul: (ctx) => {
    const [a, b] = ctx.node.inputs as Tensor[];
    return [
      ctx.needs[0] ? unbroadcast(op.mul(ctx.gy, b!), a!) : null,
      ctx.needs[1] ? unbroadcast(op.mul(ctx.gy, a!), b!) : null,
    ];
  },
  Div: (ctx) => {
    const [a, b] = ctx.node.inputs as Tensor[];
    const y = out0(ctx);
    return [
      ctx.needs[0] ? unbroadcast(op.div(ctx.gy, b!), a!) : null,
      ctx.needs[1] ? unbroadcast(op.neg(op.div(op.mul(ctx.gy, y), b!)), b!) : null,
    ];
  },
  Pow: (ctx) => {
    const [x, e] = ctx.node.inputs as Tensor[];
    const y = out0(ctx);
    return [
      ctx.needs[0] ? unbroadcast(op.mul(ctx.gy, op.mul(e!, op.pow(x!, op.sub(e!, 1)))), x!) : null,
      ctx.needs[1] ? unbroadcast(op.mul(ctx.gy, op.mul(y, op.log(x!))), e!) : null,
    ];
  },
  Neg: ({ gy }) => [op.neg(gy)],
  Abs: (ctx) => [op.mul(ctx.gy, op.sign(in0(ctx)))],
  Sqrt: (ctx) => [op.div(ctx.gy, op.mul(out0(ctx), 2))],
  Exp: (ctx) => [op.mul(ctx.gy, out0(ctx))],
  Log: (ctx) => [op.div(ctx.gy, in0(ctx))],
  Reciprocal: (ctx) => [op.neg(op.mul(ctx.gy, op.mul(out0(ctx), out0(ctx))))],
  Sigmoid: (ctx) => {
    const y = out0(ctx);
    return [op.mul(ctx.gy, op.mul(y, op.sub(1, y)))];
  },
  Tanh: (ctx) => {
    const y = out0(ctx);
    return [op.mul(ctx.gy, op.sub(1, op.mul(y, y)))];
  },
  Relu: (ctx) => [op.where(op.greater(in0(ctx), 0), ctx.gy, 0)],
  Sin: (ctx) => [op.mul(ctx.gy, op.cos(in0(ctx)))],
  Cos: (ctx) => [op.neg(op.mul(ctx.gy, op.sin(in0(ctx))))],
  Min: (ctx) => minMax(ctx, op.less),
  Max: (ctx) => minMax(ctx, op.greater),
  Clip: (ctx) => {
    if (ctx.needs[1] || ctx.needs[2])
      throw new DrError(
        'ONNX_NOT_DIFFERENTIABLE',
        'Clip: the bounds are not differentiable; use min/max for learnable bounds',
      );
    const [x, lo, hi] = ctx.node.inputs;
    const conds = [lo ? op.greaterOrEqual(x!, lo) : null, hi ? op.lessOrEqual(x!, hi) : null].filter(
      (c): c is Tensor => c !== null,
    );
    if (conds.length === 0) return [ctx.gy];
    const inside = conds.length === 2 ? op.and(conds[0]!, conds[1]!) : conds[0]!;
    return [op.where(inside, ctx.gy, 0)];
  },
  Where: (ctx) => {
    const [c, a, b] = ctx.node.inputs as Tensor[];
    return [
      null,
      ctx.needs[1] ? unbroadcast(op.where(c!, ctx.gy, 0), a!) : null,
      ctx.needs[2] ? unbroadcast(op.where(c!, 0, ctx.gy), b!) : null,
    ];
  },
  Cast: (ctx) => [op.cast(ctx.gy, in0(ctx).dtype)],
  MatMul: (ctx) => {
    const [a, b] = ctx.node.inputs as [Tensor, Tensor];
    const gy = ctx.gy;
    const da = ctx.needs[0] ? unbroadcast(op.matmul(gy, swapLast2(b)), a) : null;
    let db: Tensor | null = null;
    if (ctx.needs[1]) {
      if (b.rank === 2 && a.rank > 2) {
        const k = a.shape[a.rank - 1]!;
        const n = gy.shape[gy.rank - 1]!;
        const flat = (t: Tensor, last: typeof k): Tensor =>
          typeof last === 'number'
            ? op.reshape(t, [-1, last])
            : op.reshape(t, op.concat([t.graph.constant([-1], 'int64'), op.shapeOf(t, -1)], 0));
        db = reshapeLike(op.gemm(flat(a, k), flat(gy, n), null, { transA: true }), b);
      } else {
        db = unbroadcast(op.matmul(swapLast2(a), gy), b);
      }
    }
    return [da, db];
  },
  Gemm: (ctx) => {
    const [a, b, c] = ctx.node.inputs;
    const alpha = floatAttr(ctx.node, 'alpha', 1);
    const beta = floatAttr(ctx.node, 'beta', 1);
    const tA = intAttr(ctx.node, 'transA', 0) === 1;
    const tB = intAttr(ctx.node, 'transB', 0) === 1;
    const gy = ctx.gy;
    const da = !ctx.needs[0]
      ? null
      : tA
        ? op.gemm(b!, gy, null, { alpha, transA: tB, transB: true })
        : op.gemm(gy, b!, null, { alpha, transB: !tB });
    const db = !ctx.needs[1]
      ? null
      : tB
        ? op.gemm(gy, a!, null, { alpha, transA: true, transB: tA })
        : op.gemm(a!, gy, null, { alpha, transA: !tA });
    const dc = ctx.needs[2] && c ? unbroadcast(beta === 1 ? gy : op.mul(gy, beta), c) : null;
    return [da, db, dc];
  },
  Softmax: (ctx) => {
    const y = out0(ctx);
    const axis = intAttr(ctx.node, 'axis', -1);
    const gyy = op.mul(ctx.gy, y);
    return [op.sub(gyy, op.mul(y, op.reduceSum(gyy, [axis], true)))];
  },
  LogSoftmax: (ctx) => {
    const y = out0(ctx);
    const axis = intAttr(ctx.node, 'axis', -1);
    const sparse = SPARSE_GRADS.get(ctx.gy);
    if (sparse && sparse.axis === axis) {
      // Token log-probs (GatherElements of a LogSoftmax): gy is zero except at the gathered entries, so
      // gy - exp(y) * sum(gy) is -exp(y) * sum(updates) with the updates scattered on top; this skips the
      // dense zeros, a full-width ReduceSum and a Sub over the vocabulary axis.
      const dense = op.mul(op.exp(y), op.neg(op.reduceSum(sparse.updates, [axis], true)));
      return [op.scatterElements(dense, sparse.indices, sparse.updates, axis, 'add')];
    }
    return [op.sub(ctx.gy, op.mul(op.exp(y), op.reduceSum(ctx.gy, [axis], true)))];
  },
  ReduceSum: (ctx) => [expandLike(keptGrad(ctx), in0(ctx))],
  ReduceMean: (ctx) => {
    const x = in0(ctx);
    const spread = expandLike(keptGrad(ctx), x);
    return [op.div(spread, reducedCount(ctx))];
  },
  ReduceMax: (ctx) => {
    const x = in0(ctx);
    const axes = reducedAxes(ctx);
    const y = out0(ctx);
    const yk = intAttr(ctx.node, 'keepdims', 1) === 1 ? y : op.unsqueeze(y, axes);
    const mask = op.cast(op.equal(x, yk), x.dtype);
    const ties = op.reduceSum(mask, axes, true);
    return [op.mul(op.div(mask, ties), keptGrad(ctx))];
  },
  Reshape: (ctx) => [reshapeLike(ctx.gy, in0(ctx)), null],
  Squeeze: (ctx) => [reshapeLike(ctx.gy, in0(ctx)), null],
  Unsqueeze: (ctx) => [reshapeLike(ctx.gy, in0(ctx)), null],
  Expand: (ctx) => [unbroadcast(ctx.gy, in0(ctx)), null],
  Transpose: (ctx) => {
    const perm =
      (ctx.node.attrs.perm as { value: readonly number[] } | undefined)?.value ??
      in0(ctx).shape.map((_, i, s) => s.length - 1 - i);
    const gemm = ctx.gy.producer;
    if (perm.length === 2 && gemm?.opType === 'Gemm' && !gemm.inputs[2]) {
      // The gradient of a transposed weight (x @ W^T) is a Gemm: emit the transposed product directly,
      // (op(A) op(B))^T = op(B)^T op(A)^T, instead of copying a weight-sized transpose every step.
      const [a, b] = gemm.inputs as [Tensor, Tensor];
      const tA = intAttr(gemm, 'transA', 0) === 1;
      const tB = intAttr(gemm, 'transB', 0) === 1;
      return [op.gemm(b, a, null, { alpha: floatAttr(gemm, 'alpha', 1), transA: !tB, transB: !tA })];
    }
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [op.transpose(ctx.gy, inv)];
  },
  Trilu: (ctx) => {
    const [x, k] = ctx.node.inputs;
    return [known(x!.graph, 'Trilu', k ? [ctx.gy, k] : [ctx.gy], x!, ctx.node.attrs), null];
  },
  Concat: (ctx) => {
    const g = ctx.gy.graph;
    const axis = intAttr(ctx.node, 'axis', 0);
    const xs = ctx.node.inputs as Tensor[];
    const allStatic = xs.every((x) => typeof x.shape[axis] === 'number');
    let offset: Tensor | number = 0;
    return xs.map((x, i) => {
      const start = offset;
      const size: Tensor | number = allStatic ? (x.shape[axis] as number) : op.dimOf(x, axis);
      offset =
        typeof start === 'number' && typeof size === 'number'
          ? start + size
          : op.add(lift64(g, start), lift64(g, size));
      if (!ctx.needs[i]) return null;
      if (typeof start === 'number' && typeof size === 'number')
        return op.slice(ctx.gy, { starts: [start], ends: [start + size], axes: [axis] });
      return sliceAlong(ctx.gy, axis, lift64(g, start), lift64(g, offset), x);
    });
  },
  Slice: (ctx) => {
    const [x, startsT, endsT, axesT, stepsT] = ctx.node.inputs as Tensor[];
    const g = x!.graph;
    const starts = constInts(g, startsT, 'Slice starts');
    constInts(g, endsT, 'Slice ends');
    const axes = axesT ? constInts(g, axesT, 'Slice axes') : starts.map((_, i) => i);
    const steps = stepsT ? constInts(g, stepsT, 'Slice steps') : starts.map(() => 1);
    if (steps.some((s) => s !== 1))
      throw new DrError('ONNX_NOT_DIFFERENTIABLE', 'Slice with steps other than 1 has no gradient rule');
    const gy = ctx.gy;
    const rank = x!.rank;
    const begins: (Tensor | number)[] = new Array<Tensor | number>(rank).fill(0);
    const endsPad: (Tensor | number)[] = new Array<Tensor | number>(rank).fill(0);
    axes.forEach((axis, i) => {
      const a = axis < 0 ? axis + rank : axis;
      const dim = x!.shape[a]!;
      const out = gy.shape[a]!;
      const st = starts[i]!;
      if (typeof dim === 'number' && typeof out === 'number') {
        const b = Math.min(Math.max(st < 0 ? st + dim : st, 0), dim);
        begins[a] = b;
        endsPad[a] = dim - b - out;
        return;
      }
      const d = op.dimOf(x!, a);
      const b = st >= 0 ? op.min(d, st) : op.max(op.add(d, st), 0);
      begins[a] = b;
      endsPad[a] = op.sub(op.sub(d, b), op.dimOf(gy, a));
    });
    const all = [...begins, ...endsPad];
    if (all.every((v) => typeof v === 'number')) return [op.pad(gy, all as number[]), null, null, null, null];
    const pads = op.concat(
      all.map((v) => op.unsqueeze(lift64(g, v), [0])),
      0,
    );
    return [
      known(g, 'Pad', [gy, pads, g.constant(0, gy.dtype)], x!, {
        mode: { kind: 'string', value: 'constant' },
      }),
      null,
      null,
      null,
      null,
    ];
  },
  Gather: (ctx) => {
    const [data, indices] = ctx.node.inputs as [Tensor, Tensor];
    if (intAttr(ctx.node, 'axis', 0) !== 0)
      throw new DrError(
        'ONNX_NOT_DIFFERENTIABLE',
        'Gather: only axis 0 has a gradient rule; transpose the data first',
      );
    const g = data.graph;
    const idx = op.reshape(op.cast(indices, 'int64'), [-1, 1]);
    const rest = data.shape.slice(1);
    const flat = isStatic(rest)
      ? op.reshape(ctx.gy, [-1, ...rest])
      : op.reshape(ctx.gy, op.concat([g.constant([-1], 'int64'), op.shapeOf(data, 1)], 0));
    return [inScatterDtype(data, (zeros, dt) => op.scatterND(zeros, idx, op.cast(flat, dt), 'add')), null];
  },
  GatherElements: (ctx) => {
    const [data, indices] = ctx.node.inputs as [Tensor, Tensor];
    const axis = intAttr(ctx.node, 'axis', 0);
    const dgrad = inScatterDtype(data, (zeros, dt) =>
      op.scatterElements(zeros, indices, op.cast(ctx.gy, dt), axis, 'add'),
    );
    if (dgrad.producer?.opType === 'ScatterElements')
      SPARSE_GRADS.set(dgrad, { indices, updates: ctx.gy, axis });
    return [dgrad, null];
  },
};

/**
 * Runs a scatter-add into zeros like `data`, in float32 for 16-bit floats: onnxruntime's CPU provider has
 * no float16 kernel for ScatterND/ScatterElements with a reduction, and accumulating in float32 is more
 * accurate anyway.
 */
function inScatterDtype(data: Tensor, scatter: (zeros: Tensor, dt: Tensor['dtype']) => Tensor): Tensor {
  const half = data.dtype === 'float16' || data.dtype === 'bfloat16';
  const dt = half ? 'float32' : data.dtype;
  const zeros = op.constantOfShape(op.shapeOf(data), 0, dt, data.shape);
  return op.cast(scatter(zeros, dt), data.dtype);
}

function lift64(g: Graph, v: Tensor | number): Tensor {
  return typeof v === 'number' ? g.constant(v, 'int64') : v;
}

function floatAttr(node: Node, name: string, fallback: number): number {
  const a = node.attrs[name];
  return a && a.kind === 'float' ? a.value : fallback;
}

/** Max (wins = greater) or Min (wins = less): the winner takes the gradient, ties split it evenly. */
function minMax(ctx: GradContext, wins: (a: Tensor, b: Tensor) => Tensor): (Tensor | null)[] {
  const [a, b] = ctx.node.inputs as [Tensor, Tensor];
  const dt = a.dtype;
  const tie = op.mul(op.cast(op.equal(a, b), dt), 0.5);
  const share = (x: Tensor, y: Tensor): Tensor => op.mul(ctx.gy, op.add(op.cast(wins(x, y), dt), tie));
  return [
    ctx.needs[0] ? unbroadcast(share(a, b), a) : null,
    ctx.needs[1] ? unbroadcast(share(b, a), b) : null,
  ];
}

/** Op types that `grad` can differentiate through. */
export const DIFFERENTIABLE_OPS: readonly string[] = Object.keys(RULES).sort();
