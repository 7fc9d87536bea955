/**
 * Policy weights as bytes: named float32 tensors concatenated little-endian in manifest order, with a
 * sha256 over the whole payload, cut into fixed-size chunks for transfer. A receiver reassembles the chunks,
 * checks the digest and splits the bytes back into tensors; any mismatch is a typed error, never silently
 * wrong weights.
 */
import { createHash } from 'node:crypto';
import { DrError } from '../../config/errors.ts';

export interface TensorSpec {
  name: string;
  shape: number[];
}

export interface WeightManifest {
  tensors: TensorSpec[];
  totalBytes: number;
  sha256: string;
  chunkBytes: number;
  chunks: number;
}

export const DEFAULT_CHUNK_BYTES = 1 << 20;

export function tensorSize(spec: TensorSpec): number {
  return spec.shape.reduce((a, b) => a * b, 1);
}

export function sha256(bytes: Uint8Array | readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const b of bytes instanceof Uint8Array ? [bytes] : bytes) h.update(b);
  return h.digest('hex');
}

/** Packs tensors into one buffer and describes it. Float32Array is little-endian on every supported host. */
export function encodeWeights(
  specs: readonly TensorSpec[],
  tensors: readonly Float32Array[],
  chunkBytes = DEFAULT_CHUNK_BYTES,
): { bytes: Uint8Array; manifest: WeightManifest } {
  if (specs.length !== tensors.length) {
    throw new DrError(
      'PARAMS_BAD_WEIGHTS',
      `${tensors.length} tensors for ${specs.length} specs; send one per spec`,
    );
  }
  specs.forEach((s, i) => {
    if (tensors[i]!.length !== tensorSize(s)) {
      throw new DrError(
        'PARAMS_BAD_WEIGHTS',
        `tensor ${s.name} has ${tensors[i]!.length} values but shape [${s.shape.join(', ')}]`,
      );
    }
  });
  const totalBytes = tensors.reduce((n, t) => n + t.byteLength, 0);
  const bytes = new Uint8Array(totalBytes);
  let o = 0;
  for (const t of tensors) {
    bytes.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), o);
    o += t.byteLength;
  }
  return { bytes, manifest: manifestFor(specs, bytes, chunkBytes) };
}

export function manifestFor(
  specs: readonly TensorSpec[],
  bytes: Uint8Array,
  chunkBytes: number,
): WeightManifest {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 4 || chunkBytes % 4 !== 0) {
    throw new DrError('PARAMS_BAD_CONFIG', `chunkBytes ${chunkBytes} must be a positive multiple of 4`);
  }
  return {
    tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape] })),
    totalBytes: bytes.byteLength,
    sha256: sha256(bytes),
    chunkBytes,
    chunks: Math.max(1, Math.ceil(bytes.byteLength / chunkBytes)),
  };
}

export function chunkOf(bytes: Uint8Array, manifest: WeightManifest, index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= manifest.chunks) {
    throw new DrError(
      'PARAMS_BAD_CHUNK',
      `chunk ${index} does not exist; this version has ${manifest.chunks} chunks`,
    );
  }
  return bytes.subarray(
    index * manifest.chunkBytes,
    Math.min(bytes.byteLength, (index + 1) * manifest.chunkBytes),
  );
}

/** Reassembles chunks, verifies size and sha256, and splits the payload into tensors. */
export function decodeWeights(manifest: WeightManifest, chunks: readonly Uint8Array[]): Float32Array[] {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  if (chunks.length !== manifest.chunks || total !== manifest.totalBytes) {
    throw new DrError(
      'PARAMS_INTEGRITY',
      `weights arrived as ${chunks.length} chunks / ${total} bytes, expected ${manifest.chunks} / ${manifest.totalBytes}; pull the version again`,
    );
  }
  const digest = sha256(chunks);
  if (digest !== manifest.sha256) {
    throw new DrError(
      'PARAMS_INTEGRITY',
      `weights failed the sha256 check (got ${digest.slice(0, 12)}…, expected ${manifest.sha256.slice(0, 12)}…); the transfer was corrupted, pull again`,
    );
  }
  const whole = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    whole.set(c, o);
    o += c.byteLength;
  }
  return splitTensors(manifest.tensors, whole);
}

/** Splits a verified payload into one Float32Array per spec (views on a 4-byte-aligned copy). */
export function splitTensors(specs: readonly TensorSpec[], bytes: Uint8Array): Float32Array[] {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : Uint8Array.from(bytes);
  const out: Float32Array[] = [];
  let o = 0;
  for (const s of specs) {
    const n = tensorSize(s);
    if (o + n * 4 > aligned.byteLength) break;
    out.push(new Float32Array(aligned.buffer, aligned.byteOffset + o, n));
    o += n * 4;
  }
  if (o !== aligned.byteLength || out.length !== specs.length) {
    throw new DrError(
      'PARAMS_INTEGRITY',
      `the tensor shapes cover ${specs.reduce((n, s) => n + tensorSize(s) * 4, 0)} bytes but the payload has ${aligned.byteLength}`,
    );
  }
  return out;
}
