import type { Command } from 'commander';
import { exportCheckpoint } from '../../actors/params/hf-export.ts';
import { DrError, isDrError } from '../../config/errors.ts';
import type { StoredDType } from '../../runtime/model/safetensors.ts';

const DTYPES: Record<string, StoredDType> = {
  bf16: 'BF16',
  f32: 'F32',
  fp32: 'F32',
  f16: 'F16',
  fp16: 'F16',
};

/** `5GB`, `500MB`, `2000000` (bytes). */
function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$/i.exec(text.trim());
  if (m === null)
    throw new DrError('CONFIG_INVALID', `--max-shard-size ${text} is not a size; write it like 5GB or 500MB`);
  const unit = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 }[(m[2] ?? 'B').toUpperCase() as 'B'];
  return Math.floor(Number(m[1]) * unit);
}

export function register(program: Command): void {
  program
    .command('export')
    .description(
      'Write a training checkpoint as a Hugging Face folder that transformers, vLLM and SGLang load (config.json, safetensors, tokenizer with its chat template)',
    )
    .requiredOption(
      '--checkpoint <dir>',
      "a step_NNNNNNNN checkpoint folder, or a job's checkpoints folder (its latest)",
    )
    .requiredOption('--out <dir>', 'the Hugging Face folder to write (replaced whole if it exists)')
    .option(
      '--base <dir>',
      'the model folder training started from (default: the one the checkpoint records)',
    )
    .option('--dtype <dtype>', 'bf16, f32 or f16', 'bf16')
    .option('--max-shard-size <size>', 'shard the weights above this size', '5GB')
    .option('--json', 'print one JSON object describing what was written')
    .action(
      async (opts: {
        checkpoint: string;
        out: string;
        base?: string;
        dtype: string;
        maxShardSize: string;
        json?: boolean;
      }) => {
        try {
          const dtype = DTYPES[opts.dtype.toLowerCase()];
          if (dtype === undefined)
            throw new DrError('CONFIG_INVALID', `--dtype ${opts.dtype} is not one of bf16, f32, f16`);
          const r = await exportCheckpoint(opts.checkpoint, opts.out, {
            dtype,
            maxShardBytes: parseSize(opts.maxShardSize),
            ...(opts.base === undefined ? {} : { base: opts.base }),
          });
          if (opts.json === true) process.stdout.write(JSON.stringify(r) + '\n');
          else
            process.stdout.write(
              `exported step ${r.step} (weight version ${r.version}) of ${r.checkpoint} to ${r.dir}: ` +
                `${r.shards.join(', ')} (${(r.totalBytes / 1e6).toFixed(1)} MB ${dtype}), config and tokenizer from ${r.base}\n`,
            );
        } catch (err) {
          process.stderr.write(
            `dr export: ${isDrError(err) ? `${err.code}: ${err.message}` : String(err)}\n`,
          );
          process.exitCode = 1;
        }
      },
    );
}
