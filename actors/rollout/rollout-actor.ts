/**
 * RolloutActor: runs the trajectories a job hands it. `rollout.start` is answered at once; the units run in
 * the background (asynchronously, up to `maxConcurrent` at a time, or all together behind a turn barrier)
 * and each finished trajectory is told to the job's `replyTo` as `rollout.done`. Cancellation aborts the
 * job's in-flight trajectories; cancelled ones are not reported, so the job manager can re-run them.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import type { Actor, ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { ActorTools } from './actor-tools.ts';
import { TapedTools } from './web-tape.ts';
import { buildPolicy, type BuiltPolicy } from './policy-factory.ts';
import {
  ROLLOUT_PROTOCOL_VERSION,
  rolloutMessageSchema,
  type BudgetTake,
  type BudgetTakeReply,
  type PolicyConfig,
  type RolloutCancelReply,
  type RolloutDone,
  type RolloutFailed,
  type RolloutStart,
  type RolloutStartReply,
  type RolloutStatusReply,
} from './protocol.ts';
import { runTrajectory, trajectoryId } from './run-trajectory.ts';
import type { ToolRunner } from './tool-runner.ts';
import { TurnBarrier } from './turn-barrier.ts';

export interface RolloutActorArgs {
  searchShards?: number;
  browseShards?: number;
  toolTimeoutMs?: number;
  /** Trajectories in flight at once in the async schedule. */
  maxConcurrent?: number;
}

export interface RolloutActorDeps {
  /** Where tool calls go; default: the SearchActor/BrowseActor shards. */
  tools?: (ctx: ActorContext, args: RolloutActorArgs) => ToolRunner & { forget?(trajectoryId: string): void };
  policy?: (config: PolicyConfig) => Promise<BuiltPolicy>;
}

interface JobState {
  controller: AbortController;
  /** Trajectory ids accepted and not yet finished. */
  running: Set<string>;
  /** `rollout.start` batches of the job still running here. */
  batches: number;
}

/** A trajectory's own abort signal, aborted with its job's. Policies and HTTP clients may leave listeners
 * on the signal they are given (the openai SDK adds one per request and never removes it); on a
 * per-trajectory signal those go away with the trajectory instead of piling up on the job's. */
function linkedSignal(parent: AbortSignal): { signal: AbortSignal; unlink(): void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort(parent.reason);
  if (parent.aborted) abort();
  else parent.addEventListener('abort', abort, { once: true });
  return { signal: controller.signal, unlink: () => parent.removeEventListener('abort', abort) };
}

class Semaphore {
  private waiters: Array<() => void> = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.free += 1;
  }
}

