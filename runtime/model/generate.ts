/**
 * Batched generation for a Qwen2 checkpoint: prefill over the left-padded prompts, then one decode step per
 * new token against a key/value cache kept here in plain Float32Arrays (keys transposed, see qwen2-graph.ts).
 * The cache grows in blocks, finished rows are dropped from the batch once they are the majority, and each
 * row samples from its own seeded stream, so a row's output does not depend on what it was batched with.
 */
import { DrError } from '../../config/errors.ts';
import { Graph } from '../onnx/index.ts';
import type { Checkpoint } from './checkpoint.ts';
import { buildDecode, buildForward, buildPrefill, weightsAsInitializers } from './qwen2-graph.ts';
import type { Qwen2Config } from './qwen2-config.ts';
import { chooseToken, SeededRandom } from './sampling.ts';
import * as ort from 'onnxruntime-node';
import { OnnxSession, type SessionConfig } from '../onnx/session.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy; default 1. */
  temperature?: number;
  /** Nucleus mass; default 1 (no truncation). */
  topP?: number;
  /** A row stops once its generated text contains any of these (the text keeps it). */
  stop?: readonly string[];
  /** A row stops after sampling any of these ids (kept in tokenIds); default the config's eos ids. */
  stopTokenIds?: readonly number[];
  /** Row i samples from stream i of this seed (default 0); an array gives row i its own seed, so its
   * output does not depend on the batch it runs in. */
  seed?: number | readonly number[];
}

export interface GenerationResult {
  /** Generated ids, including a stop token that ended the row. */
  tokenIds: number[];
  /** log p of each generated id under softmax(logits / temperature) (temperature 1 when greedy). */
  logprobs: number[];
  finishReason: 'stop' | 'length';
}

/** Turns generated ids into text for stop-string checks (a tokenizer's decode). */
export type Detokenize = (ids: readonly number[]) => string;

const CACHE_BLOCK = 64;

interface Row {
  readonly index: number;
  readonly rng: SeededRandom;
  nextPosition: number;
  tokens: number[];
  logprobs: number[];
  done: boolean;
  finishReason: 'stop' | 'length';
}

/** Key/value cache of the live rows: keys [B, KV, D, S], values [B, KV, S, D] per layer, mask [B, S]. */
class KvCache {
  keys: Float32Array[] = [];
  values: Float32Array[] = [];
  mask: BigInt64Array;

  constructor(
    private readonly config: Qwen2Config,
    public batch: number,
    public capacity: number,
  ) {
    const size = batch * config.numKvHeads * config.headDim * capacity;
    for (let l = 0; l < config.numLayers; l++) {
      this.keys.push(new Float32Array(size));
      this.values.push(new Float32Array(size));
    }
    this.mask = new BigInt64Array(batch * capacity);
  }

  /** Writes k, v [B, T, KV, D] of layer `l` into slots start..start+T-1. */
  write(l: number, k: Float32Array, v: Float32Array, steps: number, start: number): void {
    const { numKvHeads: kvh, headDim: d } = this.config;
    const s = this.capacity;
    const keys = this.keys[l]!;
    const values = this.values[l]!;
    for (let b = 0; b < this.batch; b++) {
      for (let t = 0; t < steps; t++) {
        const slot = start + t;
        for (let h = 0; h < kvh; h++) {
          const src = ((b * steps + t) * kvh + h) * d;
          const head = b * kvh + h;
          values.set(v.subarray(src, src + d), (head * s + slot) * d);
          for (let i = 0; i < d; i++) keys[(head * d + i) * s + slot] = k[src + i]!;
        }
      }
    }
  }

  /** A copy holding only `rows` (in that order) with `capacity` slots. */
  resized(rows: readonly number[], capacity: number): KvCache {
    const { numKvHeads: kvh, headDim: d, numLayers } = this.config;
    const out = new KvCache(this.config, rows.length, capacity);
    const keep = Math.min(capacity, this.capacity);
    rows.forEach((from, to) => {
      for (let slot = 0; slot < keep; slot++)
        out.mask[to * capacity + slot] = this.mask[from * this.capacity + slot]!;
      for (let l = 0; l < numLayers; l++) {
        for (let h = 0; h < kvh; h++) {
          const src = from * kvh + h;
          const dst = to * kvh + h;
          for (let i = 0; i < d; i++) {
            const k = this.keys[l]!.subarray(
              (src * d + i) * this.capacity,
              (src * d + i) * this.capacity + keep,
            );
            out.keys[l]!.set(k, (dst * d + i) * capacity);
          }
          out.values[l]!.set(
            this.values[l]!.subarray(src * this.capacity * d, (src * this.capacity + keep) * d),
            dst * capacity * d,
          );
        }
      }
    });
    return out;
  }
}

