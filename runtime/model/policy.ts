/**
 * A Qwen2 policy loaded from a folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json):
 * the tokenizer and chat template, batched generation returning token ids, per-token logprobs and text, and
 * `generateOne`, which queues single requests from concurrent trajectories and runs them together in one
 * batch (what a rollout's per-trajectory policy interface needs). `setWeights` swaps in a new weight version.
 */
import { DrError } from '../../config/errors.ts';
import type { SessionConfig } from '../onnx/session.ts';
import { loadCheckpoint, type Checkpoint } from './checkpoint.ts';
import type { ChatMessage, RenderOptions } from './chat-template.ts';
import { EMBEDDED_DIR } from './embedded.ts';
import { Qwen2Generator, type GenerateOptions } from './generate.ts';
import type { FloatTensor } from './safetensors.ts';
import { loadTokenizer, type TextTokenizer } from './tokenizer.ts';

export interface PolicyGenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy; default 1. */
  temperature?: number;
  topP?: number;
  /** Stop strings (kept in the text); the tokenizer's eos tokens always stop. */
  stop?: readonly string[];
  /** One seed for the batch (row i uses stream i), or one per prompt. */
  seed?: number | readonly number[];
}

export interface PolicyOutput {
  /** Generated ids, including a stop token that ended the row. */
  tokenIds: number[];
  /** log p of each generated id (under the temperature-scaled distribution). */
  logprobs: number[];
  /** Decoded text of `tokenIds` without special tokens (a stop string, when one ended it, is at its end). */
  text: string;
  finishReason: 'stop' | 'length';
  /** The weight version that produced it. */
  weightVersion: number;
}

export interface PolicyOptions extends SessionConfig {
  /** Largest batch `generateOne` forms (default 32). */
  maxBatch?: number;
}

interface Pending {
  promptIds: readonly number[];
  options: PolicyGenerateOptions & { seed?: number };
  resolve: (out: PolicyOutput) => void;
  reject: (err: unknown) => void;
}

export class Policy {
  #generator: Qwen2Generator;
  #version = 0;
  #queue: Pending[] = [];
  #running: Promise<void> | null = null;
  #nextSeed = 1;

  private constructor(
    readonly tokenizer: TextTokenizer,
    generator: Qwen2Generator,
    private readonly options: PolicyOptions,
  ) {
    this.#generator = generator;
  }

  get config() {
    return this.#generator.config;
  }

  get weightVersion(): number {
    return this.#version;
  }

  static async fromCheckpoint(
    checkpoint: Checkpoint,
    tokenizer: TextTokenizer,
    options: PolicyOptions = {},
  ): Promise<Policy> {
    if (tokenizer.vocabSize > checkpoint.config.vocabSize) {
      throw new DrError(
        'MODEL_CONFIG_INVALID',
        `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${checkpoint.config.vocabSize}; they do not belong together`,
      );
    }
    const generator = await Qwen2Generator.create(checkpoint, {
      ...options,
      padTokenId: tokenizer.padTokenId,
    });
    return new Policy(tokenizer, generator, options);
  }

  renderChat(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    return this.tokenizer.renderChat(messages, options);
  }

  async generate(
    prompts: readonly (readonly number[])[],
    options: PolicyGenerateOptions,
  ): Promise<PolicyOutput[]> {
    const version = this.#version;
    const stopTokenIds = [...new Set([this.tokenizer.eosTokenId, ...this.config.eosTokenIds])];
    const genOptions: GenerateOptions = { ...options, stopTokenIds };
    const detokenize = (ids: readonly number[]) => this.tokenizer.decode(ids, { skipSpecialTokens: true });
    const results = await this.#generator.generate(prompts, genOptions, detokenize);
    return results.map((r) => ({ ...r, text: detokenize(r.tokenIds), weightVersion: version }));
  }

  /**
   * One prompt. Requests that arrive while a batch runs wait and then run together, grouped by their sampling
   * options. Without a seed, each request takes the next of a counter, so identical prompts (a GRPO group)
   * still sample differently while a run stays reproducible.
   */
  generateOne(
    promptIds: readonly number[],
    options: PolicyGenerateOptions & { seed?: number },
  ): Promise<PolicyOutput> {
    return new Promise((resolve, reject) => {
      this.#queue.push({
        promptIds,
        options: { ...options, seed: options.seed ?? this.#nextSeed++ },
        resolve,
        reject,
      });
      this.#running ??= this.#drain();
    });
  }

  /** Replaces the weights (a new version from the learner); batches already running finish on the old ones. */
  async setWeights(weights: ReadonlyMap<string, FloatTensor>, version: number): Promise<void> {
    const next = await Qwen2Generator.create(
      { config: this.config, weights },
      { ...this.options, padTokenId: this.tokenizer.padTokenId },
    );
    const old = this.#generator;
    this.#generator = next;
    this.#version = version;
    await (this.#running ?? Promise.resolve());
    await old.release();
  }

  async release(): Promise<void> {
    await (this.#running ?? Promise.resolve());
    await this.#generator.release();
  }

  async #drain(): Promise<void> {
    // Let requests issued in the same tick join the first batch.
    await new Promise((r) => setImmediate(r));
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const key = batchKey(head.options);
      const batch = this.#queue
        .filter((p) => batchKey(p.options) === key)
        .slice(0, this.options.maxBatch ?? 32);
      this.#queue = this.#queue.filter((p) => !batch.includes(p));
      try {
        const outs = await this.generate(
          batch.map((p) => p.promptIds),
          { ...head.options, seed: batch.map((p) => p.options.seed ?? 0) },
        );
        batch.forEach((p, i) => p.resolve(outs[i]!));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.#running = null;
  }
}

function batchKey(o: PolicyGenerateOptions): string {
  return JSON.stringify([o.maxNewTokens, o.temperature ?? 1, o.topP ?? 1, o.stop ?? []]);
}

/** Loads a policy folder (default: the embedded policy shipped in runtime/model/embedded/). */
export async function loadPolicy(dir: string = EMBEDDED_DIR, options: PolicyOptions = {}): Promise<Policy> {
  const [checkpoint, tokenizer] = await Promise.all([loadCheckpoint(dir), loadTokenizer(dir)]);
  return Policy.fromCheckpoint(checkpoint, tokenizer, options);
}
