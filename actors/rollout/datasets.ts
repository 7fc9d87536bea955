/**
 * Question sets for evaluation and research jobs, in one shape whatever the source: DeepResearcher's parquet
 * files (data/deepresearcher/{dev,test}.parquet, verl's RL layout, read with hyparquet), JSONL
 * files with the same fields, and the sandbox web's generated splits (`sandbox:<split>[:seed[:size]]`).
 */
import { readFile } from 'node:fs/promises';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';

export interface DatasetRow {
  /** Position in the dataset as loaded (before any limit); the `idx` of rollout files. */
  idx: number;
  /** The dataset's own id (`extra_info.index`). */
  id: string;
  dataSource: string;
  question: string;
  /** Aliases joined by `<|answer_split|>`. */
  groundTruth: string;
}

const verlRowSchema = z.looseObject({
  data_source: z.string(),
  prompt: z.array(z.looseObject({ content: z.string(), role: z.string() })).min(1),
  reward_model: z.looseObject({ ground_truth: z.string() }),
  extra_info: z.looseObject({ index: z.union([z.string(), z.number(), z.bigint()]) }).nullish(),
});

function fromVerlRows(rows: unknown[], source: string): DatasetRow[] {
  return rows.map((raw, idx) => {
    const parsed = verlRowSchema.safeParse(raw);
    if (!parsed.success) {
      throw new DrError(
        'DATASET_BAD_ROW',
        `${source} row ${idx} is not in DeepResearcher's layout (data_source, prompt[{role, content}], ` +
          `reward_model.ground_truth): ${parsed.error.issues[0]?.message ?? 'invalid'}`,
        { details: { row: idx } },
      );
    }
    const row = parsed.data;
    const user = row.prompt.find((m) => m.role === 'user') ?? row.prompt[row.prompt.length - 1];
    return {
      idx,
      id: row.extra_info?.index === undefined ? `${row.data_source}_${idx}` : String(row.extra_info.index),
      dataSource: row.data_source,
      question: user?.content ?? '',
      groundTruth: row.reward_model.ground_truth,
    };
  });
}

const SANDBOX_SPEC = /^sandbox:(train|dev|test)(?::(\d+)(?::(\d+))?)?$/;

async function loadSandbox(spec: string): Promise<DatasetRow[]> {
  const match = SANDBOX_SPEC.exec(spec);
  if (match === null) {
    throw new DrError(
      'DATASET_BAD_SPEC',
      `"${spec}" is not a sandbox split; use sandbox:<train|dev|test>[:seed[:size]]`,
    );
  }
  const [, split, seed, size] = match;
  const { generateWorld } = await import('../sandbox/world.ts');
  const { questions } = await import('../sandbox/questions.ts');
  const world = generateWorld({
    seed: Number(seed ?? 1),
    ...(size === undefined ? {} : { size: Number(size) }),
  });
  return fromVerlRows(questions(world, split as 'train' | 'dev' | 'test'), spec);
}

/** Loads a dataset by path or sandbox spec. */
export async function loadDataset(spec: string): Promise<DatasetRow[]> {
  if (spec.startsWith('sandbox:')) return loadSandbox(spec);
  try {
    if (spec.endsWith('.parquet')) {
      const file = await asyncBufferFromFile(spec);
      return fromVerlRows(await parquetReadObjects({ file }), spec);
    }
    if (spec.endsWith('.jsonl')) {
      const lines = (await readFile(spec, 'utf8')).split('\n').filter((l) => l.trim() !== '');
      return fromVerlRows(
        lines.map((line, i) => {
          try {
            return JSON.parse(line) as unknown;
          } catch (cause) {
            throw new DrError('DATASET_BAD_ROW', `${spec} line ${i + 1} is not valid JSON`, { cause });
          }
        }),
        spec,
      );
    }
  } catch (err) {
    if (err instanceof DrError) throw err;
    throw new DrError('DATASET_UNREADABLE', `cannot read dataset ${spec}: ${String(err)}`, { cause: err });
  }
  throw new DrError(
    'DATASET_BAD_SPEC',
    `unknown dataset "${spec}": give a .parquet or .jsonl file, or sandbox:<train|dev|test>[:seed[:size]]`,
  );
}
