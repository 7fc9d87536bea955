/**
 * An onnxruntime session that loads and runs on its own worker thread. onnxruntime-node 1.29 builds a
 * session (`loadModel`: graph optimization, weight pre-packing) and executes `run` synchronously on the
 * calling thread, so on the main thread a long run stops timers, sockets and heartbeats for its whole
 * duration (a 4,096-token GRPO micro-batch of the embedded policy: 2.6-9.3 s on the loaded 2-core box). Here
 * the worker blocks instead; the caller's thread copies each feed once and moves it there, and takes the
 * outputs back the same way.
 */
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

/** A loaded model: onnxruntime's InferenceSession on this thread, or one on a worker thread. */
export type SessionHandle = ort.InferenceSession | WorkerSession;

interface WireTensor {
  name: string;
  type: ort.Tensor.Type;
  dims: readonly number[];
  data: ort.Tensor.DataType;
}

type FromWorker =
  | {
      type: 'ready';
      inputNames: string[];
      outputNames: string[];
      inputMetadata: ort.InferenceSession.ValueMetadata[];
    }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; outputs: WireTensor[] }
  | { type: 'error'; id: number; message: string }
  | { type: 'released' };

const WORKER_URL = new URL('./session-worker.mjs', import.meta.url);

export class WorkerSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (o: WireTensor[]) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #dead: Error | null = null;
  #released: (() => void) | null = null;

  private constructor(worker: Worker, ready: Extract<FromWorker, { type: 'ready' }>) {
    this.#worker = worker;
    this.inputNames = ready.inputNames;
    this.outputNames = ready.outputNames;
    this.inputMetadata = ready.inputMetadata;
    worker.on('message', (m: FromWorker) => this.#onMessage(m));
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', (code) => this.#fail(new Error(`the session worker exited (code ${code})`)));
    // An idle session must not keep the process alive; a run in flight does (see #request).
    worker.unref();
  }

  /** Starts a worker and loads the model there; rejects with onnxruntime's message when it refuses it. */
  static create(
    model: Uint8Array | string,
    options: ort.InferenceSession.SessionOptions,
  ): Promise<WorkerSession> {
    return new Promise((resolve, reject) => {
      // The worker is plain JavaScript: it needs none of the parent's loaders (tsx, vitest).
      const worker = new Worker(WORKER_URL, { workerData: { model, options }, execArgv: [] });
      const settle = (fn: () => void): void => {
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        fn();
      };
      const onMessage = (m: FromWorker): void =>
        settle(() => {
          if (m.type === 'ready') resolve(new WorkerSession(worker, m));
          else {
            void worker.terminate();
            reject(new Error(m.type === 'failed' ? m.message : `unexpected ${m.type} before ready`));
          }
        });
      const onError = (err: Error): void => settle(() => reject(err));
      const onExit = (code: number): void =>
        settle(() => reject(new Error(`the session worker exited (code ${code}) before loading the model`)));
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
  }

  async run(
    feeds: Record<string, ort.Tensor>,
    fetches?: readonly string[],
  ): Promise<Record<string, ort.Tensor>> {
    const wire: WireTensor[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(feeds)) {
      wire.push({ name, type: t.type, dims: t.dims, data: movableCopy(t.data, transfer) });
    }
    const outputs = await this.#request(wire, fetches === undefined ? null : [...fetches], transfer);
    return Object.fromEntries(outputs.map((o) => [o.name, new ort.Tensor(o.type, o.data as never, o.dims)]));
  }

  async release(): Promise<void> {
    if (this.#dead !== null) return;
    const released = new Promise<void>((resolve) => (this.#released = resolve));
    this.#worker.ref();
    this.#worker.postMessage({ type: 'release' });
    await released;
    this.#dead = new Error('the session was released');
    await this.#worker.terminate();
  }

  #request(feeds: WireTensor[], fetches: string[] | null, transfer: ArrayBuffer[]): Promise<WireTensor[]> {
    if (this.#dead !== null) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    const done = new Promise<WireTensor[]>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    if (this.#pending.size === 1) this.#worker.ref();
    this.#worker.postMessage({ type: 'run', id, feeds, fetches }, transfer);
    return done;
  }

  #onMessage(m: FromWorker): void {
    if (m.type === 'released') {
      this.#released?.();
      return;
    }
    if (m.type !== 'result' && m.type !== 'error') return;
    const p = this.#pending.get(m.id);
    if (p === undefined) return;
    this.#pending.delete(m.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if (m.type === 'result') p.resolve(m.outputs);
    else p.reject(new Error(m.message));
  }

  #fail(err: Error): void {
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#released?.();
  }
}

/**
 * A private copy of a typed array's own bytes, moved (transferred) to the worker rather than cloned: posting
 * a typed array would copy its whole underlying buffer twice (serialize, deserialize), and all of it when
 * the array is a view into a larger one (a weight inside a received blob). One copy is this thread's cost.
 */
function movableCopy(data: ort.Tensor.DataType, transfer: ArrayBuffer[]): ort.Tensor.DataType {
  if (!ArrayBuffer.isView(data)) return data;
  const copy = (data as Float32Array).slice();
  transfer.push(copy.buffer);
  return copy as ort.Tensor.DataType;
}
