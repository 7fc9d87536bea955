/**
 * Execution on onnxruntime-node: one `OnnxSession` per compiled graph (feeds validated against the
 * model's own input metadata, optional preallocated outputs so steady-state runs allocate nothing), and a
 * `SessionCache` that builds each shape family once. The CPU provider is the default; `provider: 'auto'`
 * uses CUDA when its provider library is installed beside onnxruntime-node and falls back to CPU with a
 * log line otherwise.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DrError } from '../../config/errors.ts';
import { silentLogger, type Logger } from '../../config/log.ts';
import type { Graph } from './graph.ts';
import { WorkerSession, type SessionHandle } from './session-thread.ts';

export type Provider = 'cpu' | 'cuda' | 'auto';

export interface SessionConfig {
  /** 'cpu' (default), 'cuda' (fail when unavailable) or 'auto' (CUDA when available, else CPU). */
  provider?: Provider;
  /** Threads inside one op (default: DR_ORT_THREADS, else onnxruntime's choice, one per core). */
  intraOpThreads?: number;
  /** Threads running independent ops in parallel (default 1: sequential execution). */
  interOpThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** CUDA device ordinal for provider 'cuda'/'auto' (default 0). */
  cudaDeviceId?: number;
  /** onnxruntime's own stderr logging: 0 verbose .. 4 fatal (default 3, errors only). */
  ortLogLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Where onnxruntime loads and runs the model: 'main' (default) or 'worker', a worker thread of its own, so
   * building the session and every run leave this thread's event loop free (onnxruntime-node does both
   * synchronously on the calling thread). A worker run copies feeds in and outputs out.
   */
  thread?: 'main' | 'worker';
  log?: Logger;
}

export type Feeds = Record<string, ort.Tensor>;
/** Output names to fetch, or a map from output name to a preallocated tensor to write into (null: allocate). */
export type Fetches = readonly string[] | Record<string, ort.Tensor | null>;

const require = createRequire(import.meta.url);

/** Set once CUDA failed to start under provider 'auto', so later sessions go straight to CPU. */
let cudaFailed = false;

