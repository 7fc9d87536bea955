/**
 * ParameterServerActor: the owner of versioned policy weights. Versions are numbered 0, 1, 2, ... in publish
 * order; the last `keepVersions` stay in memory so a worker that started pulling one can finish even after a
 * newer one lands. Publishing is chunked and verified (sha256) before a version becomes visible, so a reader
 * never sees a partial version. Checkpoints combine the latest weights with the optimizer and trainer state
 * the trainer hands over, written atomically (checkpoint.ts).
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { DrError } from '../../config/errors.ts';
import type { Actor, ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { latestCheckpoint, readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { exportWeights } from './hf-export.ts';
import {
  paramsRequest,
  type CheckpointReply,
  type HfExportReply,
  type LatestReply,
  type ParamsArgs,
  type ParamsErrorReply,
  type ParamsRequest,
  type PublishBeginReply,
  type PublishCommitReply,
  type PullReply,
  type RestoreReply,
} from './protocol.ts';
import {
  chunkOf,
  decodeWeights,
  encodeWeights,
  sha256,
  splitTensors,
  type WeightManifest,
} from './weights-codec.ts';

interface Version {
  version: number;
  step: number;
  bytes: Uint8Array;
  manifest: WeightManifest;
}

interface Upload {
  step: number;
  manifest: WeightManifest;
  chunks: (Uint8Array | undefined)[];
  startedAt: number;
}

/** Uploads idle longer than this are dropped (their learner died mid-publish). */
const UPLOAD_TTL_MS = 10 * 60_000;

export class ParameterServer implements Actor {
  private readonly versions = new Map<number, Version>();
  private readonly uploads = new Map<string, Upload>();
  private nextVersion = 0;
  private latest: Version | null = null;

  constructor(private readonly args: ParamsArgs) {}

  /** Request errors come back as `{ error }` replies rather than throws: a throw would restart the actor
   * under supervision and drop every version it holds. */
  async receive(raw: unknown, ctx: ActorContext): Promise<unknown> {
    try {
      return await this.handle(raw, ctx);
    } catch (err) {
      if (err instanceof DrError && err.code.startsWith('PARAMS_')) {
        ctx.log.warn({ code: err.code, err: err.message }, 'parameter server refused a request');
        return { error: err.toJSON() } satisfies ParamsErrorReply;
      }
      throw err;
    }
  }

  private async handle(raw: unknown, ctx: ActorContext): Promise<unknown> {
    const parsed = paramsRequest.safeParse(raw);
    if (!parsed.success) {
      throw new DrError(
        'PARAMS_BAD_MESSAGE',
        `parameter server got a malformed message: ${parsed.error.issues[0]?.message ?? 'invalid'}; send protocol v1 messages (actors/params/protocol.ts)`,
      );
    }
    const msg: ParamsRequest = parsed.data;
    switch (msg.type) {
      case 'params.publish.begin':
        return this.begin(msg.step, msg.manifest);
      case 'params.publish.chunk':
        return this.chunk(msg.uploadId, msg.index, msg.data);
      case 'params.publish.commit':
        return this.commit(msg.uploadId, ctx);
      case 'params.latest':
        return this.latestReply();
      case 'params.pull':
        return this.pull(msg.version, msg.index);
      case 'params.checkpoint':
        return this.checkpoint(msg.step, msg.optimizer, msg.trainer, ctx);
      case 'params.restore':
        return this.restore(msg.checkpoint);
      case 'params.export':
        return this.export(msg, ctx);
    }
  }

  private begin(step: number, manifest: WeightManifest): PublishBeginReply {
    const now = Date.now();
    for (const [id, u] of this.uploads) if (now - u.startedAt > UPLOAD_TTL_MS) this.uploads.delete(id);
    const uploadId = randomUUID();
    this.uploads.set(uploadId, { step, manifest, chunks: new Array(manifest.chunks), startedAt: now });
    return { uploadId };
  }

  private chunk(uploadId: string, index: number, data: Uint8Array): { ok: true } {
    const u = this.upload(uploadId);
    if (index >= u.manifest.chunks) {
      throw new DrError(
        'PARAMS_BAD_CHUNK',
        `chunk ${index} is out of range; the upload has ${u.manifest.chunks} chunks`,
      );
    }
    // msgpack hands us a view into its receive buffer; keep a copy of our own.
    u.chunks[index] = Uint8Array.from(data);
    return { ok: true };
  }

  private commit(uploadId: string, ctx: ActorContext): PublishCommitReply {
    const u = this.upload(uploadId);
    this.uploads.delete(uploadId);
    const missing = u.chunks.findIndex((c) => c === undefined);
    if (missing !== -1) {
      throw new DrError('PARAMS_INTEGRITY', `upload is missing chunk ${missing}; publish the version again`);
    }
    const chunks = u.chunks as Uint8Array[];
    decodeWeights(u.manifest, chunks); // verifies size, sha256 and tensor shapes
    const bytes = new Uint8Array(u.manifest.totalBytes);
    let o = 0;
    for (const c of chunks) {
      bytes.set(c, o);
      o += c.byteLength;
    }
    const v = this.install(u.step, bytes, u.manifest);
    ctx.log.info({ version: v.version, step: u.step, bytes: bytes.byteLength }, 'weight version published');
    return { version: v.version };
  }

