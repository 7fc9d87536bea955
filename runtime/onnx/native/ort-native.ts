/**
 * onnxruntime's C API, reached through koffi (an FFI with prebuilt binaries for every platform Node runs on,
 * so nothing is compiled at install) over the very `libonnxruntime.so` that onnxruntime-node loads. It adds
 * what the JS binding lacks: tensors that live on the CUDA device between runs (allocated by a session's
 * device allocator) and IO binding, so a train step reads weights and moments where they are and writes the
 * new ones into preallocated device buffers. Host data is copied in and out only on request (`write`,
 * `read`: cudaMemcpy through the CUDA runtime the provider itself uses).
 *
 * With `provider: 'cpu'` the same code runs on host memory (the CPU fallback, tested in CI), where "device"
 * tensors are plain host buffers.
 *
 * Function slots are indices into `OrtApi`, the struct of function pointers `OrtGetApiBase()->GetApi(29)`
 * returns. onnxruntime only ever appends to it, so these slots hold for every version from 1.29 on; they
 * were read off onnxruntime_c_api.h of 1.29 (ORT_API_VERSION 29).
 */
import koffi from 'koffi';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DrError } from '../../../config/errors.ts';

export type NativeProvider = 'cpu' | 'cuda';
export type NativeDType = 'float32' | 'int64';

/** An OrtValue holding a tensor, in host memory or on the device. */
export interface NativeTensor {
  readonly handle: unknown;
  readonly dims: readonly number[];
  readonly dtype: NativeDType;
  readonly bytes: number;
  readonly onDevice: boolean;
  /** Host tensors only: the JS array the tensor wraps (kept alive as long as the tensor). */
  readonly host?: Float32Array | BigInt64Array;
}

const API_VERSION = 29;
const SLOTS = {
  GetErrorMessage: 2,
  CreateEnv: 3,
  CreateSessionFromArray: 8,
  CreateSessionOptions: 10,
  SetSessionGraphOptimizationLevel: 23,
  SetIntraOpNumThreads: 24,
  CreateTensorAsOrtValue: 48,
  CreateTensorWithDataAsOrtValue: 49,
  GetTensorMutableData: 51,
  CreateMemoryInfo: 68,
  CreateCpuMemoryInfo: 69,
  ReleaseEnv: 92,
  ReleaseStatus: 93,
  ReleaseMemoryInfo: 94,
  ReleaseSession: 95,
  ReleaseValue: 96,
  ReleaseSessionOptions: 100,
  CreateAllocator: 131,
  ReleaseAllocator: 132,
  RunWithBinding: 133,
  CreateIoBinding: 134,
  ReleaseIoBinding: 135,
  BindInput: 136,
  BindOutput: 137,
  ClearBoundInputs: 141,
  ClearBoundOutputs: 142,
  SynchronizeBoundOutputs: 203,
  SessionOptionsAppendExecutionProvider_CUDA_V2: 204,
  CreateCUDAProviderOptions: 205,
  UpdateCUDAProviderOptions: 206,
  ReleaseCUDAProviderOptions: 208,
} as const;
const TABLE_SIZE = 209;
const ELEMENT_TYPE: Record<NativeDType, number> = { float32: 1, int64: 7 };
const ELEMENT_BYTES: Record<NativeDType, number> = { float32: 4, int64: 8 };
/** OrtArenaAllocator, OrtMemTypeDefault; OrtDeviceAllocator for the device. */
const ARENA = 1;
const DEVICE_ALLOCATOR = 0;
const MEM_DEFAULT = 0;
const CUDA_MEMCPY_DEFAULT = 4;

type Fn = (...args: unknown[]) => unknown;

interface Api {
  GetErrorMessage: Fn;
  [name: string]: Fn;
}

let loaded: { api: Api; env: unknown; cudart?: CudaRuntime } | null = null;

interface CudaRuntime {
  memcpy: Fn;
  memset: Fn;
}

function libraryDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

