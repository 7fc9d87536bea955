/**
 * The persistent search cache of one shard: an SQLite file (better-sqlite3, WAL) mapping a cache key to its
 * result list and expiry time. Entries survive restarts; expired entries read as misses and are purged;
 * empty result lists are refused, so a transient "nothing found" never sticks for a week.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import type { SearchHit } from './protocol.ts';

export const DEFAULT_CACHE_TTL_MS = 7 * 24 * 3600 * 1000;

export interface SearchCacheOptions {
  /** File path, or ':memory:' for a cache that dies with the process. */
  path: string;
  ttlMs?: number;
  /** Injected clock (ms since epoch); TTL is measured on it. */
  now?: () => number;
}

const storedHitsSchema = z.array(z.object({ title: z.string(), url: z.string(), snippet: z.string() }));

/** What a SearchService keeps its entries in: this file, or the head's cache actor (shared-cache.ts). */
export interface SearchCacheStore {
  get(key: string): SearchHit[] | undefined | Promise<SearchHit[] | undefined>;
  put(key: string, hits: SearchHit[]): boolean | Promise<boolean>;
  size(): number | Promise<number>;
}

export class SearchCache implements SearchCacheStore {
  private readonly db: Database.Database;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly getStmt: Database.Statement<[string, number], { hits: string }>;
  private readonly putStmt: Database.Statement<[string, string, number, number]>;
  private readonly deleteExpiredStmt: Database.Statement<[number]>;
  private readonly countStmt: Database.Statement<[number], { n: number }>;

  constructor(options: SearchCacheOptions) {
    this.ttlMs = options.ttlMs ?? DEFAULT_CACHE_TTL_MS;
    this.now = options.now ?? Date.now;
    if (!(this.ttlMs > 0))
      throw new DrError('SEARCH_CONFIG', `search cache TTL must be positive, got ${this.ttlMs} ms`);
    try {
      if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
      this.db = new Database(options.path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS search_cache (
           key TEXT PRIMARY KEY,
           hits TEXT NOT NULL,
           stored_at INTEGER NOT NULL,
           expires_at INTEGER NOT NULL
         ) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS search_cache_expiry ON search_cache (expires_at);`,
      );
    } catch (err) {
      throw new DrError(
        'SEARCH_CACHE_OPEN',
        `cannot open the search cache at ${options.path}: ${(err as Error).message}; check search.cacheDir is writable`,
        { cause: err },
      );
    }
    this.getStmt = this.db.prepare('SELECT hits FROM search_cache WHERE key = ? AND expires_at > ?');
    this.putStmt = this.db.prepare(
      `INSERT INTO search_cache (key, hits, stored_at, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET hits = excluded.hits, stored_at = excluded.stored_at, expires_at = excluded.expires_at`,
    );
    this.deleteExpiredStmt = this.db.prepare('DELETE FROM search_cache WHERE expires_at <= ?');
    this.countStmt = this.db.prepare('SELECT COUNT(*) AS n FROM search_cache WHERE expires_at > ?');
  }

  /** The cached hits, or undefined when absent, expired or unreadable. */
  get(key: string): SearchHit[] | undefined {
    const row = this.getStmt.get(key, this.now());
    if (row === undefined) return undefined;
    try {
      const parsed = storedHitsSchema.safeParse(JSON.parse(row.hits));
      return parsed.success && parsed.data.length > 0 ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stores a non-empty result list; returns false (and stores nothing) for an empty one. */
  put(key: string, hits: SearchHit[]): boolean {
    if (hits.length === 0) return false;
    const now = this.now();
    this.putStmt.run(key, JSON.stringify(hits), now, now + this.ttlMs);
    return true;
  }

  /** Removes expired entries; returns how many. */
  purgeExpired(): number {
    return this.deleteExpiredStmt.run(this.now()).changes;
  }

  /** Live (unexpired) entries. */
  size(): number {
    return this.countStmt.get(this.now())?.n ?? 0;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
