import { afterEach, describe, expect, test, vi } from 'vitest';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trainStep } from './adamw.ts';
import { Graph } from './graph.ts';
import * as op from './ops.ts';
import { OnnxSession, SessionCache, cudaProviderInstalled, familyKey } from './session.ts';
import { TrainState } from './train-state.ts';
import { codeOf } from '../testing/probes.ts';

function scaleGraph(factor: number): Graph {
  const g = new Graph(`scale${factor}`);
  g.output(op.mul(g.input('x', 'float32', ['n', 2]), factor), 'y');
  return g;
}
const x = (n: number): ort.Tensor => new ort.Tensor('float32', new Float32Array(2 * n).fill(1), [n, 2]);

let cache: SessionCache | null = null;
afterEach(async () => {
  await cache?.releaseAll();
  cache = null;
});

describe('SessionCache', () => {
  test('builds each shape family once and reuses the session, also under concurrent gets', async () => {
    cache = new SessionCache({ intraOpThreads: 1 });
    const builds: string[] = [];
    const get = (k: number): Promise<OnnxSession> =>
      cache!.get(familyKey('scale', { factor: k }), () => {
        builds.push(`factor=${k}`);
        return scaleGraph(k);
      });
    const [a, b, c] = await Promise.all([get(2), get(2), get(3)]);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(await get(2)).toBe(a);
    expect(builds).toEqual(['factor=2', 'factor=3']);
    expect(cache.stats).toEqual({ sessions: 2, hits: 2, misses: 2 });
    expect(Array.from((await c!.run({ x: x(1) })).y!.data as Float32Array)).toEqual([3, 3]);
  });

  test('a failed build is not cached, so the next get builds again', async () => {
    cache = new SessionCache();
    let calls = 0;
    const build = (): Graph => {
      calls++;
      if (calls === 1) throw new Error('transient');
      return scaleGraph(1);
    };
    expect(await codeOf(cache.get('k', build))).toBe('Error: transient');
    await expect(cache.get('k', build)).resolves.toBeInstanceOf(OnnxSession);
    expect(calls).toBe(2);
  });

  test('an evicted family is built again on the next get', async () => {
    cache = new SessionCache();
    let builds = 0;
    const build = (): Graph => {
      builds++;
      return scaleGraph(2);
    };
    const first = await cache.get('k', build);
    await cache.evict('k');
    expect(await codeOf(first.run({ x: x(1) }))).toBe('ONNX_SESSION_RELEASED');
    const second = await cache.get('k', build);
    expect(second).not.toBe(first);
    expect(builds).toBe(2);
  });

  test('familyKey is independent of parameter order', () => {
    expect(familyKey('decode', { batch: 4, bucket: 128 })).toBe(
      familyKey('decode', { bucket: 128, batch: 4 }),
    );
    expect(familyKey('decode', { batch: 4 })).not.toBe(familyKey('decode', { batch: 8 }));
  });
});

describe('OnnxSession', () => {
  test('bad feeds are refused with a typed error that names the input', async () => {
    const s = await OnnxSession.create(scaleGraph(2));
    const errors = await Promise.all([
      codeOf(s.run({})),
      codeOf(s.run({ x: x(1), z: x(1) })),
      codeOf(s.run({ x: new ort.Tensor('float64', new Float64Array(2), [1, 2]) })),
      codeOf(s.run({ x: new ort.Tensor('float32', new Float32Array(3), [1, 3]) })),
    ]);
    expect(errors).toEqual(['ONNX_BAD_FEEDS', 'ONNX_BAD_FEEDS', 'ONNX_BAD_FEEDS', 'ONNX_BAD_FEEDS']);
    await s.release();
    expect(await codeOf(s.run({ x: x(1) }))).toBe('ONNX_SESSION_RELEASED');
  });

  test('DR_ORT_THREADS sets the default op thread count, and a bad value is refused with a typed error', async () => {
    vi.stubEnv('DR_ORT_THREADS', '1');
    const s = await OnnxSession.create(scaleGraph(2));
    await s.run({ x: x(1) });
    await s.release();
    vi.stubEnv('DR_ORT_THREADS', 'two');
    expect(await codeOf(OnnxSession.create(scaleGraph(2)))).toBe('CONFIG_INVALID');
    vi.unstubAllEnvs();
  });

  test('malformed model bytes are refused with ONNX_LOAD_FAILED', async () => {
    expect(await codeOf(OnnxSession.create(new Uint8Array([1, 2, 3, 4])))).toBe('ONNX_LOAD_FAILED');
  });

  test.skipIf(cudaProviderInstalled())(
    'provider auto falls back to CPU with a log line when CUDA is not installed; cuda alone fails',
    async () => {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      });
      const s = await OnnxSession.create(scaleGraph(2), {
        provider: 'auto',
        log: pino({ level: 'info' }, sink),
      });
      expect(s.provider).toBe('cpu');
      expect(lines.join('')).toContain('running on CPU');
      await s.release();
      expect(await codeOf(OnnxSession.create(scaleGraph(2), { provider: 'cuda' }))).toBe(
        'ONNX_CUDA_UNAVAILABLE',
      );
    },
  );

  test('outputs can be written into preallocated tensors', async () => {
    const s = await OnnxSession.create(scaleGraph(4));
    const out = new ort.Tensor('float32', new Float32Array(4), [2, 2]);
    await s.run({ x: x(2) }, { y: out });
    expect(Array.from(out.data as Float32Array)).toEqual([4, 4, 4, 4]);
    await s.release();
  });
});

describe('memory over many runs', () => {
  test('2,000 train steps after warm-up grow RSS by less than 16 MiB', async () => {
    const g = new Graph('tiny');
    // 16 KiB per weight tensor: leaking the three per-step updates would add ~96 MiB over the run.
    const input = g.input('x', 'float32', ['batch', 64]);
    const w = g.param('w', 'float32', [64, 64]);
    trainStep(op.reduceMean(op.mul(op.tanh(op.matmul(input, w)), op.tanh(op.matmul(input, w)))), {});
    const s = await OnnxSession.create(g, { intraOpThreads: 1 });
    const state = new TrainState({ w: { dims: [64, 64], data: new Float32Array(64 * 64).fill(0.01) } });
    const batch = { x: new ort.Tensor('float32', new Float32Array(32 * 64).fill(0.5), [32, 64]) };
    // A full GC before each reading, so the number is retained memory rather than V8's lazy heap growth.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const rss = (): number => {
      gc();
      return process.memoryUsage().rss;
    };
    for (let i = 0; i < 1000; i++) await state.run(s, batch, 1e-3);
    const before = rss();
    for (let i = 0; i < 2000; i++) await state.run(s, batch, 1e-3);
    const growth = rss() - before;
    expect(state.step).toBe(3000);
    expect(growth).toBeLessThan(16 * 1024 * 1024);
    await s.release();
  });
});
