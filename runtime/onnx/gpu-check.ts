/**
 * CUDA check of the op set, for the GPU machine (see shared/gpu/README.md; the model engineer runs it with
 * the parity script): every op case's forward + gradient graph on the CUDA provider against the CPU
 * provider (float32, and float16 on CUDA against float64 on CPU), whether preallocated outputs and
 * `preferredOutputLocation: 'gpu-buffer'` work with CUDA in onnxruntime-node (and whether its bundled WebGPU
 * provider finds an adapter and keeps outputs on the device), and how a train step's time
 * splits between host-device copies and compute. Prints one JSON report (also to $OUT/onnx-gpu-check.json).
 *
 *   npx tsx runtime/onnx/gpu-check.ts            (ONNX_CHECK_PROVIDER=cpu dry-runs it on a CPU machine)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { grad } from './autodiff.ts';
import { trainStep } from './adamw.ts';
import { Graph } from './graph.ts';
import { OP_CASES, buildCase, resetInputs, type OpCase } from './op-cases.ts';
import * as op from './ops.ts';
import { OnnxSession, type Provider } from './session.ts';
import { TrainState } from './train-state.ts';
import type { DType } from './types.ts';

const GPU: Provider = process.env.ONNX_CHECK_PROVIDER === 'cpu' ? 'cpu' : 'cuda';

function toNumbers(t: ort.Tensor): number[] {
  if (t.type === 'float16') {
    return Array.from(t.data as Uint16Array, (h) => {
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
      return h & 0x8000 ? -v : v;
    });
  }
  return Array.from(t.data as Float32Array, Number);
}

async function caseOutputs(c: OpCase, dtype: DType, provider: Provider): Promise<number[][]> {
  resetInputs();
  const g = new Graph();
  const { loss, wrt, feeds } = buildCase(g, c, dtype);
  g.output(loss, 'loss');
  grad(loss, wrt).forEach((t, i) => g.output(t, `grad_${i}`));
  const s = await OnnxSession.create(g, { provider });
  try {
    const out = await s.run(feeds);
    return s.outputNames.map((n) => toNumbers(out[n]!));
  } finally {
    await s.release();
  }
}

function maxRelDiff(a: number[][], b: number[][]): number {
  let worst = 0;
  a.forEach((xs, i) =>
    xs.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - b[i]![j]!) / Math.max(1, Math.abs(x))))),
  );
  return worst;
}

async function opParity(): Promise<Record<string, { f32: number | string; f16: number | string }>> {
  const report: Record<string, { f32: number | string; f16: number | string }> = {};
  for (const c of OP_CASES) {
    const attempt = async (f: () => Promise<number>): Promise<number | string> =>
      f().catch((e: unknown) => String(e).slice(0, 200));
    report[c.name] = {
      f32: await attempt(async () =>
        maxRelDiff(await caseOutputs(c, 'float32', 'cpu'), await caseOutputs(c, 'float32', GPU)),
      ),
      f16: await attempt(async () =>
        maxRelDiff(await caseOutputs(c, 'float64', 'cpu'), await caseOutputs(c, 'float16', GPU)),
      ),
    };
  }
  return report;
}

async function bufferProbes(): Promise<Record<string, unknown>> {
  const g = new Graph('probe');
  g.output(op.mul(g.input('x', 'float32', [4]), 2), 'y');
  const bytes = g.serialize().model;
  const x = new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [4]);
  const out: Record<string, unknown> = {};
  const pre = await OnnxSession.create(bytes, { provider: GPU });
  const target = new ort.Tensor('float32', new Float32Array(4), [4]);
  await pre.run({ x }, { y: target });
  out.preallocatedOutputWritten = Array.from(target.data as Float32Array).join(',') === '2,4,6,8';
  await pre.release();
  try {
    const s = await ort.InferenceSession.create(bytes, {
      executionProviders: [GPU],
      preferredOutputLocation: 'gpu-buffer',
    });
    const r = await s.run({ x });
    out.gpuBufferOutputLocation = r.y!.location;
    await s.release();
  } catch (e) {
    out.gpuBufferOutputLocation = `error: ${String(e).slice(0, 200)}`;
  }
  // onnxruntime-node also bundles the WebGPU provider, whose IO binding keeps outputs on the device and
  // accepts them back as inputs: if the machine exposes a Vulkan adapter, weights could stay on the GPU.
  try {
    const s = await ort.InferenceSession.create(bytes, {
      executionProviders: ['webgpu'],
      preferredOutputLocation: 'gpu-buffer',
    });
    const first = await s.run({ x });
    const second = await s.run({ x: first.y! });
    out.webgpu = {
      outputLocation: first.y!.location,
      chained: Array.from((await second.y!.getData()) as Float32Array).join(',') === '4,8,12,16',
    };
    await s.release();
  } catch (e) {
    out.webgpu = `error: ${String(e).slice(0, 300)}`;
  }
  return out;
}

/** A 4-layer MLP train step (hidden 1024, batch 512): step time per provider, and a same-bytes copy-only graph. */
async function trainStepTiming(): Promise<Record<string, number>> {
  const hidden = 1024;
  const batch = 512;
  const g = new Graph('mlp');
  let h = g.input('x', 'float32', [batch, hidden]);
  const params: Record<string, { dims: number[]; data: Float32Array }> = {};
  for (let i = 0; i < 4; i++) {
    h = op.tanh(op.matmul(h, g.param(`w${i}`, 'float32', [hidden, hidden])));
    params[`w${i}`] = {
      dims: [hidden, hidden],
      data: Float32Array.from({ length: hidden * hidden }, (_, k) => Math.sin(k) * 0.03),
    };
  }
  trainStep(op.reduceMean(op.mul(h, h)), {});
  const bytes = g.serialize().model;
  const feeds = {
    x: new ort.Tensor(
      'float32',
      Float32Array.from({ length: batch * hidden }, (_, k) => Math.cos(k)),
      [batch, hidden],
    ),
  };
  const result: Record<string, number> = {};
  for (const [label, provider] of [
    ['cpu', 'cpu'],
    ['gpu', GPU],
  ] as const) {
    const s = await OnnxSession.create(bytes, { provider });
    const state = new TrainState(params);
    for (let i = 0; i < 3; i++) await state.run(s, feeds, 1e-3);
    const t0 = performance.now();
    const n = label === 'cpu' ? 3 : 20;
    for (let i = 0; i < n; i++) await state.run(s, feeds, 1e-3);
    result[`${label}StepMs`] = (performance.now() - t0) / n;
    await s.release();
  }
  // Same bytes in and out as the train step (params, moments, batch), but no compute: the copy floor.
  const copy = new Graph('copy');
  const names = ['x', ...Object.keys(params).flatMap((p) => [p, `${p}.m`, `${p}.v`])];
  for (const n of names) {
    const dims = n === 'x' ? [batch, hidden] : [hidden, hidden];
    copy.output(op.mul(copy.input(n, 'float32', dims), 1), `${n}.out`);
  }
  const cs = await OnnxSession.create(copy, { provider: GPU });
  const cf: Record<string, ort.Tensor> = { x: feeds.x };
  for (const n of names.slice(1))
    cf[n] = new ort.Tensor('float32', new Float32Array(hidden * hidden), [hidden, hidden]);
  await cs.run(cf);
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) await cs.run(cf);
  result.gpuCopyOnlyMs = (performance.now() - t0) / 20;
  await cs.release();
  return result;
}

const report = {
  versions: ort.env.versions,
  ops: await opParity(),
  buffers: await bufferProbes(),
  trainStep: await trainStepTiming(),
};
const text = JSON.stringify(report, null, 2);
console.log(text);
if (process.env.OUT) writeFileSync(join(process.env.OUT, 'onnx-gpu-check.json'), text);