/** The API table, loaded once per process. */
function load(): NonNullable<typeof loaded> {
  if (loaded !== null) return loaded;
  const dir = libraryDir();
  const file = ['libonnxruntime.so.1', 'libonnxruntime.dylib', 'onnxruntime.dll']
    .map((f) => join(dir, f))
    .find((f) => existsSync(f));
  if (file === undefined)
    throw new DrError(
      'ONNX_NATIVE_UNAVAILABLE',
      `no onnxruntime library in ${dir}; reinstall onnxruntime-node`,
    );
  const lib = koffi.load(file);
  const base = lib.func('void *OrtGetApiBase()')();
  const [getApi] = koffi.decode(base, koffi.array('void *', 2)) as unknown[];
  const apiPtr = koffi.call(getApi, koffi.proto('void *OrtGetApiFn(uint32_t version)'), API_VERSION);
  if (apiPtr === null)
    throw new DrError(
      'ONNX_NATIVE_UNAVAILABLE',
      `onnxruntime in ${dir} does not offer C API version ${API_VERSION}; use onnxruntime-node 1.29 or newer`,
    );
  const table = koffi.decode(apiPtr, koffi.array('void *', TABLE_SIZE)) as unknown[];
  const fn = (slot: number, signature: string): Fn => {
    const proto = koffi.proto(signature);
    return (...args) => koffi.call(table[slot], proto, ...args);
  };
  const status = 'void *';
  const api: Api = {
    GetErrorMessage: fn(SLOTS.GetErrorMessage, 'const char *GetErrorMessage(void *status)'),
    ReleaseStatus: fn(SLOTS.ReleaseStatus, 'void ReleaseStatus(void *status)'),
    CreateEnv: fn(SLOTS.CreateEnv, `${status} CreateEnv(int level, const char *id, _Out_ void **out)`),
    CreateSessionOptions: fn(SLOTS.CreateSessionOptions, `${status} CreateSessionOptions(_Out_ void **out)`),
    SetSessionGraphOptimizationLevel: fn(
      SLOTS.SetSessionGraphOptimizationLevel,
      `${status} SetSessionGraphOptimizationLevel(void *options, int level)`,
    ),
    SetIntraOpNumThreads: fn(
      SLOTS.SetIntraOpNumThreads,
      `${status} SetIntraOpNumThreads(void *options, int n)`,
    ),
    CreateSessionFromArray: fn(
      SLOTS.CreateSessionFromArray,
      `${status} CreateSessionFromArray(void *env, const void *data, size_t len, void *options, _Out_ void **out)`,
    ),
    CreateCpuMemoryInfo: fn(
      SLOTS.CreateCpuMemoryInfo,
      `${status} CreateCpuMemoryInfo(int type, int memType, _Out_ void **out)`,
    ),
    CreateMemoryInfo: fn(
      SLOTS.CreateMemoryInfo,
      `${status} CreateMemoryInfo(const char *name, int type, int id, int memType, _Out_ void **out)`,
    ),
    CreateAllocator: fn(
      SLOTS.CreateAllocator,
      `${status} CreateAllocator(void *session, void *info, _Out_ void **out)`,
    ),
    CreateTensorAsOrtValue: fn(
      SLOTS.CreateTensorAsOrtValue,
      `${status} CreateTensorAsOrtValue(void *allocator, const int64_t *shape, size_t n, int type, _Out_ void **out)`,
    ),
    CreateTensorWithDataAsOrtValue: fn(
      SLOTS.CreateTensorWithDataAsOrtValue,
      `${status} CreateTensorWithDataAsOrtValue(void *info, void *data, size_t bytes, const int64_t *shape, size_t n, int type, _Out_ void **out)`,
    ),
    GetTensorMutableData: fn(
      SLOTS.GetTensorMutableData,
      `${status} GetTensorMutableData(void *value, _Out_ void **out)`,
    ),
    CreateIoBinding: fn(SLOTS.CreateIoBinding, `${status} CreateIoBinding(void *session, _Out_ void **out)`),
    BindInput: fn(SLOTS.BindInput, `${status} BindInput(void *binding, const char *name, void *value)`),
    BindOutput: fn(SLOTS.BindOutput, `${status} BindOutput(void *binding, const char *name, void *value)`),
    ClearBoundInputs: fn(SLOTS.ClearBoundInputs, 'void ClearBoundInputs(void *binding)'),
    ClearBoundOutputs: fn(SLOTS.ClearBoundOutputs, 'void ClearBoundOutputs(void *binding)'),
    RunWithBinding: fn(
      SLOTS.RunWithBinding,
      `${status} RunWithBinding(void *session, void *runOptions, void *binding)`,
    ),
    SynchronizeBoundOutputs: fn(
      SLOTS.SynchronizeBoundOutputs,
      `${status} SynchronizeBoundOutputs(void *binding)`,
    ),
    CreateCUDAProviderOptions: fn(
      SLOTS.CreateCUDAProviderOptions,
      `${status} CreateCUDAProviderOptions(_Out_ void **out)`,
    ),
    UpdateCUDAProviderOptions: fn(
      SLOTS.UpdateCUDAProviderOptions,
      `${status} UpdateCUDAProviderOptions(void *cuda, const char **keys, const char **values, size_t n)`,
    ),
    AppendCuda: fn(
      SLOTS.SessionOptionsAppendExecutionProvider_CUDA_V2,
      `${status} AppendCuda(void *options, void *cuda)`,
    ),
    ReleaseCUDAProviderOptions: fn(
      SLOTS.ReleaseCUDAProviderOptions,
      'void ReleaseCUDAProviderOptions(void *cuda)',
    ),
    ReleaseValue: fn(SLOTS.ReleaseValue, 'void ReleaseValue(void *value)'),
    ReleaseIoBinding: fn(SLOTS.ReleaseIoBinding, 'void ReleaseIoBinding(void *binding)'),
    ReleaseAllocator: fn(SLOTS.ReleaseAllocator, 'void ReleaseAllocator(void *allocator)'),
    ReleaseMemoryInfo: fn(SLOTS.ReleaseMemoryInfo, 'void ReleaseMemoryInfo(void *info)'),
    ReleaseSession: fn(SLOTS.ReleaseSession, 'void ReleaseSession(void *session)'),
    ReleaseSessionOptions: fn(SLOTS.ReleaseSessionOptions, 'void ReleaseSessionOptions(void *options)'),
    ReleaseEnv: fn(SLOTS.ReleaseEnv, 'void ReleaseEnv(void *env)'),
  };
  const out: unknown[] = [null];
  checked(api, api.CreateEnv!(3, 'dr-native', out), 'CreateEnv');
  loaded = { api, env: out[0] };
  return loaded;
}

