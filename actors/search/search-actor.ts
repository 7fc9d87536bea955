/**
 * The SearchActor kind: one shard of the cluster-wide search cache plus the backend calls for the keys it
 * owns. Spawned as `search/<shard>` with SearchActorArgs; callers route with search-routing.ts. API keys
 * come from the environment of the node it runs on (`apiKeyEnv` names the variable), never from the args,
 * which travel over the wire and appear in logs.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import type { ActorFactory } from '../../runtime/actor.ts';
import { SANDBOX_DEFAULT_API_KEY } from '../sandbox/server.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import type { SearchReply } from './protocol.ts';
import { SEARCH_PROTOCOL_VERSION, searchMessageSchema } from './protocol.ts';
import { KeyedRateLimiters } from './rate-limiter.ts';
import { createSearchBackend } from './search-backends.ts';
import { DEFAULT_CACHE_TTL_MS, SearchCache } from './search-cache.ts';
import { SearchService } from './search-service.ts';
import { RemoteSearchCache } from './shared-cache.ts';
import { searchMetrics } from './tool-metrics.ts';

/** What an actor shard takes at once unless its args say otherwise; the rate limiter's `maxConcurrent`
 * still caps the requests to the search API. */
export const DEFAULT_SEARCH_CONCURRENCY = 256;

export const searchActorArgsSchema = z.object({
  shard: z.number().int().min(0),
  /** Calls served at once (the actor's maxConcurrency): each waits on the network, not on the CPU. */
  maxConcurrency: z.number().int().min(1).default(DEFAULT_SEARCH_CONCURRENCY),
  backend: z.object({
    /** `sandbox`: the Serper protocol of a sandbox web (actors/sandbox) at `baseUrl`, with its public key. */
    kind: z.enum(['serper', 'bing', 'searxng', 'sandbox']),
    baseUrl: z.string().url().optional(),
    /** Environment variable holding the API key, e.g. SERPER_API_KEY. */
    apiKeyEnv: z.string().min(1).optional(),
    timeoutMs: z.number().int().positive().default(15_000),
  }),
  /** Folder of the cache files (one `search-cache-<shard>.sqlite` per shard); ':memory:' for none. */
  cacheDir: z.string().min(1),
  /** The head's cache actor (shared-cache.ts) to use instead of a file of this shard's own. */
  cacheActor: z.string().min(1).optional(),
  cacheTtlMs: z.number().int().positive().default(DEFAULT_CACHE_TTL_MS),
  rateLimit: z
    .object({
      perSecond: z.number().positive(),
      burst: z.number().int().min(1),
      maxConcurrent: z.number().int().min(1),
    })
    .default({ perSecond: 50, burst: 50, maxConcurrent: 32 }),
  retry: z
    .object({
      maxAttempts: z.number().int().min(1),
      baseDelayMs: z.number().nonnegative(),
      maxDelayMs: z.number().nonnegative(),
      maxRetryAfterMs: z.number().nonnegative(),
    })
    .default({ maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterMs: 60_000 }),
  breaker: z
    .object({ failureThreshold: z.number().int().min(1), cooldownMs: z.number().int().positive() })
    .default({ failureThreshold: 20, cooldownMs: 30_000 }),
});

export type SearchActorArgs = z.input<typeof searchActorArgsSchema>;

const DEFAULT_KEY_ENV = {
  serper: 'SERPER_API_KEY',
  bing: 'BING_SEARCH_API_KEY',
  searxng: undefined,
  sandbox: undefined,
} as const;

const PURGE_INTERVAL_MS = 3_600_000;

/** Shared by every SearchActor in this process, so actors using the same API key share its budget. */
const limiters = new KeyedRateLimiters();

function parseArgs(raw: unknown): z.output<typeof searchActorArgsSchema> {
  const parsed = searchActorArgsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new DrError('SEARCH_CONFIG', `bad SearchActor args: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

export const searchActor: ActorFactory<SearchActorArgs> = (rawArgs, ctx) => {
  const args = parseArgs(rawArgs);
  const keyEnv = args.backend.apiKeyEnv ?? DEFAULT_KEY_ENV[args.backend.kind];
  const sandbox = args.backend.kind === 'sandbox';
  const apiKey = sandbox ? SANDBOX_DEFAULT_API_KEY : keyEnv === undefined ? undefined : process.env[keyEnv];
  if (sandbox && args.backend.baseUrl === undefined)
    throw new DrError('SEARCH_CONFIG', 'the sandbox backend needs the baseUrl of the sandbox web');
  if (keyEnv !== undefined && (apiKey === undefined || apiKey === '')) {
    throw new DrError(
      'SEARCH_CONFIG',
      `the ${args.backend.kind} backend needs its API key in $${keyEnv} on node ${ctx.rank}`,
    );
  }
  const backend = createSearchBackend({
    kind: args.backend.kind === 'sandbox' ? 'serper' : args.backend.kind,
    ...(args.backend.baseUrl === undefined ? {} : { baseUrl: args.backend.baseUrl }),
    ...(apiKey === undefined ? {} : { apiKey }),
    timeoutMs: args.backend.timeoutMs,
    maxSockets: args.rateLimit.maxConcurrent,
  });
  const local =
    args.cacheActor === undefined
      ? new SearchCache({
          path:
            args.cacheDir === ':memory:'
              ? ':memory:'
              : join(args.cacheDir, `search-cache-${args.shard}.sqlite`),
          ttlMs: args.cacheTtlMs,
        })
      : undefined;
  const cache =
    local ??
    new RemoteSearchCache((target, msg, options) => ctx.ask(target, msg, options), ctx.log, args.cacheActor);
  const limiterKey = `${args.backend.kind}:${(sandbox ? args.backend.baseUrl : apiKey) ?? args.backend.baseUrl ?? ''}`;
  const service = new SearchService({
    backend,
    cache,
    limiter: limiters.forKey(limiterKey, args.rateLimit),
    breaker: new CircuitBreaker(args.backend.kind, args.breaker),
    retry: args.retry,
    log: ctx.log,
    metrics: searchMetrics(ctx.self.name, args.backend.kind),
  });
  local?.purgeExpired();
  // A week-long run would otherwise keep every expired entry on disk until the next restart.
  const purge = setInterval(() => local?.purgeExpired(), PURGE_INTERVAL_MS);
  purge.unref();

  return {
    maxConcurrency: args.maxConcurrency,
    async receive(raw): Promise<SearchReply> {
      const parsed = searchMessageSchema.safeParse(raw);
      if (!parsed.success) {
        return {
          v: SEARCH_PROTOCOL_VERSION,
          type: 'web_search.reply',
          results: [],
          error: {
            code: 'SEARCH_BAD_REQUEST',
            message: `malformed search message: ${z.prettifyError(parsed.error)}`,
          },
        };
      }
      const msg = parsed.data;
      if (msg.type === 'search.stats')
        return { v: SEARCH_PROTOCOL_VERSION, type: 'search.stats.reply', ...(await service.stats()) };
      return service.webSearch(msg);
    },
    stop() {
      clearInterval(purge);
      local?.close();
    },
  };
};
