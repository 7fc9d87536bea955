/**
 * Messages the job manager (`jobs`, on the head) accepts (protocol version 1), the job configurations it
 * validates, and the job record it keeps. Users reach it through the `dr submit|jobs|logs|cancel` commands;
 * RolloutActors tell it `rollout.done` / `rollout.failed` (actors/rollout/protocol.ts). A train job runs in a
 * TrainerActor (actors/trainer/protocol.ts) that the manager spawns and polls.
 */
import { z } from 'zod';
import { DrError, isDrError } from '../../config/errors.ts';
import { parseTrainConfig, type TrainConfig } from '../../config/train.ts';
import { policyConfigSchema, type BudgetTake } from '../rollout/protocol.ts';
import type { ToolCounts } from '../rollout/trajectory.ts';

export const JOBS_PROTOCOL_VERSION = 1;
export const JOB_MANAGER_NAME = 'jobs';

export type JobKind = 'research' | 'evaluate' | 'train';
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

/** A job's policy: an endpoint or served policy spelled out, or the name of one of the cluster file's
 * `policies` (resolved when the job's work is sent). Absent: the cluster's only policy. */
const jobPolicySchema = z.union([policyConfigSchema, z.strictObject({ name: z.string().min(1) })]);
export type JobPolicy = z.infer<typeof jobPolicySchema>;

const rolloutFields = {
  policy: jobPolicySchema.optional(),
  maxTurns: z.number().int().min(1).max(100).default(10),
  maxTokensPerTurn: z.number().int().min(1).max(131_072).default(2048),
  temperature: z.number().min(0).max(5).default(1),
  topP: z.number().gt(0).max(1).default(1),
  /** Results per web_search query; default: the cluster's search.topK (DeepResearcher: 10). */
  searchTopK: z.number().int().min(1).max(50).optional(),
  /** A job whose tool calls fail more often than this ends `failed` with JOB_TOOL_ERRORS. */
  maxToolErrorRate: z.number().min(0).max(1).default(0.5),
  schedule: z.enum(['async', 'barrier']).default('async'),
  /** ISO date the system prompt states; default: when the job starts. */
  date: z.iso.datetime().optional(),
  /** Most web_search / browse_webpage calls the whole job may make; past them, calls are refused and the
   * trajectories answer from what they have. */
  budget: z
    .object({
      searchCalls: z.number().int().min(0).optional(),
      browseCalls: z.number().int().min(0).optional(),
    })
    .optional(),
  /** Record every web call and its response into `record/web.jsonl` (a folder on the head), or answer them
   * from such a recording (`replay`); a call it lacks fails with WEB_REPLAY_MISS or, `onMiss: live`, goes
   * to the live tools. */
  web: z
    .object({
      record: z.string().min(1).optional(),
      replay: z.string().min(1).optional(),
      onMiss: z.enum(['error', 'live']).default('error'),
    })
    .refine((w) => (w.record === undefined) !== (w.replay === undefined), {
      message: 'web: give one of record or replay (a folder on the head)',
    })
    .optional(),
};

const judgeSchema = z.object({
  baseURL: z.url(),
  model: z.string().min(1),
  apiKeyEnv: z.string().min(1).optional(),
});

export const researchConfigSchema = z.object({
  question: z.string().trim().min(1, 'a research job needs a question'),
  groundTruth: z.string().optional(),
  n: z.number().int().min(1).max(1024).default(1),
  ...rolloutFields,
});

export const evaluateConfigSchema = z.object({
  /** A .parquet/.jsonl path (on the head) or sandbox:<split>[:seed[:size]]. */
  data: z.string().min(1),
  limit: z.number().int().min(1).optional(),
  n: z.number().int().min(1).max(1024).default(1),
  project: z
    .string()
    .regex(/^[\w.-]+$/, 'project: letters, digits, . _ -')
    .default('deepresearcher'),
  experiment: z
    .string()
    .regex(/^[\w.-]+$/, 'experiment: letters, digits, . _ -')
    .default('eval'),
  step: z.number().int().min(0).default(0),
  judge: judgeSchema.optional(),
  ...rolloutFields,
});

export const trainJobConfigSchema = z.strictObject({
  /** The training config (config/train.ts; a `preset` is applied at submit). */
  train: z.unknown(),
  /** Continue from the last checkpoint in the config's checkpoint folder. */
  resume: z.boolean().default(false),
});

export interface TrainJobConfig {
  train: TrainConfig;
  resume: boolean;
}

export type ResearchConfig = z.infer<typeof researchConfigSchema>;
export type EvaluateConfig = z.infer<typeof evaluateConfigSchema>;
export type JobConfig = ResearchConfig | EvaluateConfig | TrainJobConfig;

