/**
 * Ring all-reduce (sum) of a flat gradient over `size` data-parallel learners: a reduce-scatter of size − 1
 * steps then an all-gather of size − 1 steps, each learner sending 1/size of the gradient to its right
 * neighbour per step, so every learner moves 2·(size − 1)/size of the gradient whatever the group size. Each
 * chunk's final sum is computed on one learner and copied to the others, so every learner ends with the very
 * same bits and their weights never drift apart.
 *
 * The transport is abstract (`CollectivePort`): learners implement it with actor asks (learner-actor.ts),
 * tests may implement it in memory.
 */
import { DrError } from '../../config/errors.ts';

export interface CollectivePort {
  readonly rank: number;
  readonly size: number;
  /** Deliver `data` to learner `to` under `key`; resolves once the peer has accepted it. */
  send(to: number, key: string, data: Float32Array): Promise<void>;
  /** The data learner `from` sent under `key` (buffered if it came early). */
  receive(from: number, key: string): Promise<Float32Array>;
}

/** Sums `data` across the ring in place and returns it. `tag` must be unique per collective call. */
export async function ringAllReduce(
  port: CollectivePort,
  data: Float32Array,
  tag: string,
): Promise<Float32Array> {
  const { rank, size } = port;
  if (!Number.isInteger(size) || size < 1 || rank < 0 || rank >= size) {
    throw new DrError(
      'LEARNER_BAD_CONFIG',
      `ring all-reduce got rank ${rank} of ${size}; ranks must be 0..size-1`,
    );
  }
  if (size === 1) return data;
  const bounds = chunkBounds(data.length, size);
  const chunk = (c: number): Float32Array => data.subarray(bounds[c]!, bounds[c + 1]!);
  const right = (rank + 1) % size;
  const left = (rank - 1 + size) % size;
  const mod = (x: number): number => ((x % size) + size) % size;

  for (let s = 0; s < size - 1; s++) {
    const sendIdx = mod(rank - s);
    const recvIdx = mod(rank - s - 1);
    const key = `${tag}:rs:${s}`;
    const [, incoming] = await Promise.all([port.send(right, key, chunk(sendIdx)), port.receive(left, key)]);
    expectLength(incoming, chunk(recvIdx).length, key);
    const target = chunk(recvIdx);
    for (let i = 0; i < target.length; i++) target[i] = target[i]! + incoming[i]!;
  }
  for (let s = 0; s < size - 1; s++) {
    const sendIdx = mod(rank + 1 - s);
    const recvIdx = mod(rank - s);
    const key = `${tag}:ag:${s}`;
    const [, incoming] = await Promise.all([port.send(right, key, chunk(sendIdx)), port.receive(left, key)]);
    expectLength(incoming, chunk(recvIdx).length, key);
    chunk(recvIdx).set(incoming);
  }
  return data;
}

function chunkBounds(length: number, parts: number): number[] {
  const bounds = [0];
  for (let c = 1; c <= parts; c++) bounds.push(Math.floor((length * c) / parts));
  return bounds;
}

function expectLength(got: Float32Array, want: number, key: string): void {
  if (got.length !== want) {
    throw new DrError(
      'LEARNER_ALLREDUCE_MISMATCH',
      `all-reduce chunk ${key} has ${got.length} values, expected ${want}; all learners must hold the same model`,
    );
  }
}

/** Copies several tensors into one flat buffer (and back), so one all-reduce covers all gradients. */
export function flatten(tensors: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(tensors.reduce((n, t) => n + t.length, 0));
  let o = 0;
  for (const t of tensors) {
    out.set(t, o);
    o += t.length;
  }
  return out;
}

export function unflattenInto(flat: Float32Array, tensors: Float32Array[]): void {
  let o = 0;
  for (const t of tensors) {
    t.set(flat.subarray(o, o + t.length));
    o += t.length;
  }
}

/**
 * A mailbox of collective chunks addressed to one learner: chunks that arrive before the learner asks for
 * them wait here, and a learner that asks first waits for the chunk.
 */
export class ChunkInbox {
  private readonly ready = new Map<string, Float32Array>();
  private readonly waiting = new Map<
    string,
    { resolve: (d: Float32Array) => void; reject: (e: Error) => void }
  >();

  deliver(from: number, key: string, data: Float32Array): void {
    const k = `${from}|${key}`;
    const w = this.waiting.get(k);
    if (w !== undefined) {
      this.waiting.delete(k);
      w.resolve(data);
    } else {
      this.ready.set(k, data);
    }
  }

  take(from: number, key: string, timeoutMs: number): Promise<Float32Array> {
    const k = `${from}|${key}`;
    const d = this.ready.get(k);
    if (d !== undefined) {
      this.ready.delete(k);
      return Promise.resolve(d);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(k);
        reject(
          new DrError(
            'LEARNER_ALLREDUCE_TIMEOUT',
            `no gradient chunk ${key} from learner ${from} within ${timeoutMs} ms; a data-parallel peer is down or slow`,
          ),
        );
      }, timeoutMs);
      this.waiting.set(k, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject,
      });
    });
  }

  /** Fails every waiter (the learner is stopping) and drops buffered chunks. */
  close(reason: Error): void {
    for (const w of this.waiting.values()) w.reject(reason);
    this.waiting.clear();
    this.ready.clear();
  }
}
