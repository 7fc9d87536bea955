/**
 * What a BrowseActor does with a browse_webpage call: per URL (concurrently), the document from the page
 * cache or fetched (policy-checked, size- and time-capped) and extracted, split into pages, read for the
 * question by the reader, and filtered through the trajectory's memory so only new information comes back.
 * A reading model that fails falls back to the extractive reader rather than losing the page.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import { silentLogger, type Logger } from '../../config/log.ts';
import { extractDocument } from './content-extract.ts';
import { ExtractiveReader } from './extractive-reader.ts';
import { Lru } from './lru.ts';
import type { PageFetcher } from './page-fetcher.ts';
import type { PageReader } from './page-reader.ts';
import { DEFAULT_PAGE_CHARS, paginate } from './paginate.ts';
import type { BrowseReply, BrowseRequest, BrowseStats, BrowseStatus, PageOutcome } from './protocol.ts';
import { BROWSE_PROTOCOL_VERSION } from './protocol.ts';
import { Semaphore } from './semaphore.ts';
import { TrajectoryMemory } from './trajectory-memory.ts';

export interface BrowseServiceOptions {
  fetcher: PageFetcher;
  /** The reading model; without one the extractive reader reads. */
  reader?: PageReader;
  memory?: TrajectoryMemory;
  pageChars?: number;
  pageCacheEntries?: number;
  pageCacheChars?: number;
  maxConcurrentFetches?: number;
  log?: Logger;
}

interface CachedDocument {
  title: string;
  pages: string[];
  chars: number;
}

const REFUSED = new Set(['BROWSE_BLOCKED_SCHEME', 'BROWSE_BLOCKED_ADDRESS', 'BROWSE_BAD_URL']);

function statusOf(err: DrError): BrowseStatus {
  if (REFUSED.has(err.code)) return 'refused';
  if (err.code === 'BROWSE_UNSUPPORTED_CONTENT') return 'unsupported';
  return 'failed';
}

export class BrowseService {
  private readonly pageCache: Lru<string, CachedDocument>;
  private readonly loading = new Map<string, Promise<CachedDocument>>();
  private readonly memory: TrajectoryMemory;
  private readonly extractive = new ExtractiveReader();
  private readonly fetchSlots: Semaphore;
  private readonly pageChars: number;
  private readonly log: Logger;
  private readonly counters = { fetches: 0, pageCacheHits: 0, refused: 0, failed: 0, readerCalls: 0 };

  constructor(private readonly options: BrowseServiceOptions) {
    this.memory = options.memory ?? new TrajectoryMemory();
    this.pageCache = new Lru(
      options.pageCacheEntries ?? 2_048,
      options.pageCacheChars ?? 200_000_000,
      (d) => d.chars,
    );
    this.fetchSlots = new Semaphore(options.maxConcurrentFetches ?? 256);
    this.pageChars = options.pageChars ?? DEFAULT_PAGE_CHARS;
    this.log = options.log ?? silentLogger;
  }

  async browse(req: BrowseRequest): Promise<BrowseReply> {
    const results = await Promise.all(req.urls.map((url) => this.browseOne(url, req)));
    return { v: BROWSE_PROTOCOL_VERSION, type: 'browse_webpage.reply', results };
  }

  forget(trajectoryId: string): boolean {
    return this.memory.forget(trajectoryId);
  }

  stats(): BrowseStats {
    return { ...this.counters, trajectories: this.memory.size };
  }

  close(): void {
    this.options.fetcher.close();
  }

  private async browseOne(url: string, req: BrowseRequest): Promise<PageOutcome> {
    let doc: CachedDocument;
    try {
      doc = await this.document(url);
    } catch (err) {
      const drErr = isDrError(err) ? err : new DrError('BROWSE_FAILED', String(err), { cause: err });
      const status = statusOf(drErr);
      this.counters[status === 'refused' ? 'refused' : 'failed'] += 1;
      this.log.info({ url, code: drErr.code, trajectory: req.trajectoryId }, 'page not read');
      return {
        url,
        status,
        information: '',
        pagesRead: 0,
        totalPages: 0,
        error: { code: drErr.code, message: drErr.message },
      };
    }
    const input = {
      question: req.question,
      ...(req.subQuestion === undefined ? {} : { subQuestion: req.subQuestion }),
      url,
      title: doc.title,
      pages: doc.pages,
      known: this.memory.notes(req.trajectoryId),
      isNew: (unit: string) => this.memory.isNew(req.trajectoryId, unit),
    };
    let read;
    try {
      this.counters.readerCalls += 1;
      read = await (this.options.reader ?? this.extractive).read(input);
    } catch (err) {
      this.log.warn(
        { url, err: (err as Error).message },
        'reading model failed; using the extractive reader',
      );
      read = await this.extractive.read(input);
    }
    const fresh = this.memory.admit(req.trajectoryId, read.units);
    return {
      url,
      status: 'ok',
      information: fresh.join('\n'),
      ...(doc.title === '' ? {} : { title: doc.title }),
      pagesRead: read.pagesRead,
      totalPages: doc.pages.length,
    };
  }

  private document(url: string): Promise<CachedDocument> {
    const cached = this.pageCache.get(url);
    if (cached !== undefined) {
      this.counters.pageCacheHits += 1;
      return Promise.resolve(cached);
    }
    let pending = this.loading.get(url);
    if (pending === undefined) {
      pending = this.fetchSlots
        .run(async () => {
          this.counters.fetches += 1;
          const page = await this.options.fetcher.fetch(url);
          const extracted = await extractDocument(page);
          const pages = paginate(extracted.text, this.pageChars);
          const doc = { title: extracted.title, pages, chars: extracted.text.length };
          this.pageCache.set(url, doc);
          return doc;
        })
        .finally(() => this.loading.delete(url));
      this.loading.set(url, pending);
    } else {
      this.counters.pageCacheHits += 1;
    }
    return pending;
  }
}
