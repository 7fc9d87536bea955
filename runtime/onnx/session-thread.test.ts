import { describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Graph } from './graph.ts';
import * as op from './ops.ts';
import { OnnxSession } from './session.ts';
import { codeOf, ticksDuring } from '../testing/probes.ts';

/** x [n, 256] through `depth` dense tanh layers: enough work per run that a run takes many milliseconds. */
function denseChain(depth: number): Graph {
  const g = new Graph('dense_chain');
  let h = g.input('x', 'float32', ['n', 256]);
  for (let i = 0; i < depth; i++) {
    const w = new Float32Array(256 * 256).map((_, j) => Math.sin(j * 0.37 + i) / 16);
    h = op.tanh(op.matmul(h, g.initializer(`w${i}`, { dtype: 'float32', dims: [256, 256], data: w })));
  }
  g.output(h, 'y');
  return g;
}

const input = (n: number): ort.Tensor =>
  new ort.Tensor(
    'float32',
    new Float32Array(n * 256).map((_, i) => Math.cos(i * 0.11)),
    [n, 256],
  );

describe("OnnxSession on a worker thread (thread: 'worker')", () => {
  test('gives the same outputs as a session on the main thread, bit for bit', async () => {
    const bytes = denseChain(4).serialize().model;
    const main = await OnnxSession.create(bytes, { intraOpThreads: 1 });
    const worker = await OnnxSession.create(bytes, { intraOpThreads: 1, thread: 'worker' });
    const a = (await main.run({ x: input(8) })).y!;
    const b = (await worker.run({ x: input(8) })).y!;
    expect(b.dims).toEqual([8, 256]);
    expect(
      Buffer.from((b.data as Float32Array).buffer).equals(Buffer.from((a.data as Float32Array).buffer)),
    ).toBe(true);
    await Promise.all([main.release(), worker.release()]);
  });

  test('timers keep firing while it runs; on the main thread they wait for the run', async () => {
    const bytes = denseChain(24).serialize().model;
    const main = await OnnxSession.create(bytes, { intraOpThreads: 1 });
    const worker = await OnnxSession.create(bytes, { intraOpThreads: 1, thread: 'worker' });
    const feeds = { x: input(512) };
    // A run on the main thread blocks the event loop from start to end: at most one late tick gets in.
    expect(await ticksDuring(() => main.run(feeds))).toBeLessThanOrEqual(1);
    expect(await ticksDuring(() => worker.run(feeds))).toBeGreaterThanOrEqual(3);
    await Promise.all([main.release(), worker.release()]);
  });

  test('feeds that are views into a larger buffer are read at their own offset', async () => {
    const g = new Graph('double');
    g.output(op.mul(g.input('x', 'float32', ['n']), 2), 'y');
    const s = await OnnxSession.create(g, { thread: 'worker' });
    const blob = Float32Array.of(9, 9, 1, 2, 3, 9);
    const out = await s.run({ x: new ort.Tensor('float32', blob.subarray(2, 5), [3]) });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([2, 4, 6]);
    expect(Array.from(blob)).toEqual([9, 9, 1, 2, 3, 9]);
    await s.release();
  });

  test('outputs can be written into preallocated tensors', async () => {
    const g = new Graph('double');
    g.output(op.mul(g.input('x', 'float32', ['n']), 2), 'y');
    const s = await OnnxSession.create(g, { thread: 'worker' });
    const into = new ort.Tensor('float32', new Float32Array(2), [2]);
    const out = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 5), [2]) }, { y: into });
    expect(out.y).toBe(into);
    expect(Array.from(into.data as Float32Array)).toEqual([2, 10]);
    await s.release();
  });

  test('a failing run is ONNX_RUN_FAILED and the session keeps serving; release ends it', async () => {
    const g = new Graph('add');
    g.output(op.add(g.input('a', 'float32', ['n']), g.input('b', 'float32', ['m'])), 'y');
    const s = await OnnxSession.create(g, { thread: 'worker' });
    const v = (...xs: number[]) => new ort.Tensor('float32', Float32Array.from(xs), [xs.length]);
    expect(await codeOf(s.run({ a: v(1, 2, 3), b: v(1, 2) }))).toBe('ONNX_RUN_FAILED');
    expect(Array.from((await s.run({ a: v(1, 2), b: v(3, 4) })).y!.data as Float32Array)).toEqual([4, 6]);
    await s.release();
    expect(await codeOf(s.run({ a: v(1), b: v(1) }))).toBe('ONNX_SESSION_RELEASED');
  });

  test('malformed model bytes are refused with ONNX_LOAD_FAILED', async () => {
    expect(await codeOf(OnnxSession.create(new Uint8Array([1, 2, 3, 4]), { thread: 'worker' }))).toBe(
      'ONNX_LOAD_FAILED',
    );
  });
});
