/**
 * `npm run bench:tools`: the SearchActor and BrowseActor on the sandbox web with injected heavy-tailed
 * latency, through a real cluster: this process is the head (and hosts the sandbox servers); the tool actors
 * run on worker processes. Calls are plain asks to tool actors with maxConcurrency (default 256), the way
 * rollouts call tools.
 *
 *   cached search   the same queries asked again (cache hits) vs their first, uncached asks (the baseline,
 *                   same concurrency, same run): throughput and p50/p99 latency, and the ratio.
 *   fan-out         4,096 tool calls at once, half web_search and half browse_webpage, shaped like one
 *                   DeepResearcher turn (GRPO groups: rollouts of one question search with a few query
 *                   variants and open a few pages). Its makespan beside the lower bound set by the injected
 *                   latency under the configured concurrency: per backend (search API, web pages),
 *                   max(slowest injected delay, sum of injected delays / concurrency), the larger of the two.
 *                   The delays are replayed exactly from the sandbox's seeded injector (one stream per
 *                   server, reset before the phase), and checked against the server's own total.
 *
 * Placement: search actors on worker 1, browse actors on the last worker (all BrowseActors of a process
 * share one document store, so each page is fetched and extracted once).
 *
 * Prediction, written before the first run (then with lognormal median 300 ms, sigma 1, cap 8 s): cached
 * search through the cluster costs an ask, its ack and a tell back (the deferred replies of then; now one
 * ask) (~0.3 ms each on loopback), so ~5-10k calls/s at 64 in flight with p99 under 20 ms, against ~130/s
 * uncached (64 / ~0.5 s mean injected latency): a ratio near 50x. The fan-out is bounded by the slowest
 * draw (~5 s); the extraction of ~512 distinct pages (~12 ms of CPU each) overlaps the waiting, so a
 * makespan within ~1.1x. What was measured is in actors/search/README.md.
 *
 * Usage: npm run bench:tools [-- --groups 128 --group-size 16 --variants 4 --concurrency 256
 *          --latency lognormal:800:1.0:15000 --workers 2 --search-shards 4 --browse-shards 8 --seed 7]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { detectResources } from '../cluster/resources.ts';
import { startWorker, type NodeProcess } from '../runtime/testing/node-process.ts';
import { startLoopbackNode } from '../runtime/testing/loopback-node.ts';
import { browseActorFor } from '../actors/browse/browse-routing.ts';
import { browseRequest, type BrowseReply, type BrowseStatsReply } from '../actors/browse/protocol.ts';
import { Injector, parseLatencySpec, type InjectionConfig } from '../actors/sandbox/injection.ts';
import {
  buildSite,
  generateWorld,
  startSandboxServer,
  type SandboxServer,
  type SitePage,
} from '../actors/sandbox/index.ts';
import { webSearchRequest, type SearchStatsReply, type WebSearchReply } from '../actors/search/protocol.ts';
import { askWebSearch } from '../actors/search/search-routing.ts';
import { kinds } from './bench-tools-kinds.ts';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: '7' },
    size: { type: 'string', default: '1000' },
    groups: { type: 'string', default: '128' },
    'group-size': { type: 'string', default: '16' },
    variants: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '256' },
    latency: { type: 'string', default: 'lognormal:800:1.0:15000' },
    workers: { type: 'string', default: '2' },
    'search-shards': { type: 'string', default: '4' },
    'browse-shards': { type: 'string', default: '8' },
    'cached-queries': { type: 'string', default: '256' },
    'cached-calls': { type: 'string', default: '4000' },
    'cached-concurrency': { type: 'string', default: '64' },
  },
});
const num = (name: keyof typeof opts): number => {
  const n = Number(opts[name]);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`--${name} must be a positive number, got ${opts[name]}`);
  return n;
};
const SEED = num('seed');
const GROUPS = num('groups');
const GROUP_SIZE = num('group-size');
const VARIANTS = num('variants');
const CONCURRENCY = num('concurrency');
const WORKERS = num('workers');
const SEARCH_SHARDS = num('search-shards');
const BROWSE_SHARDS = num('browse-shards');
const LATENCY = parseLatencySpec(opts.latency as string);
const CALL_TIMEOUT_MS = 120_000;
const KEY_ENV = 'DR_BENCH_SANDBOX_KEY';
// Lenient failure detection: this measures the tool actors, not the failure detector, and on a small shared
// machine a process busy with a 4,096-call burst can miss heartbeats for seconds (then its link is dropped
// and the asks in flight on it fail with ACTOR_NODE_DOWN). The test helper's defaults are sub-second.
const HEARTBEAT_MS = { heartbeatIntervalMs: 1_000, suspectAfterMs: 15_000, downAfterMs: 30_000 };
const HEARTBEAT = [
  '--heartbeat-ms',
  String(HEARTBEAT_MS.heartbeatIntervalMs),
  '--suspect-after-ms',
  String(HEARTBEAT_MS.suspectAfterMs),
  '--down-after-ms',
  String(HEARTBEAT_MS.downAfterMs),
];
const KINDS_MODULE = fileURLToPath(new URL('./bench-tools-kinds.ts', import.meta.url));

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

interface LoadResult {
  calls: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Closed loop: `concurrency` callers each run calls back to back until `calls` are done. */
