/**
 * From scored trajectories to what a train step consumes: GRPO advantages computed over the whole batch
 * (groups must be complete before any sharding), a token-balanced split across data-parallel learners, and
 * padded micro-batches that respect a token budget so a step fits in memory whatever the batch size.
 */
import { DrError } from '../../config/errors.ts';
import { groupAdvantages, type AdvantageOptions } from './grpo.ts';
import type { MicroBatch } from './model.ts';

/** One trajectory as the learner sees it. */
export interface TrainSample {
  /** GRPO group: the question (all rollouts of one question share it). */
  group: string;
  /** Rendered trajectory: prompt, generated turns and tool responses. */
  tokenIds: number[];
  /** Per token: 1 when the policy generated it (in the loss), 0 for prompt and tool output. */
  lossMask: number[];
  reward: number;
  /** Policy weight version the trajectory was sampled with. */
  version: number;
}

/** A sample with its advantage, ready to be placed in a micro-batch. */
export interface PreparedSample {
  tokenIds: number[];
  lossMask: number[];
  advantage: number;
}

export function prepareSamples(
  samples: readonly TrainSample[],
  options: AdvantageOptions = {},
): PreparedSample[] {
  for (const [i, s] of samples.entries()) {
    if (s.tokenIds.length !== s.lossMask.length) {
      throw new DrError(
        'LEARNER_BAD_BATCH',
        `sample ${i} has ${s.tokenIds.length} tokens but ${s.lossMask.length} mask entries; the rollout must emit one mask entry per token`,
      );
    }
    if (!Number.isFinite(s.reward)) {
      throw new DrError(
        'LEARNER_BAD_BATCH',
        `sample ${i} has a non-finite reward (${s.reward}); fix the reward function`,
      );
    }
  }
  const adv = groupAdvantages(
    samples.map((s) => s.reward),
    samples.map((s) => s.group),
    options,
  );
  return samples.map((s, i) => ({ tokenIds: s.tokenIds, lossMask: s.lossMask, advantage: adv[i]! }));
}

/**
 * The samples of groups whose rewards differ. A group where every rollout scored the same has advantage 0
 * everywhere, so it adds no policy gradient (only the small KL term) while costing a full forward and
 * backward pass; DAPO filters such groups out for the same reason.
 */
export function informativeGroups<S extends Pick<TrainSample, 'group' | 'reward'>>(
  samples: readonly S[],
): S[] {
  const seen = new Map<string, { first: number; mixed: boolean }>();
  for (const s of samples) {
    const g = seen.get(s.group);
    if (g === undefined) seen.set(s.group, { first: s.reward, mixed: false });
    else if (s.reward !== g.first) g.mixed = true;
  }
  return samples.filter((s) => seen.get(s.group)!.mixed);
}

/** Tokens in the loss (position 0 of a sequence never is). */
export function lossTokens(s: Pick<PreparedSample, 'lossMask'>): number {
  let n = 0;
  for (let j = 1; j < s.lossMask.length; j++) n += s.lossMask[j]!;
  return n;
}

/**
 * Splits samples into `parts` shards with close token totals (longest first onto the lightest shard), keeping
 * the original order inside each shard so runs are reproducible.
 */
export function shardByTokens<T extends { tokenIds: readonly number[] }>(
  samples: readonly T[],
  parts: number,
): T[][] {
  if (!Number.isInteger(parts) || parts < 1) {
    throw new DrError(
      'LEARNER_BAD_CONFIG',
      `cannot shard a batch into ${parts} parts; use a positive integer`,
    );
  }
  const order = samples
    .map((s, i) => i)
    .sort((a, b) => samples[b]!.tokenIds.length - samples[a]!.tokenIds.length);
  const load = new Array<number>(parts).fill(0);
  const owner = new Array<number>(samples.length);
  for (const i of order) {
    let best = 0;
    for (let p = 1; p < parts; p++) if (load[p]! < load[best]!) best = p;
    owner[i] = best;
    load[best]! += samples[i]!.tokenIds.length;
  }
  const out: T[][] = Array.from({ length: parts }, () => []);
  samples.forEach((s, i) => out[owner[i]!]!.push(s));
  return out;
}

export interface MicroBatchOptions {
  /** Upper bound on rows × padded length of one micro-batch. */
  maxTokens: number;
  /** Longer trajectories are truncated to this many tokens. */
  maxSeqLen: number;
  padId: number;
}

/**
 * Packs samples (sorted by length, so padding stays small) into padded micro-batches of at most `maxTokens`
 * padded tokens. Old and reference log-probabilities start at 0; the learner fills them.
 */
export function buildMicroBatches(
  samples: readonly PreparedSample[],
  options: MicroBatchOptions,
): MicroBatch[] {
  const { maxTokens, maxSeqLen, padId } = options;
  if (maxSeqLen < 2 || maxTokens < maxSeqLen) {
    throw new DrError(
      'LEARNER_BAD_CONFIG',
      `micro-batch budget ${maxTokens} tokens cannot hold one sequence of ${maxSeqLen}; raise maxTokensPerMicroBatch or lower maxSeqLen`,
    );
  }
  samples.forEach((s, i) => {
    if (s.tokenIds.length !== s.lossMask.length || !Number.isFinite(s.advantage)) {
      throw new DrError(
        'LEARNER_BAD_BATCH',
        `sample ${i} has ${s.tokenIds.length} tokens, ${s.lossMask.length} mask entries and advantage ${s.advantage}; send one mask entry per token and a finite advantage`,
      );
    }
  });
  const sorted = [...samples].sort((a, b) => a.tokenIds.length - b.tokenIds.length);
  const batches: MicroBatch[] = [];
  let group: PreparedSample[] = [];
  let cols = 0;
  const flush = (): void => {
    if (group.length > 0) batches.push(pack(group, cols, padId));
    group = [];
    cols = 0;
  };
  for (const s of sorted) {
    const len = Math.min(s.tokenIds.length, maxSeqLen);
    if (len === 0) continue;
    const nextCols = Math.max(cols, len);
    if ((group.length + 1) * nextCols > maxTokens) flush();
    group.push(s);
    cols = Math.max(cols, len);
  }
  flush();
  return batches;
}

function pack(group: readonly PreparedSample[], cols: number, padId: number): MicroBatch {
  const rows = group.length;
  const n = rows * cols;
  const mb: MicroBatch = {
    rows,
    cols,
    inputIds: new Int32Array(n).fill(padId),
    attention: new Float32Array(n),
    lossMask: new Float32Array(n),
    advantage: new Float32Array(n),
    oldLogprob: new Float32Array(n),
    refLogprob: new Float32Array(n),
  };
  group.forEach((s, r) => {
    const len = Math.min(s.tokenIds.length, cols);
    for (let j = 0; j < len; j++) {
      const i = r * cols + j;
      mb.inputIds[i] = s.tokenIds[j]!;
      mb.attention[i] = 1;
      // Position 0 has no prediction, so it is never in the loss.
      const m = j === 0 ? 0 : s.lossMask[j]!;
      mb.lossMask[i] = m;
      mb.advantage[i] = m === 0 ? 0 : s.advantage;
    }
  });
  return mb;
}

/** Σ loss-mask over micro-batches: the token-mean denominator of their batch. */
export function maskedTokenCount(batches: readonly MicroBatch[]): number {
  let n = 0;
  for (const mb of batches) for (let i = 0; i < mb.lossMask.length; i++) n += mb.lossMask[i]!;
  return n;
}
