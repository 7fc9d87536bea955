/**
 * What a BrowseActor does with a browse_webpage call: per URL (concurrently), the document from the
 * document store (document-store.ts), read for the question by the reader, and filtered through the
 * trajectory's memory so only new information comes back.
 * A reading model that fails falls back to the extractive reader rather than losing the page.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import { silentLogger, type Logger } from '../../config/log.ts';
import type { DocumentStore, StoredDocument } from './document-store.ts';
import { ExtractiveReader } from './extractive-reader.ts';
import type { PageReader } from './page-reader.ts';
import type { BrowseReply, BrowseRequest, BrowseStats, BrowseStatus, PageOutcome } from './protocol.ts';
import { BROWSE_PROTOCOL_VERSION } from './protocol.ts';
import type { BrowseMetrics } from './tool-metrics.ts';
import { TrajectoryMemory } from './trajectory-memory.ts';

export interface BrowseServiceOptions {
  documents: DocumentStore;
  /** The reading model; without one the extractive reader reads. */
  reader?: PageReader;
  memory?: TrajectoryMemory;
  log?: Logger;
  /** Where the dashboard's browse latency goes (tool-metrics.ts). */
  metrics?: BrowseMetrics;
}
const REFUSED = new Set(['BROWSE_BLOCKED_SCHEME', 'BROWSE_BLOCKED_ADDRESS', 'BROWSE_BAD_URL']);

function statusOf(err: DrError): BrowseStatus {
  if (REFUSED.has(err.code)) return 'refused';
  if (err.code === 'BROWSE_UNSUPPORTED_CONTENT') return 'unsupported';
  return 'failed';
}

export class BrowseService {
  private readonly memory: TrajectoryMemory;
  private readonly extractive = new ExtractiveReader();
  private readonly log: Logger;
  private readonly counters = { refused: 0, failed: 0, readerCalls: 0 };

  constructor(private readonly options: BrowseServiceOptions) {
    this.memory = options.memory ?? new TrajectoryMemory();
    this.log = options.log ?? silentLogger;
  }

  async browse(req: BrowseRequest): Promise<BrowseReply> {
    const results = await Promise.all(req.urls.map((url) => this.timedBrowseOne(url, req)));
    return { v: BROWSE_PROTOCOL_VERSION, type: 'browse_webpage.reply', results };
  }

  forget(trajectoryId: string): boolean {
    return this.memory.forget(trajectoryId);
  }

  /** Fetch and page-cache counters are those of the document store, which may be shared. */
  stats(): BrowseStats {
    const { fetches, cacheHits } = this.options.documents.counters;
    return { ...this.counters, fetches, pageCacheHits: cacheHits, trajectories: this.memory.size };
  }

  // URLs the policy refuses never reach the network; timing them would drag the quantiles towards zero.
  private async timedBrowseOne(url: string, req: BrowseRequest): Promise<PageOutcome> {
    const started = performance.now();
    const outcome = await this.browseOne(url, req);
    if (outcome.status !== 'refused')
      this.options.metrics?.pageBrowsed((performance.now() - started) / 1_000);
    return outcome;
  }

  private async browseOne(url: string, req: BrowseRequest): Promise<PageOutcome> {
    let doc: StoredDocument;
    try {
      doc = await this.options.documents.get(url);
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
}