async function closedLoop(
  calls: number,
  concurrency: number,
  call: (i: number) => Promise<void>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < calls) {
        const i = next++;
        const t = performance.now();
        await call(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    calls,
    seconds,
    perSecond: calls / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
  };
}

/** The delays the sandbox injected for its first `n` requests since `setInjection(config)`. */
function replayDelays(config: InjectionConfig, n: number): number[] {
  const injector = new Injector(config);
  return Array.from({ length: n }, () => injector.decide('/').delayMs);
}

interface Bound {
  sumMs: number;
  maxMs: number;
  /** max(slowest, sum / concurrency): no schedule can beat it. */
  boundMs: number;
  /** The makespan of an ideal zero-overhead system: all requests ready at once, `concurrency` slots,
   * served first come first served in the order the delays were drawn. */
  fifoMs: number;
}

function boundFor(delays: number[], concurrency: number): Bound {
  const sumMs = delays.reduce((a, b) => a + b, 0);
  const maxMs = delays.reduce((a, b) => Math.max(a, b), 0);
  const slots = new Array<number>(Math.min(concurrency, Math.max(1, delays.length))).fill(0);
  for (const d of delays) {
    let earliest = 0;
    for (let i = 1; i < slots.length; i++)
      if ((slots[i] as number) < (slots[earliest] as number)) earliest = i;
    slots[earliest] = (slots[earliest] as number) + d;
  }
  return { sumMs, maxMs, boundMs: Math.max(maxMs, sumMs / concurrency), fifoMs: Math.max(...slots) };
}

const f1 = (n: number): string => n.toFixed(1);

