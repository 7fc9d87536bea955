import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataset } from './datasets.ts';

const DATA = new URL('../../data/deepresearcher/', import.meta.url).pathname;

describe('loadDataset', () => {
  it("reads DeepResearcher's dev parquet: 875 questions, 125 per source", async () => {
    const rows = await loadDataset(join(DATA, 'dev.parquet'));
    expect(rows).toHaveLength(875);
    const perSource = new Map<string, number>();
    for (const r of rows) perSource.set(r.dataSource, (perSource.get(r.dataSource) ?? 0) + 1);
    expect([...perSource.values()].every((n) => n === 125)).toBe(true);
    expect(perSource.size).toBe(7);
    expect(rows[500]).toMatchObject({
      idx: 500,
      id: 'popqa_3774158',
      question: 'Who was the producer of The Cat Returns?',
      groundTruth: 'Toshio Suzuki<|answer_split|>Suzuki Toshio',
    });
  });

  it('reads a sandbox split', async () => {
    const rows = await loadDataset('sandbox:test:7:400');
    expect(rows.length).toBeGreaterThan(0);
    expect(
      rows.every((r) => r.dataSource === 'sandbox' && r.question.length > 0 && r.groundTruth.length > 0),
    ).toBe(true);
  });

  it('refuses unknown specs and bad rows with typed errors', async () => {
    await expect(loadDataset('questions.csv')).rejects.toMatchObject({ code: 'DATASET_BAD_SPEC' });
    await expect(loadDataset('sandbox:holdout')).rejects.toMatchObject({ code: 'DATASET_BAD_SPEC' });
    const dir = await mkdtemp(join(tmpdir(), 'dr-ds-'));
    try {
      const file = join(dir, 'bad.jsonl');
      await writeFile(file, '{"data_source":"x","prompt":[],"reward_model":{"ground_truth":"a"}}\n');
      await expect(loadDataset(file)).rejects.toMatchObject({ code: 'DATASET_BAD_ROW' });
      await expect(loadDataset(join(dir, 'missing.parquet'))).rejects.toMatchObject({
        code: 'DATASET_UNREADABLE',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
