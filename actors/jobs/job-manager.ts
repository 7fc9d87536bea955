/**
 * The job manager actor (`jobs`, on the head). Jobs are journaled before they are acted on and finished
 * trajectories are appended as they arrive, so a restarted head replays its jobs and re-dispatches only the
 * trajectories that never reported. Work goes to RolloutActors `rollout/0..R-1` (spawned on demand, spread
 * over the nodes and re-spawned when a node goes down); a periodic lease check asks each of them which of a
 * job's trajectories it is still running, and re-dispatches those it lost (a killed worker). A trajectory
 * is counted once, by id, however many times it is run or reported. A train job is one TrainerActor beside the
 * manager, polled for its step; after a head restart it is spawned again and resumes from its last
 * checkpoint. Every change of a job is told to the dashboard's `monitor` actor when there is one.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DrError, isDrError } from '../../config/errors.ts';
import type { Actor, ActorFactory } from '../../runtime/actor.ts';
import type { RolloutActorArgs } from '../rollout/rollout-actor.ts';
import {
  ROLLOUT_PROTOCOL_VERSION,
  type BudgetTakeReply,
  type RolloutDone,
  type RolloutFailed,
  type RolloutStart,
  type RolloutStatusReply,
  type WorkUnit,
} from '../rollout/protocol.ts';
import { trajectoryId } from '../rollout/run-trajectory.ts';
import { addToolCounts, describeCacheHits, toolCounts, type Trajectory } from '../rollout/trajectory.ts';
import type { TrainerStatus } from '../trainer/protocol.ts';
import type { ToolServices } from '../services/services.ts';
import { loadDataset } from '../rollout/datasets.ts';
import { finishEvaluation, finishResearch, researchUnits, unitsFor } from './evaluation.ts';
import { JobJournal } from './journal.ts';
import { appendWebRecording, loadWebRecording, recordingKey, replayMisses } from './web-recording.ts';
import type { WebExchange } from '../rollout/web-tape.ts';
import {
  browseShards,
  checkTools,
  DEFAULT_SEARCH_TOP_K,
  describeBudget,
  resolveEngine,
  resolvePolicy,
  searchShards,
  toolFailure,
} from './job-tools.ts';
import { MonitorReporter } from './monitor-reports.ts';
import { OwnerLock } from '../../runtime/owner-lock.ts';
import { stepLine, trainerName, trainerSpec, trainPaths, trainResult } from './train-job.ts';
import {
  configSchemas,
  JOBS_PROTOCOL_VERSION,
  JOB_MANAGER_NAME,
  jobsMessageSchema,
  parseTrainJobConfig,
  TERMINAL_STATES,
  type BudgetUse,
  type EvaluateConfig,
  type JobConfig,
  type JobKind,
  type JobListReply,
  type JobLogsReply,
  type JobRecord,
  type JobReply,
  type JobResult,
  type JobsMessage,
  type JobsRefusedReply,
  type JobState,
  type ResearchConfig,
  type TrainJobConfig,
} from './protocol.ts';

export interface JobManagerArgs {
  /** Where the journal lives (survives restarts). */
  dataDir: string;
  /** Root of evaluation outputs (`outputs/{project}/{experiment}/rollout/...`). */
  outputsDir: string;
  rolloutActors?: number;
  rolloutArgs?: RolloutActorArgs;
  /** The cluster file's tool services and named policies (actors/services); absent: none declared. */
  services?: ToolServices;
  leaseCheckMs?: number;
  /** How long a job resumed after a restart waits for its tool services to come back (default 300 s). */
  resumeToolWaitMs?: number;
  /** How often a train job's trainer is asked for its status. */
  trainerPollMs?: number;
}

interface Running {
  units: Map<string, WorkUnit>;
  done: Map<string, Trajectory>;
  /** unit id -> rollout actor it was sent to (absent: waiting to be sent) */
  assigned: Map<string, string>;
  /** unit id -> lease checks in a row that its actor did not list it */
  misses: Map<string, number>;
  finishing: boolean;
  /** Tool calls granted against the job's budget, and calls refused at it. */
  budget: { search: number; browse: number; refused: number };
  /** A replaying job's recorded web, by trajectory id. */
  tape?: Map<string, WebExchange[]>;
}

