import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { writeFileAtomically } from '../../runtime/durable-file.ts';
import { DrError, isDrError } from '../../config/errors.ts';
import { loadDataset } from '../../actors/rollout/datasets.ts';
import { rescoreRolloutFile } from '../../actors/jobs/rescore.ts';
import { scoreJsonLines } from '../../actors/rollout/score-file.ts';

export function register(program: Command): void {
  program
    .command('score')
    .description("DeepResearcher's F1/EM reward for each {solution_str, ground_truth} line of a JSONL file")
    .option('--input <file>', 'JSONL input: one {solution_str, ground_truth} object per line')
    .option('--rollouts <file>', 'instead: re-score a rollout_step_{k}.json file against --data')
    .option('--data <dataset>', 'the dataset the rollouts came from (.parquet, .jsonl or sandbox:<split>)')
    .option('--output <file>', 'write the scored JSONL here instead of stdout')
    .action(async (opts: { input?: string; rollouts?: string; data?: string; output?: string }) => {
      try {
        let lines: string[];
        if (opts.rollouts !== undefined) {
          if (opts.data === undefined)
            throw new DrError('SCORE_NO_DATASET', '--rollouts needs --data DATASET');
          lines = await rescoreRolloutFile(opts.rollouts, await loadDataset(opts.data));
        } else if (opts.input !== undefined) {
          lines = scoreJsonLines(await readFile(opts.input, 'utf8'), opts.input);
        } else {
          throw new DrError(
            'SCORE_NO_INPUT',
            'give --input FILE.jsonl, or --rollouts FILE.json with --data DATASET',
          );
        }
        const text = lines.length === 0 ? '' : `${lines.join('\n')}\n`;
        if (opts.output === undefined) process.stdout.write(text);
        else await writeFileAtomically(opts.output, text);
      } catch (err) {
        const message = isDrError(err) ? `${err.code}: ${err.message}` : String(err);
        process.stderr.write(`dr score: ${message}\n`);
        process.exitCode = 1;
      }
    });
}