export function createRolloutActor(deps: RolloutActorDeps = {}): ActorFactory<RolloutActorArgs> {
  return (spawnArgs, ctx): Actor => {
    const args: RolloutActorArgs = spawnArgs ?? {};
    const tools =
      deps.tools?.(ctx, args) ??
      new ActorTools(ctx, {
        searchShards: args.searchShards ?? 1,
        browseShards: args.browseShards ?? 1,
        timeoutMs: args.toolTimeoutMs ?? 120_000,
      });
    const slots = new Semaphore(args.maxConcurrent ?? 256);
    /** Jobs with a batch in flight; an entry goes when the job's last batch ends or the job is cancelled, so
     * an actor that serves one batch id per training step holds nothing for finished steps. */
    const jobs = new Map<string, JobState>();
    const policies = new Map<string, Promise<BuiltPolicy>>();

    const policyFor = (config: PolicyConfig): Promise<BuiltPolicy> => {
      const key = JSON.stringify(config);
      let built = policies.get(key);
      if (built === undefined) {
        built =
          deps.policy?.(config) ??
          buildPolicy(config, (target, msg, options) => ctx.ask(target, msg, options));
        built.catch(() => policies.delete(key));
        policies.set(key, built);
      }
      return built;
    };

    const run = async (msg: RolloutStart, job: JobState): Promise<void> => {
      const built = await policyFor(msg.policy);
      const taped = msg.web === undefined ? undefined : new TapedTools(tools, msg.web);
      const barrier = msg.schedule === 'barrier' ? new TurnBarrier(msg.units.length) : undefined;
      const settings = { ...msg.settings, date: new Date(msg.settings.date) };
      const ledger = msg.settings.budget?.ledger;
      const budget =
        ledger === undefined
          ? undefined
          : async (tool: 'search' | 'browse'): Promise<boolean> => {
              const take: BudgetTake = {
                v: ROLLOUT_PROTOCOL_VERSION,
                type: 'jobs.budget.take',
                jobId: msg.jobId,
                tool,
              };
              return (await ctx.ask<BudgetTakeReply>(ledger, take, { timeoutMs: 30_000 })).granted === true;
            };
      await Promise.all(
        msg.units.map(async (unit) => {
          const id = trajectoryId(unit.questionId, unit.sample);
          if (barrier === undefined) await slots.acquire();
          const trajectorySignal = linkedSignal(job.controller.signal);
          try {
            if (job.controller.signal.aborted) return;
            const trajectory = await runTrajectory(unit, unit.sample, settings, {
              policy: built.policy,
              tools: taped ?? tools,
              ...(built.encoder === undefined ? {} : { encoder: built.encoder }),
              ...(built.renderer === undefined ? {} : { renderer: built.renderer }),
              ...(budget === undefined ? {} : { budget }),
              ...(barrier === undefined ? {} : { barrier }),
              signal: trajectorySignal.signal,
            });
            tools.forget?.(id);
            const web = taped?.take(id);
            if (trajectory.end.reason === 'cancelled') return;
            if (msg.web?.record === true) trajectory.web = web;
            const done: RolloutDone = {
              v: ROLLOUT_PROTOCOL_VERSION,
              type: 'rollout.done',
              jobId: msg.jobId,
              worker: ctx.self.name,
              trajectory,
            };
            ctx.tell(msg.replyTo, done);
          } finally {
            trajectorySignal.unlink();
            job.running.delete(id);
            if (barrier === undefined) slots.release();
          }
        }),
      );
    };

    return {
      receive(raw: unknown): RolloutStartReply | RolloutCancelReply | RolloutStatusReply {
        const parsed = rolloutMessageSchema.safeParse(raw);
        if (!parsed.success) {
          throw new DrError(
            'ROLLOUT_BAD_REQUEST',
            `rollout actor got a malformed message: ${parsed.error.message}`,
          );
        }
        const msg = parsed.data;
        if (msg.type === 'rollout.status') {
          const ids = [...(jobs.get(msg.jobId)?.running ?? [])];
          return { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.status.reply', running: ids };
        }
        if (msg.type === 'rollout.cancel') {
          const job = jobs.get(msg.jobId);
          job?.controller.abort();
          jobs.delete(msg.jobId);
          const cancelled = job?.running.size ?? 0;
          return { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.cancel.reply', cancelled };
        }
        const job = jobs.get(msg.jobId) ?? {
          controller: new AbortController(),
          running: new Set(),
          batches: 0,
        };
        jobs.set(msg.jobId, job);
        job.batches += 1;
        for (const unit of msg.units) job.running.add(trajectoryId(unit.questionId, unit.sample));
        const finished = (): void => {
          job.batches -= 1;
          if (job.batches === 0 && jobs.get(msg.jobId) === job) jobs.delete(msg.jobId);
        };
        run(msg as RolloutStart, job)
          .finally(finished)
          .catch((err: unknown) => {
            ctx.log.error({ job: msg.jobId, err }, 'rollout batch failed');
            const failed: RolloutFailed = {
              v: ROLLOUT_PROTOCOL_VERSION,
              type: 'rollout.failed',
              jobId: msg.jobId,
              worker: ctx.self.name,
              error: isDrError(err)
                ? { code: err.code, message: err.message }
                : { code: 'ROLLOUT_FAILED', message: String(err) },
            };
            ctx.tell(msg.replyTo, failed);
          });
        return { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.start.reply', accepted: msg.units.length };
      },
      stop(): void {
        for (const job of jobs.values()) job.controller.abort();
        jobs.clear();
        policies.clear();
      },
    };
  };
}

export const rolloutActor = createRolloutActor();
