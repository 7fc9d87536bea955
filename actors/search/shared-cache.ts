/**
 * The search cache owned by the head: the `search-cache` actor holds one SQLite file (search-cache.ts) in
 * the head's data folder, and each search shard reaches it through `RemoteSearchCache`. Why the head: it is
 * the node whose loss ends the cluster anyway (its journal and job manager live there), so an entry outlives
 * any shard's re-spawn or worker's loss, without a shared filesystem (SQLite over NFS is unsafe) or a
 * replication protocol. A lookup costs one ask on the cluster's wires (~1 ms) against a search API's
 * hundreds; if the head's cache does not answer, the shard searches uncached rather than fail the call.
 */
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import type { Logger } from '../../config/log.ts';
import type { ActorFactory } from '../../runtime/actor.ts';
import {
  SEARCH_CACHE_ACTOR,
  searchCacheMessageSchema,
  type SearchCacheMessage,
  type SearchCacheReply,
  type SearchHit,
} from './protocol.ts';
import { DEFAULT_CACHE_TTL_MS, SearchCache, type SearchCacheStore } from './search-cache.ts';

export interface SearchCacheActorArgs {
  /** The SQLite file, or ':memory:'. */
  path: string;
  ttlMs?: number;
}

const PURGE_INTERVAL_MS = 3_600_000;
/** A lookup slower than this counts as a miss: the cache must never hold up a search. */
const LOOKUP_TIMEOUT_MS = 5_000;

export const searchCacheActor: ActorFactory<SearchCacheActorArgs> = (args) => {
  const cache = new SearchCache({ path: args.path, ttlMs: args.ttlMs ?? DEFAULT_CACHE_TTL_MS });
  cache.purgeExpired();
  const purge = setInterval(() => cache.purgeExpired(), PURGE_INTERVAL_MS);
  purge.unref();
  return {
    receive(raw): SearchCacheReply {
      const parsed = searchCacheMessageSchema.safeParse(raw);
      if (!parsed.success)
        return {
          error: {
            code: 'SEARCH_BAD_REQUEST',
            message: `malformed search-cache message: ${z.prettifyError(parsed.error)}`,
          },
        };
      const msg = parsed.data;
      switch (msg.type) {
        case 'search-cache.get':
          return { hits: cache.get(msg.key) ?? null };
        case 'search-cache.put':
          return { stored: cache.put(msg.key, msg.hits) };
        case 'search-cache.size':
          return { entries: cache.size() };
      }
    },
    stop(): void {
      clearInterval(purge);
      cache.close();
    },
  };
};

type Ask = (target: string, msg: SearchCacheMessage, options: { timeoutMs: number }) => Promise<unknown>;

/** A search shard's view of the head's cache. Failures read as misses and unsaved entries, logged. */
export class RemoteSearchCache implements SearchCacheStore {
  constructor(
    private readonly ask: Ask,
    private readonly log: Logger,
    private readonly actor: string = SEARCH_CACHE_ACTOR,
  ) {}

  async get(key: string): Promise<SearchHit[] | undefined> {
    const reply = await this.call({ v: 1, type: 'search-cache.get', key });
    return reply !== undefined && 'hits' in reply && reply.hits !== null ? reply.hits : undefined;
  }

  async put(key: string, hits: SearchHit[]): Promise<boolean> {
    if (hits.length === 0) return false;
    const reply = await this.call({ v: 1, type: 'search-cache.put', key, hits });
    return reply !== undefined && 'stored' in reply && reply.stored;
  }

  async size(): Promise<number> {
    const reply = await this.call({ v: 1, type: 'search-cache.size' });
    return reply !== undefined && 'entries' in reply ? reply.entries : 0;
  }

  private async call(msg: SearchCacheMessage): Promise<SearchCacheReply | undefined> {
    try {
      const reply = (await this.ask(this.actor, msg, { timeoutMs: LOOKUP_TIMEOUT_MS })) as SearchCacheReply;
      if ('error' in reply) throw new DrError(reply.error.code, reply.error.message);
      return reply;
    } catch (err) {
      this.log.warn(
        { cache: this.actor, op: msg.type, err: (err as Error).message },
        'the head search cache did not answer; going on uncached',
      );
      return undefined;
    }
  }
}