/** The CUDA runtime the CUDA provider loaded, for host<->device copies. */
function cudart(): CudaRuntime {
  const l = load();
  if (l.cudart !== undefined) return l.cudart;
  const names = [process.env.DR_CUDART, 'libcudart.so.13', 'libcudart.so.12', 'libcudart.so'].filter(
    (n): n is string => n !== undefined && n !== '',
  );
  for (const name of names) {
    try {
      const lib = koffi.load(name);
      l.cudart = {
        memcpy: lib.func('int cudaMemcpy(void *dst, void *src, size_t count, int kind)') as Fn,
        memset: lib.func('int cudaMemset(void *dst, int value, size_t count)') as Fn,
      };
      return l.cudart;
    } catch {
      // try the next name
    }
  }
  throw new DrError(
    'ONNX_CUDA_UNAVAILABLE',
    `no CUDA runtime library (${names.join(', ')}) could be loaded; put it on LD_LIBRARY_PATH or name it in DR_CUDART`,
  );
}

function checked(api: Api, status: unknown, what: string): void {
  if (status === null) return;
  const message = String(api.GetErrorMessage(status));
  api.ReleaseStatus!(status);
  throw new DrError('ONNX_NATIVE_FAILED', `onnxruntime ${what} failed: ${message}`);
}

/** One session on the native API with the tensors it allocates and the binding it runs with. */
export class NativeSession {
  readonly #api: Api;
  readonly #session: unknown;
  readonly #allocator: unknown;
  readonly #cpuInfo: unknown;
  readonly #deviceInfo: unknown;
  readonly #binding: unknown;
  #released = false;

  private constructor(
    readonly provider: NativeProvider,
    handles: {
      session: unknown;
      allocator: unknown;
      cpuInfo: unknown;
      deviceInfo: unknown;
      binding: unknown;
    },
  ) {
    this.#api = load().api;
    this.#session = handles.session;
    this.#allocator = handles.allocator;
    this.#cpuInfo = handles.cpuInfo;
    this.#deviceInfo = handles.deviceInfo;
    this.#binding = handles.binding;
  }

