/**
 * Documents by URL: fetched (policy-checked, size- and time-capped), extracted, split into pages, and kept
 * in a bounded LRU so every trajectory that browses a URL after the first reads it from memory. Identical
 * URLs requested at the same time share one fetch; a concurrency cap bounds fetches in flight. One store
 * may serve every BrowseActor of a process, so GRPO groups whose rollouts land on different actors still
 * fetch a page once.
 */
import { extractDocument } from './content-extract.ts';
import { Lru } from './lru.ts';
import type { PageFetcher } from './page-fetcher.ts';
import { DEFAULT_PAGE_CHARS, paginate } from './paginate.ts';
import { Semaphore } from './semaphore.ts';

export interface DocumentStoreOptions {
  fetcher: PageFetcher;
  pageChars?: number;
  cacheEntries?: number;
  /** Characters of extracted text kept in the cache. */
  cacheChars?: number;
  maxConcurrentFetches?: number;
}

export interface StoredDocument {
  title: string;
  pages: string[];
  chars: number;
}

export class DocumentStore {
  private readonly cache: Lru<string, StoredDocument>;
  private readonly loading = new Map<string, Promise<StoredDocument>>();
  private readonly fetchSlots: Semaphore;
  private readonly pageChars: number;
  /** Extractions run one at a time, each after a full turn of the event loop: a burst of pages arriving
   * together must not hold the loop for seconds (heartbeats, acks and other actors wait on it). */
  private cpuTurn: Promise<unknown> = Promise.resolve();
  readonly counters = { fetches: 0, cacheHits: 0 };

  constructor(private readonly options: DocumentStoreOptions) {
    this.cache = new Lru(options.cacheEntries ?? 2_048, options.cacheChars ?? 200_000_000, (d) => d.chars);
    this.fetchSlots = new Semaphore(options.maxConcurrentFetches ?? 256);
    this.pageChars = options.pageChars ?? DEFAULT_PAGE_CHARS;
  }

  /** The document at `url`; rejects with the fetcher's or extractor's DrError. Failures are not cached. */
  get(url: string): Promise<StoredDocument> {
    const cached = this.cache.get(url);
    if (cached !== undefined) {
      this.counters.cacheHits += 1;
      return Promise.resolve(cached);
    }
    const pending = this.loading.get(url);
    if (pending !== undefined) {
      this.counters.cacheHits += 1;
      return pending;
    }
    const load = this.fetchSlots
      .run(async () => {
        this.counters.fetches += 1;
        const page = await this.options.fetcher.fetch(url);
        const extracted = await extractDocument(page);
        const doc = {
          title: extracted.title,
          pages: paginate(extracted.text, this.pageChars),
          chars: extracted.text.length,
        };
        this.cache.set(url, doc);
        return doc;
      })
      .finally(() => this.loading.delete(url));
    this.loading.set(url, load);
    return load;
  }

  private onCpuTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.cpuTurn.then(() => new Promise<void>((resolve) => setImmediate(resolve))).then(work);
    this.cpuTurn = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.options.fetcher.close();
  }
}
