/**
 * What an evaluation leaves on disk, in the original's layout: `outputs/{project}/{experiment}/rollout/
 * rollout_step_{k}.json` (a JSON list of `{idx, question, message_str}` entries, plus our scores), and a
 * per-source score table (F1, EM, MBE) like the paper's Tables 1-2, as JSON and Markdown.
 */
import { join } from 'node:path';
import { FORMAT_ERROR_SCORE } from '../rollout/reward.ts';
import type { RolloutEntry } from '../rollout/rollout-entry.ts';

export interface SourceScores {
  source: string;
  trajectories: number;
  /** Means in percent; format errors (-1) count as 0 here, and are counted in `formatErrors`. */
  f1: number;
  em: number;
  mbe: number | null;
  judged: number;
  formatErrors: number;
}

export interface ScoreTable {
  rows: SourceScores[];
  /** Unweighted mean over sources, as the paper's "Avg." column. */
  average: { f1: number; em: number; mbe: number | null };
}

const ASSISTANT_START = '<|im_start|>assistant\n';

/** The reward's `solution_str` of a rollout entry: everything from the first assistant turn on. */
export function solutionOf(messageStr: string): string {
  const at = messageStr.indexOf(ASSISTANT_START);
  return at === -1 ? messageStr : messageStr.slice(at + ASSISTANT_START.length);
}

export function rolloutPath(outputsDir: string, project: string, experiment: string, step: number): string {
  return join(outputsDir, project, experiment, 'rollout', `rollout_step_${step}.json`);
}

const percent = (sum: number, n: number): number => (n === 0 ? 0 : Math.round((10_000 * sum) / n) / 100);

export function scoreTable(entries: readonly RolloutEntry[]): ScoreTable {
  const bySource = new Map<string, RolloutEntry[]>();
  for (const e of entries) {
    const list = bySource.get(e.data_source) ?? [];
    list.push(e);
    bySource.set(e.data_source, list);
  }
  const rows = [...bySource.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([source, list]): SourceScores => {
      const judged = list.filter((e) => e.mbe !== null);
      return {
        source,
        trajectories: list.length,
        f1: percent(
          list.reduce((s, e) => s + Math.max(0, e.f1), 0),
          list.length,
        ),
        em: percent(
          list.reduce((s, e) => s + Math.max(0, e.em), 0),
          list.length,
        ),
        mbe:
          judged.length === 0
            ? null
            : percent(
                judged.reduce((s, e) => s + (e.mbe ?? 0), 0),
                judged.length,
              ),
        judged: judged.length,
        formatErrors: list.filter((e) => e.f1 === FORMAT_ERROR_SCORE).length,
      };
    });
  const mean = (values: number[]): number =>
    values.length === 0 ? 0 : Math.round((100 * values.reduce((a, b) => a + b, 0)) / values.length) / 100;
  const mbes = rows.map((r) => r.mbe).filter((m): m is number => m !== null);
  return {
    rows,
    average: {
      f1: mean(rows.map((r) => r.f1)),
      em: mean(rows.map((r) => r.em)),
      mbe: mbes.length === 0 ? null : mean(mbes),
    },
  };
}

export function scoreTableMarkdown(table: ScoreTable): string {
  const cell = (v: number | null): string => (v === null ? '-' : v.toFixed(2));
  const lines = [
    '| source | n | F1 | EM | MBE | format errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...table.rows.map(
      (r) =>
        `| ${r.source} | ${r.trajectories} | ${cell(r.f1)} | ${cell(r.em)} | ${cell(r.mbe)} | ${r.formatErrors} |`,
    ),
    `| **Avg.** | ${table.rows.reduce((s, r) => s + r.trajectories, 0)} | ${cell(table.average.f1)} | ${cell(
      table.average.em,
    )} | ${cell(table.average.mbe)} | ${table.rows.reduce((s, r) => s + r.formatErrors, 0)} |`,
  ];
  return `${lines.join('\n')}\n`;
}
