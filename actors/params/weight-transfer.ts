/**
 * The two ends of a weight transfer through the ParameterServerActor: `publishWeights` (a learner sends a
 * new version in chunks, then commits it) and `WeightSubscriber` (a rollout worker or learner fetches the
 * latest version before its next batch, chunk by chunk with a bounded number of asks in flight, and verifies
 * the sha256 before using it). Both take the caller's `ask`, so they work from any actor or client.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import {
  PARAMS_PROTOCOL,
  type LatestReply,
  type ParamsErrorReply,
  type PublishBeginReply,
  type PublishCommitReply,
  type PullReply,
} from './protocol.ts';
import {
  chunkOf,
  decodeWeights,
  encodeWeights,
  DEFAULT_CHUNK_BYTES,
  type TensorSpec,
} from './weights-codec.ts';

export type AskFn = <R>(target: string, msg: unknown, options?: { timeoutMs?: number }) => Promise<R>;

/** Asks the parameter server and turns an `{ error }` reply back into a DrError with its code. */
export async function askParams<R>(ask: AskFn, server: string, msg: unknown, timeoutMs: number): Promise<R> {
  const reply = await ask<R | ParamsErrorReply>(server, msg, { timeoutMs });
  if (typeof reply === 'object' && reply !== null && 'error' in reply) {
    throw new DrError(reply.error.code, reply.error.message);
  }
  return reply as R;
}

export interface TransferOptions {
  chunkBytes?: number;
  /** Chunk asks in flight at once. */
  concurrency?: number;
  timeoutMs?: number;
}

export interface WeightVersion {
  version: number;
  step: number;
  specs: TensorSpec[];
  tensors: Float32Array[];
}

export async function publishWeights(
  ask: AskFn,
  server: string,
  step: number,
  specs: readonly TensorSpec[],
  tensors: readonly Float32Array[],
  options: TransferOptions = {},
): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { bytes, manifest } = encodeWeights(specs, tensors, options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  const { uploadId } = await askParams<PublishBeginReply>(
    ask,
    server,
    { v: PARAMS_PROTOCOL, type: 'params.publish.begin', step, manifest },
    timeoutMs,
  );
  await forEachLimited(manifest.chunks, options.concurrency ?? 4, (index) =>
    askParams(
      ask,
      server,
      {
        v: PARAMS_PROTOCOL,
        type: 'params.publish.chunk',
        uploadId,
        index,
        data: chunkOf(bytes, manifest, index),
      },
      timeoutMs,
    ),
  );
  const { version } = await askParams<PublishCommitReply>(
    ask,
    server,
    { v: PARAMS_PROTOCOL, type: 'params.publish.commit', uploadId },
    timeoutMs,
  );
  return version;
}

/** Keeps a local copy of the latest weights; `refresh` fetches only when the server has a newer version. */
export class WeightSubscriber {
  private current: WeightVersion | null = null;

  constructor(
    private readonly ask: AskFn,
    private readonly server: string,
    private readonly options: TransferOptions = {},
  ) {}

  get version(): number {
    return this.current?.version ?? -1;
  }

  get weights(): WeightVersion | null {
    return this.current;
  }

  /** Returns the new version when one was fetched, null when already up to date (or nothing published). */
  async refresh(): Promise<WeightVersion | null> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const latest = await askParams<LatestReply>(
        this.ask,
        this.server,
        { v: PARAMS_PROTOCOL, type: 'params.latest' },
        this.options.timeoutMs ?? 60_000,
      );
      if (latest.manifest === null || latest.version <= this.version) return null;
      try {
        this.current = await this.pull(latest);
        return this.current;
      } catch (err) {
        // A newer version evicted the one we were pulling: start over with the newest.
        if (!isDrError(err, 'PARAMS_VERSION_GONE')) throw err;
      }
    }
    throw new DrError(
      'PARAMS_PULL_STARVED',
      'weight versions are being replaced faster than they can be pulled; raise keepVersions on the parameter server',
    );
  }

  private async pull(latest: LatestReply): Promise<WeightVersion> {
    const manifest = latest.manifest!;
    const chunks = new Array<Uint8Array>(manifest.chunks);
    await forEachLimited(manifest.chunks, this.options.concurrency ?? 4, async (index) => {
      const r = await askParams<PullReply>(
        this.ask,
        this.server,
        { v: PARAMS_PROTOCOL, type: 'params.pull', version: latest.version, index },
        this.options.timeoutMs ?? 60_000,
      );
      chunks[index] = r.data;
    });
    return {
      version: latest.version,
      step: latest.step,
      specs: manifest.tensors,
      tensors: decodeWeights(manifest, chunks),
    };
  }
}

async function forEachLimited(
  count: number,
  limit: number,
  fn: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}
