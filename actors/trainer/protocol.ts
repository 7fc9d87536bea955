/**
 * Messages of the TrainerActor (protocol version 1): the job manager (or `npm start`) spawns one per train
 * job with TrainerArgs; it trains in the background and answers `trainer.status` and `trainer.cancel`.
 * RolloutActors tell it `rollout.done` / `rollout.failed` (actors/rollout/protocol.ts).
 */
import type { ToolCounts } from '../rollout/trajectory.ts';
import type { EngineSpec } from '../services/services.ts';
import type { TrainEvent } from './metrics.ts';

export const TRAINER_PROTOCOL = 1 as const;

export interface TrainerArgs {
  jobId: string;
  /** Shard counts of the cluster's search and browse services (default 1 each). */
  tools?: { searchShards: number; browseShards: number };
  /** The train config as sent (validated with config/train.ts on arrival). */
  config: unknown;
  /** Continue from the last checkpoint in the config's checkpoint folder. */
  resume?: boolean;
  /** The external engine `rollout.engine` names, as the cluster file declares it. */
  engine?: EngineSpec;
}

export type TrainerRequest = { v: 1; type: 'trainer.status' } | { v: 1; type: 'trainer.cancel' };

export type TrainerState = 'starting' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface TrainerStatus {
  jobId: string;
  state: TrainerState;
  step: number;
  steps: number;
  version: number;
  outputDir: string;
  /** Held-out F1 at the first and the latest validation. */
  validation: { before: number | null; latest: number | null };
  lastStep: Extract<TrainEvent, { type: 'step' }> | null;
  /** Tool calls of the rollouts this incarnation ran (training and validation), and how many failed. */
  tools: ToolCounts;
  error: { code: string; message: string } | null;
}
