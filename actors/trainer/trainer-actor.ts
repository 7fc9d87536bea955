/**
 * TrainerActor: runs one `train` job. At spawn it validates the config, then in the background sets up the
 * job's actors (parameter server, data-parallel learners on GPU nodes when there are any, rollout workers),
 * serves the policy to the rollout workers (policy-server.ts), runs the training loop (trainer.ts) and, once
 * the job is over (succeeded, failed or cancelled), stops what it started: the policy server and the job's
 * actors, so a finished job holds no learner memory. An incarnation stopped by supervision leaves the job's
 * actors running for its restarted successor to reuse. Progress is a
 * `trainer.status` ask away; metrics go to outputs/<name>/metrics.jsonl and the node's dr_train_* gauges.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { DrError, isDrError } from '../../config/errors.ts';
import { checkpointDirOf, outputDirOf, parseTrainConfig, type TrainConfig } from '../../config/train.ts';
import type { Logger } from '../../config/log.ts';
import {
  ActorErrorCode,
  type Actor,
  type ActorContext,
  type ActorFactory,
  type SpawnSpec,
} from '../../runtime/actor.ts';
import { EMBEDDED_DIR } from '../../runtime/model/embedded.ts';
import { loadDataset } from '../rollout/datasets.ts';
import { OwnerLock } from '../../runtime/owner-lock.ts';
import { LearnerGroup } from '../learner/learner-group.ts';
import { ParamsClient } from '../params/params-client.ts';
import { WeightSubscriber, type AskFn } from '../params/weight-transfer.ts';
import type { PolicyConfig, RolloutDone, RolloutFailed } from '../rollout/protocol.ts';
import { toolErrorRateExceeded } from '../rollout/trajectory.ts';
import { ActorRolloutSource } from './actor-rollout-source.ts';
import { gaugeSink, jsonlSink, tensorboardSink, type TrainEvent } from './metrics.ts';
import { RolloutFiles } from './rollout-files.ts';
import { EngineSync } from './engine-sync.ts';
import { PolicyServer } from './policy-server.ts';
import { TRAINER_PROTOCOL, type TrainerArgs, type TrainerState, type TrainerStatus } from './protocol.ts';
import type { Question } from './rollout-source.ts';
import { runTraining } from './trainer.ts';

class TrainerActor implements Actor {
  private readonly abort = new AbortController();
  /** Set by `trainer.cancel` (the job ends) as opposed to a supervision stop (a restart follows). */
  private cancelRequested = false;
  private source: ActorRolloutSource | null = null;
  readonly status: TrainerStatus;

  constructor(
    private readonly args: TrainerArgs,
    private readonly config: TrainConfig,
  ) {
    this.status = {
      jobId: args.jobId,
      state: 'starting',
      step: 0,
      steps: config.steps,
      version: -1,
      outputDir: outputDirOf(config),
      validation: { before: null, latest: null },
      lastStep: null,
      tools: { calls: 0, errors: 0 },
      error: null,
    };
  }

  receive(raw: unknown): unknown {
    const msg = raw as { type?: string };
    switch (msg.type) {
      case 'rollout.done':
      case 'rollout.failed':
        this.source?.deliver(raw as RolloutDone | RolloutFailed);
        return undefined;
      case 'trainer.status':
        return this.status;
      case 'trainer.cancel':
        this.cancelRequested = true;
        this.abort.abort();
        return { cancelled: this.status.state === 'running' || this.status.state === 'starting' };
      default:
        return {
          error: {
            code: 'TRAIN_BAD_MESSAGE',
            message: `unknown trainer message ${String(msg.type)}; see actors/trainer/protocol.ts`,
          },
        };
    }
  }

  stop(): void {
    this.abort.abort();
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  async run(ctx: ActorContext): Promise<void> {
    const cleanup: (() => Promise<unknown>)[] = [];
    const jobActors: string[] = [];
    const ask: AskFn = (t, m, o) => ctx.ask(t, m, o);
    const log = ctx.log.child({ job: this.args.jobId });
    // Stopped before its loop began (a spawn that lost a name race, or a restart that came while this
    // incarnation waited for its predecessor): it must not touch the job's actors or files.
    if (this.abort.signal.aborted) {
      this.status.state = 'cancelled';
      return;
    }
    // The terminal state is reported only once the job's actors are stopped, so a caller that sees it can
    // count on the job holding nothing.
    let outcome: TrainerState = 'failed';
    try {
      const cfg = this.config;
      const job = this.args.jobId;
      const locks = lockOutputs(cfg, `the trainer of ${job}`);
      cleanup.push(async () => {
        for (const l of locks) l.release();
      });
      const [trainSet, devSet] = await Promise.all([questionsOf(cfg.data.train), questionsOf(cfg.data.dev)]);
      const modelDir = policyDir(cfg);

      const paramsName = `params/${job}`;
      // The job's actors already running means this is a restarted trainer (a crash under supervision):
      // reuse them and continue from the last checkpoint.
      const restarted = !(await spawnOrReuse(ctx, {
        kind: 'params',
        name: paramsName,
        args: { checkpointDir: checkpointDirOf(cfg), keepCheckpoints: cfg.checkpoint.keep, modelDir },
        placement: { kind: 'local' },
      }));
      jobActors.push(paramsName);

      const group = `learner/${job}`;
      const learners = await LearnerGroup.spawn((s) => spawnOrReuse(ctx, s), ask, {
        group,
        size: cfg.learner.count,
        model: { kind: 'qwen2', dir: modelDir },
        config: {
          loss: { ...cfg.algorithm },
          optimizer: cfg.optimizer,
          maxTokensPerMicroBatch: cfg.learner.maxTokensPerMicroBatch,
          maxSeqLen: cfg.learner.maxSeqLen,
          padId: 0,
        },
        paramServer: paramsName,
        residency: cfg.learner.residency,
      });
      jobActors.push(...learners.actorNames());
      log.info({ devices: learners.devices }, 'learners placed');

      const { loadCheckpoint } = await import('../../runtime/model/checkpoint.ts');
      const { loadTokenizer } = await import('../../runtime/model/tokenizer.ts');
      // A checkpoint with its own (e.g. reduced) vocabulary ships its tokenizer; otherwise it is Qwen2.5's.
      const ownTokenizer = existsSync(join(modelDir, 'tokenizer.json'));
      const [{ config: modelConfig }, tokenizer] = await Promise.all([
        loadCheckpoint(modelDir),
        ownTokenizer ? loadTokenizer(modelDir) : loadTokenizer(),
      ]);
      const params = new ParamsClient(ask, paramsName);
      const engine = this.args.engine;
      let rolloutPolicy: PolicyConfig;
      let beforeBatch: () => Promise<number>;
      if (engine === undefined) {
        const server = await PolicyServer.start({
          config: modelConfig,
          tokenizer,
          weights: new WeightSubscriber(ask, paramsName),
          modelName: cfg.name,
          log,
        });
        cleanup.push(() => server.close());
        rolloutPolicy = { kind: 'completions', baseURL: server.baseURL, model: cfg.name };
        beforeBatch = () => server.refresh();
      } else {
        const apiKeyEnv = engine.policy.apiKeyEnv;
        const sync = new EngineSync({
          baseURL: engine.policy.baseURL,
          sync: engine.weightSync,
          params,
          dtype: cfg.export.dtype,
          ...(apiKeyEnv === undefined || process.env[apiKeyEnv] === undefined
            ? {}
            : { apiKey: process.env[apiKeyEnv] }),
          log,
        });
        rolloutPolicy = engine.policy;
        beforeBatch = () => sync.refresh();
        log.info(
          { engine: engine.policy.baseURL, sync: engine.weightSync.kind },
          'rolling out on an external engine',
        );
      }

      const workers: string[] = [];
      for (let i = 0; i < cfg.rollout.workers; i++) {
        const name = `rollout/${job}/${i}`;
        await spawnOrReuse(ctx, {
          kind: 'trainer-rollout',
          name,
          args: {
            maxConcurrent: 64,
            ...this.args.tools,
            ...(ownTokenizer ? { tokenizerDir: modelDir } : {}),
          },
          placement: { kind: 'spread' },
        });
        workers.push(name);
        jobActors.push(name);
      }
      this.source = new ActorRolloutSource(ask, {
        jobId: job,
        workers,
        replyTo: ctx.self.name,
        policy: rolloutPolicy,
        settings: {
          maxTurns: cfg.rollout.maxTurns,
          maxTokensPerTurn: cfg.rollout.maxTokensPerTurn,
          temperature: cfg.rollout.temperature,
          topP: cfg.rollout.topP,
          searchTopK: cfg.rollout.searchTopK,
          date: new Date().toISOString(),
        },
        beforeBatch,
        signal: this.abort.signal,
        log,
      });

      const fenced = (e: TrainEvent): void => {
        // A stopped incarnation's loop may still be finishing a step: what it would write belongs to the
        // run its restarted incarnation resumes, so it ends here instead.
        if (this.abort.signal.aborted)
          throw new DrError('TRAIN_CANCELLED', `the trainer of ${job} stopped; ${e.type} event dropped`);
      };
      const sinks = [
        fenced,
        jsonlSink(join(outputDirOf(cfg), 'metrics.jsonl')),
        tensorboardSink(outputDirOf(cfg)),
        gaugeSink,
        (e: TrainEvent) => this.track(e),
      ];
      this.status.state = 'running';
      const summary = await runTraining(
        cfg,
        {
          job,
          source: this.source,
          learners,
          params,
          trainSet,
          devSet,
          emit: async (e) => {
            for (const s of sinks) await s(e);
          },
          rolloutFiles: new RolloutFiles(outputDirOf(cfg), { train: trainSet, dev: devSet }),
          signal: this.abort.signal,
        },
        { resume: this.args.resume === true || restarted },
      );
      outcome = 'succeeded';
      log.info({ validation: summary.validation, version: summary.version }, 'training finished');
    } catch (err) {
      const cancelled = this.abort.signal.aborted;
      outcome = cancelled ? 'cancelled' : 'failed';
      this.status.error = isDrError(err)
        ? { code: err.code, message: err.message }
        : { code: 'TRAIN_FAILED', message: String(err) };
      if (!cancelled) log.error({ err: this.status.error }, 'training failed');
    } finally {
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
      if (!this.abort.signal.aborted || this.cancelRequested) await stopJobActors(ctx, jobActors, log);
      this.status.state = outcome;
    }
  }

  private track(e: TrainEvent): void {
    if (e.type === 'step' || e.type === 'validation') {
      const batch = e.type === 'step' ? e.rollout : e.stats;
      const tools = this.status.tools;
      tools.calls += batch.toolCalls;
      tools.errors += batch.toolErrors;
      if (toolErrorRateExceeded(tools, this.config.rollout.maxToolErrorRate))
        throw new DrError(
          'JOB_TOOL_ERRORS',
          `${tools.errors} of ${tools.calls} tool calls failed (more than ${Math.round(this.config.rollout.maxToolErrorRate * 100)}%); the policy would learn from broken tools. Fix: check the search and browse services (dr status, dr node-logs JOB), or raise rollout.maxToolErrorRate`,
        );
    }
    if (e.type === 'step') {
      this.status.step = e.step;
      this.status.version = e.version;
      this.status.lastStep = e;
    } else if (e.type === 'validation') {
      this.status.validation.before ??= e.stats.f1Mean;
      this.status.validation.latest = e.stats.f1Mean;
    } else if (e.type === 'resumed') {
      this.status.step = e.step;
      this.status.version = e.version;
    }
  }
}