/** Whether onnxruntime-node has a CUDA provider library next to its native binding (see shared/gpu/README.md). */
export function cudaProviderInstalled(): boolean {
  try {
    const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
    return existsSync(
      join(pkg, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'),
    );
  } catch {
    return false;
  }
}

export class OnnxSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly #inputs: ReadonlyMap<string, ort.InferenceSession.TensorValueMetadata>;
  #released = false;

  private constructor(
    readonly session: SessionHandle,
    readonly provider: 'cpu' | 'cuda',
  ) {
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
    const meta = new Map<string, ort.InferenceSession.TensorValueMetadata>();
    for (const m of session.inputMetadata) if (m.isTensor) meta.set(m.name, m);
    this.#inputs = meta;
  }

  /** Compiles a graph (or ONNX bytes, or a model path) for the configured provider. */
  static async create(model: Graph | Uint8Array | string, config: SessionConfig = {}): Promise<OnnxSession> {
    const log = config.log ?? silentLogger;
    const bytes = typeof model === 'string' || model instanceof Uint8Array ? model : model.serialize().model;
    const want = config.provider ?? 'cpu';
    const base: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: config.intraOpThreads ?? defaultIntraOpThreads(),
      interOpNumThreads: config.interOpThreads ?? 1,
      executionMode: (config.interOpThreads ?? 1) > 1 ? 'parallel' : 'sequential',
      graphOptimizationLevel: config.graphOptimizationLevel ?? 'all',
      logSeverityLevel: config.ortLogLevel ?? 3,
    };
    if (want === 'cuda' || (want === 'auto' && !cudaFailed)) {
      const installed = cudaProviderInstalled();
      if (installed) {
        try {
          const cuda = { name: 'cuda', deviceId: config.cudaDeviceId ?? 0 };
          return new OnnxSession(
            await createSession(bytes, { ...base, executionProviders: [cuda, 'cpu'] }, config.thread),
            'cuda',
          );
        } catch (err) {
          if (want === 'cuda')
            throw new DrError(
              'ONNX_CUDA_UNAVAILABLE',
              `the CUDA provider failed to start: ${String(err)}; check CUDA libraries on LD_LIBRARY_PATH`,
              { cause: err },
            );
          const cpu = new OnnxSession(
            await createSession(bytes, { ...base, executionProviders: ['cpu'] }, config.thread),
            'cpu',
          );
          // The CPU provider took the same model, so the provider (not the model) failed: stop trying it.
          cudaFailed = true;
          log.warn({ err: String(err) }, 'CUDA provider failed to start; running on CPU from now on');
          return cpu;
        }
      } else if (want === 'cuda') {
        throw new DrError(
          'ONNX_CUDA_UNAVAILABLE',
          'no CUDA provider library beside onnxruntime-node; stage it with shared/gpu/prepare.sh or use provider "auto"',
        );
      } else {
        log.info('CUDA provider not installed; running on CPU');
      }
    }
    return new OnnxSession(
      await createSession(bytes, { ...base, executionProviders: ['cpu'] }, config.thread),
      'cpu',
    );
  }

  /**
   * Runs the graph. Feeds are checked against the model's inputs (names, dtypes, static dims) and a bad
   * feed fails with a DrError before reaching onnxruntime. With a fetch map, outputs are written into the
   * given tensors, which is how a steady loop avoids allocating per run.
   */
  async run(feeds: Feeds, fetches?: Fetches): Promise<Record<string, ort.Tensor>> {
    if (this.#released)
      throw new DrError(
        'ONNX_SESSION_RELEASED',
        'this session was released; get a fresh one from the SessionCache',
      );
    this.#check(feeds);
    try {
      if (fetches === undefined) return await this.session.run(feeds);
      if (Array.isArray(fetches)) return await this.session.run(feeds, fetches as string[]);
      const preallocated = fetches as Record<string, ort.Tensor | null>;
      if (this.session instanceof WorkerSession) {
        return intoPreallocated(await this.session.run(feeds, Object.keys(preallocated)), preallocated);
      }
      return await this.session.run(feeds, preallocated);
    } catch (err) {
      throw new DrError('ONNX_RUN_FAILED', `onnxruntime failed to run the graph: ${String(err)}`, {
        cause: err,
      });
    }
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.session.release();
  }

  #check(feeds: Feeds): void {
    const missing = [...this.#inputs.keys()].filter((n) => !(n in feeds));
    const unknown = Object.keys(feeds).filter((n) => !this.#inputs.has(n));
    if (missing.length || unknown.length) {
      throw new DrError(
        'ONNX_BAD_FEEDS',
        `feeds do not match the graph inputs${missing.length ? `; missing: ${missing.join(', ')}` : ''}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`,
      );
    }
    for (const [name, meta] of this.#inputs) {
      const t = feeds[name]!;
      if (t.type !== meta.type)
        throw new DrError('ONNX_BAD_FEEDS', `input ${name} must be ${meta.type}, got ${t.type}`);
      const ok =
        t.dims.length === meta.shape.length &&
        meta.shape.every((d, i) => typeof d !== 'number' || d === t.dims[i]);
      if (!ok)
        throw new DrError(
          'ONNX_BAD_FEEDS',
          `input ${name} must have shape [${meta.shape.join(', ')}], got [${t.dims.join(', ')}]`,
        );
    }
  }
}

/** A worker session's outputs copied into the caller's preallocated tensors (written in place, as on 'main'). */
function intoPreallocated(
  out: Record<string, ort.Tensor>,
  fetches: Readonly<Record<string, ort.Tensor | null>>,
): Record<string, ort.Tensor> {
  for (const [name, into] of Object.entries(fetches)) {
    if (into === null) continue;
    const got = out[name]!;
    if (got.type !== into.type || got.size !== into.size) {
      throw new Error(
        `output ${name} is ${got.type} [${got.dims.join(', ')}], the preallocated tensor ${into.type} [${into.dims.join(', ')}]`,
      );
    }
    (into.data as Float32Array).set(got.data as Float32Array);
    out[name] = into;
  }
  return out;
}

async function createSession(
  model: Uint8Array | string,
  options: ort.InferenceSession.SessionOptions,
  thread: 'main' | 'worker' = 'main',
): Promise<SessionHandle> {
  try {
    if (thread === 'worker') return await WorkerSession.create(model, options);
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, options)
      : await ort.InferenceSession.create(model, options);
  } catch (err) {
    throw new DrError('ONNX_LOAD_FAILED', `onnxruntime refused the model: ${String(err)}`, { cause: err });
  }
}

/** A stable cache key for a shape family: kind plus sorted key=value pairs. */
export function familyKey(kind: string, params: Record<string, string | number | boolean> = {}): string {
  return [
    kind,
    ...Object.keys(params)
      .sort()
      .map((k) => `${k}=${params[k]}`),
  ].join('|');
}

/**
 * Sessions built once per shape family and reused. Concurrent `get`s of one key share one build; a build
 * that fails is not cached, so the next `get` tries again.
 */
export class SessionCache {
  readonly #sessions = new Map<string, Promise<OnnxSession>>();
  #hits = 0;
  #misses = 0;

  constructor(readonly config: SessionConfig = {}) {}

  async get(key: string, build: () => Graph | Uint8Array | string): Promise<OnnxSession> {
    const cached = this.#sessions.get(key);
    if (cached) {
      this.#hits++;
      return cached;
    }
    this.#misses++;
    const made = Promise.resolve()
      .then(build)
      .then((model) => OnnxSession.create(model, this.config));
    this.#sessions.set(key, made);
    made.catch(() => this.#sessions.delete(key));
    return made;
  }

  get stats(): { sessions: number; hits: number; misses: number } {
    return { sessions: this.#sessions.size, hits: this.#hits, misses: this.#misses };
  }

  async evict(key: string): Promise<void> {
    const s = this.#sessions.get(key);
    this.#sessions.delete(key);
    if (s) await (await s).release();
  }

  async releaseAll(): Promise<void> {
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => null))?.release()));
  }
}

/** DR_ORT_THREADS caps every session's op threads, for several nodes or runs sharing one machine. */
function defaultIntraOpThreads(): number {
  const raw = process.env.DR_ORT_THREADS;
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new DrError(
      'CONFIG_INVALID',
      `DR_ORT_THREADS=${raw} is not a thread count; set a whole number (0: one per core)`,
    );
  }
  return n;
}