const LOST_AFTER_MISSES = 2;
const BUDGET_KEY = { search: 'searchCalls', browse: 'browseCalls' } as const;

function budgetUse(limits: NonNullable<ResearchConfig['budget']>, spent: Running['budget']): BudgetUse {
  const use: BudgetUse = { exhausted: [], refused: spent.refused };
  for (const tool of ['search', 'browse'] as const) {
    const key = BUDGET_KEY[tool];
    const limit = limits[key];
    if (limit === undefined) continue;
    use[key] = { limit, used: spent[tool] };
    if (spent[tool] >= limit) use.exhausted.push(key);
  }
  return use;
}

/** A trainer that vanishes more often than this (not a crash its supervisor restarts) fails its job. */
const MAX_TRAINER_RESPAWNS = 3;

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });

function newJobId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `job-${stamp}-${randomBytes(3).toString('hex')}`;
}

function errorOf(err: unknown): { code: string; message: string } {
  return isDrError(err)
    ? { code: err.code, message: err.message }
    : { code: 'JOB_FAILED', message: String(err) };
}

function validate(kind: JobKind, config: unknown): JobConfig {
  if (kind === 'train') return parseTrainJobConfig(config);
  const parsed = configSchemas[kind].safeParse(config);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`)
      .join('; ');
    throw new DrError('JOBS_BAD_CONFIG', `invalid ${kind} job config: ${issues}`);
  }
  return parsed.data;
}

export function createJobManager(): ActorFactory<JobManagerArgs> {
  return (args, ctx): Actor => {
    const journal = new JobJournal(args.dataDir);
    // Replaying a journal resumes its running jobs: a second live job manager on it (another cluster's head
    // started from the same folder) would run every job of the first one a second time.
    const lock = OwnerLock.acquire(
      join(args.dataDir, 'journal.lock'),
      'a job manager',
      'JOBS_JOURNAL_IN_USE',
    );
    const jobs = journal.replay();
    const running = new Map<string, Running>();
    const rolloutNames = Array.from({ length: args.rolloutActors ?? 1 }, (_, i) => `rollout/${i}`);
    let spawned = false;
    let stopped = false;
    const monitor = new MonitorReporter(ctx, () => jobs.values());

    const log = (job: JobRecord, line: string): void => {
      journal.appendLog(job.id, line);
      ctx.log.info({ job: job.id }, line);
    };

    const setState = (job: JobRecord, state: JobState, error?: { code: string; message: string }): void => {
      const at = new Date().toISOString();
      const done = job.progress.done;
      journal.append({
        t: 'state',
        at,
        jobId: job.id,
        state,
        done,
        ...(error === undefined ? {} : { error }),
      });
      job.state = state;
      if (state === 'running' && job.startedAt === undefined) job.startedAt = at;
      if (TERMINAL_STATES.has(state)) {
        job.finishedAt = at;
        running.delete(job.id);
      }
      if (error !== undefined) job.error = error;
      log(job, error === undefined ? `state ${state}` : `state ${state}: ${error.code}: ${error.message}`);
      monitor.report(job);
    };

    const setResult = (job: JobRecord, result: JobResult): void => {
      journal.append({ t: 'result', at: new Date().toISOString(), jobId: job.id, result });
      job.result = result;
      monitor.report(job);
    };

    const setTotal = (job: JobRecord, total: number): void => {
      if (job.progress.total === total) return;
      journal.append({ t: 'total', at: new Date().toISOString(), jobId: job.id, total });
      job.progress.total = total;
      monitor.report(job);
    };

    const ensureRolloutActors = async (): Promise<void> => {
      if (spawned) return;
      for (const name of rolloutNames) {
        try {
          await ctx.spawn({
            kind: 'rollout',
            name,
            args: {
              searchShards: searchShards(args.services),
              browseShards: browseShards(args.services),
              ...args.rolloutArgs,
            },
            placement: { kind: 'spread' },
            respawnOnNodeLoss: true,
          });
        } catch (err) {
          if (!isDrError(err, 'ACTOR_NAME_TAKEN')) throw err;
        }
      }
      spawned = true;
    };

    const send = async (job: JobRecord, state: Running, units: WorkUnit[]): Promise<void> => {
      if (units.length === 0) return;
      const config = job.config as ResearchConfig | EvaluateConfig;
      const date = config.date ?? job.startedAt ?? new Date().toISOString();
      const policy = resolvePolicy(config.policy, args.services);
      const searchTopK = config.searchTopK ?? args.services?.search?.topK ?? DEFAULT_SEARCH_TOP_K;
      const chunks = rolloutNames.map(() => [] as WorkUnit[]);
      // Barrier batches must stay on one actor: the barrier spans the whole batch.
      units.forEach((u, i) => chunks[config.schedule === 'barrier' ? 0 : i % chunks.length]?.push(u));
      await Promise.all(
        chunks.map(async (chunk, i) => {
          const name = rolloutNames[i];
          if (chunk.length === 0 || name === undefined) return;
          const msg: RolloutStart = {
            v: ROLLOUT_PROTOCOL_VERSION,
            type: 'rollout.start',
            jobId: job.id,
            units: chunk,
            settings: {
              maxTurns: config.maxTurns,
              maxTokensPerTurn: config.maxTokensPerTurn,
              temperature: config.temperature,
              topP: config.topP,
              searchTopK,
              date,
              ...(config.budget === undefined ? {} : { budget: { ledger: JOB_MANAGER_NAME } }),
            },
            policy,
            schedule: config.schedule,
            replyTo: JOB_MANAGER_NAME,
            ...(config.web === undefined
              ? {}
              : {
                  web: {
                    record: config.web.record !== undefined,
                    onMiss: config.web.onMiss,
                    ...(state.tape === undefined
                      ? {}
                      : {
                          replay: Object.fromEntries(
                            chunk.map((u) => {
                              const id = trajectoryId(u.questionId, u.sample);
                              return [id, state.tape!.get(recordingKey(job.id, id)) ?? []];
                            }),
                          ),
                        }),
                  },
                }),
          };
          try {
            await ctx.ask(name, msg, { timeoutMs: 30_000 });
            for (const u of chunk) state.assigned.set(trajectoryId(u.questionId, u.sample), name);
          } catch (err) {
            // Left unassigned: the next lease check sends them again, re-spawning the actor if it is gone.
            if (isDrError(err, 'ACTOR_NOT_FOUND')) spawned = false;
            ctx.log.warn({ job: job.id, actor: name, err: errorOf(err) }, 'dispatch failed');
          }
        }),
      );
    };

    const finish = async (job: JobRecord, state: Running): Promise<void> => {
      if (state.finishing) return;
      state.finishing = true;
      try {
        const trajectories = [...state.done.values()];
        const config = job.config as ResearchConfig | EvaluateConfig;
        let result: JobResult;
        if (job.kind === 'evaluate') {
          const outcome = await finishEvaluation(config as EvaluateConfig, trajectories, args.outputsDir);
          result = outcome.result;
          const avg = outcome.table.average;
          log(job, `scores: F1 ${avg.f1} EM ${avg.em} MBE ${avg.mbe ?? '-'} (table: ${result.paths.table})`);
        } else {
          result = await finishResearch(job.id, trajectories, args.outputsDir);
        }
        if (job.state !== 'running') return;
        const tools = toolCounts(trajectories);
        const budget = config.budget === undefined ? undefined : budgetUse(config.budget, state.budget);
        const web = config.web;
        const misses = web?.replay === undefined ? 0 : replayMisses(trajectories);
        setResult(job, {
          ...result,
          tools,
          ...(budget === undefined ? {} : { budget }),
          ...(budget === undefined || budget.refused === 0
            ? {}
            : {
                stopped: {
                  code: 'JOB_BUDGET_EXHAUSTED' as const,
                  message: `the job spent its ${budget.exhausted.join(' and ')} budget; ${budget.refused} tool calls were refused and those trajectories answered from what they had`,
                },
              }),
          ...(web === undefined
            ? {}
            : {
                web: web.replay === undefined ? { recorded: web.record! } : { replayed: web.replay, misses },
              }),
        });
        if (budget !== undefined) log(job, `budget: ${describeBudget(budget)}`);
        log(job, `tool calls: ${tools.calls}, failed: ${tools.errors}`);
        const hits = describeCacheHits(tools);
        if (hits !== null) log(job, hits);
        const failure =
          misses > 0 && web?.onMiss === 'error'
            ? {
                code: 'JOB_WEB_REPLAY_MISS',
                message: `${misses} tool calls were not in the recording at ${web.replay}, so the replay is not exact; record the job again, or replay with --web-replay-miss live`,
              }
            : toolFailure(tools, config.maxToolErrorRate, trajectories);
        setState(job, failure === undefined ? 'succeeded' : 'failed', failure);
      } catch (err) {
        if (job.state === 'running') setState(job, 'failed', errorOf(err));
      }
    };

    const start = async (job: JobRecord): Promise<void> => {
      if (job.state === 'queued') setState(job, 'running');
      let units: WorkUnit[];
      if (job.kind === 'research') {
        units = researchUnits(job.id, job.config as ResearchConfig);
      } else {
        const config = job.config as EvaluateConfig;
        const rows = await loadDataset(config.data);
        units = unitsFor(job.id, config.limit === undefined ? rows : rows.slice(0, config.limit), config.n);
      }
      setTotal(job, units.length);
      const byId = new Map(units.map((u) => [trajectoryId(u.questionId, u.sample), u]));
      const done = journal.trajectories(job.id);
      for (const id of done.keys()) if (!byId.has(id)) done.delete(id);
      job.progress.done = done.size;
      job.tools = toolCounts(done.values());
      // After a restart, what finished trajectories spent still counts against the budget.
      const spent = [...done.values()].map((t) => t.toolStats);
      const state: Running = {
        units: byId,
        done,
        assigned: new Map(),
        misses: new Map(),
        finishing: false,
        budget: {
          search: spent.reduce((s, t) => s + t.searchCalls, 0),
          browse: spent.reduce((s, t) => s + t.browseCalls, 0),
          refused: spent.reduce((s, t) => s + (t.refused ?? 0), 0),
        },
      };
      const replay = (job.config as ResearchConfig | EvaluateConfig).web?.replay;
      if (replay !== undefined) {
        state.tape = loadWebRecording(replay);
        log(job, `replaying the web recorded at ${replay} (${state.tape.size} trajectories)`);
      }
      running.set(job.id, state);
      log(job, `${units.length} trajectories, ${done.size} already finished`);
      if (done.size === units.length) {
        await finish(job, state);
        return;
      }
      try {
        await ensureRolloutActors();
      } catch (err) {
        // E.g. the head restarted and the workers have not re-registered yet: the lease check spawns and
        // sends again, so the job waits instead of failing.
        log(job, `rollout actors not ready (${errorOf(err).code}); retrying`);
        return;
      }
      await send(
        job,
        state,
        units.filter((u) => !done.has(trajectoryId(u.questionId, u.sample))),
      );
    };

    const spawnTrainer = async (job: JobRecord, config: TrainJobConfig, resume: boolean): Promise<void> => {
      try {
        await ctx.spawn(
          trainerSpec(
            job.id,
            config,
            resume,
            { searchShards: searchShards(args.services), browseShards: browseShards(args.services) },
            resolveEngine(config.train.rollout.engine, args.services),
          ),
        );
        log(job, resume ? 'trainer started, resuming from the last checkpoint' : 'trainer started');
      } catch (err) {
        if (!isDrError(err, 'ACTOR_NAME_TAKEN')) throw err;
        log(job, 'trainer already running; following it');
      }
      // A cancel that came while the trainer was being spawned found no trainer to stop.
      if (job.state === 'cancelled') cancelRemote(job);
    };

    const onTrainerStatus = (job: JobRecord, config: TrainJobConfig, status: TrainerStatus): void => {
      job.tools = status.tools;
      if (status.step !== job.progress.done) {
        job.progress.done = status.step;
        log(job, stepLine(status));
        monitor.report(job);
      }
      if (status.state === 'succeeded') {
        setResult(job, trainResult(config.train, status));
        setState(job, 'succeeded');
      } else if (status.state === 'failed') {
        setResult(job, trainResult(config.train, status));
        setState(job, 'failed', status.error ?? { code: 'TRAIN_FAILED', message: 'the trainer failed' });
      } else if (status.state === 'cancelled') {
        setState(job, 'cancelled');
      }
    };

    const watchTrainer = async (job: JobRecord, config: TrainJobConfig): Promise<void> => {
      let respawns = 0;
      while (!stopped && job.state === 'running') {
        await sleep(args.trainerPollMs ?? 1_000);
        if (stopped || job.state !== 'running') return;
        let status: TrainerStatus;
        try {
          status = await ctx.ask<TrainerStatus>(
            trainerName(job.id),
            { v: 1, type: 'trainer.status' },
            { timeoutMs: 10_000 },
          );
        } catch (err) {
          if (!isDrError(err, 'ACTOR_NOT_FOUND')) {
            ctx.log.warn({ job: job.id, err: errorOf(err) }, 'trainer status failed');
            continue;
          }
          if (++respawns > MAX_TRAINER_RESPAWNS) {
            setState(job, 'failed', {
              code: 'JOBS_TRAINER_LOST',
              message: `the trainer of ${job.id} disappeared ${respawns} times; see \`dr logs ${job.id}\` and resubmit with --resume`,
            });
            return;
          }
          log(job, 'trainer is gone; starting it again');
          await spawnTrainer(job, config, true);
          continue;
        }
        if (job.state === 'running') onTrainerStatus(job, config, status);
      }
    };

    const startTrain = async (job: JobRecord, resume: boolean): Promise<void> => {
      const config = job.config as TrainJobConfig;
      if (job.state === 'queued') setState(job, 'running');
      setTotal(job, config.train.steps);
      if (job.result === undefined) setResult(job, { paths: trainPaths(config.train) });
      await spawnTrainer(job, config, resume);
      await watchTrainer(job, config);
    };

    /** `restarted`: the job was running or queued before this job manager started (a head restart). */
    const launch = (job: JobRecord, restarted: boolean): void => {
      const run =
        job.kind === 'train'
          ? startTrain(job, restarted || (job.config as TrainJobConfig).resume)
          : start(job);
      run.catch((err: unknown) => {
        if (job.state === 'running' || job.state === 'queued') setState(job, 'failed', errorOf(err));
      });
    };

    const onDone = (msg: RolloutDone): void => {
      const job = jobs.get(msg.jobId);
      const state = running.get(msg.jobId);
      if (job === undefined || state === undefined || job.state !== 'running') return;
      const id = msg.trajectory.id;
      if (!state.units.has(id) || state.done.has(id)) return;
      const recordTo = (job.config as ResearchConfig | EvaluateConfig).web?.record;
      if (recordTo !== undefined)
        appendWebRecording(recordTo, recordingKey(job.id, id), msg.trajectory.web ?? []);
      delete msg.trajectory.web;
      journal.appendTrajectory(job.id, msg.trajectory);
      state.done.set(id, msg.trajectory);
      state.assigned.delete(id);
      state.misses.delete(id);
      job.progress.done = state.done.size;
      const calls = toolCounts([msg.trajectory]);
      job.tools = addToolCounts(job.tools ?? { calls: 0, errors: 0 }, calls);
      monitor.report(job);
      const step = Math.max(1, Math.floor(job.progress.total / 10));
      if (job.progress.done % step === 0) log(job, `progress ${job.progress.done}/${job.progress.total}`);
      if (state.done.size === state.units.size) void finish(job, state);
    };

    const cancelRemote = (job: JobRecord): void => {
      const jobId = job.id;
      if (job.kind === 'train') {
        ctx
          .ask(trainerName(jobId), { v: 1, type: 'trainer.cancel' }, { timeoutMs: 10_000 })
          .catch((err: unknown) => log(job, `trainer did not take the cancel (${errorOf(err).code})`));
        return;
      }
      for (const name of rolloutNames) {
        ctx
          .ask(name, { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.cancel', jobId }, { timeoutMs: 10_000 })
          .catch(() => {
            // The actor is gone or busy; its late reports are ignored because the job is no longer running.
          });
      }
    };

    const leaseCheck = async (): Promise<void> => {
      for (const [jobId, state] of running) {
        const job = jobs.get(jobId);
        if (job === undefined || job.state !== 'running' || state.finishing) continue;
        const lost: WorkUnit[] = [];
        for (const [id, unit] of state.units) {
          if (!state.done.has(id) && !state.assigned.has(id)) lost.push(unit);
        }
        const holders = new Set(state.assigned.values());
        for (const name of holders) {
          let listed: Set<string> | null;
          try {
            const reply = await ctx.ask<RolloutStatusReply>(
              name,
              { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.status', jobId },
              { timeoutMs: 5_000 },
            );
            listed = new Set(reply.running);
          } catch {
            listed = null;
          }
          for (const [id, holder] of state.assigned) {
            if (holder !== name || state.done.has(id) || listed?.has(id) === true) {
              if (holder === name) state.misses.delete(id);
              continue;
            }
            const misses = (state.misses.get(id) ?? 0) + 1;
            state.misses.set(id, misses);
            const unit = state.units.get(id);
            if (misses >= LOST_AFTER_MISSES && unit !== undefined) {
              state.assigned.delete(id);
              state.misses.delete(id);
              lost.push(unit);
            }
          }
        }
        if (lost.length > 0 && running.get(jobId) === state) {
          log(job, `re-running ${lost.length} trajectories whose rollout actor lost them`);
          await ensureRolloutActors();
          await send(job, state, lost);
        }
      }
    };

    let checking = false;
    const timer = setInterval(() => {
      if (checking) return;
      checking = true;
      leaseCheck()
        .catch((err: unknown) => ctx.log.warn({ err: errorOf(err) }, 'lease check failed'))
        .finally(() => {
          checking = false;
        });
    }, args.leaseCheckMs ?? 5_000);
    timer.unref();

    /**
     * After a head restart the job manager is up before the tool services it had (the head re-spawns them
     * too): a research or evaluation job waits for them rather than failing every tool call meanwhile.
     */
    const resume = async (job: JobRecord): Promise<void> => {
      journal.appendLog(job.id, 'resuming after a job manager restart');
      if (job.kind !== 'train') {
        const policy = resolvePolicy((job.config as ResearchConfig).policy, args.services);
        const deadline = Date.now() + (args.resumeToolWaitMs ?? 300_000);
        for (let waited = false; ; waited = true) {
          try {
            await checkTools((name) => ctx.resolve(name), args.services, policy);
            break;
          } catch (err) {
            // A manager stopping meanwhile leaves the job running in the journal, for the next one to resume.
            if (stopped) return;
            if (Date.now() > deadline) throw err;
            if (!waited) log(job, `waiting for its tools: ${errorOf(err).message}`);
            await new Promise((r) => setTimeout(r, 1_000));
          }
        }
      }
      if (!stopped) launch(job, true);
    };
    for (const job of jobs.values()) {
      if (job.state === 'running' || job.state === 'queued')
        resume(job).catch((err: unknown) => setState(job, 'failed', errorOf(err)));
    }
    monitor.reportAll();

    const submit = async (kind: JobKind, raw: unknown): Promise<JobRecord> => {
      const config = validate(kind, raw);
      // Refused before it is journaled: a job that cannot reach its tools or its policy never runs.
      const policy =
        kind === 'train' ? undefined : resolvePolicy((config as ResearchConfig).policy, args.services);
      if (kind === 'train') resolveEngine((config as TrainJobConfig).train.rollout.engine, args.services);
      await checkTools((name) => ctx.resolve(name), args.services, policy);
      const job: JobRecord = {
        id: newJobId(),
        kind,
        config,
        state: 'queued',
        createdAt: new Date().toISOString(),
        progress: { done: 0, total: 0 },
        tools: { calls: 0, errors: 0 },
      };
      journal.append({ t: 'submitted', at: job.createdAt, job });
      jobs.set(job.id, job);
      log(job, `submitted ${kind} job`);
      launch(job, false);
      return job;
    };

    const find = (jobId: string): JobRecord => {
      const job = jobs.get(jobId);
      if (job === undefined)
        throw new DrError('JOBS_NOT_FOUND', `no job ${jobId}; list jobs with \`dr jobs\``);
      return job;
    };

    const reply = (job: JobRecord): JobReply => ({ v: JOBS_PROTOCOL_VERSION, type: 'jobs.job', job });

    return {
      receive(raw: unknown): unknown | Promise<unknown> {
        const type = (raw as { type?: unknown } | null)?.type;
        if (type === 'rollout.done') return onDone(raw as RolloutDone);
        if (type === 'rollout.failed') {
          const msg = raw as RolloutFailed;
          const job = jobs.get(msg.jobId);
          if (job?.state === 'running') {
            setState(job, 'failed', msg.error);
            cancelRemote(job);
          }
          return undefined;
        }
        const parsed = jobsMessageSchema.safeParse(raw);
        if (!parsed.success) {
          return refusal(
            new DrError('JOBS_BAD_REQUEST', `job manager got a malformed message: ${parsed.error.message}`),
          );
        }
        try {
          const answer = handle(parsed.data);
          return answer instanceof Promise ? answer.catch(refusal) : answer;
        } catch (err) {
          return refusal(err);
        }
      },
      stop(): void {
        stopped = true;
        clearInterval(timer);
        lock.release();
      },
    };

    /** Grants one `tool` call against the job's budget (true when it has no limit for that tool). */
    function take(job: JobRecord, state: Running, tool: 'search' | 'browse'): boolean {
      const limit = (job.config as ResearchConfig | EvaluateConfig).budget?.[BUDGET_KEY[tool]];
      if (limit === undefined) return true;
      if (state.budget[tool] < limit) {
        state.budget[tool] += 1;
        return true;
      }
      if (state.budget.refused++ === 0)
        log(job, `${tool} budget of ${limit} calls spent: further ${tool} calls are refused`);
      return false;
    }

    function handle(msg: JobsMessage): unknown {
      switch (msg.type) {
        case 'jobs.submit':
          return submit(msg.kind, msg.config).then(reply);
        case 'jobs.list': {
          const list: JobListReply = {
            v: JOBS_PROTOCOL_VERSION,
            type: 'jobs.list.reply',
            jobs: [...jobs.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
          };
          return list;
        }
        case 'jobs.get':
          return reply(find(msg.jobId));
        case 'jobs.logs': {
          find(msg.jobId);
          const lines = journal.logLines(msg.jobId);
          const after = msg.after ?? 0;
          const logs: JobLogsReply = {
            v: 1,
            type: 'jobs.logs.reply',
            lines: lines.slice(after),
            next: lines.length,
          };
          return logs;
        }
        case 'jobs.budget.take': {
          const job = jobs.get(msg.jobId);
          const state = running.get(msg.jobId);
          const granted = job?.state === 'running' && state !== undefined && take(job, state, msg.tool);
          const answer: BudgetTakeReply = { v: 1, type: 'jobs.budget.reply', granted };
          return answer;
        }
        case 'jobs.cancel': {
          const job = find(msg.jobId);
          if (!TERMINAL_STATES.has(job.state)) {
            setState(job, 'cancelled');
            cancelRemote(job);
          }
          return reply(job);
        }
      }
    }
  };
}

/** A DrError as a refusal reply; anything else is a bug, thrown to the supervisor. */
function refusal(err: unknown): JobsRefusedReply {
  if (!isDrError(err)) throw err;
  return {
    v: JOBS_PROTOCOL_VERSION,
    type: 'jobs.refused',
    error: {
      code: err.code,
      message: err.message,
      ...(err.details === undefined ? {} : { details: err.details }),
    },
  };
}

export const jobManager = createJobManager();
