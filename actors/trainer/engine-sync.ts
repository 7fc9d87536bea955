/**
 * Weight sync with an external inference engine (vLLM, SGLang) that a train job rolls out on. Before each
 * rollout batch the trainer calls `refresh()`: when the parameter server holds a newer version than the
 * engine serves, that version is exported as a Hugging Face folder into the shared `dir` (one `v<version>`
 * folder, the older ones pruned), the engine is told to load it, and the call returns only once the engine
 * reports the new version, so every turn of the batch is sampled with a known one.
 *
 * - `sglang`: `POST /update_weights_from_disk {model_path, weight_version}`, then `GET /get_weight_version`
 *   (or `/model_info`, where newer SGLang moved it) until it names the version.
 * - `command`: a restart hook for engines without such an endpoint (vLLM): the command runs with
 *   `DR_WEIGHTS_DIR` and `DR_WEIGHT_VERSION` in its environment and must exit 0; then `GET /v1/models` is
 *   polled until a model's `root` (vLLM reports the folder it serves) is the new folder.
 */
import { spawn } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import axios, { type AxiosInstance } from 'axios';
import { z } from 'zod';
import type { WeightSyncConfig } from '../../config/cluster-file.ts';
import { DrError } from '../../config/errors.ts';
import type { Logger } from '../../config/log.ts';

/** What the sync needs from the parameter server (ParamsClient implements it). */
export interface VersionSource {
  latest(): Promise<{ version: number }>;
  export(dir: string, options: { dtype?: 'F32' | 'BF16' | 'F16' }): Promise<{ version: number; dir: string }>;
}

export interface EngineSyncOptions {
  /** The engine's OpenAI base URL (`http://host:port/v1`). */
  baseURL: string;
  sync: WeightSyncConfig;
  params: VersionSource;
  dtype?: 'F32' | 'BF16' | 'F16';
  apiKey?: string;
  log: Logger;
  /** How often the engine's version is polled while waiting (default 500 ms). */
  pollMs?: number;
}

const versionReply = z.looseObject({ weight_version: z.union([z.string(), z.number()]).nullish() });
const updateReply = z.looseObject({ success: z.boolean(), message: z.string().optional() });
const modelsReply = z.looseObject({
  data: z.array(z.looseObject({ id: z.string(), root: z.string().nullish() })),
});

/** Folders of older versions kept beside the newest (an engine may still be reading the previous one). */
const KEEP_VERSIONS = 2;

export class EngineSync {
  private synced = -1;
  private readonly http: AxiosInstance;
  private readonly root: string;

