import type { Command } from 'commander';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isDrError } from '../../config/errors.ts';
import { scoreJsonLines } from '../../actors/rollout/score-file.ts';

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

export function register(program: Command): void {
  program
    .command('score')
    .description("DeepResearcher's F1/EM reward for each {solution_str, ground_truth} line of a JSONL file")
    .requiredOption('--input <file>', 'JSONL input: one {solution_str, ground_truth} object per line')
    .option('--output <file>', 'write the scored JSONL here instead of stdout')
    .action(async (opts: { input: string; output?: string }) => {
      try {
        const lines = scoreJsonLines(await readFile(opts.input, 'utf8'), opts.input);
        const text = lines.length === 0 ? '' : `${lines.join('\n')}\n`;
        if (opts.output === undefined) process.stdout.write(text);
        else await writeAtomically(opts.output, text);
      } catch (err) {
        const message = isDrError(err) ? `${err.code}: ${err.message}` : String(err);
        process.stderr.write(`dr score: ${message}\n`);
        process.exitCode = 1;
      }
    });
}
