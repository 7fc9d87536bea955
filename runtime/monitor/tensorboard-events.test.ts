import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { maskedCrc32c, TensorBoardWriter } from './tensorboard-events.ts';
import { readEventFile } from './testing/tensorboard-reader.ts';

describe('TensorBoardWriter', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a file_version header, then one event per call with its step, time and scalars', () => {
    dir = mkdtempSync(join(tmpdir(), 'tb-'));
    let clock = 1_700_000_000_000;
    const w = new TensorBoardWriter(join(dir, 'run'), () => clock);
    clock += 2500;
    w.scalars(1, { 'train/reward_mean': 0.25, 'learner/kl': 1e-3 });
    clock += 2500;
    w.scalars(2, { 'train/reward_mean': -0.5, skipped: Number.NaN });

    expect(readdirSync(join(dir, 'run'))).toEqual([w.file.split('/').at(-1)]);
    expect(w.file).toMatch(/events\.out\.tfevents\.1700000000\./);
    const events = readEventFile(w.file);
    expect(events).toHaveLength(3);
    expect(events[0]).toMatchObject({ fileVersion: 'brain.Event:2', wallTime: 1_700_000_000 });
    expect(events[1]).toMatchObject({ step: 1, wallTime: 1_700_000_002.5 });
    expect(events[1]!.values['train/reward_mean']).toBe(0.25);
    expect(events[1]!.values['learner/kl']).toBeCloseTo(1e-3, 9);
    expect(events[2]!.values).toEqual({ 'train/reward_mean': -0.5 });
  });

  it("masks CRC-32C as TFRecord does (TensorFlow's masked crc of an empty string and of '123456789')", () => {
    // crc32c('') = 0, crc32c('123456789') = 0xe3069283 (RFC 3720's check value), masked per tfrecord.
    expect(maskedCrc32c(new Uint8Array())).toBe(0xa282ead8);
    const crc = 0xe3069283;
    expect(maskedCrc32c(Buffer.from('123456789'))).toBe((((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0);
  });
});
