/**
 * EngineSync against an engine that speaks SGLang's weight-update protocol over HTTP (the project's policy
 * server with `weightApi: 'sglang'`, loading each exported Hugging Face folder from disk), and against a
 * restart hook that is a real process.
 */
import axios from 'axios';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { silentLogger } from '../../config/log.ts';
import { exportHfFolder } from '../../runtime/model/hf-export.ts';
import { randomCheckpoint, tinyQwen25VocabConfig } from '../../runtime/model/testing.ts';
import { loadTokenizer, type TextTokenizer } from '../../runtime/model/tokenizer.ts';
import { EngineSync, type VersionSource } from './engine-sync.ts';
import { PolicyServer } from './policy-server.ts';

const config = tinyQwen25VocabConfig();

/** A parameter server's view: version k holds seeded weights k; exports are real HF folders. */
class Versions implements VersionSource {
  latestVersion = 0;
  exports: string[] = [];
  constructor(private readonly model = config) {}
  latest() {
    return Promise.resolve({ version: this.latestVersion });
  }
  async export(dir: string) {
    this.exports.push(dir);
    await exportHfFolder(dir, randomCheckpoint(this.model, this.latestVersion + 1, 0.5), { dtype: 'F32' });
    return { version: this.latestVersion, dir };
  }
}

let tokenizer: TextTokenizer;
beforeAll(async () => {
  tokenizer = await loadTokenizer();
});

describe('EngineSync', () => {
  let dir: string;
  let engine: PolicyServer;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'engine-sync-'));
    engine = await PolicyServer.start({
      config,
      tokenizer,
      modelName: 'tiny',
      weightApi: 'sglang',
      log: silentLogger,
    });
  });
  afterEach(async () => {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  const complete = async (): Promise<{ metadata: { weight_version: string } }> =>
    (await axios.post(engine.baseURL + '/completions', { prompt: [1, 2, 3], max_tokens: 2, temperature: 0 }))
      .data;

  it('exports each new version, has the engine load it from disk, and returns once the engine reports it', async () => {
    const versions = new Versions();
    const sync = new EngineSync({
      baseURL: engine.baseURL,
      sync: { kind: 'sglang', dir },
      params: versions,
      log: silentLogger,
      pollMs: 10,
    });

    expect(await sync.refresh()).toBe(0);
    expect((await complete()).metadata.weight_version).toBe('0');
    const info = (await axios.get(engine.baseURL.replace(/\/v1$/, '') + '/model_info')).data as {
      model_path: string;
    };
    expect(info.model_path).toBe(join(dir, 'v0'));

    // Nothing newer: no export, no reload.
    expect(await sync.refresh()).toBe(0);
    expect(versions.exports).toHaveLength(1);

    for (const v of [1, 2, 3]) {
      versions.latestVersion = v;
      expect(await sync.refresh()).toBe(v);
      expect((await complete()).metadata.weight_version).toBe(String(v));
    }
    // The newest folder and the one before it stay (an engine may still read the previous one).
    expect((await readdir(dir)).sort()).toEqual(['v2', 'v3']);
  });

  it('fails with TRAIN_ENGINE_SYNC_FAILED when the engine refuses the folder, saying why', async () => {
    const other = new Versions({ ...config, hiddenSize: 32 });
    const sync = new EngineSync({
      baseURL: engine.baseURL,
      sync: { kind: 'sglang', dir },
      params: other,
      log: silentLogger,
    });

    const err = await sync.refresh().catch((e: unknown) => e);

    expect(isDrError(err, 'TRAIN_ENGINE_SYNC_FAILED')).toBe(true);
    expect((err as Error).message).toContain('hiddenSize');
    expect(sync.version).toBe(-1);
  });

  it('runs the restart hook with the folder and version, then waits until /v1/models serves that folder', async () => {
    // The hook "restarts" the engine by having it load the folder it is given, as a vLLM relaunch would.
    const hook = join(dir, 'hook.mjs');
    await writeFile(
      hook,
      `await fetch(${JSON.stringify(engine.baseURL.replace(/\/v1$/, '') + '/update_weights_from_disk')}, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model_path: process.env.DR_WEIGHTS_DIR, weight_version: process.env.DR_WEIGHT_VERSION }),
      });`,
    );
    const versions = new Versions();
    versions.latestVersion = 4;
    const sync = new EngineSync({
      baseURL: engine.baseURL,
      sync: { kind: 'command', dir: join(dir, 'weights'), command: [process.execPath, hook] },
      params: versions,
      log: silentLogger,
      pollMs: 10,
    });

    expect(await sync.refresh()).toBe(4);
    const models = (await axios.get(engine.baseURL + '/models')).data as { data: { root: string }[] };
    expect(models.data[0]!.root).toBe(join(dir, 'weights', 'v4'));
  });

  it('fails with TRAIN_ENGINE_SYNC_FAILED when the restart hook exits non-zero', async () => {
    const sync = new EngineSync({
      baseURL: engine.baseURL,
      sync: { kind: 'command', dir, command: [process.execPath, '-e', 'process.exit(3)'] },
      params: new Versions(),
      log: silentLogger,
    });
    const err = await sync.refresh().catch((e: unknown) => e);
    expect(isDrError(err, 'TRAIN_ENGINE_SYNC_FAILED')).toBe(true);
    expect((err as Error).message).toContain('exited with 3');
  });

  it('fails with TRAIN_ENGINE_SYNC_TIMEOUT when the engine never serves the new folder', async () => {
    const sync = new EngineSync({
      baseURL: engine.baseURL,
      sync: { kind: 'command', dir, command: [process.execPath, '-e', ''], timeoutMs: 200 },
      params: new Versions(),
      log: silentLogger,
      pollMs: 20,
    });
    const err = await sync.refresh().catch((e: unknown) => e);
    expect(isDrError(err, 'TRAIN_ENGINE_SYNC_TIMEOUT')).toBe(true);
  });
});