  private install(
    step: number,
    bytes: Uint8Array,
    manifest: WeightManifest,
    version = this.nextVersion,
  ): Version {
    const v: Version = { version, step, bytes, manifest };
    this.versions.set(version, v);
    this.latest = v;
    this.nextVersion = version + 1;
    const keep = this.args.keepVersions ?? 3;
    for (const old of [...this.versions.keys()]
      .sort((a, b) => a - b)
      .slice(0, Math.max(0, this.versions.size - keep))) {
      this.versions.delete(old);
    }
    return v;
  }

  private latestReply(): LatestReply {
    const l = this.latest;
    return l === null
      ? { version: -1, step: 0, manifest: null }
      : { version: l.version, step: l.step, manifest: l.manifest };
  }

  private pull(version: number, index: number): PullReply {
    const v = this.versions.get(version);
    if (v === undefined) {
      throw new DrError(
        'PARAMS_VERSION_GONE',
        `weight version ${version} is no longer held (latest is ${this.latest?.version ?? -1}); pull the latest version`,
      );
    }
    return { version, index, data: chunkOf(v.bytes, v.manifest, index) };
  }

  private async checkpoint(
    step: number,
    optimizer: { step: number; bytes: Uint8Array; sha256: string },
    trainer: unknown,
    ctx: ActorContext,
  ): Promise<CheckpointReply> {
    const l = this.latest;
    if (l === null) {
      throw new DrError(
        'PARAMS_NO_WEIGHTS',
        'nothing to checkpoint: no weight version has been published yet',
      );
    }
    if (sha256(optimizer.bytes) !== optimizer.sha256) {
      throw new DrError(
        'PARAMS_INTEGRITY',
        'optimizer state failed its sha256 check in transit; send it again',
      );
    }
    const specs = l.manifest.tensors;
    const moments = splitTensors([...specs, ...specs], Uint8Array.from(optimizer.bytes));
    const path = await writeCheckpoint(
      this.args.checkpointDir,
      {
        step,
        version: l.version,
        specs,
        weights: splitTensors(specs, l.bytes),
        optimizer: {
          step: optimizer.step,
          m: moments.slice(0, specs.length),
          v: moments.slice(specs.length),
        },
        trainer,
        ...(this.args.modelDir === undefined ? {} : { base: resolve(this.args.modelDir) }),
      },
      this.args.keepCheckpoints ?? 3,
    );
    ctx.log.info({ step, version: l.version, path }, 'checkpoint written');
    return { path };
  }

  private async restore(explicit: string | undefined): Promise<RestoreReply> {
    const path = explicit ?? (await latestCheckpoint(this.args.checkpointDir));
    if (path === null) return { restored: null };
    const c = await readCheckpoint(path);
    const { bytes, manifest } = encodeWeights(c.specs, c.weights, this.latest?.manifest.chunkBytes);
    this.install(c.step, bytes, manifest, c.version);
    const opt = encodeWeights([...c.specs, ...c.specs], [...c.optimizer.m, ...c.optimizer.v]);
    return {
      restored: {
        path,
        step: c.step,
        version: c.version,
        optimizer: { step: c.optimizer.step, bytes: opt.bytes, sha256: opt.manifest.sha256 },
        trainer: c.trainer,
      },
    };
  }

  private async export(
    msg: Extract<ParamsRequest, { type: 'params.export' }>,
    ctx: ActorContext,
  ): Promise<HfExportReply> {
    const l = this.latest;
    if (l === null)
      throw new DrError('PARAMS_NO_WEIGHTS', 'nothing to export: no weight version has been published yet');
    if (this.args.modelDir === undefined)
      throw new DrError(
        'PARAMS_NO_BASE_MODEL',
        'this parameter server was started without modelDir, so it has no config.json or tokenizer to export with',
      );
    const specs = l.manifest.tensors;
    const tensors = splitTensors(specs, l.bytes);
    const result = await exportWeights(msg.dir, this.args.modelDir, specs, tensors, {
      ...(msg.dtype === undefined ? {} : { dtype: msg.dtype }),
      ...(msg.maxShardBytes === undefined ? {} : { maxShardBytes: msg.maxShardBytes }),
      metadata: { dr_step: String(l.step), dr_weight_version: String(l.version) },
    });
    ctx.log.info({ version: l.version, step: l.step, dir: result.dir }, 'weight version exported');
    return { version: l.version, step: l.step, dir: result.dir, shards: result.shards };
  }

  private upload(id: string): Upload {
    const u = this.uploads.get(id);
    if (u === undefined) {
      throw new DrError(
        'PARAMS_UNKNOWN_UPLOAD',
        `upload ${id} is unknown or expired; begin the publish again`,
      );
    }
    return u;
  }
}

export const parameterServer: ActorFactory<ParamsArgs> = (args) => new ParameterServer(args);
