/**
 * One onnxruntime-node session for one built graph, with the options the model runtime uses (CPU threads,
 * CUDA on GPU nodes). Inputs are wrapped without copying; outputs come back by name.
 */
import * as ort from 'onnxruntime-node';
import { DrError } from '../../config/errors.ts';
import type { Graph } from '../onnx/index.ts';

export interface SessionOptions {
  /** Intra-op threads for the CPU provider (default: onnxruntime's choice, all cores). */
  threads?: number;
  /** 'cpu' (default) or 'cuda'. */
  device?: 'cpu' | 'cuda';
}

export type OrtTensor = ort.Tensor;

export function int64Tensor(data: BigInt64Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int64', data, dims);
}

export function float32Tensor(data: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

export class ModelSession {
  private constructor(
    readonly name: string,
    private readonly session: ort.InferenceSession,
  ) {}

  static async create(graph: Graph, options: SessionOptions = {}): Promise<ModelSession> {
    const { model } = graph.serialize();
    try {
      const session = await ort.InferenceSession.create(model, {
        executionProviders: options.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
        graphOptimizationLevel: 'all',
        ...(options.threads === undefined
          ? {}
          : { intraOpNumThreads: options.threads, interOpNumThreads: 1 }),
      });
      return new ModelSession(graph.name, session);
    } catch (cause) {
      throw new DrError('MODEL_SESSION_FAILED', `onnxruntime refused graph ${graph.name}: ${String(cause)}`, {
        cause,
      });
    }
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<Map<string, ort.Tensor>> {
    try {
      const out = await this.session.run(feeds);
      return new Map(Object.entries(out));
    } catch (cause) {
      throw new DrError('MODEL_RUN_FAILED', `running ${this.name} failed: ${String(cause)}`, { cause });
    }
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
