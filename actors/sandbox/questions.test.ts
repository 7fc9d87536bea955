import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LONG_PAGE_FILLER_CHARS } from './docs.ts';
import {
  ANSWER_SPLIT,
  generateQuestions,
  questions,
  toRow,
  writeQuestionsParquet,
  type SandboxQuestion,
} from './questions.ts';
import { startSandboxServer, type SandboxServer } from './server.ts';
import { buildSite, type Site } from './site.ts';
import { generateWorld } from './world.ts';

const world = generateWorld({ seed: 51, size: 400 });
const all = generateQuestions(world);
const REFERENCE = new URL('../../data/deepresearcher/dev.parquet', import.meta.url).pathname;
let site: Site;

beforeAll(async () => {
  site = await buildSite(world);
});

describe('generateQuestions', () => {
  it('is deterministic and gives every question a unique id', () => {
    expect(JSON.stringify(generateQuestions(generateWorld({ seed: 51, size: 400 })))).toBe(
      JSON.stringify(all),
    );
    expect(new Set(all.map((q) => q.id)).size).toBe(all.length);
  });

  it('mixes single-hop with 2- and 3-hop questions, mostly single-hop answerable from snippets', () => {
    const hops = (n: number) => all.filter((q) => q.hops.length === n);
    expect(hops(1).length / all.length).toBeGreaterThan(0.6);
    expect(hops(2).length).toBeGreaterThan(30);
    expect(hops(3).length).toBeGreaterThan(30);
    const easy = hops(1).filter((q) => !q.needsBrowse).length / hops(1).length;
    expect(easy).toBeGreaterThan(0.6);
    expect(all.some((q) => q.needsBrowse)).toBe(true);
  });

  it('states every hop on its main page: lead facts in the snippet text, deep facts past the paging boundary', () => {
    for (const q of all) {
      for (const hop of q.hops) {
        const page = site.pages.get(hop.path);
        expect(page?.behaviour).toBe('ok');
        const text = page?.text ?? '';
        expect(text).toContain(hop.value);
        if (hop.placement === 'lead') expect(page?.summary).toContain(hop.value);
        if (hop.placement === 'deep')
          expect(text.lastIndexOf(hop.value)).toBeGreaterThan(LONG_PAGE_FILLER_CHARS - 6000);
      }
      // The final hop's value is the canonical answer; intermediate hops name the next subject page.
      expect(q.hops.at(-1)?.value).toBe(q.answers[0]);
      q.hops.slice(1).forEach((hop, i) => expect(site.pages.get(hop.path)?.title).toBe(q.hops[i]?.value));
    }
  });

  it('splits by subject entity into train/dev/test, about 80/10/10', () => {
    const subjectSplit = new Map<string, string>();
    for (const q of all) {
      const subject = q.hops[0]?.entity ?? '';
      expect(subjectSplit.get(subject) ?? q.split).toBe(q.split);
      subjectSplit.set(subject, q.split);
    }
    const share = (s: string) => all.filter((q) => q.split === s).length / all.length;
    expect(share('train')).toBeGreaterThan(0.7);
    expect(share('dev')).toBeGreaterThan(0.05);
    expect(share('test')).toBeGreaterThan(0.05);
    expect(questions(world, 'dev').every((r) => r.extra_info.split === 'dev')).toBe(true);
  });
});

describe('rows in the DeepResearcher parquet layout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-q-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('joins answer aliases with <|answer_split|>', () => {
    const q = all.find((x) => x.answers.length > 1) as SandboxQuestion;
    expect(toRow(q).reward_model.ground_truth).toBe(q.answers.join(ANSWER_SPLIT));
    expect(toRow(q).prompt).toEqual([{ content: q.question, role: 'user' }]);
  });

  it('writes a parquet file with the schema of the released dev split, which reads back row for row', async () => {
    const rows = questions(world, 'test');
    const file = join(dir, 'test.parquet');
    writeQuestionsParquet(file, rows);
    const ours = await asyncBufferFromFile(file);
    const ref = await asyncBufferFromFile(REFERENCE);
    const shape = (
      schema: Array<{
        name: string;
        type?: string;
        repetition_type?: string;
        num_children?: number;
        converted_type?: string;
      }>,
    ) =>
      schema.map(({ name, type, repetition_type, num_children, converted_type }) => ({
        name,
        type,
        repetition_type,
        num_children,
        converted_type,
      }));
    expect(shape((await parquetMetadataAsync(ours)).schema)).toEqual(
      shape((await parquetMetadataAsync(ref)).schema),
    );
    const back = await parquetReadObjects({ file: ours });
    expect(back).toEqual(rows);
    const [refRow] = await parquetReadObjects({ file: ref, rowEnd: 1 });
    expect(Object.keys(back[0] ?? {})).toEqual(Object.keys(refRow ?? {}));
  });
});

describe('answerable through search', () => {
  let srv: SandboxServer;
  beforeAll(async () => {
    srv = await startSandboxServer({ world, site });
  });
  afterAll(async () => {
    await srv.close();
  });

  it('finds the first hop page at rank 1 for every question and shows the answer in the top snippet for nearly all easy ones', async () => {
    const easy = all.filter((q) => q.hops.length === 1 && !q.needsBrowse && q.split === 'dev');
    const dev = all.filter((x) => x.split === 'dev');
    let inSnippet = 0;
    // Serper batches: one request carries up to 100 queries and gets an array of replies in order.
    for (let start = 0; start < dev.length; start += 100) {
      const batch = dev.slice(start, start + 100);
      const r = await fetch(srv.searchUrl, {
        method: 'POST',
        headers: { 'X-API-KEY': srv.apiKey },
        body: JSON.stringify(batch.map((q) => ({ q: q.question }))),
      });
      const replies = (await r.json()) as Array<{ organic: Array<{ link: string; snippet: string }> }>;
      batch.forEach((q, k) => {
        const top = replies[k]?.organic[0];
        expect(top?.link).toBe(srv.url + q.hops[0]?.path);
        if (easy.includes(q) && top?.snippet.includes(q.answers[0] ?? '\u0000')) inSnippet++;
      });
    }
    expect(inSnippet / easy.length).toBeGreaterThan(0.95);
  });
});
