/**
 * RolloutSource over the cluster: a batch's work units (question × sample) are spread across the job's
 * RolloutActors with `rollout.start`; each finished trajectory comes back to the trainer actor as a
 * `rollout.done` tell and is handed to `deliver`. Trajectories are scored by the rollout actors (the
 * DeepResearcher F1 reward); each carries the oldest weight version that sampled a turn of it, as the engine
 * reported it (the batch's synced version where the engine reports none).
 *
 * A worker that is gone mid-batch (its node died, or it was stopped) does not lose the batch: its outstanding
 * units are sent again, to another worker of the job or to its own re-spawned incarnation, and a trajectory
 * that arrives twice (from a worker that was only slow) counts once.
 */
import { randomBytes } from 'node:crypto';
import { DrError, isDrError } from '../../config/errors.ts';
import type { Logger } from '../../config/log.ts';
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
  /** A batch that has not finished after this long fails. */
  batchTimeoutMs?: number;
  /** How often a waiting batch checks that its workers are still there (a lost worker's units are re-sent). */
  workerCheckMs?: number;
  /** Re-sends of lost units a batch may make before it fails with TRAIN_ROLLOUT_WORKER_LOST (default 8). */
  maxResends?: number;
  /** Aborting fails the batches in flight (the trainer is stopping). */
  signal?: AbortSignal;
  /** Where re-sends of a lost worker's units are reported. */
  log?: Logger;
}

interface Batch {
  expected: number;
  done: Trajectory[];
  /** `questionId#sample` of every trajectory counted, so a re-sent unit's second arrival is ignored. */
  seen: Set<string>;
  /** The units each worker was last given. */
  assigned: Map<string, WorkUnit[]>;
  /** This batch's ids on the workers: the first, then one per re-send. */
  ids: string[];
  resolve: () => void;
  reject: (e: Error) => void;
}

const unitKey = (questionId: string, sample: number): string => `${questionId}#${sample}`;

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
    const key = unitKey(msg.trajectory.questionId, msg.trajectory.sample);
    if (b.seen.has(key)) return;
    b.seen.add(key);
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
      weightVersion: version,
    };
    const batch: Batch = {
      expected: units.length,
      done: [],
      seen: new Set(),
      assigned: new Map(),
      ids: [jobId],
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
        for (const id of batch.ids) {
          this.ask(worker, { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.cancel', jobId: id }).catch(
            () => undefined,
          );
        }
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
    const resending = new Set<string>();
    const check = setInterval(() => {
      for (const worker of this.options.workers) {
        if (resending.has(worker)) continue;
        this.ask(
          worker,
          { v: ROLLOUT_PROTOCOL_VERSION, type: 'rollout.status', jobId },
          { timeoutMs: checkMs },
        ).catch((err: unknown) => {
          // A busy worker may be slow to answer; only one that is gone has lost its units.
          if (!isGone(err) || resending.has(worker)) return;
          resending.add(worker);
          this.resend(batch, worker, (err as DrError).code, settings)
            .catch((e: unknown) => batch.reject(e as Error))
            .finally(() => resending.delete(worker));
        });
      }
    }, checkMs);
    try {
      const workers = this.options.workers;
      await Promise.all(
        workers.map((worker, w) => {
          const share = units.filter((_, i) => i % workers.length === w);
          if (share.length === 0) return Promise.resolve();
          batch.assigned.set(worker, share);
          return this.start(worker, jobId, share, settings);
        }),
      );
      if (units.length > 0) await finished;
    } finally {
      clearTimeout(timer);
      clearInterval(check);
      this.options.signal?.removeEventListener('abort', onAbort);
      for (const id of batch.ids) this.batches.delete(id);
    }
    return batch.done.map(toScored);
  }

  private start(worker: string, id: string, units: WorkUnit[], settings: RolloutSettingsWire) {
    return this.ask<RolloutStartReply>(worker, {
      v: ROLLOUT_PROTOCOL_VERSION,
      type: 'rollout.start',
      jobId: id,
      units,
      settings,
      policy: this.options.policy,
      schedule: 'async',
      replyTo: this.options.replyTo,
    });
  }

  /**
   * Sends the units `lost` still owed to the first worker that takes them: the job's other workers in turn,
   * then `lost` itself (supervision may have re-spawned it on a surviving node). Each re-send has its own
   * batch id, so the worker that takes the units starts them whatever it already runs of this batch.
   */
  private async resend(
    batch: Batch,
    lost: string,
    why: string,
    settings: RolloutSettingsWire,
  ): Promise<void> {
    const owed = (batch.assigned.get(lost) ?? []).filter(
      (u) => !batch.seen.has(unitKey(u.questionId, u.sample)),
    );
    if (owed.length === 0) return;
    const limit = this.options.maxResends ?? 8;
    const workers = this.options.workers;
    const from = workers.indexOf(lost);
    const candidates = [...workers.slice(from + 1), ...workers.slice(0, from), lost];
    for (const worker of candidates) {
      if (batch.ids.length > limit) break;
      const id = `${batch.ids[0]!}~${batch.ids.length}`;
      batch.ids.push(id);
      this.batches.set(id, batch);
      try {
        await this.start(worker, id, owed, settings);
      } catch (err) {
        if (isGone(err)) continue;
        throw err;
      }
      batch.assigned.set(lost, []);
      batch.assigned.set(worker, [...(batch.assigned.get(worker) ?? []), ...owed]);
      this.options.log?.warn(
        { lost, why, to: worker, units: owed.length },
        'rollout worker gone: units re-sent',
      );
      return;
    }
    throw new DrError(
      'TRAIN_ROLLOUT_WORKER_LOST',
      `rollout worker ${lost} is gone (${why}) with ${owed.length} trajectories of batch ${batch.ids[0]!}, and no ` +
        'worker of the job took them; the job stops here: resubmit it with --resume once the nodes are back',
    );
  }
}

function isGone(err: unknown): boolean {
  return isDrError(err, ActorErrorCode.NOT_FOUND) || isDrError(err, ActorErrorCode.NODE_DOWN);
}

function toScored(t: Trajectory): ScoredRollout {
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
    sample: t.sample,
    messageStr: t.renderedText,
    ...(t.answer === undefined ? {} : { answer: t.answer }),
    tokenIds: t.tokenIds,
    lossMask: t.lossMask,
    reward,
    formatError: t.end.reason === 'malformed' || reward === -1,
    turns: t.turns.length,
    responseTokens: t.lossMask.reduce((a, b) => a + b, 0),
    toolCalls,
    toolErrors: t.toolStats.failures,
    toolMs: t.toolStats.toolMs,
    weightVersion: t.weightVersion,
  };
}
