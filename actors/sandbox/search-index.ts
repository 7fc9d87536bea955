/**
 * Full-text search over the site: BM25 ranking by minisearch (title boosted, stop words dropped) and
 * Google-like snippets cut from a page's summary around the query terms. Ranked results are memoised per
 * (query, num, page), so repeated queries cost a map lookup.
 */
import MiniSearch from 'minisearch';
import type { SitePage } from './site.ts';

export interface SearchHit {
  title: string;
  path: string;
  snippet: string;
  position: number;
}

export interface SearchPage {
  hits: SearchHit[];
  /** All matching documents, for Bing's totalEstimatedMatches. */
  total: number;
}

const STOP_WORDS = new Set(
  (
    'a an and are as at be by did do does for from had has have he her his how in is it its of on or she that the ' +
    'their there they this to was were what when where which who whom whose why will with'
  ).split(' '),
);
const SNIPPET_MAX = 230;
const CACHE_MAX = 20_000;

function processTerm(term: string): string | null {
  const t = term.toLowerCase();
  return STOP_WORDS.has(t) ? null : t;
}

const tokenize = MiniSearch.getDefault('tokenize') as (text: string) => string[];

function terms(text: string): string[] {
  return tokenize(text)
    .map(processTerm)
    .filter((t): t is string => t !== null && t.length > 0);
}

function splitSentences(text: string): string[] {
  return text.split(/(?<=[.!?])\s+/).filter((s) => s.length > 0);
}

function clip(s: string): string {
  if (s.length <= SNIPPET_MAX) return s;
  const cut = s.slice(0, SNIPPET_MAX);
  return `${cut.slice(0, Math.max(cut.lastIndexOf(' '), 1))} ...`;
}

export class SearchIndex {
  private readonly mini: MiniSearch<{ id: number; title: string; text: string }>;
  private readonly sentences: string[][];
  private readonly sentenceTerms: Set<string>[][];
  private readonly cache = new Map<string, SearchPage>();

  constructor(private readonly pages: readonly SitePage[]) {
    this.mini = new MiniSearch({
      fields: ['title', 'text'],
      processTerm,
      searchOptions: { boost: { title: 4 }, processTerm },
    });
    this.mini.addAll(pages.map((p, id) => ({ id, title: p.title, text: p.text })));
    this.sentences = pages.map((p) =>
      splitSentences(p.summary.length > 0 ? p.summary : p.text.slice(0, 600)),
    );
    this.sentenceTerms = this.sentences.map((ss) => ss.map((x) => new Set(terms(x))));
  }

  /** One page of ranked results (`page` from 1). */
  search(query: string, num: number, page: number): SearchPage {
    const key = `${num}\u0000${page}\u0000${query}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const ranked = this.mini.search(query);
    const qterms = new Set(terms(query));
    const start = (page - 1) * num;
    const hits = ranked.slice(start, start + num).map((r, i) => {
      const id = r.id as number;
      const p = this.pages[id] as SitePage;
      return { title: p.title, path: p.path, snippet: this.snippet(id, qterms), position: start + i + 1 };
    });
    const result = { hits, total: ranked.length };
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, result);
    return result;
  }

  /**
   * Google-like: the summary sentence with the most distinct query terms (earliest on ties), then the one
   * that adds the most terms not yet covered, joined in page order (" ... " across a gap). A short lone
   * sentence gets its successor for context.
   */
  private snippet(id: number, qterms: Set<string>): string {
    const sents = this.sentences[id] ?? [];
    const sentTerms = this.sentenceTerms[id] ?? [];
    const best = (covered: ReadonlySet<string>, skip: number): { at: number; gain: number } => {
      let at = -1;
      let gain = 0;
      sentTerms.forEach((ts, i) => {
        if (i === skip) return;
        let g = 0;
        for (const t of ts) if (qterms.has(t) && !covered.has(t)) g++;
        if (g > gain) {
          at = i;
          gain = g;
        }
      });
      return { at, gain };
    };
    const first = best(new Set(), -1);
    const a = Math.max(first.at, 0);
    const covered = new Set([...(sentTerms[a] ?? [])].filter((t) => qterms.has(t)));
    const second = best(covered, a);
    if (second.at < 0) {
      const next = sents[a + 1];
      const lone = sents[a] ?? '';
      return clip(lone.length < 110 && next !== undefined ? `${lone} ${next}` : lone);
    }
    const [x, y] = a < second.at ? [a, second.at] : [second.at, a];
    return clip(`${sents[x] ?? ''}${y === x + 1 ? ' ' : ' ... '}${sents[y] ?? ''}`);
  }
}