  static create(
    model: Uint8Array,
    options: { provider: NativeProvider; deviceId?: number; intraOpThreads?: number },
  ): NativeSession {
    const { api, env } = load();
    const out: unknown[] = [null];
    const call = (status: unknown, what: string): unknown => {
      checked(api, status, what);
      return out[0];
    };
    const sessionOptions = call(api.CreateSessionOptions!(out), 'CreateSessionOptions');
    try {
      checked(
        api,
        api.SetSessionGraphOptimizationLevel!(sessionOptions, 99),
        'SetSessionGraphOptimizationLevel',
      );
      if (options.intraOpThreads !== undefined)
        checked(
          api,
          api.SetIntraOpNumThreads!(sessionOptions, options.intraOpThreads),
          'SetIntraOpNumThreads',
        );
      if (options.provider === 'cuda') {
        const cuda = call(api.CreateCUDAProviderOptions!(out), 'CreateCUDAProviderOptions');
        try {
          checked(
            api,
            api.UpdateCUDAProviderOptions!(cuda, ['device_id'], [String(options.deviceId ?? 0)], 1),
            'UpdateCUDAProviderOptions',
          );
          checked(
            api,
            api.AppendCuda!(sessionOptions, cuda),
            'SessionOptionsAppendExecutionProvider_CUDA_V2',
          );
        } finally {
          api.ReleaseCUDAProviderOptions!(cuda);
        }
      }
      const session = call(
        api.CreateSessionFromArray!(env, model, model.byteLength, sessionOptions, out),
        'CreateSessionFromArray',
      );
      const cpuInfo = call(api.CreateCpuMemoryInfo!(ARENA, MEM_DEFAULT, out), 'CreateCpuMemoryInfo');
      const deviceInfo =
        options.provider === 'cuda'
          ? call(
              api.CreateMemoryInfo!('Cuda', DEVICE_ALLOCATOR, options.deviceId ?? 0, MEM_DEFAULT, out),
              'CreateMemoryInfo',
            )
          : cpuInfo;
      const allocator = call(api.CreateAllocator!(session, deviceInfo, out), 'CreateAllocator');
      const binding = call(api.CreateIoBinding!(session, out), 'CreateIoBinding');
      return new NativeSession(options.provider, { session, allocator, cpuInfo, deviceInfo, binding });
    } finally {
      api.ReleaseSessionOptions!(sessionOptions);
    }
  }