async function main(): Promise<void> {
  const cores = (await detectResources({ gpuIds: [] })).cpus;
  console.log(
    `tool benchmark: head + ${WORKERS} worker process(es) on loopback, node ${process.version}, ${cores} CPUs`,
  );
  console.log(`latency ${opts.latency}, concurrency ${CONCURRENCY} per backend, seed ${SEED}`);

  const world = generateWorld({ seed: SEED, size: num('size') });
  const site = await buildSite(world);
  const searchWeb: SandboxServer = await startSandboxServer({ world, site });
  const pageWeb: SandboxServer = await startSandboxServer({ world, site });
  const cacheDir = mkdtempSync(join(tmpdir(), 'bench-tools-'));
  const head = await startLoopbackNode({ rank: 0, masterPort: 0, kinds, flags: HEARTBEAT_MS });
  const workers: NodeProcess[] = [];
  try {
    for (let rank = 1; rank <= WORKERS; rank++) {
      workers.push(
        await startWorker(head.node.port, rank, ['--kinds', KINDS_MODULE, ...HEARTBEAT], {
          [KEY_ENV]: searchWeb.apiKey,
        }),
      );
    }
    for (let shard = 0; shard < SEARCH_SHARDS; shard++) {
      await head.spawn({
        kind: 'search',
        name: `search/${shard}`,
        placement: { kind: 'rank', rank: 1 },
        args: {
          shard,
          backend: { kind: 'serper', baseUrl: searchWeb.url, apiKeyEnv: KEY_ENV, timeoutMs: CALL_TIMEOUT_MS },
          cacheDir,
          // The search API's concurrency is what the bound is computed for; the rate limit is set so it never binds.
          rateLimit: { perSecond: 1e6, burst: 1e6, maxConcurrent: CONCURRENCY },
        },
      });
    }
    for (let shard = 0; shard < BROWSE_SHARDS; shard++) {
      await head.spawn({
        kind: 'browse',
        name: `browse/${shard}`,
        // All BrowseActors in one process share one document store, so each page is fetched and extracted
        // once; the search actors run in the other worker (with --workers 2).
        placement: { kind: 'rank', rank: WORKERS },
        args: {
          allowCidrs: ['127.0.0.1/32'],
          fetch: { readTimeoutMs: CALL_TIMEOUT_MS, totalTimeoutMs: CALL_TIMEOUT_MS },
          maxConcurrentFetches: CONCURRENCY,
        },
      });
    }
    const search = (queries: string[]) =>
      askWebSearch(
        (name, msg) => head.ask<WebSearchReply>(name, msg, { timeoutMs: CALL_TIMEOUT_MS }),
        webSearchRequest(queries),
        SEARCH_SHARDS,
      );

    // Pages that answer normally (the sandbox also has slow, broken and rate-limited ones, which would
    // measure the failure paths, not the fan-out).
    const okPages = site.indexed.filter((p: SitePage) => p.behaviour === 'ok');
    const topic = (p: SitePage) => p.title.replace(/\s+-\s+[^-]+$/, '');

    // ---- cached search ------------------------------------------------------------------------------
    const injection: InjectionConfig = { seed: SEED, rules: [{ latency: LATENCY }] };
    searchWeb.setInjection(injection);
    const cachedQueries = okPages.slice(0, num('cached-queries')).map((p) => `${topic(p)} overview`);
    const concurrencyCached = num('cached-concurrency');
    const uncached = await closedLoop(cachedQueries.length, concurrencyCached, async (i) => {
      await search([cachedQueries[i] as string]);
    });
    const cached = await closedLoop(num('cached-calls'), concurrencyCached, async (i) => {
      const reply = await search([cachedQueries[i % cachedQueries.length] as string]);
      if (reply.results[0]?.cached !== true)
        throw new Error(`expected a cache hit: ${JSON.stringify(reply.results[0]).slice(0, 300)}`);
    });
    console.log(`\ncached search (${concurrencyCached} in flight, through the cluster)`);
    console.log(
      `  uncached (baseline): ${uncached.calls} calls  ${f1(uncached.perSecond)}/s  p50 ${f1(uncached.p50Ms)} ms  p99 ${f1(uncached.p99Ms)} ms`,
    );
    console.log(
      `  cached:              ${cached.calls} calls  ${f1(cached.perSecond)}/s  p50 ${f1(cached.p50Ms)} ms  p99 ${f1(cached.p99Ms)} ms`,
    );
    console.log(`  throughput ratio cached/uncached: ${f1(cached.perSecond / uncached.perSecond)}x`);

    // ---- fan-out --------------------------------------------------------------------------------------
    const fanPages = okPages.slice(num('cached-queries'));
    if (fanPages.length < GROUPS * VARIANTS)
      throw new Error(`the sandbox has ${fanPages.length} ok pages; need ${GROUPS * VARIANTS}`);
    searchWeb.setInjection(injection);
    pageWeb.setInjection(injection);
    searchWeb.resetStats();
    pageWeb.resetStats();
    const suffixes = [
      'history',
      'facts',
      'founded',
      'notable people',
      'location',
      'timeline',
      'overview of',
      'biography',
    ];
    const calls: Array<() => Promise<'ok' | 'error'>> = [];
    for (let g = 0; g < GROUPS; g++) {
      const pages = fanPages.slice(g * VARIANTS, (g + 1) * VARIANTS);
      const subject = topic(pages[0] as SitePage);
      const question = `What is known about ${subject}?`;
      for (let r = 0; r < GROUP_SIZE; r++) {
        const query = `${subject} ${suffixes[(r % VARIANTS) % suffixes.length]}`;
        const page = pages[r % VARIANTS] as SitePage;
        const trajectoryId = `q${g}/r${r}`;
        calls.push(async () => {
          const reply = await search([query]);
          return reply.results[0]?.error === undefined && (reply.results[0]?.hits.length ?? 0) > 0
            ? 'ok'
            : 'error';
        });
        calls.push(async () => {
          const reply = await head.ask<BrowseReply>(
            browseActorFor(trajectoryId, BROWSE_SHARDS),
            browseRequest([`${pageWeb.url}${page.path}`], question, trajectoryId, query),
            { timeoutMs: CALL_TIMEOUT_MS },
          );
          return reply.results[0]?.status === 'ok' ? 'ok' : 'error';
        });
      }
    }
    const started = performance.now();
    const outcomes = await Promise.all(calls.map((c) => c().catch(() => 'error' as const)));
    const makespanMs = performance.now() - started;

    const searchRequests = searchWeb.stats().searchQueries;
    const pageRequests = pageWeb.stats().byRoute.page;
    const searchBound = boundFor(replayDelays(injection, searchRequests), CONCURRENCY);
    const pageBound = boundFor(replayDelays(injection, pageRequests), CONCURRENCY);
    const check = (name: string, replayed: number, server: SandboxServer) => {
      const reported = server.stats().injected.delayMsTotal;
      if (Math.abs(replayed - reported) > 1)
        throw new Error(`${name}: replayed delays ${replayed} ms but the server injected ${reported} ms`);
    };
    check('search', searchBound.sumMs, searchWeb);
    check('pages', pageBound.sumMs, pageWeb);
    const boundMs = Math.max(searchBound.boundMs, pageBound.boundMs);
    const errors = outcomes.filter((o) => o === 'error').length;

    const searchStats = await Promise.all(
      Array.from({ length: SEARCH_SHARDS }, (_, s) =>
        head.ask<SearchStatsReply>(`search/${s}`, { v: 1, type: 'search.stats' }),
      ),
    );
    const browseStats = await Promise.all([
      head.ask<BrowseStatsReply>('browse/0', { v: 1, type: 'browse.stats' }),
    ]);
    console.log(
      `\nfan-out: ${calls.length} tool calls at once (${GROUPS} questions x ${GROUP_SIZE} rollouts, ${VARIANTS} query/page variants each)`,
    );
    console.log(
      `  search API requests ${searchRequests} (saved by cache/in-flight sharing: ${searchStats.reduce((a, s) => a + s.savedApiCalls, 0)}), ` +
        `page fetches ${pageRequests} (document store hits: ${browseStats.reduce((a, s) => a + s.pageCacheHits, 0)})`,
    );
    for (const [name, b] of [
      ['search API', searchBound],
      ['web pages ', pageBound],
    ] as const) {
      console.log(
        `  ${name}: injected sum ${f1(b.sumMs / 1000)} s, slowest ${f1(b.maxMs)} ms -> bound ${f1(b.boundMs)} ms, ideal FIFO schedule ${f1(b.fifoMs)} ms`,
      );
    }
    const fifoMs = Math.max(searchBound.fifoMs, pageBound.fifoMs);
    console.log(`  makespan ${f1(makespanMs)} ms   failed calls ${errors}`);
    console.log(
      `  lower bound ${f1(boundMs)} ms  -> ratio ${(makespanMs / boundMs).toFixed(3)} (target <= 1.2)`,
    );
    console.log(`  ideal FIFO schedule ${f1(fifoMs)} ms  -> ratio ${(makespanMs / fifoMs).toFixed(3)}`);
  } finally {
    for (const w of workers) await w.kill('SIGTERM');
    await head.stop();
    await searchWeb.close();
    await pageWeb.close();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

await main();
