/**
 * The reader used when no reading model is configured: splits the whole document into passages, ranks them
 * against the question and the sub-question with BM25 (minisearch), and returns the best passages the
 * trajectory has not been given yet.
 */
import MiniSearch from 'minisearch';
import type { PageReader, ReadInput, ReadOutput } from './page-reader.ts';

export interface ExtractiveReaderOptions {
  /** Passages returned per document. */
  topPassages?: number;
  /** Passages scoring below this share of the best one are dropped as noise. */
  relativeCutoff?: number;
  maxPassageChars?: number;
}

const STOPWORDS = new Set(
  'a an and are as at be by did do does for from had has have how in into is it its of on or that the their this to was were what when where which who whom whose why will with'.split(
    ' ',
  ),
);
const MIN_PASSAGE_CHARS = 40;

function processTerm(term: string): string | null {
  const t = term.toLowerCase();
  return t.length < 2 || STOPWORDS.has(t) ? null : t;
}

/** Paragraphs, with long ones cut at sentence ends; navigation crumbs too short to carry a fact are dropped. */
export function passages(pages: string[], maxChars: number): string[] {
  const out: string[] = [];
  for (const page of pages) {
    for (const para of page.split(/\n{2,}/)) {
      const text = para.trim();
      if (text.length < MIN_PASSAGE_CHARS) continue;
      if (text.length <= maxChars) {
        out.push(text);
        continue;
      }
      let chunk = '';
      for (const sentence of text.split(/(?<=[.!?])\s+/)) {
        if (chunk !== '' && chunk.length + sentence.length + 1 > maxChars) {
          out.push(chunk);
          chunk = '';
        }
        chunk = chunk === '' ? sentence.slice(0, maxChars) : `${chunk} ${sentence}`;
      }
      if (chunk.length >= MIN_PASSAGE_CHARS) out.push(chunk);
    }
  }
  return out;
}

interface PassageIndex {
  docs: Array<{ id: number; text: string }>;
  index: MiniSearch<{ id: number; text: string }>;
}

export class ExtractiveReader implements PageReader {
  /** Built once per document: callers pass the same pages array for a cached document, and the index goes
   * away with it. */
  private readonly indexes = new WeakMap<string[], PassageIndex>();
  private readonly topPassages: number;
  private readonly relativeCutoff: number;
  private readonly maxPassageChars: number;

  constructor(options: ExtractiveReaderOptions = {}) {
    this.topPassages = options.topPassages ?? 5;
    this.relativeCutoff = options.relativeCutoff ?? 0.3;
    this.maxPassageChars = options.maxPassageChars ?? 600;
  }

  async read(input: ReadInput): Promise<ReadOutput> {
    const docs = passages(input.pages, this.maxPassageChars).map((text, id) => ({ id, text }));
    const index = new MiniSearch<{ id: number; text: string }>({
      fields: ['text'],
      storeFields: ['text'],
      processTerm,
    });
    index.addAll(docs);
    const scores = new Map<number, number>();
    for (const query of [input.question, input.subQuestion]) {
      if (query === undefined || query.trim() === '') continue;
      for (const hit of index.search(query, { combineWith: 'OR' })) {
        scores.set(hit.id as number, (scores.get(hit.id as number) ?? 0) + hit.score);
      }
    }
    const ranked = [...scores.entries()].sort((a, b) => b[1] - a[1]);
    const best = ranked[0]?.[1] ?? 0;
    const units: string[] = [];
    for (const [id, score] of ranked) {
      if (units.length >= this.topPassages || score < best * this.relativeCutoff) break;
      const text = docs[id]?.text;
      if (text !== undefined && input.isNew(text)) units.push(text);
    }
    return { units, pagesRead: input.pages.length };
  }
}
