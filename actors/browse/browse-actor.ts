/**
 * The BrowseActor kind: fetches, extracts and reads pages for the trajectories routed to it (by trajectory
 * id, browse-routing.ts), holding their short-term memories and a page cache. Spawned as `browse/<shard>`
 * with BrowseActorArgs. The reading model's key, if any, comes from the environment (`reader.apiKeyEnv`).
 */
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import type { ActorFactory } from '../../runtime/actor.ts';
import { BrowseService } from './browse-service.ts';
import { DocumentStore } from './document-store.ts';
import { LlmReader } from './llm-reader.ts';
import { PageFetcher } from './page-fetcher.ts';
import { DEFAULT_PAGE_CHARS } from './paginate.ts';
import type { BrowseActorReply } from './protocol.ts';
import { BROWSE_PROTOCOL_VERSION, browseMessageSchema } from './protocol.ts';
import { browseMetrics } from './tool-metrics.ts';
import { TrajectoryMemory } from './trajectory-memory.ts';
import { UrlPolicy } from './url-safety.ts';

/** Calls an actor serves at once unless its args say otherwise; `maxConcurrentFetches` still caps the
 * fetches of the process. */
export const DEFAULT_BROWSE_CONCURRENCY = 256;

export const browseActorArgsSchema = z.object({
  /** Calls served at once (the actor's maxConcurrency): they wait on fetches and the reading model. */
  maxConcurrency: z.number().int().min(1).default(DEFAULT_BROWSE_CONCURRENCY),
  /** Hosts and networks allowed although not public (the sandbox web on loopback). */
  allowHosts: z.array(z.string().min(1)).default([]),
  allowCidrs: z.array(z.string().min(1)).default([]),
  fetch: z
    .object({
      connectTimeoutMs: z.number().int().positive().optional(),
      readTimeoutMs: z.number().int().positive().optional(),
      totalTimeoutMs: z.number().int().positive().optional(),
      maxRedirects: z.number().int().min(0).optional(),
      maxBytes: z.number().int().positive().optional(),
    })
    .default({}),
  /** An OpenAI-compatible reading model; without it the extractive reader reads. */
  reader: z
    .object({
      baseUrl: z.string().url(),
      model: z.string().min(1),
      apiKeyEnv: z.string().min(1).optional(),
      maxPages: z.number().int().min(1).optional(),
      timeoutMs: z.number().int().positive().optional(),
      maxConcurrent: z.number().int().min(1).optional(),
    })
    .optional(),
  pageChars: z.number().int().min(100).default(DEFAULT_PAGE_CHARS),
  pageCacheEntries: z.number().int().min(1).default(2_048),
  /** Fetches in flight per process (the document store is shared by this process's BrowseActors). */
  maxConcurrentFetches: z.number().int().min(1).default(256),
  memory: z
    .object({ maxTrajectories: z.number().int().min(1), maxCharsPerTrajectory: z.number().int().min(100) })
    .default({ maxTrajectories: 4_096, maxCharsPerTrajectory: 16_000 }),
});

export type BrowseActorArgs = z.input<typeof browseActorArgsSchema>;

function parseArgs(raw: unknown): z.output<typeof browseActorArgsSchema> {
  const parsed = browseActorArgsSchema.safeParse(raw ?? {});
  if (!parsed.success)
    throw new DrError('BROWSE_CONFIG', `bad BrowseActor args: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

interface SharedStore {
  store: DocumentStore;
  users: number;
}

/** Document stores shared by the BrowseActors of this process that have the same fetch configuration, so a
 * page browsed by trajectories routed to different actors is fetched and extracted once. */
const stores = new Map<string, SharedStore>();

function acquireStore(args: z.output<typeof browseActorArgsSchema>): {
  store: DocumentStore;
  release(): void;
} {
  const { allowHosts, allowCidrs, fetch, pageChars, pageCacheEntries, maxConcurrentFetches } = args;
  const key = JSON.stringify([
    allowHosts,
    allowCidrs,
    fetch,
    pageChars,
    pageCacheEntries,
    maxConcurrentFetches,
  ]);
  let shared = stores.get(key);
  if (shared === undefined) {
    const fetcher = new PageFetcher(new UrlPolicy({ allowHosts, allowCidrs }), fetch);
    shared = {
      store: new DocumentStore({ fetcher, pageChars, cacheEntries: pageCacheEntries, maxConcurrentFetches }),
      users: 0,
    };
    stores.set(key, shared);
  }
  shared.users += 1;
  const entry = shared;
  let released = false;
  return {
    store: entry.store,
    release() {
      if (released) return;
      released = true;
      entry.users -= 1;
      if (entry.users === 0) {
        stores.delete(key);
        entry.store.close();
      }
    },
  };
}

export const browseActor: ActorFactory<BrowseActorArgs> = (rawArgs, ctx) => {
  const args = parseArgs(rawArgs);
  const readerKey = args.reader?.apiKeyEnv === undefined ? undefined : process.env[args.reader.apiKeyEnv];
  const reader =
    args.reader === undefined
      ? undefined
      : new LlmReader({
          baseUrl: args.reader.baseUrl,
          model: args.reader.model,
          ...(readerKey === undefined ? {} : { apiKey: readerKey }),
          ...(args.reader.maxPages === undefined ? {} : { maxPages: args.reader.maxPages }),
          ...(args.reader.timeoutMs === undefined ? {} : { timeoutMs: args.reader.timeoutMs }),
          ...(args.reader.maxConcurrent === undefined ? {} : { maxConcurrent: args.reader.maxConcurrent }),
        });
  const documents = acquireStore(args);
  const service = new BrowseService({
    documents: documents.store,
    ...(reader === undefined ? {} : { reader }),
    memory: new TrajectoryMemory(args.memory),
    log: ctx.log,
    metrics: browseMetrics(ctx.self.name),
  });

  return {
    maxConcurrency: args.maxConcurrency,
    async receive(raw): Promise<BrowseActorReply> {
      const parsed = browseMessageSchema.safeParse(raw);
      if (!parsed.success) {
        return {
          v: BROWSE_PROTOCOL_VERSION,
          type: 'browse_webpage.reply',
          results: [],
          error: {
            code: 'BROWSE_BAD_REQUEST',
            message: `malformed browse message: ${z.prettifyError(parsed.error)}`,
          },
        };
      }
      const msg = parsed.data;
      switch (msg.type) {
        case 'browse_webpage':
          return service.browse(msg);
        case 'browse.forget':
          return {
            v: BROWSE_PROTOCOL_VERSION,
            type: 'browse.forget.reply',
            forgotten: service.forget(msg.trajectoryId),
          };
        case 'browse.stats':
          return { v: BROWSE_PROTOCOL_VERSION, type: 'browse.stats.reply', ...service.stats() };
      }
    },
    stop() {
      documents.release();
    },
  };
};
