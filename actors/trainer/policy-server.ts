/**
 * The rollout engine of a training job, in the role vLLM plays for verl: an OpenAI-compatible
 * `/v1/completions` server (the subset RolloutActors' `completions` policy uses: token-id prompts, vLLM's
 * `return_tokens_as_token_ids`, per-token logprobs, stop strings kept in the output) over a Qwen2 model whose
 * weights come from the ParameterServerActor. Concurrent requests with the same sampling settings are
 * generated together as one batch.
 *
 * Weights change only when the trainer calls `refresh()` at the start of a rollout batch, so every turn of a
 * batch is sampled with one known version (`version`); it is reported per response as
 * `system_fingerprint: "dr-weights-v<version>"` and SGLang's `metadata.weight_version`.
 *
 * With `weightApi: 'sglang'` it also speaks SGLang's native API: `POST /generate` (input_ids in, output_ids
 * and `meta_info.output_token_logprobs` out) and new weights from a Hugging Face folder on disk (`POST
 * /update_weights_from_disk {model_path, weight_version}`, `GET /get_weight_version`, `GET /model_info`):
 * the project's own engine for a training job's external-engine path, and the protocol-faithful stand-in
 * for SGLang in its tests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { DrError, isDrError } from '../../config/errors.ts';
import type { Logger } from '../../config/log.ts';
import { loadCheckpoint } from '../../runtime/model/checkpoint.ts';
import { Qwen2Generator, type GenerationResult } from '../../runtime/model/generate.ts';
import type { Qwen2Config } from '../../runtime/model/qwen2-config.ts';
import type { TextTokenizer } from '../../runtime/model/tokenizer.ts';
import type { FloatTensor } from '../../runtime/model/safetensors.ts';
import type { WeightSubscriber } from '../params/weight-transfer.ts';

export interface PolicyServerOptions {
  config: Qwen2Config;
  tokenizer: TextTokenizer;
  /** Where `refresh()` takes versions from; absent: only `install` and the weight API change weights. */
  weights?: WeightSubscriber;
  modelName: string;
  /** Serve SGLang's weight-update endpoints too. */
  weightApi?: 'sglang';
  log: Logger;
  /** Most sequences generated together. */
  maxBatch?: number;
  /** How long a request waits for others to batch with. */
  batchWindowMs?: number;
  host?: string;
  provider?: 'cpu' | 'cuda';
}

const updateFromDisk = z.looseObject({
  model_path: z.string().min(1),
  weight_version: z.string().optional(),
});

const completionRequest = z.looseObject({
  model: z.string().optional(),
  prompt: z.union([z.array(z.number().int().nonnegative()).min(1), z.string().min(1)]),
  max_tokens: z.number().int().positive().max(32_768).default(256),
  temperature: z.number().min(0).max(5).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  stop: z.union([z.string(), z.array(z.string())]).optional(),
  seed: z.number().int().optional(),
});

/** SGLang's native /generate request, in the completions shape this server validates. */
function fromGenerateRequest(raw: unknown): unknown {
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as {
    input_ids?: unknown;
    text?: unknown;
    sampling_params?: { max_new_tokens?: unknown; temperature?: unknown; top_p?: unknown; stop?: unknown };
  };
  const sp = r.sampling_params ?? {};
  return {
    prompt: r.input_ids ?? r.text,
    max_tokens: sp.max_new_tokens,
    temperature: sp.temperature,
    top_p: sp.top_p,
    stop: sp.stop,
  };
}

interface Pending {
  prompt: number[];
  seed: number;
  resolve: (r: GenerationResult) => void;
  reject: (e: unknown) => void;
}

export class PolicyServer {
  private generator: Qwen2Generator | null = null;
  private currentVersion = -1;
  private modelPath: string | null = null;
  private readonly queues = new Map<
    string,
    { options: z.infer<typeof completionRequest>; items: Pending[]; timer: NodeJS.Timeout | null }
  >();
  private running: Promise<void> = Promise.resolve();
  private seedCounter = 0;

  private constructor(
    private readonly server: Server,
    private readonly options: PolicyServerOptions,
  ) {}