/** The job's outputs (and its checkpoints, when kept elsewhere) belong to this trainer while it runs: a second
 * trainer on them, of this job or another one given the same folders, fails instead of corrupting them. */
function lockOutputs(cfg: TrainConfig, owner: string): OwnerLock[] {
  const out = outputDirOf(cfg);
  const ckpt = checkpointDirOf(cfg);
  const inside = !relative(resolve(out), resolve(ckpt)).startsWith('..');
  const locks: OwnerLock[] = [];
  try {
    for (const dir of inside ? [out] : [out, ckpt]) {
      mkdirSync(dir, { recursive: true });
      locks.push(OwnerLock.acquire(join(dir, 'trainer.lock'), owner, 'TRAIN_ALREADY_RUNNING'));
    }
  } catch (err) {
    for (const l of locks) l.release();
    throw err;
  }
  return locks;
}

async function questionsOf(spec: string): Promise<Question[]> {
  const rows = await loadDataset(spec);
  return rows.map((r) => ({
    id: r.id,
    question: r.question,
    groundTruth: r.groundTruth,
    dataSource: r.dataSource,
  }));
}

function policyDir(cfg: TrainConfig): string {
  const p = cfg.policy;
  if (p.kind === 'qwen2') return p.dir;
  if (p.kind === 'embedded') return p.dir ?? EMBEDDED_DIR;
  throw new DrError(
    'TRAIN_BAD_CONFIG',
    'policy "bigram" only trains the toy task of the trainer tests; use "embedded" or "qwen2" for research agents',
  );
}

