/**
 * Scoring of JSON-lines files for `dr score`: each line `{solution_str, ground_truth, ...}` comes back as the
 * same object with numeric `f1` and `em` added, in the same order. The whole input is validated before
 * anything is written, so a bad line never leaves a half-written output.
 */
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import { scoreSolution } from './reward.ts';

const ScoreInputLine = z.looseObject({ solution_str: z.string(), ground_truth: z.string() });

/** Scores every non-blank line of `text`; throws `SCORE_BAD_LINE` naming the first bad line (1-based). */
export function scoreJsonLines(text: string, source = 'input'): string[] {
  const out: string[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      throw new DrError(
        'SCORE_BAD_LINE',
        `${source} line ${i + 1} is not valid JSON: fix or remove that line`,
        {
          cause: err,
          details: { line: i + 1 },
        },
      );
    }
    const checked = ScoreInputLine.safeParse(parsed);
    if (!checked.success) {
      throw new DrError(
        'SCORE_BAD_LINE',
        `${source} line ${i + 1} needs string fields "solution_str" and "ground_truth" (${checked.error.issues
          .map((issue) => `${issue.path.join('.') || '(line)'}: ${issue.message}`)
          .join('; ')})`,
        { details: { line: i + 1 } },
      );
    }
    const row = checked.data;
    out.push(JSON.stringify({ ...row, ...scoreSolution(row.solution_str, row.ground_truth) }));
  }
  return out;
}
