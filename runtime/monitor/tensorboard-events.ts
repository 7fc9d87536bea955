/**
 * TensorBoard event files (`events.out.tfevents.<time>.<host>`), scalars only, so `tensorboard --logdir`
 * shows a run's curves. The format is TensorFlow's: a TFRecord stream (uint64 length, masked CRC-32C of the
 * length, the payload, masked CRC-32C of the payload) of `tensorflow.Event` protos, the first carrying
 * `file_version: "brain.Event:2"`. Protos are encoded with @bufbuild/protobuf's wire writer and checksums
 * computed with @node-rs/crc32; no maintained npm package writes these files.
 */
import { crc32c } from '@node-rs/crc32';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** tensorflow.Event field numbers (tensorflow/core/util/event.proto). */
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 } as const;
/** tensorflow.Summary: repeated Value value = 1; Value: tag = 1, simple_value = 2. */
const SUMMARY = { value: 1, tag: 1, simpleValue: 2 } as const;

export class TensorBoardWriter {
  readonly file: string;

  /** Starts a new event file in `logdir` (created if missing). */
  constructor(
    logdir: string,
    private readonly now: () => number = Date.now,
  ) {
    mkdirSync(logdir, { recursive: true });
    const t = now() / 1000;
    this.file = join(logdir, `events.out.tfevents.${Math.floor(t)}.${hostname()}.${process.pid}`);
    const header = new BinaryWriter()
      .tag(EVENT.wallTime, WireType.Bit64)
      .double(t)
      .tag(EVENT.fileVersion, WireType.LengthDelimited)
      .string('brain.Event:2')
      .finish();
    writeFileSync(this.file, record(header));
  }

  /** One event at `step` holding every finite scalar of `values` (tag → value). */
  scalars(step: number, values: Readonly<Record<string, number>>): void {
    const w = new BinaryWriter()
      .tag(EVENT.wallTime, WireType.Bit64)
      .double(this.now() / 1000)
      .tag(EVENT.step, WireType.Varint)
      .int64(step)
      .tag(EVENT.summary, WireType.LengthDelimited)
      .fork();
    for (const [tag, value] of Object.entries(values)) {
      if (!Number.isFinite(value)) continue;
      w.tag(SUMMARY.value, WireType.LengthDelimited)
        .fork()
        .tag(SUMMARY.tag, WireType.LengthDelimited)
        .string(tag)
        .tag(SUMMARY.simpleValue, WireType.Bit32)
        .float(value)
        .join();
    }
    appendFileSync(this.file, record(w.join().finish()));
  }
}

/** TFRecord's checksum: CRC-32C rotated right by 15 bits plus a constant. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

function record(payload: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + payload.length + 4);
  out.writeBigUInt64LE(BigInt(payload.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(payload, 12);
  out.writeUInt32LE(maskedCrc32c(payload), 12 + payload.length);
  return out;
}
