/**
 * RolloutSource over the cluster: a batch's work units (question × sample) are spread across the job's
 * RolloutActors with `rollout.start`; each finished trajectory comes back to the trainer actor as a
 * `rollout.done` tell and is handed to `deliver`. Trajectories are scored by the rollout actors (the
 * DeepResearcher F1 reward); the weight version stamped on each is the one the policy server served for the
 * whole batch.
 */
import { randomBytes } from 'node:crypto';
import { DrError, isDrError } from '../../config/errors.ts';
import { ActorErrorCode } from '../../runtime/actor.ts';
import {
  ROLLOUT_PROTOCOL_VERSION,
  type PolicyConfig,
  type RolloutDone,
  type RolloutFailed,
  type RolloutSettingsWire,
  type RolloutStartReply,
  type WorkUnit,
} from '../rollout/protocol.ts';
import type { Trajectory } from '../rollout/trajectory.ts';
import type { AskFn } from '../params/weight-transfer.ts';
import type { Question, RolloutRequest, RolloutSource, ScoredRollout } from './rollout-source.ts';

export interface ActorRolloutSourceOptions {
  jobId: string;
  /** RolloutActor names sharing the work. */
  workers: readonly string[];
  /** The trainer actor's name (receives rollout.done). */
  replyTo: string;
  policy: PolicyConfig;
  settings: Omit<RolloutSettingsWire, 'temperature'> & { temperature: number };
  /** Called before a batch starts; returns the weight version the batch is sampled with. */
  beforeBatch: () => Promise<number>;
  /** A batch that has not finished after this long fails (a lost worker's units are not re-run here). */
  batchTimeoutMs?: number;
  /** How often a waiting batch checks that its workers are still there (a lost worker fails the batch). */
  workerCheckMs?: number;
  /** Aborting fails the batches in flight (the trainer is stopping). */
  signal?: AbortSignal;
}

interface Batch {
  expected: number;
  done: Trajectory[];
  resolve: () => void;
  reject: (e: Error) => void;
}

export class ActorRolloutSource implements RolloutSource {
  private readonly batches = new Map<string, Batch>();
  private seq = 0;
  /** In batch ids: a restarted trainer counts from 0 again, and a late trajectory of its predecessor's batch
   * must not be taken for one of its own. */
  private readonly incarnation = randomBytes(4).toString('hex');

  constructor(
    private readonly ask: AskFn,
    private readonly options: ActorRolloutSourceOptions,
  ) {}

  private stopped(): boolean {
    return this.options.signal?.aborted === true;
  }

  /** Routes a rollout.done / rollout.failed the trainer actor received. */
  deliver(msg: RolloutDone | RolloutFailed): void {
    const b = this.batches.get(msg.jobId);
    if (b === undefined) return; // a late trajectory of a batch that already timed out
    if (msg.type === 'rollout.failed') {
      b.reject(
        new DrError(msg.error.code, `rollout worker ${msg.worker} failed a batch: ${msg.error.message}`),
      );
      return;
    }
    b.done.push(msg.trajectory);
    if (b.done.length >= b.expected) b.resolve();
  }