  /** A tensor in the session's device memory (host memory on CPU), contents undefined until written. */
  allocate(dims: readonly number[], dtype: NativeDType = 'float32'): NativeTensor {
    this.#alive();
    const out: unknown[] = [null];
    checked(
      this.#api,
      this.#api.CreateTensorAsOrtValue!(
        this.#allocator,
        BigInt64Array.from(dims, BigInt),
        dims.length,
        ELEMENT_TYPE[dtype],
        out,
      ),
      'CreateTensorAsOrtValue',
    );
    return {
      handle: out[0],
      dims: [...dims],
      dtype,
      bytes: size(dims) * ELEMENT_BYTES[dtype],
      onDevice: true,
    };
  }

  /**
   * A host tensor holding a copy of `data`. Its array (`host`) is the tensor's memory: write it to change the
   * input of the next run, read it after a run it was an output of. The array has a backing store of its own
   * (never a small on-heap array the garbage collector may move), since onnxruntime keeps its address.
   */
  wrap(data: Float32Array | BigInt64Array, dims: readonly number[]): NativeTensor {
    this.#alive();
    const dtype: NativeDType = data instanceof Float32Array ? 'float32' : 'int64';
    if (data.length !== size(dims))
      throw new DrError('ONNX_BAD_SHAPE', `${data.length} values for dims [${dims.join(', ')}]`);
    const buffer = new ArrayBuffer(Math.max(8, data.byteLength));
    const host =
      dtype === 'float32'
        ? new Float32Array(buffer, 0, data.length)
        : new BigInt64Array(buffer, 0, data.length);
    host.set(data as never);
    const out: unknown[] = [null];
    checked(
      this.#api,
      this.#api.CreateTensorWithDataAsOrtValue!(
        this.#cpuInfo,
        host,
        host.byteLength,
        BigInt64Array.from(dims, BigInt),
        dims.length,
        ELEMENT_TYPE[dtype],
        out,
      ),
      'CreateTensorWithDataAsOrtValue',
    );
    return { handle: out[0], dims: [...dims], dtype, bytes: host.byteLength, onDevice: false, host };
  }

  /** Copies host data into a device tensor. */
  write(tensor: NativeTensor, data: Float32Array | BigInt64Array): void {
    this.#copy(tensor, data, 'in');
  }

  /**
   * Copies a device tensor into host memory (`into`, or a new array). Pass `into` for repeated reads: on the
   * H200 machine a copy into a fresh array ran at 1.1 GB/s (the kernel zero-filling pages on first touch),
   * into an array already touched at 11.5 GB/s.
   */
  read(tensor: NativeTensor, into?: Float32Array): Float32Array {
    const dst = into ?? new Float32Array(tensor.bytes / 4);
    this.#copy(tensor, dst, 'out');
    return dst;
  }

  /**
   * Binds inputs and outputs by name and runs; outputs are complete when it returns. The binding is cleared
   * afterwards, so it never holds a tensor past the run (a tensor may come from another session's allocator
   * and must not outlive it).
   */
  run(inputs: Readonly<Record<string, NativeTensor>>, outputs: Readonly<Record<string, NativeTensor>>): void {
    this.#alive();
    const api = this.#api;
    try {
      for (const [name, t] of Object.entries(inputs))
        checked(api, api.BindInput!(this.#binding, name, t.handle), `BindInput ${name}`);
      for (const [name, t] of Object.entries(outputs))
        checked(api, api.BindOutput!(this.#binding, name, t.handle), `BindOutput ${name}`);
      checked(api, api.RunWithBinding!(this.#session, null, this.#binding), 'RunWithBinding');
      checked(api, api.SynchronizeBoundOutputs!(this.#binding), 'SynchronizeBoundOutputs');
    } finally {
      api.ClearBoundInputs!(this.#binding);
      api.ClearBoundOutputs!(this.#binding);
    }
  }

  /** Sets every byte of a tensor to 0 (cudaMemset on the device). */
  zero(tensor: NativeTensor): void {
    const ptr = this.#dataPointer(tensor);
    if (this.provider === 'cpu' || !tensor.onDevice) {
      new Uint8Array(koffi.view(ptr, tensor.bytes)).fill(0);
      return;
    }
    const code = cudart().memset(ptr, 0, tensor.bytes);
    if (code !== 0)
      throw new DrError('ONNX_NATIVE_FAILED', `cudaMemset failed with CUDA error ${String(code)}`);
  }

  release(tensor: NativeTensor): void {
    this.#api.ReleaseValue!(tensor.handle);
  }

  dispose(): void {
    if (this.#released) return;
    this.#released = true;
    const api = this.#api;
    api.ReleaseIoBinding!(this.#binding);
    api.ReleaseAllocator!(this.#allocator);
    if (this.#deviceInfo !== this.#cpuInfo) api.ReleaseMemoryInfo!(this.#deviceInfo);
    api.ReleaseMemoryInfo!(this.#cpuInfo);
    api.ReleaseSession!(this.#session);
  }

  #dataPointer(tensor: NativeTensor): unknown {
    this.#alive();
    const out: unknown[] = [null];
    checked(this.#api, this.#api.GetTensorMutableData!(tensor.handle, out), 'GetTensorMutableData');
    return out[0];
  }

  #copy(tensor: NativeTensor, host: Float32Array | BigInt64Array, direction: 'in' | 'out'): void {
    if (host.byteLength !== tensor.bytes)
      throw new DrError('ONNX_BAD_SHAPE', `copying ${host.byteLength} bytes for a tensor of ${tensor.bytes}`);
    const ptr = this.#dataPointer(tensor);
    if (this.provider === 'cpu' || !tensor.onDevice) {
      const view = new Uint8Array(koffi.view(ptr, tensor.bytes));
      const bytes = new Uint8Array(host.buffer, host.byteOffset, host.byteLength);
      if (direction === 'in') view.set(bytes);
      else bytes.set(view);
      return;
    }
    const rt = cudart();
    const code =
      direction === 'in'
        ? rt.memcpy(ptr, host, tensor.bytes, CUDA_MEMCPY_DEFAULT)
        : rt.memcpy(host, ptr, tensor.bytes, CUDA_MEMCPY_DEFAULT);
    if (code !== 0)
      throw new DrError('ONNX_NATIVE_FAILED', `cudaMemcpy failed with CUDA error ${String(code)}`);
  }

  #alive(): void {
    if (this.#released) throw new DrError('ONNX_SESSION_RELEASED', 'this native session was disposed');
  }
}

function size(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