export class Qwen2Generator {
  private constructor(
    readonly config: Qwen2Config,
    private readonly prefill: OnnxSession,
    private readonly decode: OnnxSession,
    /** Built on the first `logits` call: generation alone never needs it. */
    private readonly buildForwardSession: () => Promise<OnnxSession>,
    private readonly padTokenId: number,
  ) {}

  #forward: Promise<OnnxSession> | null = null;

  /**
   * Builds the prefill and decode sessions with the checkpoint's weights baked in. Prefill and forward load
   * and run on worker threads by default (`options.thread`): a prefill over a batch of long prompts takes
   * seconds, which on the main thread stopped the node's heartbeats. Decode stays on the calling thread: a
   * step is short, and it feeds the whole KV cache, which a worker would have to copy every step.
   */
  static async create(
    checkpoint: Checkpoint,
    options: SessionConfig & { padTokenId?: number } = {},
  ): Promise<Qwen2Generator> {
    const { config, weights } = checkpoint;
    const build = (
      name: string,
      body: (g: Graph) => void,
      thread = options.thread ?? 'worker',
    ): Promise<OnnxSession> => {
      const g = new Graph(name);
      body(g);
      return OnnxSession.create(g, { ...options, thread });
    };
    const [prefill, decode] = await Promise.all([
      build('qwen2_prefill', (g) => buildPrefill(g, config, weightsAsInitializers(g, weights))),
      build('qwen2_decode', (g) => buildDecode(g, config, weightsAsInitializers(g, weights)), 'main'),
    ]);
    return new Qwen2Generator(
      config,
      prefill,
      decode,
      () => build('qwen2_forward', (g) => buildForward(g, config, weightsAsInitializers(g, weights))),
      options.padTokenId ?? config.eosTokenIds[0] ?? 0,
    );
  }

  /** Logits [B, T, V] of right-padded sequences (positions 0.., padding masked). */
  async logits(
    sequences: readonly (readonly number[])[],
  ): Promise<{ data: Float32Array; dims: readonly number[] }> {
    const batch = sequences.length;
    const len = Math.max(...sequences.map((s) => s.length));
    const ids = new BigInt64Array(batch * len).fill(BigInt(this.padTokenId));
    const positions = new BigInt64Array(batch * len);
    const mask = new BigInt64Array(batch * len);
    sequences.forEach((s, b) => {
      s.forEach((id, t) => {
        ids[b * len + t] = BigInt(id);
        positions[b * len + t] = BigInt(t);
        mask[b * len + t] = 1n;
      });
    });
    // Written straight into this buffer by onnxruntime: no second copy of the largest output.
    const dims = [batch, len, this.config.vocabSize];
    const logits = new ort.Tensor('float32', new Float32Array(batch * len * this.config.vocabSize), dims);
    this.#forward ??= this.buildForwardSession();
    await (
      await this.#forward
    ).run(
      {
        input_ids: new ort.Tensor('int64', ids, [batch, len]),
        position_ids: new ort.Tensor('int64', positions, [batch, len]),
        attention_mask: new ort.Tensor('int64', mask, [batch, len]),
      },
      { logits },
    );
    return { data: logits.data as Float32Array, dims };
  }

