/**
 * What the job manager needs to run a `train` job through a TrainerActor (actors/trainer): the trainer's
 * name and spawn spec, the files the job writes, and how a `trainer.status` reply maps onto the job record.
 */
import { join } from 'node:path';
import { checkpointDirOf, outputDirOf, type TrainConfig } from '../../config/train.ts';
import type { SpawnSpec } from '../../runtime/actor.ts';
import type { TrainerArgs, TrainerStatus } from '../trainer/protocol.ts';
import type { JobResult, TrainJobConfig } from './protocol.ts';

export const trainerName = (jobId: string): string => `trainer/${jobId}`;

/** The trainer runs beside the job manager on the head, restarted in place if it crashes (it then
 * continues from its last checkpoint). */
export function trainerSpec(
  jobId: string,
  config: TrainJobConfig,
  resume: boolean,
  tools: TrainerArgs['tools'],
  engine?: TrainerArgs['engine'],
): SpawnSpec<TrainerArgs> {
  return {
    kind: 'trainer',
    name: trainerName(jobId),
    args: {
      jobId,
      config: config.train,
      resume,
      ...(tools === undefined ? {} : { tools }),
      ...(engine === undefined ? {} : { engine }),
    },
    placement: { kind: 'local' },
    supervision: { strategy: 'restart' },
  };
}

/** Known from the config before the first step: metrics grow in place while the job runs. */
export function trainPaths(config: TrainConfig): Record<string, string> {
  const outputDir = outputDirOf(config);
  return {
    metrics: join(outputDir, 'metrics.jsonl'),
    checkpoints: checkpointDirOf(config),
  };
}

export function trainResult(config: TrainConfig, status: TrainerStatus): JobResult {
  return {
    paths: trainPaths(config),
    summary: {
      step: status.step,
      steps: status.steps,
      version: status.version,
      validationF1: status.validation,
    },
    tools: status.tools,
  };
}

/** One job log line per finished step. */
export function stepLine(status: TrainerStatus): string {
  const last = status.lastStep;
  if (last === null) return `step ${status.step}/${status.steps}`;
  const r = last.rollout;
  return (
    `step ${status.step}/${status.steps} version ${status.version}: reward ${r.rewardMean.toFixed(3)}` +
    ` (std ${r.rewardStd.toFixed(3)}), F1 ${r.f1Mean.toFixed(3)}, format errors ${r.formatErrorRate.toFixed(3)},` +
    (last.learner === undefined
      ? ', no update (every group scored alike)'
      : ` KL ${last.learner.kl.toExponential(2)}, ${last.tokensPerSecond.toFixed(0)} tokens/s`)
  );
}
