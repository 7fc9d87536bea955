/**
 * Messages a RolloutActor accepts and sends (protocol version 1). A job hands an actor a batch of work units
 * (one trajectory each: a question and a sample index) with `rollout.start`; the actor answers at once and
 * runs them in the background, telling `rollout.done` to `replyTo` for every finished trajectory, so the
 * actor stays responsive (one message at a time) while hundreds of trajectories are in flight.
 */
import { z } from 'zod';
import { MAX_TOP_K } from '../search/protocol.ts';
import type { Trajectory } from './trajectory.ts';
import { webTapeSettingsSchema, type WebTapeSettings } from './web-tape.ts';

export const ROLLOUT_PROTOCOL_VERSION = 1;

/** The policy a batch samples from: an OpenAI-compatible endpoint, or a checkpoint the cluster serves. */
export type PolicyConfig = EndpointPolicyConfig | ServedPolicyConfig;

export interface EndpointPolicyConfig {
  /** chat: /v1/chat/completions; completions: /v1/completions over the prompt rendered with the model's chat
   * template (token ids through vLLM's extensions); sglang: SGLang's native /generate (input_ids in,
   * output_ids and logprobs out). */
  kind: 'chat' | 'completions' | 'sglang';
  baseURL: string;
  model: string;
  /** Name of the environment variable holding the API key on the node that runs the rollouts. */
  apiKeyEnv?: string;
  tools?: 'text' | 'native';
  timeoutMs?: number;
  maxRetries?: number;
  /** Version of the weights the endpoint serves (set by the trainer when it publishes), recorded per turn. */
  weightVersion?: number;
  /** completions, sglang: the folder with the served model's tokenizer.json and tokenizer_config.json (its chat
   * template), on the nodes that run rollouts; default the vendored Qwen2.5 tokenizer. */
  tokenizerDir?: string;
}

/** A PolicyActor (actors/policy) asked over the cluster transport. */
export interface ServedPolicyConfig {
  kind: 'served';
  /** Its actor name, `policy/<name>`. */
  actor: string;
  model: string;
  timeoutMs?: number;
}

/** Asked of `settings.budget.ledger` before each tool call of a budgeted job; refused calls do not run. */
export interface BudgetTake {
  v: 1;
  type: 'jobs.budget.take';
  jobId: string;
  tool: 'search' | 'browse';
}

export interface BudgetTakeReply {
  v: 1;
  type: 'jobs.budget.reply';
  granted: boolean;
}

export interface RolloutSettingsWire {
  maxTurns: number;
  maxTokensPerTurn: number;
  temperature: number;
  topP: number;
  /** ISO date the system prompt states. */
  date: string;
  /** Results per web_search query; default: the search backend's. */
  searchTopK?: number;
  /** The weight version the policy serves for this batch (training), for turns whose backend reports none. */
  weightVersion?: number;
  /** A budgeted job: ask this actor (the job manager) before each tool call (`jobs.budget.take`). */
  budget?: { ledger: string };
}

export interface WorkUnit {
  questionId: string;
  question: string;
  groundTruth?: string;
  dataSource?: string;
  sample: number;
}

export interface RolloutStart {
  v: 1;
  type: 'rollout.start';
  jobId: string;
  units: WorkUnit[];
  settings: RolloutSettingsWire;
  policy: PolicyConfig;
  /** async: every trajectory advances on its own; barrier: the original's turn-synchronous batch. */
  schedule: 'async' | 'barrier';
  /** Actor name that receives a `rollout.done` per trajectory. */
  replyTo: string;
  /** Record the web the batch sees into each trajectory's `web`, or answer it from a recording. */
  web?: WebTapeSettings;
}

export interface RolloutStartReply {
  v: 1;
  type: 'rollout.start.reply';
  accepted: number;
}

export interface RolloutCancel {
  v: 1;
  type: 'rollout.cancel';
  jobId: string;
}

export interface RolloutCancelReply {
  v: 1;
  type: 'rollout.cancel.reply';
  cancelled: number;
}

export interface RolloutDone {
  v: 1;
  type: 'rollout.done';
  jobId: string;
  /** The actor that ran it. */
  worker: string;
  trajectory: Trajectory;
}

/** Told to `replyTo` when a batch cannot run at all (e.g. its policy cannot be built); none of its units
 * produced a trajectory. */
export interface RolloutFailed {
  v: 1;
  type: 'rollout.failed';
  jobId: string;
  worker: string;
  error: { code: string; message: string };
}

/** Which of a job's units this actor is running now (the job manager's lease check). */
export interface RolloutStatus {
  v: 1;
  type: 'rollout.status';
  jobId: string;
}

export interface RolloutStatusReply {
  v: 1;
  type: 'rollout.status.reply';
  /** Trajectory ids (`questionId#sample`) in flight or waiting for a slot. */
  running: string[];
}

export type RolloutMessage = RolloutStart | RolloutCancel | RolloutStatus;

const endpointPolicySchema = z.object({
  kind: z.enum(['chat', 'completions', 'sglang']),
  baseURL: z.url(),
  model: z.string().min(1),
  apiKeyEnv: z.string().min(1).optional(),
  tools: z.enum(['text', 'native']).optional(),
  timeoutMs: z.number().int().positive().optional(),
  maxRetries: z.number().int().min(0).max(20).optional(),
  weightVersion: z.number().int().min(0).optional(),
  tokenizerDir: z.string().min(1).optional(),
});

const policyConfigSchema = z.union([
  endpointPolicySchema,
  z.object({
    kind: z.literal('served'),
    actor: z.string().min(1),
    model: z.string().min(1),
    timeoutMs: z.number().int().positive().optional(),
  }),
]);

export const rolloutSettingsSchema = z.object({
  maxTurns: z.number().int().min(1).max(100),
  maxTokensPerTurn: z.number().int().min(1).max(131_072),
  temperature: z.number().min(0).max(5),
  topP: z.number().gt(0).max(1),
  date: z.iso.datetime(),
  searchTopK: z.number().int().min(1).max(MAX_TOP_K).optional(),
  weightVersion: z.number().int().min(0).optional(),
  budget: z.object({ ledger: z.string().min(1) }).optional(),
});

const workUnitSchema = z.object({
  questionId: z.string().min(1),
  question: z.string().min(1),
  groundTruth: z.string().optional(),
  dataSource: z.string().optional(),
  sample: z.number().int().min(0),
});

export const rolloutMessageSchema = z.discriminatedUnion('type', [
  z.object({
    v: z.literal(ROLLOUT_PROTOCOL_VERSION),
    type: z.literal('rollout.start'),
    jobId: z.string().min(1),
    units: z.array(workUnitSchema),
    settings: rolloutSettingsSchema,
    policy: policyConfigSchema,
    schedule: z.enum(['async', 'barrier']),
    replyTo: z.string().min(1),
    web: webTapeSettingsSchema.optional(),
  }),
  z.object({
    v: z.literal(ROLLOUT_PROTOCOL_VERSION),
    type: z.literal('rollout.cancel'),
    jobId: z.string().min(1),
  }),
  z.object({
    v: z.literal(ROLLOUT_PROTOCOL_VERSION),
    type: z.literal('rollout.status'),
    jobId: z.string().min(1),
  }),
]);

export { policyConfigSchema };
