/**
 * Training metrics: batch statistics of scored rollouts, the structured events the trainer emits (one JSON
 * line each in outputs/<name>/metrics.jsonl), and the gauges the dashboard charts (cluster/monitor panels:
 * dr_train_* and dr_weights_staleness_versions, labelled by job).
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { nodeMetrics } from '../../cluster/monitor/metrics-recorder.ts';
import { TensorBoardWriter } from '../../runtime/monitor/tensorboard-events.ts';
import type { StepMetrics } from '../learner/learner.ts';
import type { ScoredRollout } from './rollout-source.ts';

export interface RolloutStats {
  rollouts: number;
  rewardMean: number;
  rewardStd: number;
  /** F1 with format errors counted as 0. */
  f1Mean: number;
  formatErrorRate: number;
  turnsMean: number;
  responseLengthMean: number;
  toolCallsMean: number;
  /** Tool calls of the batch, and how many failed. */
  toolCalls: number;
  toolErrors: number;
  /** Mean tool time per tool call. */
  toolLatencyMs: number;
}

export function rolloutStats(rs: readonly ScoredRollout[]): RolloutStats {
  const n = Math.max(1, rs.length);
  const mean = (f: (r: ScoredRollout) => number): number => rs.reduce((s, r) => s + f(r), 0) / n;
  const rewardMean = mean((r) => r.reward);
  const calls = rs.reduce((s, r) => s + r.toolCalls, 0);
  return {
    rollouts: rs.length,
    rewardMean,
    rewardStd: Math.sqrt(mean((r) => (r.reward - rewardMean) ** 2)),
    f1Mean: mean((r) => (r.formatError ? 0 : Math.max(0, r.reward))),
    formatErrorRate: mean((r) => (r.formatError ? 1 : 0)),
    turnsMean: mean((r) => r.turns),
    responseLengthMean: mean((r) => r.responseTokens),
    toolCallsMean: mean((r) => r.toolCalls),
    toolCalls: calls,
    toolErrors: rs.reduce((s, r) => s + r.toolErrors, 0),
    toolLatencyMs: calls > 0 ? rs.reduce((s, r) => s + r.toolMs, 0) / calls : 0,
  };
}

export type TrainEvent =
  | {
      type: 'step';
      job: string;
      step: number;
      version: number;
      rollout: RolloutStats;
      /** Absent when the step made no update (every group uniform, with `dropUniformGroups`). */
      learner?: Omit<StepMetrics, 'mode' | 'step'>;
      /** Rollouts the learner trained on (fewer than the batch when uniform groups are dropped). */
      trainedRollouts: number;
      /** Real tokens trained per second over all learners. */
      tokensPerSecond: number;
      stalenessMean: number;
      stalenessMax: number;
      /** Trajectories dropped for exceeding the staleness bound. */
      dropped: number;
      rolloutSeconds: number;
      stepSeconds: number;
      /** The batch's rollout file, relative to the output folder (rollout-files.ts). */
      rolloutFile?: string;
    }
  | {
      type: 'validation';
      job: string;
      step: number;
      version: number;
      stats: RolloutStats;
      rolloutFile?: string;
    }
  | { type: 'checkpoint'; job: string; step: number; path: string }
  /** A Hugging Face folder of the policy (export.everySteps). */
  | { type: 'export'; job: string; step: number; version: number; path: string }
  | { type: 'resumed'; job: string; step: number; version: number; path: string }
  | {
      type: 'done';
      job: string;
      steps: number;
      version: number;
      validation: { before: number; after: number };
    };

export type EventSink = (e: TrainEvent) => void | Promise<void>;

/** Mirrors step and validation events as TensorBoard scalars (`tensorboard --logdir outputs`). */
export function tensorboardSink(logdir: string): EventSink {
  let writer: TensorBoardWriter | null = null;
  return (e) => {
    if (e.type !== 'step' && e.type !== 'validation') return;
    writer ??= new TensorBoardWriter(logdir);
    if (e.type === 'validation') {
      writer.scalars(e.step, { ...batchScalars('val', e.stats), 'weights/version': e.version });
      return;
    }
    const l = e.learner;
    writer.scalars(e.step, {
      ...batchScalars('train', e.rollout),
      ...(l === undefined
        ? {}
        : {
            'learner/loss': l.loss,
            'learner/pg_loss': l.pgLoss,
            'learner/kl': l.kl,
            'learner/entropy': l.entropy,
            'learner/clip_fraction': l.clipFraction,
            'learner/ppo_kl': l.ppoKl,
            'learner/grad_norm': l.gradNorm,
          }),
      'perf/tokens_per_second': e.tokensPerSecond,
      'perf/rollout_seconds': e.rolloutSeconds,
      'perf/step_seconds': e.stepSeconds,
      'weights/version': e.version,
      'weights/staleness_mean': e.stalenessMean,
      'weights/staleness_max': e.stalenessMax,
      'weights/dropped': e.dropped,
    });
  };
}