/** A train job's config as submitted, validated with config/train.ts (presets applied, defaults filled). */
export function parseTrainJobConfig(raw: unknown): TrainJobConfig {
  const shape = trainJobConfigSchema.safeParse(raw);
  if (!shape.success) {
    throw new DrError(
      'JOBS_BAD_CONFIG',
      `invalid train job config: ${shape.error.issues[0]?.message ?? 'malformed'}; send {train: <training config>, resume?: boolean}`,
    );
  }
  try {
    return { train: parseTrainConfig(shape.data.train, 'train job config'), resume: shape.data.resume };
  } catch (err) {
    if (!isDrError(err)) throw err;
    throw new DrError('JOBS_BAD_CONFIG', err.message, { cause: err, details: { cause: err.code } });
  }
}

export const configSchemas = {
  research: researchConfigSchema,
  evaluate: evaluateConfigSchema,
} as const;

/** What a budgeted job spent, per tool with a limit; `exhausted` names the spent ones. */
export interface BudgetUse {
  searchCalls?: { limit: number; used: number };
  browseCalls?: { limit: number; used: number };
  exhausted: Array<'searchCalls' | 'browseCalls'>;
  /** Tool calls refused at the budget. */
  refused: number;
}

export interface JobResult {
  /** Files the job wrote (absolute paths on the head). */
  paths: Record<string, string>;
  /** Tool calls and failures over the whole job. */
  tools?: ToolCounts;
  /** The job's tool budget and what it used (a job submitted with one). */
  budget?: BudgetUse;
  /** A job that recorded its web (the folder), or replayed one (the folder, and calls it did not hold). */
  web?: { recorded: string } | { replayed: string; misses: number };
  /** Why the job stopped making tool calls before its trajectories were done, when it did. */
  stopped?: { code: 'JOB_BUDGET_EXHAUSTED'; message: string };
  /** Small summary: the answers of a research job, the score table of an evaluation. */
  summary?: unknown;
}

export interface JobRecord {
  id: string;
  kind: JobKind;
  config: JobConfig;
  state: JobState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  progress: { done: number; total: number };
  /** Counted as trajectories finish (a train job: its trainer's rollouts); absent in older journals. */
  tools?: ToolCounts;
  result?: JobResult;
  error?: { code: string; message: string };
}

export type JobsMessage =
  | { v: 1; type: 'jobs.submit'; kind: JobKind; config: unknown }
  | { v: 1; type: 'jobs.list' }
  | { v: 1; type: 'jobs.get'; jobId: string }
  | { v: 1; type: 'jobs.logs'; jobId: string; after?: number }
  | { v: 1; type: 'jobs.cancel'; jobId: string }
  /** A rollout actor asks before each tool call of a budgeted job (actors/rollout/protocol.ts). */
  | BudgetTake;

export interface JobReply {
  v: 1;
  type: 'jobs.job';
  job: JobRecord;
}

export interface JobListReply {
  v: 1;
  type: 'jobs.list.reply';
  jobs: JobRecord[];
}

/** A request the job manager turns down (bad config, unknown job, tools missing): a reply, not a throw,
 * since a throw would restart the manager, and a few bad submits in a row would escalate it to failed. */
export interface JobsRefusedReply {
  v: 1;
  type: 'jobs.refused';
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export interface JobLogsReply {
  v: 1;
  type: 'jobs.logs.reply';
  /** Log lines after line number `after` (0-based count already seen). */
  lines: string[];
  next: number;
}

export const jobsMessageSchema = z.discriminatedUnion('type', [
  z.object({
    v: z.literal(JOBS_PROTOCOL_VERSION),
    type: z.literal('jobs.submit'),
    kind: z.enum(['research', 'evaluate', 'train']),
    config: z.unknown(),
  }),
  z.object({ v: z.literal(JOBS_PROTOCOL_VERSION), type: z.literal('jobs.list') }),
  z.object({
    v: z.literal(JOBS_PROTOCOL_VERSION),
    type: z.literal('jobs.budget.take'),
    jobId: z.string().min(1),
    tool: z.enum(['search', 'browse']),
  }),
  z.object({ v: z.literal(JOBS_PROTOCOL_VERSION), type: z.literal('jobs.get'), jobId: z.string().min(1) }),
  z.object({
    v: z.literal(JOBS_PROTOCOL_VERSION),
    type: z.literal('jobs.logs'),
    jobId: z.string().min(1),
    after: z.number().int().min(0).optional(),
  }),
  z.object({ v: z.literal(JOBS_PROTOCOL_VERSION), type: z.literal('jobs.cancel'), jobId: z.string().min(1) }),
]);
