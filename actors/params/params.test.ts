import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import { latestCheckpoint, readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { parameterServer } from './param-server.ts';
import type { LatestReply, RestoreReply } from './protocol.ts';
import { askParams, publishWeights, WeightSubscriber, type AskFn } from './weight-transfer.ts';
import { encodeWeights, sha256, type TensorSpec } from './weights-codec.ts';

const specs: TensorSpec[] = [
  { name: 'embed', shape: [5, 3] },
  { name: 'bias', shape: [7] },
];
const tensorsFor = (seed: number): Float32Array[] =>
  specs.map((s, k) =>
    Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, (_, i) => seed + k * 0.5 + i * 0.01),
  );

let dir: string;
let system: ActorSystem;
let ask: AskFn;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dr-params-'));
  system = createActorSystem({ kinds: new Map([['params', parameterServer]]) });
  await system.spawn({
    kind: 'params',
    name: 'params',
    args: { checkpointDir: join(dir, 'ckpt'), keepVersions: 2 },
  });
  ask = (target, msg, options) => system.ask(target, msg, options);
});

afterEach(async () => {
  await system.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('weight versions', () => {
  it('propagates each published version to a subscriber, chunk by chunk, bit for bit', async () => {
    const sub = new WeightSubscriber(ask, 'params', { concurrency: 3 });
    expect(await sub.refresh()).toBeNull();

    const v0 = await publishWeights(ask, 'params', 0, specs, tensorsFor(1), { chunkBytes: 16 });
    expect(v0).toBe(0);
    const got0 = await sub.refresh();
    expect(got0?.version).toBe(0);
    expect(got0?.tensors.map((t) => Array.from(t))).toEqual(tensorsFor(1).map((t) => Array.from(t)));
    expect(await sub.refresh()).toBeNull();

    const v1 = await publishWeights(ask, 'params', 1, specs, tensorsFor(2), { chunkBytes: 16 });
    expect(v1).toBe(1);
    const got1 = await sub.refresh();
    expect(got1?.version).toBe(1);
    expect(got1?.step).toBe(1);
    expect(Array.from(got1!.tensors[1]!)).toEqual(Array.from(tensorsFor(2)[1]!));
  });

  it('refuses a corrupted upload and keeps serving the previous version', async () => {
    await publishWeights(ask, 'params', 0, specs, tensorsFor(1));
    const { bytes, manifest } = encodeWeights(specs, tensorsFor(9), 32);
    const { uploadId } = await ask<{ uploadId: string }>('params', {
      v: 1,
      type: 'params.publish.begin',
      step: 1,
      manifest,
    });
    for (let index = 0; index < manifest.chunks; index++) {
      const data = Uint8Array.from(bytes.subarray(index * 32, (index + 1) * 32));
      if (index === 1) data[0] = data[0]! ^ 0xff;
      await ask('params', { v: 1, type: 'params.publish.chunk', uploadId, index, data });
    }
    await expect(
      askParams(ask, 'params', { v: 1, type: 'params.publish.commit', uploadId }, 5_000),
    ).rejects.toMatchObject({
      code: 'PARAMS_INTEGRITY',
    });
    const latest = await ask<LatestReply>('params', { v: 1, type: 'params.latest' });
    expect(latest.version).toBe(0);
  });

  it('tells a puller of an evicted version to take the latest instead', async () => {
    for (let s = 0; s < 3; s++) await publishWeights(ask, 'params', s, specs, tensorsFor(s));
    await expect(
      askParams(ask, 'params', { v: 1, type: 'params.pull', version: 0, index: 0 }, 5_000),
    ).rejects.toMatchObject({
      code: 'PARAMS_VERSION_GONE',
    });
  });

  it('answers a malformed message with a typed error and keeps running', async () => {
    await expect(
      askParams(ask, 'params', { v: 1, type: 'params.pull', version: 'x' }, 5_000),
    ).rejects.toMatchObject({
      code: 'PARAMS_BAD_MESSAGE',
    });
    expect((await ask<LatestReply>('params', { v: 1, type: 'params.latest' })).version).toBe(-1);
  });
});

describe('checkpoints', () => {
  const data = {
    step: 4,
    version: 4,
    specs,
    weights: tensorsFor(3),
    optimizer: { step: 4, m: tensorsFor(0.1), v: tensorsFor(0.2) },
    trainer: { rng: [1, 2, 3, 4], cursor: 12 },
  };

  it('round-trips weights, optimizer moments and trainer state exactly', async () => {
    const root = join(dir, 'c1');
    const path = await writeCheckpoint(root, data);
    expect(await latestCheckpoint(root)).toBe(path);
    const back = await readCheckpoint(path);
    expect(back.step).toBe(4);
    expect(back.trainer).toEqual({ rng: [1, 2, 3, 4], cursor: 12 });
    expect(back.weights.map((t) => Array.from(t))).toEqual(data.weights.map((t) => Array.from(t)));
    expect(back.optimizer.v.map((t) => Array.from(t))).toEqual(data.optimizer.v.map((t) => Array.from(t)));
  });

  it('ignores a half-written checkpoint left by a crash and keeps only the newest ones', async () => {
    const root = join(dir, 'c2');
    for (const step of [1, 2, 3, 4]) await writeCheckpoint(root, { ...data, step }, 2);
    await mkdir(join(root, '.tmp-step_00000005-dead'));
    await writeFile(join(root, '.tmp-step_00000005-dead', 'weights.bin'), 'partial');
    expect(await latestCheckpoint(root)).toBe(join(root, 'step_00000004'));
    expect((await readdir(root)).filter((n) => n.startsWith('step_')).sort()).toEqual([
      'step_00000003',
      'step_00000004',
    ]);
  });

  it('refuses a checkpoint whose weights were damaged on disk', async () => {
    const path = await writeCheckpoint(join(dir, 'c3'), data);
    await writeFile(
      join(path, 'weights.bin'),
      new Uint8Array(data.weights.reduce((n, t) => n + t.byteLength, 0)),
    );
    await expect(readCheckpoint(path)).rejects.toMatchObject({ code: 'PARAMS_BAD_CHECKPOINT' });
  });

  it('checkpoints through the parameter server and restores the same version, optimizer and trainer state', async () => {
    await publishWeights(ask, 'params', 0, specs, tensorsFor(1));
    await publishWeights(ask, 'params', 1, specs, tensorsFor(2));
    const opt = encodeWeights([...specs, ...specs], [...tensorsFor(0.3), ...tensorsFor(0.4)]);
    await ask('params', {
      v: 1,
      type: 'params.checkpoint',
      step: 1,
      optimizer: { step: 1, bytes: opt.bytes, sha256: opt.manifest.sha256 },
      trainer: { cursor: 7 },
    });

    await system.stopActor('params');
    await system.spawn({ kind: 'params', name: 'params', args: { checkpointDir: join(dir, 'ckpt') } });
    const { restored } = await ask<RestoreReply>('params', { v: 1, type: 'params.restore' });
    expect(restored?.version).toBe(1);
    expect(restored?.trainer).toEqual({ cursor: 7 });
    expect(sha256(restored!.optimizer.bytes)).toBe(opt.manifest.sha256);
    const sub = new WeightSubscriber(ask, 'params');
    const w = await sub.refresh();
    expect(w?.version).toBe(1);
    expect(Array.from(w!.tensors[0]!)).toEqual(Array.from(tensorsFor(2)[0]!));
    // The next publish continues the numbering after the restored version.
    expect(await publishWeights(ask, 'params', 2, specs, tensorsFor(5))).toBe(2);
  });
});
