/**
 * safetensors files (Hugging Face's weight format): an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}`, then the raw little-endian bytes.
 * No maintained npm reader exists, and the format is this small, so it is read here. Tensors are read one by
 * one with positioned reads, so multi-gigabyte shards never sit in one buffer. F32, BF16 and F16 are
 * converted to float32 on load; the writer stores float32 data as any of the three.
 */
import { open, writeFile } from 'node:fs/promises';
import { DrError } from '../../config/errors.ts';

export type StoredDType = 'F32' | 'BF16' | 'F16';

export interface FloatTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface HeaderEntry {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

const BYTES: Readonly<Record<StoredDType, number>> = { F32: 4, BF16: 2, F16: 2 };
/** Header sizes above this are refused as corrupt (the format caps it at 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

function invalid(file: string, problem: string): DrError {
  return new DrError(
    'MODEL_CHECKPOINT_INVALID',
    `${file} is not a valid safetensors file: ${problem}; re-export the checkpoint with safetensors`,
    { details: { file } },
  );
}

/** Parses and checks the header: dtypes, shapes, offsets inside the data section and without overlaps. */
export function parseHeader(
  file: string,
  headerBytes: Buffer,
  dataBytes: number,
): { tensors: Map<string, HeaderEntry>; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(headerBytes.toString('utf8'));
  } catch (cause) {
    throw invalid(file, `its header is not JSON (${String(cause)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw invalid(file, 'its header is not a JSON object');
  const tensors = new Map<string, HeaderEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const shape = entry.shape;
    const offsets = entry.data_offsets;
    if (typeof entry.dtype !== 'string') throw invalid(file, `tensor ${name} has no dtype`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw invalid(file, `tensor ${name} has a malformed shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw invalid(file, `tensor ${name} has malformed data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataBytes) {
      throw invalid(
        file,
        `tensor ${name} spans bytes ${begin}..${end} but the data section has ${dataBytes} bytes`,
      );
    }
    const width = BYTES[entry.dtype as StoredDType] as number | undefined;
    if (width !== undefined) {
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (count * width !== end - begin) {
        throw invalid(
          file,
          `tensor ${name} (${entry.dtype} ${JSON.stringify(shape)}) needs ${count * width} bytes, has ${end - begin}`,
        );
      }
    }
    tensors.set(name, { dtype: entry.dtype, shape: shape as number[], begin, end });
  }
  const spans = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < spans.length; i++) {
    const [prevName, prev] = spans[i - 1]!;
    const [name, cur] = spans[i]!;
    if (cur.begin < prev.end) throw invalid(file, `tensors ${prevName} and ${name} overlap`);
  }
  return { tensors, metadata };
}

/** Reads every tensor (or those `wanted` accepts) of a safetensors file as float32. */
export async function readSafetensors(
  file: string,
  wanted: (name: string) => boolean = () => true,
): Promise<Map<string, FloatTensor>> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (cause) {
    throw new DrError('MODEL_CHECKPOINT_INVALID', `cannot open ${file}: ${String(cause)}`, {
      cause,
      details: { file },
    });
  }
  try {
    const size = (await handle.stat()).size;
    if (size < 8) throw invalid(file, `it has ${size} bytes, fewer than the 8-byte header length`);
    const lengthBytes = Buffer.alloc(8);
    await handle.read(lengthBytes, 0, 8, 0);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
      throw invalid(file, `its header length ${headerLength} does not fit a file of ${size} bytes`);
    }
    const headerBytes = Buffer.alloc(headerLength);
    await handle.read(headerBytes, 0, headerLength, 8);
    const dataStart = 8 + headerLength;
    const { tensors } = parseHeader(file, headerBytes, size - dataStart);
    const out = new Map<string, FloatTensor>();
    for (const [name, entry] of tensors) {
      if (!wanted(name)) continue;
      if (!(entry.dtype in BYTES)) {
        throw invalid(
          file,
          `tensor ${name} has dtype ${entry.dtype}; only F32, BF16 and F16 weights are supported`,
        );
      }
      const bytes = Buffer.alloc(entry.end - entry.begin);
      await handle.read(bytes, 0, bytes.length, dataStart + entry.begin);
      out.set(name, { shape: entry.shape, data: toFloat32(bytes, entry.dtype as StoredDType) });
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** Writes float32 tensors as `dtype` (rounding to nearest even for BF16/F16), in name order. */
export async function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, FloatTensor> | Readonly<Record<string, FloatTensor>>,
  options: { dtype?: StoredDType; metadata?: Record<string, string> } = {},
): Promise<void> {
  await writeFile(file, encodeSafetensors(tensors, options));
}

export function encodeSafetensors(
  tensors: ReadonlyMap<string, FloatTensor> | Readonly<Record<string, FloatTensor>>,
  options: { dtype?: StoredDType; metadata?: Record<string, string> } = {},
): Buffer {
  const dtype = options.dtype ?? 'F32';
  const list: [string, FloatTensor][] =
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, FloatTensor>);
  const entries = list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (options.metadata !== undefined) header.__metadata__ = options.metadata;
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new DrError(
        'MODEL_CHECKPOINT_INVALID',
        `tensor ${name} has ${t.data.length} values but shape ${JSON.stringify(t.shape)}`,
      );
    }
    const bytes = fromFloat32(t.data, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let headerText = JSON.stringify(header);
  // Pad with spaces to 8 bytes so the data section stays aligned, as the reference writer does.
  headerText += ' '.repeat((8 - (Buffer.byteLength(headerText) % 8)) % 8);
  const headerBytes = Buffer.from(headerText, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  return Buffer.concat([length, headerBytes, ...chunks]);
}

export function toFloat32(bytes: Buffer, dtype: StoredDType): Float32Array {
  const n = bytes.length / BYTES[dtype];
  if (dtype === 'F32') {
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const out = new Float32Array(n);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = bytes.readUInt16LE(2 * i) << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = halfToFloat(bytes.readUInt16LE(2 * i));
  }
  return out;
}

export function fromFloat32(data: Float32Array, dtype: StoredDType): Buffer {
  if (dtype === 'F32')
    return Buffer.from(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = Buffer.alloc(data.length * 2);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < data.length; i++) {
    f[0] = data[i]!;
    out.writeUInt16LE(dtype === 'BF16' ? floatBitsToBf16(u[0]!) : floatBitsToHalf(u[0]!), 2 * i);
  }
  return out;
}

function floatBitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // NaN stays a (quiet) NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function floatBitsToHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant === 0 ? 0 : 0x200);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal half: shift the mantissa (with its implicit 1) and round to nearest even.
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}
