/**
 * The training loop of a `train` job: sample questions → n rollouts each → rewards → GRPO advantages →
 * learner step → publish weights → metrics → periodic checkpoint and dev-split validation.
 *
 * sync (on-policy, as in the paper): a batch is sampled only after the previous step's weights are
 * published, so every trajectory has staleness 0. async (bounded staleness): the next batch is sampled while
 * the learner trains on the current one; trajectories more than `maxStaleness` versions behind the weights
 * being updated are dropped. A resumed run restores weights, optimizer, step, RNG and data cursor, so in sync
 * mode its next loss equals the uninterrupted run's.
 */
import { join } from 'node:path';
import { exportDirOf, type TrainConfig } from '../../config/train.ts';
import { DrError } from '../../config/errors.ts';
import {
  informativeGroups,
  prepareSamples,
  type PreparedSample,
  type TrainSample,
} from '../learner/batching.ts';
import type { LearnerMode, StepMetrics } from '../learner/learner.ts';
import type { ExportReply } from '../learner/protocol.ts';
import type { HfExportReply } from '../params/protocol.ts';
import { rolloutStats, type EventSink, type RolloutStats } from './metrics.ts';
import { QuestionSampler, Rng, type RngState, type SamplerCursor } from './rng.ts';
import type { RolloutPurpose } from './rollout-files.ts';
import type { Question, RolloutSource, ScoredRollout } from './rollout-source.ts';

/** The learner group as the trainer uses it (LearnerGroup implements it). */
export interface LearnerHandle {
  step(
    samples: readonly PreparedSample[],
    mode: LearnerMode,
    tag: string,
  ): Promise<{ metrics: StepMetrics[]; version: number }>;
  publish(): Promise<number>;
  exportState(): Promise<ExportReply>;
  load(version: number, optimizer: ExportReply['optimizer']): Promise<void>;
}

/** The parameter server as the trainer uses it (ParamsClient implements it). */
export interface ParamsHandle {
  checkpoint(step: number, optimizer: ExportReply['optimizer'], trainer: unknown): Promise<string>;
  export(dir: string, options: { dtype?: 'F32' | 'BF16' | 'F16' }): Promise<HfExportReply>;
  restore(): Promise<{
    path: string;
    step: number;
    version: number;
    optimizer: ExportReply['optimizer'];
    trainer: unknown;
  } | null>;
}

export interface TrainerDeps {
  job: string;
  source: RolloutSource;
  learners: LearnerHandle;
  params: ParamsHandle;
  trainSet: readonly Question[];
  devSet: readonly Question[];
  emit: EventSink;
  /** Keeps each batch's trajectories (rollout-files.ts); returns the file's path for the step's event. */
  rolloutFiles?: {
    write(purpose: RolloutPurpose, step: number, rollouts: readonly ScoredRollout[]): Promise<string>;
  };
  signal?: AbortSignal;
}

/** What a checkpoint stores for the trainer. */
export interface TrainerState {
  step: number;
  cursor: SamplerCursor;
  rng: RngState;
}

export interface TrainSummary {
  steps: number;
  version: number;
  validation: { before: number; after: number };
  history: { step: number; loss: number; rewardMean: number }[];
}

