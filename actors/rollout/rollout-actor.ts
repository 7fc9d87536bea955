/**
 * RolloutActor: runs the trajectories a job hands it. `rollout.start` is answered at once; the units run in
 * the background (asynchronously, up to `maxConcurrent` at a time, or all together behind a turn barrier)
 * and each finished trajectory is told to the job's `replyTo` as `rollout.done`. Cancellation aborts the
 * job's in-flight trajectories; cancelled ones are not reported, so the job manager can re-run them.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import type { Actor, ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { ActorTools } from './actor-tools.ts';
import { buildPolicy, type BuiltPolicy } from './policy-factory.ts';
import {
  ROLLOUT_PROTOCOL_VERSION,
  rolloutMessageSchema,
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
    const jobs = new Map<string, AbortController>();
    /** job id -> trajectory ids accepted and not yet finished */
    const running = new Map<string, Set<string>>();
    const policies = new Map<string, Promise<BuiltPolicy>>();

    const policyFor = (config: PolicyConfig): Promise<BuiltPolicy> => {
      const key = JSON.stringify(config);
      let built = policies.get(key);
      if (built === undefined) {
        built = (deps.policy ?? buildPolicy)(config);
        built.catch(() => policies.delete(key));
        policies.set(key, built);
      }
      return built;
    };

    const run = async (msg: RolloutStart, controller: AbortController): Promise<void> => {
      const built = await policyFor(msg.policy);
      const barrier = msg.schedule === 'barrier' ? new TurnBarrier(msg.units.length) : undefined;
      const settings = { ...msg.settings, date: new Date(msg.settings.date) };
      await Promise.all(
        msg.units.map(async (unit) => {
          const id = trajectoryId(unit.questionId, unit.sample);
          if (barrier === undefined) await slots.acquire();
          try {
            if (controller.signal.aborted) return;
            const trajectory = await runTrajectory(unit, unit.sample, settings, {
              policy: built.policy,
              tools,
              ...(built.encoder === undefined ? {} : { encoder: built.encoder }),
              ...(barrier === undefined ? {} : { barrier }),
              signal: controller.signal,
            });
            tools.forget?.(id);
            if (trajectory.end.reason === 'cancelled') return;
            const done: RolloutDone = {
              v: ROLLOUT_PROTOCOL_VERSION,
              type: 'rollout.done',
              jobId: msg.jobId,
              worker: ctx.self.name,
              trajectory,
            };
            ctx.tell(msg.replyTo, done);
          } finally {
            running.get(msg.jobId)?.delete(id);
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
          const ids = [...(running.get(msg.jobId) ?? [])];
          return { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.status.reply', running: ids };
        }
        if (msg.type === 'rollout.cancel') {
          jobs.get(msg.jobId)?.abort();
          jobs.delete(msg.jobId);
          const cancelled = running.get(msg.jobId)?.size ?? 0;
          running.delete(msg.jobId);
          return { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.cancel.reply', cancelled };
        }
        let controller = jobs.get(msg.jobId);
        if (controller === undefined) {
          controller = new AbortController();
          jobs.set(msg.jobId, controller);
        }
        let ids = running.get(msg.jobId);
        if (ids === undefined) {
          ids = new Set();
          running.set(msg.jobId, ids);
        }
        for (const unit of msg.units) ids.add(trajectoryId(unit.questionId, unit.sample));
        run(msg as RolloutStart, controller).catch((err: unknown) => {
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
        for (const controller of jobs.values()) controller.abort();
        jobs.clear();
      },
    };
  };
}

export const rolloutActor = createRolloutActor();
