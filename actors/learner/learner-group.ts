/**
 * The trainer's handle on a data-parallel group of LearnerActors: spawns them (on GPU nodes when the
 * cluster has any), shards each batch across them by tokens, runs one step on all with the same tag, and
 * exports/loads optimizer state for checkpoints. Error replies come back as DrErrors with their codes.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import { ActorErrorCode, type Placement, type SpawnSpec } from '../../runtime/actor.ts';
import type { AskFn } from '../params/weight-transfer.ts';
import { shardByTokens, type PreparedSample } from './batching.ts';
import type { LearnerMode, StepMetrics } from './learner.ts';
import { inboxName, learnerName } from './learner-actor.ts';
import {
  LEARNER_PROTOCOL,
  type ExportReply,
  type LearnerArgs,
  type LearnerErrorReply,
  type PublishReply,
  type StepReply,
} from './protocol.ts';

export interface LearnerGroupOptions extends Omit<LearnerArgs, 'rank' | 'device'> {
  /** Ask timeout of one step (a large batch on CPU takes a while). */
  stepTimeoutMs?: number;
}

export type SpawnFn = (spec: SpawnSpec<LearnerArgs>) => Promise<unknown>;

export class LearnerGroup {
  private constructor(
    private readonly ask: AskFn,
    readonly options: LearnerGroupOptions,
    /** Where each rank runs. */
    readonly devices: ('cpu' | 'cuda')[],
  ) {}

  /** Spawns `size` learners: on GPU nodes (CUDA provider) when placement finds one, otherwise on CPU. */
  static async spawn(spawn: SpawnFn, ask: AskFn, options: LearnerGroupOptions): Promise<LearnerGroup> {
    const devices: ('cpu' | 'cuda')[] = [];
    for (let rank = 0; rank < options.size; rank++) {
      const { stepTimeoutMs: _t, ...base } = options;
      const spec = (device: 'cpu' | 'cuda', placement: Placement): SpawnSpec<LearnerArgs> => ({
        kind: 'learner',
        name: learnerName(options.group, rank),
        args: { ...base, rank, device },
        placement,
        supervision: { strategy: 'restart', maxRestarts: 3, windowMs: 60_000 },
      });
      try {
        await spawn(spec('cuda', { kind: 'resource', resource: 'gpu' }));
        devices.push('cuda');
      } catch (err) {
        if (!isDrError(err, ActorErrorCode.PLACEMENT_UNSATISFIABLE)) throw err;
        await spawn(spec('cpu', { kind: 'spread' }));
        devices.push('cpu');
      }
    }
    return new LearnerGroup(ask, options, devices);
  }

  /** One optimizer step over the whole batch; returns rank 0's metrics and the version it published. */
  async step(
    samples: readonly PreparedSample[],
    mode: LearnerMode,
    tag: string,
  ): Promise<{ metrics: StepMetrics[]; version: number }> {
    const shards = shardByTokens(samples, this.options.size);
    const replies = await Promise.all(
      shards.map((shard, rank) =>
        this.call<StepReply>(
          rank,
          { v: LEARNER_PROTOCOL, type: 'learner.step', tag, mode, samples: shard },
          this.options.stepTimeoutMs ?? 3_600_000,
        ),
      ),
    );
    const version = replies[0]!.version;
    if (version === null)
      throw new DrError('LEARNER_NO_VERSION', 'learner rank 0 did not publish a weight version');
    return { metrics: replies.map((r) => r.metrics), version };
  }

  /** The actors this group consists of (learners, and their all-reduce inboxes when there are several). */
  actorNames(): string[] {
    const { group, size } = this.options;
    return this.devices.flatMap((_, rank) =>
      size > 1 ? [learnerName(group, rank), inboxName(group, rank)] : [learnerName(group, rank)],
    );
  }

  /** Publishes rank 0's current weights (the initial version before any step). */
  async publish(): Promise<number> {
    return (await this.call<PublishReply>(0, { v: LEARNER_PROTOCOL, type: 'learner.publish' })).version;
  }

  exportState(): Promise<ExportReply> {
    return this.call<ExportReply>(0, { v: LEARNER_PROTOCOL, type: 'learner.export' });
  }

  /** Every learner takes weights `version` from the parameter server and the given optimizer state. */
  async load(version: number, optimizer: ExportReply['optimizer']): Promise<void> {
    await Promise.all(
      this.devices.map((_, rank) =>
        this.call(rank, { v: LEARNER_PROTOCOL, type: 'learner.load', version, optimizer }),
      ),
    );
  }

  private async call<R>(rank: number, msg: unknown, timeoutMs = 600_000): Promise<R> {
    const reply = await this.ask<R | LearnerErrorReply>(learnerName(this.options.group, rank), msg, {
      timeoutMs,
    });
    if (typeof reply === 'object' && reply !== null && 'error' in reply)
      throw new DrError(reply.error.code, reply.error.message);
    return reply as R;
  }
}