/** Stops the job's actors, last spawned first (rollout workers before the learners they feed). An actor that
 * is already gone is not an error: its node may have left with it. */
async function stopJobActors(ctx: ActorContext, names: readonly string[], log: Logger): Promise<void> {
  for (const name of [...names].reverse()) {
    await ctx.stopActor(name).catch((err: unknown) => {
      log.warn({ actor: name, err: isDrError(err) ? err.code : String(err) }, 'could not stop a job actor');
    });
  }
  log.info({ actors: names.length }, 'job actors stopped');
}

/** Spawns `spec`; false when an actor of that name already runs (it is reused as is). */
async function spawnOrReuse(ctx: ActorContext, spec: SpawnSpec): Promise<boolean> {
  try {
    await ctx.spawn(spec);
    return true;
  } catch (err) {
    if (isDrError(err, ActorErrorCode.NAME_TAKEN)) return false;
    throw err;
  }
}

/** Each job's latest trainer incarnation in this process. A restarted incarnation begins only once its
 * predecessor, stopped by supervision before the restart, has left its loop, so the two never overlap; a
 * predecessor that was not stopped keeps the job's outputs locked and the newcomer fails on the lock. */
const incarnations = new Map<string, { actor: TrainerActor; run: Promise<void> }>();

export const trainerActor: ActorFactory<TrainerArgs> = (args, ctx) => {
  const actor = new TrainerActor(args, parseTrainConfig(args.config, `train job ${args.jobId}`));
  const previous = incarnations.get(args.jobId);
  const run = (async () => {
    await new Promise<void>((r) => setImmediate(r));
    if (previous?.actor.stopped === true) {
      ctx.log.info({ job: args.jobId }, 'waiting for the previous trainer incarnation to leave its loop');
      await previous.run;
    }
    await actor.run(ctx);
  })();
  const entry = { actor, run };
  incarnations.set(args.jobId, entry);
  void run.finally(() => {
    if (incarnations.get(args.jobId) === entry) incarnations.delete(args.jobId);
  });
  return actor;
};

export { TRAINER_PROTOCOL };
