/**
 * Reads TensorBoard event files back for tests: splits the TFRecord stream, checks both checksums of every
 * record, and decodes each tensorflow.Event with @bufbuild/protobuf's wire reader (scalars only).
 */
import type { WireType } from '@bufbuild/protobuf/wire';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { readFileSync } from 'node:fs';
import { maskedCrc32c } from '../tensorboard-events.ts';

export interface TensorBoardEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: Record<string, number>;
}

/** Splits a TFRecord stream, checking both checksums of every record, and decodes each tensorflow.Event. */
export function readEventFile(file: string): TensorBoardEvent[] {
  const bytes = readFileSync(file);
  const events: TensorBoardEvent[] = [];
  for (let o = 0; o < bytes.length;) {
    const length = Number(bytes.readBigUInt64LE(o));
    if (bytes.readUInt32LE(o + 8) !== maskedCrc32c(bytes.subarray(o, o + 8)))
      throw new Error(`${file}: bad length checksum at byte ${o}`);
    const payload = bytes.subarray(o + 12, o + 12 + length);
    if (bytes.readUInt32LE(o + 12 + length) !== maskedCrc32c(payload))
      throw new Error(`${file}: bad payload checksum at byte ${o}`);
    events.push(decodeEvent(payload));
    o += 16 + length;
  }
  return events;
}

function decodeEvent(payload: Uint8Array): TensorBoardEvent {
  const r = new BinaryReader(payload);
  const e: TensorBoardEvent = { wallTime: 0, step: 0, values: {} };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1) e.wallTime = r.double();
    else if (field === 2) e.step = Number(r.int64());
    else if (field === 3) e.fileVersion = r.string();
    else if (field === 5) {
      const summary = new BinaryReader(r.bytes());
      while (summary.pos < summary.len) {
        summary.tag();
        const value = new BinaryReader(summary.bytes());
        let tag = '';
        let v = NaN;
        while (value.pos < value.len) {
          const [f, w] = value.tag();
          if (f === 1) tag = value.string();
          else if (f === 2) v = value.float();
          else value.skip(w);
        }
        e.values[tag] = v;
      }
    } else r.skip(wire as WireType);
  }
  return e;
}
