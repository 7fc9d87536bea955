/**
 * A train job that rolls out on an external engine: an HTTP server speaking OpenAI completions (token ids,
 * logprobs) and SGLang's weight-update protocol, which loads every version from the Hugging Face folder the
 * trainer exports into a shared directory. The engine is the project's policy server in `weightApi:
 * 'sglang'` mode, a separate server the trainer reaches only over HTTP, as it would reach SGLang.
 */
import axios from 'axios';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../config/log.ts';
import type { ActorSystem } from '../../runtime/actor.ts';
import { EMBEDDED_CONFIG } from '../../runtime/model/embedded.ts';
import { loadTokenizer } from '../../runtime/model/tokenizer.ts';
import type { TrainEvent } from './metrics.ts';
import { PolicyServer } from './policy-server.ts';
import type { TrainerArgs, TrainerStatus } from './protocol.ts';
import type { TrainRolloutEntry } from './rollout-files.ts';
import { randomEmbeddedModel, sandboxToolSystem } from './testing/train-fixtures.ts';

let dir: string;
let system: ActorSystem;
let engine: PolicyServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dr-train-engine-'));
  const model = await randomEmbeddedModel(join(dir, 'model'));
  engine = await PolicyServer.start({
    config: EMBEDDED_CONFIG,
    tokenizer: await loadTokenizer(model),
    modelName: 'engine',
    weightApi: 'sglang',
    log: silentLogger,
  });
  system = await sandboxToolSystem();
});

afterAll(async () => {
  await system.stop();
  await engine.close();
  await rm(dir, { recursive: true, force: true });
});

async function train(
  job: string,
  schedule: { mode: 'sync' | 'async'; maxStaleness?: number },
  api: 'completions' | 'sglang',
) {
  const out = join(dir, job);
  const weights = join(dir, `${job}-weights`);
  const args: TrainerArgs = {
    jobId: job,
    config: {
      name: job,
      steps: 3,
      policy: { kind: 'embedded', dir: join(dir, 'model') },
      data: { train: 'sandbox:train:7:400', dev: 'sandbox:dev:7:400' },
      rollout: { questionsPerStep: 1, n: 2, maxTurns: 2, maxTokensPerTurn: 8, workers: 1, engine: 'engine' },
      optimizer: { lr: 1e-3 },
      learner: { maxTokensPerMicroBatch: 2048, maxSeqLen: 1024 },
      schedule,
      checkpoint: { every: 10 },
      validation: { every: 10, limit: 1 },
      outputDir: out,
    },
    engine: {
      policy: { kind: api, baseURL: engine.baseURL, model: 'engine' },
      weightSync: { kind: 'sglang', dir: weights },
    },
  };
  await system.spawn({ kind: 'trainer', name: `trainer/${job}`, args });
  let status: TrainerStatus;
  for (;;) {
    status = await system.ask<TrainerStatus>(`trainer/${job}`, { v: 1, type: 'trainer.status' });
    if (status.state !== 'starting' && status.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const events = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as TrainEvent);
  const versionsOf = async (step: number): Promise<number[]> =>
    (
      JSON.parse(
        await readFile(join(out, 'rollout', `rollout_step_${step}.json`), 'utf8'),
      ) as TrainRolloutEntry[]
    ).map((e) => e.weight_version);
  return { status, events, weights, versionsOf };
}

describe('training with rollouts on an external engine', () => {
  it('syncs the engine to every new version before sampling, and each trajectory carries the version that sampled it (SGLang /generate)', async () => {
    const run = await train('sync-run', { mode: 'sync' }, 'sglang');

    expect(run.status.error).toBeNull();
    expect(run.status).toMatchObject({ state: 'succeeded', version: 3 });
    // On-policy: step k is sampled by the engine on version k-1, as the engine itself reported per response.
    for (const step of [1, 2, 3]) expect(new Set(await run.versionsOf(step))).toEqual(new Set([step - 1]));
    const steps = run.events.filter((e) => e.type === 'step');
    expect(steps.map((e) => e.stalenessMax)).toEqual([0, 0, 0]);
    // The final validation ran on the last version, which the engine still serves; older folders are pruned.
    const served = await axios.get(engine.baseURL.replace(/\/v1$/, '') + '/get_weight_version');
    expect(served.data).toEqual({ weight_version: '3' });
    expect((await readdir(run.weights)).sort()).toEqual(['v2', 'v3']);
  }, 180_000);

  it('keeps the staleness bound when the next batch is sampled while the learner trains (async, OpenAI completions)', async () => {
    const run = await train('async-run', { mode: 'async', maxStaleness: 1 }, 'completions');

    expect(run.status.error).toBeNull();
    expect(run.status.state).toBe('succeeded');
    const steps = run.events.filter((e) => e.type === 'step');
    for (const e of steps) {
      const versions = await run.versionsOf(e.step);
      // Sampled at most one version behind the weights it trains, never ahead of them.
      expect(Math.min(...versions)).toBeGreaterThanOrEqual(e.step - 2);
      expect(Math.max(...versions)).toBeLessThanOrEqual(e.step - 1);
      expect(e.stalenessMax).toBeLessThanOrEqual(1);
    }
  }, 180_000);
});