  async generate(
    prompts: readonly (readonly number[])[],
    options: GenerateOptions,
    detokenize?: Detokenize,
  ): Promise<GenerationResult[]> {
    if (prompts.length === 0) return [];
    if (prompts.some((p) => p.length === 0))
      throw new DrError('MODEL_BAD_PROMPT', 'every prompt needs at least one token');
    const stops = options.stop ?? [];
    if (stops.length > 0 && detokenize === undefined) {
      throw new DrError('MODEL_BAD_PROMPT', 'stop strings need a detokenizer (pass the tokenizer decode)');
    }
    const { config } = this;
    const stopIds = new Set(options.stopTokenIds ?? config.eosTokenIds);
    const sampling = { temperature: options.temperature ?? 1, topP: options.topP ?? 1 };
    const longestStop = Math.max(0, ...stops.map((s) => s.length));
    const vocab = config.vocabSize;
    const scratch = new Float64Array(vocab);
    const seed = options.seed ?? 0;
    if (typeof seed !== 'number' && seed.length !== prompts.length) {
      throw new DrError('MODEL_BAD_PROMPT', `got ${seed.length} seeds for ${prompts.length} prompts`);
    }

    const batch = prompts.length;
    const promptLen = Math.max(...prompts.map((p) => p.length));
    const ids = new BigInt64Array(batch * promptLen).fill(BigInt(this.padTokenId));
    const positions = new BigInt64Array(batch * promptLen);
    const mask = new BigInt64Array(batch * promptLen);
    prompts.forEach((p, b) => {
      const offset = promptLen - p.length;
      p.forEach((id, t) => {
        ids[b * promptLen + offset + t] = BigInt(id);
        positions[b * promptLen + offset + t] = BigInt(t);
        mask[b * promptLen + offset + t] = 1n;
      });
    });
    const rows: Row[] = prompts.map((p, index) => ({
      index,
      rng: typeof seed === 'number' ? SeededRandom.stream(seed, index) : SeededRandom.stream(seed[index]!, 0),
      nextPosition: p.length,
      tokens: [],
      logprobs: [],
      done: options.maxNewTokens <= 0,
      finishReason: 'length',
    }));
    if (options.maxNewTokens <= 0) return rows.map(toResult);

    const pre = await this.prefill.run({
      input_ids: new ort.Tensor('int64', ids, [batch, promptLen]),
      position_ids: new ort.Tensor('int64', positions, [batch, promptLen]),
      attention_mask: new ort.Tensor('int64', mask, [batch, promptLen]),
    });
    let cache = new KvCache(config, batch, roundUp(promptLen + 1, CACHE_BLOCK));
    for (let l = 0; l < config.numLayers; l++) {
      cache.write(
        l,
        pre[`key.${l}`]!.data as Float32Array,
        pre[`value.${l}`]!.data as Float32Array,
        promptLen,
        0,
      );
    }
    for (let b = 0; b < batch; b++)
      cache.mask.set(mask.subarray(b * promptLen, (b + 1) * promptLen), b * cache.capacity);
    let logits = pre.logits!.data as Float32Array;
    let live = rows; // rows in cache order
    let slot = promptLen;

    for (let step = 0; ; step++) {
      for (const [b, row] of live.entries()) {
        if (row.done) continue;
        const choice = chooseToken(logits.subarray(b * vocab, (b + 1) * vocab), sampling, row.rng, scratch);
        row.tokens.push(choice.token);
        row.logprobs.push(choice.logprob);
        if (
          stopIds.has(choice.token) ||
          (longestStop > 0 && endsWithStop(row.tokens, stops, longestStop, detokenize!))
        ) {
          row.done = true;
          row.finishReason = 'stop';
        } else if (row.tokens.length >= options.maxNewTokens) {
          row.done = true;
        }
      }
      const active = live.flatMap((r, b) => (r.done ? [] : [b]));
      if (active.length === 0) break;
      if (active.length <= live.length / 2 || slot >= cache.capacity) {
        cache = cache.resized(
          active.length <= live.length / 2 ? active : live.map((_, b) => b),
          roundUp(slot + 1, CACHE_BLOCK),
        );
        if (cache.batch < live.length) live = active.map((b) => live[b]!);
      }
      const n = live.length;
      const stepIds = new BigInt64Array(n);
      const stepPositions = new BigInt64Array(n);
      live.forEach((row, b) => {
        stepIds[b] = BigInt(row.done ? this.padTokenId : row.tokens.at(-1)!);
        stepPositions[b] = BigInt(row.nextPosition);
      });
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', stepIds, [n, 1]),
        position_ids: new ort.Tensor('int64', stepPositions, [n, 1]),
        cache_mask: new ort.Tensor('int64', cache.mask, [n, cache.capacity]),
      };
      const { numKvHeads: kvh, headDim: d } = config;
      for (let l = 0; l < config.numLayers; l++) {
        feeds[`past_key.${l}`] = new ort.Tensor('float32', cache.keys[l]!, [n, kvh, d, cache.capacity]);
        feeds[`past_value.${l}`] = new ort.Tensor('float32', cache.values[l]!, [n, kvh, cache.capacity, d]);
      }
      const out = await this.decode.run(feeds);
      for (let l = 0; l < config.numLayers; l++) {
        cache.write(
          l,
          out[`key.${l}`]!.data as Float32Array,
          out[`value.${l}`]!.data as Float32Array,
          1,
          slot,
        );
      }
      live.forEach((row, b) => {
        cache.mask[b * cache.capacity + slot] = 1n;
        row.nextPosition++;
      });
      slot++;
      logits = out.logits!.data as Float32Array;
    }
    return rows.map(toResult);
  }

  async release(): Promise<void> {
    const forward = this.#forward;
    this.#forward = null;
    await Promise.all([this.prefill.release(), this.decode.release(), forward?.then((f) => f.release())]);
  }
}

function toResult(row: Row): GenerationResult {
  return { tokenIds: row.tokens, logprobs: row.logprobs, finishReason: row.finishReason };
}

function roundUp(n: number, block: number): number {
  return Math.ceil(n / block) * block;
}

/** True when the text of the last tokens contains a stop string. Checked after every token, so the first
 * time a stop appears it ends within this window (a token adds at least one character, bar partial UTF-8). */
function endsWithStop(
  tokens: readonly number[],
  stops: readonly string[],
  longest: number,
  detokenize: Detokenize,
): boolean {
  const tail = detokenize(tokens.slice(-(longest + 2)));
  return stops.some((s) => tail.includes(s));
}