function batchScalars(prefix: string, s: RolloutStats): Record<string, number> {
  return {
    [`${prefix}/reward_mean`]: s.rewardMean,
    [`${prefix}/reward_std`]: s.rewardStd,
    [`${prefix}/f1_mean`]: s.f1Mean,
    [`${prefix}/format_error_rate`]: s.formatErrorRate,
    [`${prefix}/turns_mean`]: s.turnsMean,
    [`${prefix}/response_length_mean`]: s.responseLengthMean,
    [`${prefix}/tool_calls_mean`]: s.toolCallsMean,
    [`${prefix}/tool_errors`]: s.toolErrors,
    [`${prefix}/tool_latency_ms`]: s.toolLatencyMs,
  };
}

/** Appends every event as a JSON line to `file`. */
export function jsonlSink(file: string): EventSink {
  let ready: Promise<unknown> | null = null;
  return async (e) => {
    ready ??= mkdir(dirname(file), { recursive: true });
    await ready;
    await appendFile(file, JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n');
  };
}

const g = {
  reward: nodeMetrics.gauge('dr_train_reward_mean', 'Mean rollout reward of the last training step'),
  rewardStd: nodeMetrics.gauge('dr_train_reward_std', 'Std of rollout rewards of the last training step'),
  f1: nodeMetrics.gauge('dr_train_f1_mean', 'Mean F1 (format errors as 0) of the last training step'),
  formatErrors: nodeMetrics.gauge('dr_train_format_error_ratio', 'Share of rollouts with a format error'),
  kl: nodeMetrics.gauge('dr_train_kl', 'Token-mean k3 KL to the reference policy'),
  entropy: nodeMetrics.gauge('dr_train_entropy', 'Token-mean policy entropy'),
  clip: nodeMetrics.gauge('dr_train_clip_ratio', 'Share of loss tokens where PPO clipping was active'),
  length: nodeMetrics.gauge('dr_train_response_length_tokens', 'Mean generated tokens per rollout'),
  turns: nodeMetrics.gauge('dr_train_turns_mean', 'Mean turns per rollout'),
  tokensPerSecond: nodeMetrics.gauge(
    'dr_train_tokens_per_second',
    'Train-step tokens per second, all learners',
  ),
  toolLatency: nodeMetrics.gauge('dr_train_tool_latency_seconds', 'Mean tool-call latency in the last step'),
  staleness: nodeMetrics.gauge(
    'dr_weights_staleness_versions',
    'Max weight-version lag of trained trajectories',
  ),
  version: nodeMetrics.gauge('dr_weights_version', 'Latest published policy weight version'),
  step: nodeMetrics.gauge('dr_train_step', 'Training steps completed'),
  validF1: nodeMetrics.gauge('dr_train_validation_f1', 'Held-out (dev) F1 at the last validation'),
};

/** Mirrors events onto the node's metrics, which the head's dashboard and /metrics serve. */
export const gaugeSink: EventSink = (e) => {
  const job = { job: e.job };
  if (e.type === 'step') {
    g.reward.set(job, e.rollout.rewardMean);
    g.rewardStd.set(job, e.rollout.rewardStd);
    g.f1.set(job, e.rollout.f1Mean);
    g.formatErrors.set(job, e.rollout.formatErrorRate);
    if (e.learner !== undefined) {
      g.kl.set(job, e.learner.kl);
      g.entropy.set(job, e.learner.entropy);
      g.clip.set(job, e.learner.clipFraction);
    }
    g.length.set(job, e.rollout.responseLengthMean);
    g.turns.set(job, e.rollout.turnsMean);
    g.tokensPerSecond.set(job, e.tokensPerSecond);
    g.toolLatency.set(job, e.rollout.toolLatencyMs / 1000);
    g.staleness.set(job, e.stalenessMax);
    g.version.set(job, e.version);
    g.step.set(job, e.step);
  } else if (e.type === 'validation') {
    g.validF1.set(job, e.stats.f1Mean);
  }
};
