/**
 * The device-resident train state through onnxruntime's C API, on the CPU provider (CI has no GPU; the GPU
 * machine runs the same comparison on CUDA in scripts/bench-learner.ts): three fused SFT steps of a small
 * Qwen2 give bit for bit the weights, losses and grad norms of the JS binding's TrainState.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { isDrError } from '../../../config/errors.ts';
import { randomCheckpoint, tinyConfig } from '../../model/testing.ts';
import { fusedTrainStepGraph, sequenceFeeds } from '../../model/trainer.ts';
import { Graph } from '../graph.ts';
import * as op from '../ops.ts';
import { OnnxSession } from '../session.ts';
import { TrainState } from '../train-state.ts';
import { DeviceTrainState } from './device-train-state.ts';
import { NativeSession } from './ort-native.ts';

const config = tinyConfig();
const rows = 2;
const cols = 12;
const ids = Int32Array.from({ length: rows * cols }, (_, i) => (i * 7 + 3) % config.vocabSize);
const mask = new Float32Array(rows * cols).map((_, i) => (i % cols < 3 ? 0 : 1));

function batchFeeds(): Record<string, ort.Tensor> {
  return {
    ...sequenceFeeds({ rows, cols, inputIds: ids, attention: new Float32Array(rows * cols).fill(1) }),
    loss_mask: new ort.Tensor('float32', mask, [rows, cols]),
    denominator: new ort.Tensor('float32', Float32Array.of(mask.reduce((a, b) => a + b, 0)), []),
  };
}

describe('DeviceTrainState (CPU provider)', () => {
  it('takes the same fused steps as TrainState, bit for bit, keeping weights and moments in native tensors', async () => {
    const model = fusedTrainStepGraph(config, 'sft', { weightDecay: 0.01 }).serialize().model;
    const ckpt = randomCheckpoint(config, 5);
    const reference = new TrainState(
      Object.fromEntries([...ckpt.weights].map(([n, w]) => [n, { dims: w.shape, data: w.data }])),
    );
    const session = await OnnxSession.create(model, { provider: 'cpu', intraOpThreads: 1 });
    const device = new DeviceTrainState(
      model,
      new Map([...ckpt.weights].map(([n, w]) => [n, { dims: w.shape, data: w.data }])),
      { provider: 'cpu', intraOpThreads: 1 },
    );
    const feeds = batchFeeds();
    const hostBatch = Object.fromEntries(
      Object.entries(feeds).map(([n, t]) => [
        n,
        { data: t.data as Float32Array | BigInt64Array, dims: t.dims },
      ]),
    );
    try {
      for (const lr of [1e-2, 1e-2, 5e-3]) {
        const want = await reference.run(session, feeds, lr);
        const got = device.run(hostBatch, lr);
        expect(got).toEqual({ ...want, applied: true });
      }
      expect(device.step).toBe(3);
      for (const name of reference.paramNames) expect(device.param(name)).toEqual(reference.param(name));
      // The weights moved: the comparison is not of two untouched copies.
      expect(device.param('model.norm.weight')).not.toEqual(ckpt.weights.get('model.norm.weight')!.data);
    } finally {
      device.dispose();
      await session.release();
    }
  });

  it('reports a bad binding as a typed error naming what onnxruntime said, and stays usable', () => {
    const g = new Graph('double');
    g.output(op.add(g.input('x', 'float32', [2]), g.input('x2', 'float32', [2])), 'y');
    const s = NativeSession.create(g.serialize().model, { provider: 'cpu' });
    try {
      const x = s.wrap(Float32Array.of(1, 2), [2]);
      const y = s.allocate([2]);
      let err: unknown;
      try {
        s.run({ x, nope: x }, { y });
      } catch (e) {
        err = e;
      }
      expect(isDrError(err, 'ONNX_NATIVE_FAILED')).toBe(true);
      expect((err as Error).message).toMatch(/nope/);
      s.run({ x, x2: x }, { y });
      expect(s.read(y)).toEqual(Float32Array.of(2, 4));
    } finally {
      s.dispose();
    }
  });
});
