/**
 * Turning a job's questions into rollout work units and its finished trajectories into results: the
 * evaluation's rollout file, MBE verdicts and score table, or a research job's answers.
 */
import { resolve } from 'node:path';
import { writeFileAtomically } from '../../runtime/durable-file.ts';
import { Judge } from '../rollout/judge.ts';
import type { WorkUnit } from '../rollout/protocol.ts';
import type { Trajectory } from '../rollout/trajectory.ts';
import type { DatasetRow } from '../rollout/datasets.ts';
import { rolloutPath, scoreTable, scoreTableMarkdown, type ScoreTable } from './outputs.ts';
import type { RolloutEntry } from '../rollout/rollout-entry.ts';
import type { EvaluateConfig, JobResult, ResearchConfig } from './protocol.ts';

/** Question ids are `{jobId}/{idx}`: unique across jobs, because they also key each trajectory's browse
 * memory in the BrowseActors. */
export function unitsFor(jobId: string, rows: readonly DatasetRow[], n: number): WorkUnit[] {
  return rows.flatMap((row) =>
    Array.from({ length: n }, (_, sample) => ({
      questionId: `${jobId}/${row.idx}`,
      question: row.question,
      groundTruth: row.groundTruth,
      dataSource: row.dataSource,
      sample,
    })),
  );
}

export function researchUnits(jobId: string, config: ResearchConfig): WorkUnit[] {
  return Array.from({ length: config.n }, (_, sample) => ({
    questionId: `${jobId}/0`,
    question: config.question,
    ...(config.groundTruth === undefined ? {} : { groundTruth: config.groundTruth }),
    dataSource: 'research',
    sample,
  }));
}

function idxOf(t: Trajectory): number {
  return Number(t.questionId.slice(t.questionId.lastIndexOf('/') + 1));
}

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next;
      next += 1;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface EvaluationOutcome {
  result: JobResult;
  table: ScoreTable;
}

export async function finishEvaluation(
  config: EvaluateConfig,
  trajectories: readonly Trajectory[],
  outputsDir: string,
): Promise<EvaluationOutcome> {
  const sorted = [...trajectories].sort((a, b) => idxOf(a) - idxOf(b) || a.sample - b.sample);
  const judge =
    config.judge === undefined
      ? undefined
      : new Judge({
          baseURL: config.judge.baseURL,
          model: config.judge.model,
          ...(config.judge.apiKeyEnv === undefined
            ? {}
            : { apiKey: process.env[config.judge.apiKeyEnv] ?? '' }),
        });
  const entries = await mapLimited(sorted, 8, async (t): Promise<RolloutEntry> => {
    const verdict =
      judge === undefined
        ? null
        : (
            await judge.judge({
              question: t.question,
              groundTruth: t.groundTruth ?? '',
              prediction: t.answer,
            })
          ).correct;
    return {
      idx: idxOf(t),
      question: t.question,
      message_str: t.renderedText,
      sample: t.sample,
      data_source: t.dataSource ?? 'unknown',
      ground_truth: t.groundTruth ?? '',
      answer: t.answer ?? null,
      f1: t.scores?.f1 ?? -1,
      em: t.scores?.em ?? -1,
      mbe: verdict === null ? null : verdict ? 1 : 0,
      end: t.end.reason,
    };
  });
  const table = scoreTable(entries);
  const rollout = resolve(rolloutPath(outputsDir, config.project, config.experiment, config.step));
  const scoresJson = rollout.replace(/rollout_step_(\d+)\.json$/, 'scores_step_$1.json');
  const scoresMd = scoresJson.replace(/\.json$/, '.md');
  await writeFileAtomically(rollout, JSON.stringify(entries, null, 1));
  await writeFileAtomically(scoresJson, JSON.stringify(table, null, 1));
  await writeFileAtomically(scoresMd, scoreTableMarkdown(table));
  return { result: { paths: { rollout, scores: scoresJson, table: scoresMd }, summary: table }, table };
}

export async function finishResearch(
  jobId: string,
  trajectories: readonly Trajectory[],
  outputsDir: string,
): Promise<JobResult> {
  const sorted = [...trajectories].sort((a, b) => a.sample - b.sample);
  const path = resolve(outputsDir, 'research', `${jobId}.json`);
  await writeFileAtomically(path, JSON.stringify(sorted, null, 1));
  return {
    paths: { trajectories: path },
    summary: sorted.map((t) => ({
      sample: t.sample,
      answer: t.answer ?? null,
      end: t.end.reason,
      scores: t.scores,
    })),
  };
}
