import { describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDrError } from '../../config/errors.ts';
import { Graph } from './graph.ts';
import * as op from './ops.ts';
import { saveModel } from './serialize.ts';

const f64 = (data: number[], dims: number[]): ort.Tensor =>
  new ort.Tensor('float64', Float64Array.from(data), dims);

describe('Graph', () => {
  test('softmax(xW + b) serializes to ONNX that onnxruntime runs with the expected values', async () => {
    const g = new Graph('dense');
    const x = g.input('x', 'float64', ['batch', 2]);
    const W = g.param('W', 'float64', [2, 3]);
    const b = g.param('b', 'float64', [3]);
    const y = g.output(op.softmax(op.add(op.matmul(x, W), b)), 'y');
    expect(y.shape).toEqual(['batch', 3]);

    const session = await ort.InferenceSession.create(g.serialize().model);
    const out = await session.run({
      x: f64([1, 2, 0, -1], [2, 2]),
      W: f64([1, 0, -1, 0, 1, 2], [2, 3]),
      b: f64([0, 0.5, 0], [3]),
    });
    const logits = [
      [1, 2.5, 3],
      [0, -0.5, -2],
    ];
    const expected = logits.flatMap((row) => {
      const e = row.map(Math.exp);
      const s = e.reduce((p, q) => p + q, 0);
      return e.map((v) => v / s);
    });
    const got = Array.from(out.y!.data as Float64Array);
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 12));
    await session.release();
  });

  test('outputs rename computed values in place and copy only inputs or values already output', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    const y = op.exp(x);
    expect(g.output(y, 'y')).toBe(y);
    expect(y.name).toBe('y');
    g.output(y, 'y_again');
    g.output(x, 'x_out');
    expect(g.nodes.map((n) => n.opType)).toEqual(['Exp', 'Identity', 'Identity']);
    expect(g.outputs.map((o) => o.name)).toEqual(['y', 'y_again', 'x_out']);
  });

  test('nodes and initializers no output depends on are left out of the model', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 2]);
    const unused = g.initializer('unused', { dtype: 'float32', dims: [2], data: new Float32Array(2) });
    op.matmul(op.add(x, unused), x);
    g.output(op.exp(x), 'y');
    const model = g.toModelProto().graph!;
    expect(model.node!.map((n) => n.opType)).toEqual(['Exp']);
    expect(model.initializer!.map((t) => t.name)).toEqual([]);
    expect(model.input!.map((t) => t.name)).toEqual(['x']);
  });

  test('shape inference follows broadcasting, reshape, gather, slice and concat', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', ['n', 1, 4]);
    const b = g.input('b', 'float32', [3, 1]);
    expect(op.add(a, b).shape).toEqual(['n', 3, 4]);
    expect(op.reshape(a, [0, -1]).shape).toEqual(['n', 4]);
    expect(op.reshape(g.input('c', 'float32', [2, 3, 4]), [-1, 4]).shape).toEqual([6, 4]);
    const ids = g.input('ids', 'int64', ['batch', 'seq']);
    const emb = g.param('emb', 'float32', [10, 8]);
    expect(op.gather(emb, ids).shape).toEqual(['batch', 'seq', 8]);
    expect(op.slice(emb, { starts: [-3], ends: [op.TO_END], axes: [0] }).shape).toEqual([3, 8]);
    expect(op.concat([emb, emb], 0).shape).toEqual([20, 8]);
    expect(op.reduceSum(a, [1, 2], true).shape).toEqual(['n', 1, 1]);
    expect(op.transpose(a, [2, 0, 1]).shape).toEqual([4, 'n', 1]);
    expect(op.unsqueeze(b, [0]).shape).toEqual([1, 3, 1]);
    // x[:, 1:] and x[:, :-1] of a named dim share the derived name, so they combine without unknown dims.
    const next = op.slice(ids, { starts: [1], ends: [op.TO_END], axes: [1] });
    const prev = op.slice(ids, { starts: [0], ends: [-1], axes: [1] });
    expect(op.add(next, prev).shape).toEqual(['batch', 'seq-1']);
    expect(op.causalMask(g, op.dimOf(ids, 1), op.dimOf(ids, 1)).shape).toEqual(['seq', 'seq']);
    expect(op.squeeze(b, [1]).shape).toEqual([3]);
  });

  test('mismatched shapes and dtypes are refused with typed errors', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [4, 3]);
    const i = g.input('i', 'int64', [2]);
    const codes = [
      () => op.add(a, b),
      () => op.matmul(a, b),
      () => op.add(a, i),
      () => g.input('a', 'float32', [1]),
      () => op.softmax(a, 2),
    ].map((f) => {
      try {
        f();
        return 'no error';
      } catch (err) {
        return isDrError(err) ? err.code : String(err);
      }
    });
    expect(codes).toEqual([
      'ONNX_SHAPE_MISMATCH',
      'ONNX_SHAPE_MISMATCH',
      'ONNX_DTYPE_MISMATCH',
      'ONNX_DUPLICATE_NAME',
      'ONNX_BAD_AXIS',
    ]);
  });

  test('causal mask with a KV-cache offset lets query i see keys up to past + i', async () => {
    const g = new Graph();
    const q = g.input('q', 'float32', ['seq', 1]);
    const k = g.input('k', 'float32', ['total', 1]);
    g.output(op.causalMask(g, op.dimOf(q, 0), op.dimOf(k, 0)), 'mask');
    const s = await ort.InferenceSession.create(g.serialize().model);
    const r = await s.run({
      q: new ort.Tensor('float32', new Float32Array(2), [2, 1]),
      k: new ort.Tensor('float32', new Float32Array(4), [4, 1]),
    });
    expect(r.mask!.dims).toEqual([2, 4]);
    expect(Array.from(r.mask!.data as Uint8Array)).toEqual([1, 1, 1, 0, 1, 1, 1, 1]);
    await s.release();
  });

  test('large initializers can go to an external data file that onnxruntime loads by path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-ext-'));
    try {
      const g = new Graph();
      const x = g.input('x', 'float32', [1, 256]);
      const w = g.initializer('w', {
        dtype: 'float32',
        dims: [256, 2],
        data: Float32Array.from({ length: 512 }, (_, i) => (i % 2 === 0 ? 1 : -1)),
      });
      g.output(op.matmul(x, w), 'y');
      const path = saveModel(g, join(dir, 'm.onnx'), { minBytes: 1024 });
      expect(statSync(`${path}.data`).size).toBe(2048);
      expect(statSync(path).size).toBeLessThan(1024);
      const s = await ort.InferenceSession.create(path);
      const r = await s.run({ x: new ort.Tensor('float32', new Float32Array(256).fill(0.5), [1, 256]) });
      expect(Array.from(r.y!.data as Float32Array)).toEqual([128, -128]);
      await s.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