  constructor(private readonly options: EngineSyncOptions) {
    this.root = options.baseURL.replace(/\/v1\/?$/, '');
    this.http = axios.create({
      timeout: 30_000,
      headers: options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` },
      validateStatus: () => true,
    });
  }

  /** The version the engine was last confirmed to serve (-1 before the first sync). */
  get version(): number {
    return this.synced;
  }

  async refresh(): Promise<number> {
    const { version } = await this.options.params.latest();
    if (version <= this.synced) return this.synced;
    const t0 = performance.now();
    const exported = await this.options.params.export(join(resolve(this.options.sync.dir), `v${version}`), {
      dtype: this.options.dtype ?? 'BF16',
    });
    const t1 = performance.now();
    if (this.options.sync.kind === 'sglang') await this.updateSglang(exported.dir, exported.version);
    else await this.restart(exported.dir, exported.version);
    this.synced = exported.version;
    this.options.log.info(
      {
        version: exported.version,
        engine: this.options.baseURL,
        exportMs: Math.round(t1 - t0),
        loadMs: Math.round(performance.now() - t1),
      },
      'engine serves a new weight version',
    );
    await this.prune(exported.version);
    return this.synced;
  }

  private async updateSglang(dir: string, version: number): Promise<void> {
    const res = await this.call('post', `${this.root}/update_weights_from_disk`, {
      model_path: dir,
      weight_version: String(version),
    });
    const body = updateReply.safeParse(res.data);
    if (res.status !== 200 || !body.success || !body.data.success)
      throw new DrError(
        'TRAIN_ENGINE_SYNC_FAILED',
        `the engine at ${this.root} refused weight version ${version} from ${dir} (HTTP ${res.status}: ${describe(res.data)}); check that it can read the shared folder and serves the same model`,
      );
    await this.waitFor(version, async () => {
      for (const path of ['/get_weight_version', '/model_info', '/get_model_info']) {
        const r = await this.call('get', `${this.root}${path}`);
        const v = versionReply.safeParse(r.data);
        if (r.status === 200 && v.success && v.data.weight_version != null)
          return String(v.data.weight_version);
      }
      return undefined;
    });
  }

  private async restart(dir: string, version: number): Promise<void> {
    const sync = this.options.sync;
    if (sync.kind !== 'command') return;
    const [cmd, ...args] = sync.command;
    const code = await new Promise<number | null>((done, fail) => {
      const child = spawn(cmd!, args, {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, DR_WEIGHTS_DIR: dir, DR_WEIGHT_VERSION: String(version) },
      });
      child.once('error', fail);
      child.once('exit', done);
    }).catch((err: unknown) => {
      throw new DrError(
        'TRAIN_ENGINE_SYNC_FAILED',
        `the weight-sync command ${cmd} did not start: ${String(err)}`,
      );
    });
    if (code !== 0)
      throw new DrError(
        'TRAIN_ENGINE_SYNC_FAILED',
        `the weight-sync command ${sync.command.join(' ')} exited with ${code} for version ${version}; it must restart the engine on DR_WEIGHTS_DIR and exit 0`,
      );
    await this.waitFor(version, async () => {
      const r = await this.call('get', `${this.options.baseURL.replace(/\/$/, '')}/models`);
      const m = modelsReply.safeParse(r.data);
      if (r.status !== 200 || !m.success) return undefined;
      return m.data.data.some((d) => d.root === dir || d.id === dir) ? String(version) : undefined;
    });
  }

  /** Polls `probe` until it names `version`; the engine may still be loading or restarting meanwhile. */
  private async waitFor(version: number, probe: () => Promise<string | undefined>): Promise<void> {
    const timeoutMs = this.options.sync.timeoutMs ?? 600_000;
    const deadline = Date.now() + timeoutMs;
    let seen: string | undefined;
    for (;;) {
      seen = await probe().catch(() => undefined);
      if (seen === String(version)) return;
      if (Date.now() > deadline)
        throw new DrError(
          'TRAIN_ENGINE_SYNC_TIMEOUT',
          `the engine at ${this.root} did not report weight version ${version} within ${timeoutMs} ms (last seen: ${seen ?? 'nothing'}); raise weightSync.timeoutMs or check the engine's log`,
        );
      await new Promise((r) => setTimeout(r, this.options.pollMs ?? 500));
    }
  }

  private async call(method: 'get' | 'post', url: string, body?: unknown) {
    try {
      return method === 'get' ? await this.http.get<unknown>(url) : await this.http.post<unknown>(url, body);
    } catch (cause) {
      throw new DrError('TRAIN_ENGINE_UNREACHABLE', `the engine at ${url} did not answer: ${String(cause)}`, {
        cause,
      });
    }
  }

  private async prune(current: number): Promise<void> {
    const dir = resolve(this.options.sync.dir);
    const versions = (await readdir(dir))
      .map((n) => /^v(\d+)$/.exec(n)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number)
      .filter((v) => v < current)
      .sort((a, b) => b - a);
    for (const v of versions.slice(KEEP_VERSIONS - 1))
      await rm(join(dir, `v${v}`), { recursive: true, force: true });
  }
}

function describe(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return (text ?? '').slice(0, 300);
}