  async run(questions: readonly Question[], n: number, request: RolloutRequest): Promise<ScoredRollout[]> {
    if (this.stopped())
      throw new DrError('TRAIN_CANCELLED', 'the training job stopped before a rollout batch');
    const version = await this.options.beforeBatch();
    const jobId = `${this.options.jobId}:${this.incarnation}:${request.purpose}:${this.seq++}`;
    const units: WorkUnit[] = questions.flatMap((q) =>
      Array.from({ length: n }, (_, sample) => ({
        questionId: q.id,
        question: q.question,
        groundTruth: q.groundTruth,
        ...(q.dataSource === undefined ? {} : { dataSource: q.dataSource }),
        sample,
      })),
    );
    const settings: RolloutSettingsWire = {
      ...this.options.settings,
      temperature: request.purpose === 'validate' ? 0 : this.options.settings.temperature,
    };
    const batch: Batch = {
      expected: units.length,
      done: [],
      resolve: () => undefined,
      reject: () => undefined,
    };
    const finished = new Promise<void>((resolve, reject) => {
      batch.resolve = resolve;
      batch.reject = reject;
    });
    // A cancel or timeout can reject this while the start asks are still in flight, before anything awaits
    // it; the await below still sees the rejection.
    finished.catch(() => undefined);
    this.batches.set(jobId, batch);
    const onAbort = (): void => {
      batch.reject(new DrError('TRAIN_CANCELLED', 'the training job stopped during a rollout batch'));
      // Frees the workers for whatever runs next (e.g. the restarted trainer's own batches).
      for (const worker of this.options.workers) {
        this.ask(worker, { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.cancel', jobId }).catch(
          () => undefined,
        );
      }
    };
    this.options.signal?.addEventListener('abort', onAbort, { once: true });
    if (this.stopped()) onAbort();
    const timer = setTimeout(
      () =>
        batch.reject(
          new DrError(
            'TRAIN_ROLLOUT_TIMEOUT',
            `rollout batch ${jobId} did not finish in time; check the rollout workers and tools`,
          ),
        ),
      this.options.batchTimeoutMs ?? 3_600_000,
    );
    const checkMs = this.options.workerCheckMs ?? 10_000;
    const check = setInterval(() => {
      for (const worker of this.options.workers) {
        this.ask(
          worker,
          { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.status', jobId },
          { timeoutMs: checkMs },
        ).catch((err: unknown) => {
          // A busy worker may be slow to answer; only one that is gone loses the batch's trajectories.
          if (!isDrError(err, ActorErrorCode.NOT_FOUND) && !isDrError(err, ActorErrorCode.NODE_DOWN)) return;
          batch.reject(
            new DrError(
              'TRAIN_ROLLOUT_WORKER_LOST',
              `rollout worker ${worker} is gone (${(err as DrError).code}) with trajectories of batch ${jobId}; ` +
                'the job stops here instead of waiting for them: resubmit it with --resume once the node is back',
            ),
          );
        });
      }
    }, checkMs);
    try {
      const workers = this.options.workers;
      await Promise.all(
        workers.map((worker, w) => {
          const share = units.filter((_, i) => i % workers.length === w);
          if (share.length === 0) return Promise.resolve();
          return this.ask<RolloutStartReply>(worker, {
            v: ROLLOUT_PROTOCOL_VERSION,
            type: 'rollout.start',
            jobId,
            units: share,
            settings,
            policy: this.options.policy,
            schedule: 'async',
            replyTo: this.options.replyTo,
          });
        }),
      );
      if (units.length > 0) await finished;
    } finally {
      clearTimeout(timer);
      clearInterval(check);
      this.options.signal?.removeEventListener('abort', onAbort);
      this.batches.delete(jobId);
    }
    return batch.done.map((t) => toScored(t, version));
  }
}

function toScored(t: Trajectory, version: number): ScoredRollout {
  if (t.tokenIds === undefined || t.lossMask === undefined) {
    throw new DrError(
      'TRAIN_NO_TOKENS',
      `trajectory ${t.id} has no token ids; training needs a token-level policy (completions or the embedded policy)`,
    );
  }
  const reward = t.scores?.f1 ?? -1;
  const toolCalls = t.toolStats.searchCalls + t.toolStats.browseCalls;
  return {
    questionId: t.questionId,
    tokenIds: t.tokenIds,
    lossMask: t.lossMask,
    reward,
    formatError: t.end.reason === 'malformed' || reward === -1,
    turns: t.turns.length,
    responseTokens: t.lossMask.reduce((a, b) => a + b, 0),
    toolCalls,
    toolMs: t.toolStats.toolMs,
    weightVersion: version,
  };
}