export async function runTraining(
  config: TrainConfig,
  deps: TrainerDeps,
  options: { resume?: boolean } = {},
): Promise<TrainSummary> {
  const { schedule, rollout } = config;
  if (schedule.mode === 'async' && schedule.maxStaleness < 1) {
    throw new DrError(
      'TRAIN_BAD_CONFIG',
      'schedule.mode "async" needs schedule.maxStaleness >= 1; use "sync" for on-policy training',
    );
  }
  if (deps.trainSet.length === 0)
    throw new DrError('TRAIN_NO_DATA', `the training set ${config.data.train} has no questions`);

  let state: TrainerState = { step: 0, cursor: { epoch: 0, index: 0 }, rng: new Rng(config.seed).state() };
  let version: number;
  const restored = options.resume === true ? await deps.params.restore() : null;
  if (restored !== null) {
    await deps.learners.load(restored.version, restored.optimizer);
    state = restored.trainer as TrainerState;
    version = restored.version;
    await deps.emit({ type: 'resumed', job: deps.job, step: state.step, version, path: restored.path });
  } else {
    version = await deps.learners.publish();
  }
  const rng = new Rng(state.rng);
  const sampler = new QuestionSampler(deps.trainSet, config.seed, state.cursor);
  const history: TrainSummary['history'] = [];

  const validate = async (step: number): Promise<number> => {
    const dev = deps.devSet.slice(0, config.validation.limit);
    if (dev.length === 0) return NaN;
    const rs = await deps.source.run(dev, 1, { seed: config.seed, purpose: 'validate' });
    const stats = rolloutStats(rs);
    const rolloutFile = await deps.rolloutFiles?.write('validate', step, rs);
    await deps.emit({
      type: 'validation',
      job: deps.job,
      step,
      version,
      stats,
      ...(rolloutFile === undefined ? {} : { rolloutFile }),
    });
    return stats.f1Mean;
  };

  const before = await validate(state.step);
  let last = before;
  const sampleBatch = (): Promise<{ rollouts: ScoredRollout[]; seconds: number }> => {
    const questions = sampler.take(rollout.questionsPerStep);
    const seed = Math.floor(rng.next() * 2 ** 31);
    const t0 = performance.now();
    return deps.source.run(questions, rollout.n, { seed, purpose: 'train' }).then((rollouts) => ({
      rollouts,
      seconds: (performance.now() - t0) / 1000,
    }));
  };

  let pending: Promise<{ rollouts: ScoredRollout[]; seconds: number }> | null = null;
  for (let step = state.step; step < config.steps; step++) {
    throwIfCancelled(deps.signal);
    const t0 = performance.now();
    const batch = await (pending ?? sampleBatch());
    pending = null;
    // The cursor and RNG before the next batch is drawn: a resume re-draws a batch that was in flight.
    const resumePoint: TrainerState = { step: step + 1, cursor: sampler.position(), rng: rng.state() };
    if (schedule.mode === 'async' && step + 1 < config.steps) {
      pending = sampleBatch();
      pending.catch(() => undefined); // surfaced when awaited
    }

    const bound = schedule.mode === 'sync' ? 0 : schedule.maxStaleness;
    const fresh = batch.rollouts.filter((r) => version - r.weightVersion <= bound);
    const staleness = fresh.map((r) => version - r.weightVersion);
    const samples: TrainSample[] = fresh.map((r) => ({
      group: r.questionId,
      tokenIds: r.tokenIds,
      lossMask: r.lossMask,
      reward: r.reward,
      version: r.weightVersion,
    }));
    const trained = config.algorithm.dropUniformGroups ? informativeGroups(samples) : samples;
    const prepared = prepareSamples(trained, {
      epsilon: config.algorithm.advantageEpsilon,
      normalizeByStd: config.algorithm.normalizeByStd,
    });
    const result =
      prepared.length === 0 ? null : await deps.learners.step(prepared, config.mode, `${deps.job}:${step}`);
    if (result !== null) version = result.version;
    const m0 = result?.metrics[0];
    const seconds = (performance.now() - t0) / 1000;
    const stats: RolloutStats = rolloutStats(batch.rollouts);
    const tokens = result?.metrics.reduce((s, m) => s + m.localTokens, 0) ?? 0;
    const rolloutFile = await deps.rolloutFiles?.write('train', step + 1, batch.rollouts);
    await deps.emit({
      type: 'step',
      job: deps.job,
      step: step + 1,
      version,
      rollout: stats,
      ...(m0 === undefined ? {} : { learner: withoutIds(m0) }),
      trainedRollouts: trained.length,
      tokensPerSecond: m0 === undefined ? 0 : tokens / Math.max(1e-9, m0.seconds),
      stalenessMean: staleness.length > 0 ? staleness.reduce((a, b) => a + b, 0) / staleness.length : 0,
      stalenessMax: staleness.length > 0 ? Math.max(...staleness) : 0,
      dropped: batch.rollouts.length - fresh.length,
      rolloutSeconds: batch.seconds,
      stepSeconds: seconds,
      ...(rolloutFile === undefined ? {} : { rolloutFile }),
    });
    history.push({ step: step + 1, loss: m0?.loss ?? 0, rewardMean: stats.rewardMean });

    // A stopped trainer must not checkpoint over what its restarted incarnation resumes from.
    throwIfCancelled(deps.signal);
    const done = step + 1 === config.steps;
    if ((step + 1) % config.checkpoint.every === 0 || done) {
      const opt = await deps.learners.exportState();
      const path = await deps.params.checkpoint(step + 1, opt.optimizer, resumePoint);
      await deps.emit({ type: 'checkpoint', job: deps.job, step: step + 1, path });
    }
    const exportEvery = config.export.everySteps;
    if (exportEvery !== null && ((step + 1) % exportEvery === 0 || done)) {
      const dir = join(exportDirOf(config), `step_${step + 1}`);
      const e = await deps.params.export(dir, { dtype: config.export.dtype });
      await deps.emit({ type: 'export', job: deps.job, step: step + 1, version: e.version, path: e.dir });
    }
    if ((step + 1) % config.validation.every === 0 || done) last = await validate(step + 1);
  }
  await deps.emit({
    type: 'done',
    job: deps.job,
    steps: config.steps,
    version,
    validation: { before, after: last },
  });
  return { steps: config.steps, version, validation: { before, after: last }, history };
}

function withoutIds({ mode: _mode, step: _step, ...rest }: StepMetrics): Omit<StepMetrics, 'mode' | 'step'> {
  return rest;
}

function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new DrError('TRAIN_CANCELLED', 'the training job was cancelled');
}