  static async start(options: PolicyServerOptions): Promise<PolicyServer> {
    let self: PolicyServer | null = null;
    const server = createServer((req, res) => void self?.handle(req, res));
    self = new PolicyServer(server, options);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, options.host ?? '127.0.0.1', () => resolve());
    });
    return self;
  }

  /** Base URL for an OpenAI client (`.../v1`). */
  get baseURL(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}/v1`;
  }

  get version(): number {
    return this.currentVersion;
  }

  /** Takes the parameter server's latest version (rebuilding the generator) if it is newer. */
  async refresh(): Promise<number> {
    const w = await this.options.weights?.refresh();
    if (w !== null && w !== undefined) {
      const weights = new Map<string, FloatTensor>(
        w.specs.map((s, i) => [s.name, { shape: s.shape, data: w.tensors[i]! }]),
      );
      await this.install(weights, w.version);
    }
    return this.currentVersion;
  }

  /** Serves `weights` as `version` from the next batch on; the batch running now finishes on the old ones. */
  async install(weights: ReadonlyMap<string, FloatTensor>, version: number): Promise<void> {
    const next = await Qwen2Generator.create(
      { config: this.options.config, weights },
      { provider: this.options.provider ?? 'cpu', padTokenId: this.options.tokenizer.padTokenId },
    );
    await this.running;
    const old = this.generator;
    this.generator = next;
    this.currentVersion = version;
    await old?.release();
    this.options.log.info({ version }, 'policy server took a new weight version');
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await this.running;
    await this.generator?.release();
    this.generator = null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.method === 'GET' && req.url === '/v1/models') {
        return json(res, 200, {
          object: 'list',
          data: [
            {
              id: this.options.modelName,
              object: 'model',
              owned_by: 'dr',
              ...(this.modelPath === null ? {} : { root: this.modelPath }),
            },
          ],
        });
      }
      if (this.options.weightApi === 'sglang' && (await this.weightApi(req, res))) return;
      const native = this.options.weightApi === 'sglang' && req.method === 'POST' && req.url === '/generate';
      if (!native && (req.method !== 'POST' || req.url !== '/v1/completions')) {
        return json(res, 404, {
          error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error' },
        });
      }
      const raw: unknown = JSON.parse(await readBody(req));
      const body = completionRequest.safeParse(native ? fromGenerateRequest(raw) : raw);
      if (!body.success) {
        return json(res, 400, {
          error: { message: body.error.issues[0]?.message ?? 'bad request', type: 'invalid_request_error' },
        });
      }
      const r = body.data;
      const prompt = typeof r.prompt === 'string' ? this.options.tokenizer.encode(r.prompt) : r.prompt;
      if (prompt.some((id) => id >= this.options.config.vocabSize)) {
        return json(res, 400, {
          error: {
            message: `prompt token ids must be below ${this.options.config.vocabSize}`,
            type: 'invalid_request_error',
          },
        });
      }
      const version = this.currentVersion;
      const out = await this.enqueue(r, prompt);
      const text = this.options.tokenizer.decode(out.tokenIds);
      if (native)
        return json(res, 200, {
          text,
          output_ids: out.tokenIds,
          meta_info: {
            prompt_tokens: prompt.length,
            completion_tokens: out.tokenIds.length,
            output_token_logprobs: out.tokenIds.map((id, i) => [out.logprobs[i], id, null]),
            finish_reason: { type: out.finishReason },
            weight_version: String(version),
          },
        });
      return json(res, 200, {
        id: `cmpl-${Date.now().toString(36)}${(this.seedCounter++).toString(36)}`,
        object: 'text_completion',
        created: Math.floor(Date.now() / 1000),
        model: this.options.modelName,
        system_fingerprint: `dr-weights-v${version}`,
        metadata: { weight_version: String(version) },
        choices: [
          {
            index: 0,
            text,
            finish_reason: out.finishReason,
            logprobs: {
              tokens: out.tokenIds.map((id) => `token_id:${id}`),
              token_logprobs: out.logprobs,
              top_logprobs: null,
              text_offset: [],
            },
          },
        ],
        usage: {
          prompt_tokens: prompt.length,
          completion_tokens: out.tokenIds.length,
          total_tokens: prompt.length + out.tokenIds.length,
        },
      });
    } catch (err) {
      this.options.log.warn({ err: String(err) }, 'policy server request failed');
      if (!res.headersSent)
        json(res, err instanceof SyntaxError ? 400 : 500, {
          error: { message: String(err), type: 'server_error' },
        });
    }
  }

  /** SGLang's weight endpoints; false when the request is not one of them. */
  private async weightApi(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const route = `${req.method} ${req.url}`;
    if (route === 'GET /get_weight_version') {
      json(res, 200, { weight_version: String(this.currentVersion) });
      return true;
    }
    if (route === 'GET /model_info' || route === 'GET /get_model_info') {
      json(res, 200, {
        model_path: this.modelPath,
        tokenizer_path: this.modelPath,
        is_generation: true,
        weight_version: String(this.currentVersion),
      });
      return true;
    }
    if (route !== 'POST /update_weights_from_disk') return false;
    const body = updateFromDisk.safeParse(JSON.parse(await readBody(req)));
    if (!body.success) {
      json(res, 400, { success: false, message: body.error.issues[0]?.message ?? 'bad request' });
      return true;
    }
    const { model_path: path, weight_version: label } = body.data;
    const version = label !== undefined && /^\d+$/.test(label) ? Number(label) : this.currentVersion + 1;
    try {
      const { config, weights } = await loadCheckpoint(path);
      const mismatch = (Object.keys(config) as (keyof Qwen2Config)[]).find(
        (k) => JSON.stringify(config[k]) !== JSON.stringify(this.options.config[k]),
      );
      if (mismatch !== undefined)
        throw new DrError(
          'TRAIN_ENGINE_MODEL_MISMATCH',
          `${path} has another ${mismatch} than the served model`,
        );
      await this.install(weights, version);
      this.modelPath = path;
    } catch (err) {
      json(res, 400, {
        success: false,
        message: isDrError(err) ? `${err.code}: ${err.message}` : String(err),
      });
      return true;
    }
    json(res, 200, { success: true, message: 'Succeeded to update model weights.', num_paused_requests: 0 });
    return true;
  }

  private enqueue(options: z.infer<typeof completionRequest>, prompt: number[]): Promise<GenerationResult> {
    if (this.generator === null) {
      return Promise.reject(
        new DrError(
          'TRAIN_NO_WEIGHTS',
          'the policy server has no weights yet; the trainer publishes them first',
        ),
      );
    }
    const key = JSON.stringify([
      options.max_tokens,
      options.temperature,
      options.top_p,
      options.stop ?? null,
    ]);
    let q = this.queues.get(key);
    if (q === undefined) {
      q = { options, items: [], timer: null };
      this.queues.set(key, q);
    }
    const seed = options.seed ?? this.seedCounter++;
    const p = new Promise<GenerationResult>((resolve, reject) =>
      q.items.push({ prompt, seed, resolve, reject }),
    );
    if (q.items.length >= (this.options.maxBatch ?? 16)) this.flush(key);
    else q.timer ??= setTimeout(() => this.flush(key), this.options.batchWindowMs ?? 5);
    return p;
  }

  private flush(key: string): void {
    const q = this.queues.get(key);
    if (q === undefined) return;
    this.queues.delete(key);
    if (q.timer !== null) clearTimeout(q.timer);
    // One batch at a time: generation is compute-bound, overlapping batches would only thrash.
    this.running = this.running.then(async () => {
      try {
        const stop =
          q.options.stop === undefined
            ? []
            : typeof q.options.stop === 'string'
              ? [q.options.stop]
              : q.options.stop;
        const results = await this.generator!.generate(
          q.items.map((i) => i.prompt),
          {
            maxNewTokens: q.options.max_tokens,
            temperature: q.options.temperature,
            topP: q.options.top_p,
            stop,
            seed: q.items.map((i) => i.seed),
          },
          (ids) => this.options.tokenizer.decode(ids),
        );
        q.items.forEach((item, i) => item.resolve(results[i]!));
      } catch (err) {
        for (const item of q.items) item.reject(err);
      }
    });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 16 * 1024 * 1024) {
        reject(new DrError('TRAIN_REQUEST_TOO_LARGE', 'completion request over 16 MiB'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
