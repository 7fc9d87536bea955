/**
 * `dr sandbox [serve]`: run the sandbox web on its own (pages, Serper- and Bing-shaped search, injection).
 * `dr sandbox export`: write the question splits as parquet files in the DeepResearcher row layout.
 */
import type { Command } from 'commander';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DrError, isDrError } from '../../config/errors.ts';
import { formatBenchReport, runSandboxBench } from '../../actors/sandbox/sandbox-bench.ts';
import {
  generateQuestions,
  generateWorld,
  parseInjection,
  parseLatencySpec,
  SPLITS,
  startSandboxServer,
  toRow,
  writeQuestionsParquet,
  type InjectionConfig,
} from '../../actors/sandbox/index.ts';

interface WorldFlags {
  seed: string;
  size: string;
}

interface ServeFlags extends WorldFlags {
  port: string;
  host: string;
  publicUrl?: string;
  apiKey: string;
  latency?: string;
  injectPath?: string;
  fail500?: string;
  fail429?: string;
  failTimeout?: string;
  rateLimit?: string;
  retryAfter?: string;
  timeoutHoldMs?: string;
  injectionSeed?: string;
  injection?: string;
  slowPageMs?: string;
  json?: boolean;
}

interface BenchFlags extends WorldFlags {
  concurrency: string;
  latency: string;
  json?: boolean;
}

interface ExportFlags extends WorldFlags {
  out: string;
  meta?: boolean;
}

function int(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n))
    throw new DrError('SANDBOX_BAD_OPTIONS', `--${name} must be an integer, got "${text}"`);
  return n;
}

function rate(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!(n >= 0 && n <= 1))
    throw new DrError('SANDBOX_BAD_OPTIONS', `--${name} must be a rate in [0, 1], got "${text}"`);
  return n;
}

/** Injection from a JSON file, or one rule built from the flags (none when no flag is given). */
export function injectionFromFlags(f: ServeFlags): InjectionConfig {
  const flagged = [f.latency, f.fail500, f.fail429, f.failTimeout, f.rateLimit, f.injectPath].some(
    (x) => x !== undefined,
  );
  if (f.injection !== undefined) {
    if (flagged)
      throw new DrError(
        'SANDBOX_BAD_OPTIONS',
        '--injection FILE replaces the --latency/--fail-* flags; give one or the other',
      );
    return parseInjection(JSON.parse(readFileSync(f.injection, 'utf8')));
  }
  const config: InjectionConfig = {
    ...(f.injectionSeed !== undefined ? { seed: int('injection-seed', f.injectionSeed) } : {}),
    ...(f.retryAfter !== undefined ? { retryAfterS: int('retry-after', f.retryAfter) } : {}),
    ...(f.timeoutHoldMs !== undefined ? { timeoutHoldMs: int('timeout-hold-ms', f.timeoutHoldMs) } : {}),
  };
  if (flagged) {
    config.rules = [
      {
        ...(f.injectPath !== undefined ? { pathPrefix: f.injectPath } : {}),
        ...(f.latency !== undefined ? { latency: parseLatencySpec(f.latency) } : {}),
        ...(f.rateLimit !== undefined ? { rateLimit: parseRateLimit(f.rateLimit) } : {}),
        faults: {
          error500: rate('fail-500', f.fail500),
          rateLimit429: rate('fail-429', f.fail429),
          timeout: rate('fail-timeout', f.failTimeout),
        },
      },
    ];
  }
  return parseInjection(config);
}

/** `PER_SECOND[:BURST]`, e.g. `200` or `200:50`. */
function parseRateLimit(text: string): { perSecond: number; burst?: number } {
  const [perSecond, burst] = text.split(':').map(Number);
  if (
    perSecond === undefined ||
    !(perSecond > 0) ||
    (burst !== undefined && !(Number.isInteger(burst) && burst >= 1))
  ) {
    throw new DrError(
      'SANDBOX_BAD_OPTIONS',
      `--rate-limit takes PER_SECOND[:BURST], e.g. 200:50; got "${text}"`,
    );
  }
  return burst === undefined ? { perSecond } : { perSecond, burst };
}

function fail(err: unknown): void {
  const message = isDrError(err)
    ? `${err.code}: ${err.message}`
    : err instanceof Error
      ? err.message
      : String(err);
  process.stderr.write(`dr sandbox: ${message}\n`);
  process.exitCode = 1;
}

function worldOptions(cmd: Command): Command {
  return cmd
    .option('--seed <n>', 'world seed (same seed, same world)', '1')
    .option('--size <n>', 'about this many entities', '1000');
}

async function serve(f: ServeFlags): Promise<void> {
  const world = generateWorld({ seed: int('seed', f.seed), size: int('size', f.size) });
  const server = await startSandboxServer({
    world,
    port: int('port', f.port),
    host: f.host,
    publicUrl: f.publicUrl,
    apiKey: f.apiKey,
    injection: injectionFromFlags(f),
    ...(f.slowPageMs !== undefined ? { slowPageMs: int('slow-page-ms', f.slowPageMs) } : {}),
  });
  const info = {
    url: server.url,
    searchUrl: server.searchUrl,
    bingUrl: server.bingUrl,
    statsUrl: `${server.url}/_sandbox/stats`,
    apiKey: server.apiKey,
    seed: world.seed,
    entities: world.entities.length,
    pages: server.site.pages.size,
  };
  if (f.json === true) process.stdout.write(`${JSON.stringify(info)}\n`);
  else {
    process.stdout.write(
      [
        `sandbox web (seed ${info.seed}, ${info.entities} entities, ${info.pages} pages)`,
        `  pages:   ${info.url}/`,
        `  search:  POST ${info.searchUrl}  (Serper: header X-API-KEY: ${info.apiKey}, body {"q": "...", "num": 10})`,
        `  bing:    GET ${info.bingUrl}?q=...  (header Ocp-Apim-Subscription-Key: ${info.apiKey})`,
        `  stats:   GET ${info.statsUrl}`,
        'Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
}

function exportSplits(f: ExportFlags): void {
  const world = generateWorld({ seed: int('seed', f.seed), size: int('size', f.size) });
  const all = generateQuestions(world);
  mkdirSync(f.out, { recursive: true });
  for (const split of SPLITS) {
    const qs = all.filter((q) => q.split === split);
    writeQuestionsParquet(join(f.out, `${split}.parquet`), qs.map(toRow));
    if (f.meta === true)
      writeFileSync(join(f.out, `${split}.meta.jsonl`), qs.map((q) => JSON.stringify(q)).join('\n') + '\n');
    process.stdout.write(`${split}: ${qs.length} questions -> ${join(f.out, `${split}.parquet`)}\n`);
  }
}

export function register(program: Command): void {
  const sandbox = program
    .command('sandbox')
    .description('The offline sandbox web: synthetic world, pages, search API, questions');

  worldOptions(
    sandbox.command('serve', { isDefault: true }).description('Serve the sandbox web until Ctrl-C'),
  )
    .option('--port <port>', 'port to listen on (0: any free port)', '0')
    .option('--host <addr>', 'bind address (0.0.0.0 to serve other hosts)', '127.0.0.1')
    .option('--public-url <url>', 'base URL written into search results (default http://<host>:<port>)')
    .option(
      '--api-key <key>',
      'key the search endpoints expect',
      process.env.DR_SANDBOX_API_KEY ?? 'sandbox-key',
    )
    .option(
      '--latency <spec>',
      'injected latency: fixed:MS | uniform:MIN:MAX | lognormal:MEDIAN:SIGMA[:CAP] | pareto:SCALE:ALPHA[:CAP]',
    )
    .option(
      '--inject-path <prefix>',
      'apply --latency/--fail-* only to paths with this prefix (e.g. /search)',
    )
    .option('--fail-500 <rate>', 'share of requests answered 500')
    .option('--fail-429 <rate>', 'share of requests answered 429 with Retry-After')
    .option('--fail-timeout <rate>', 'share of requests never answered')
    .option('--rate-limit <spec>', 'token bucket PER_SECOND[:BURST]; over it requests get 429 (e.g. 200:50)')
    .option('--retry-after <s>', 'Retry-After seconds on injected 429s (default 1)')
    .option(
      '--timeout-hold-ms <ms>',
      'how long a never-answered request holds its connection (default 60000)',
    )
    .option('--injection-seed <n>', 'seed of the injection draws (default 0)')
    .option('--injection <file>', 'injection config as JSON (per-path rules; see actors/sandbox/README.md)')
    .option('--slow-page-ms <ms>', "delay of the site's slow pages (default 3000)")
    .option('--json', 'print the endpoints as one JSON line')
    .action((f: ServeFlags) => serve(f).catch(fail));

  worldOptions(
    sandbox
      .command('bench')
      .description('Benchmark the sandbox web under a concurrent fan-out, against baselines'),
  )
    .option('--concurrency <n>', 'requests in flight at once per phase', '4096')
    .option('--latency <spec>', 'latency injected in the fan-out phase', 'lognormal:100:1:3000')
    .option('--json', 'print the report as JSON')
    .action((f: BenchFlags) =>
      runSandboxBench({
        seed: int('seed', f.seed),
        size: int('size', f.size),
        concurrency: int('concurrency', f.concurrency),
        latency: parseLatencySpec(f.latency),
      })
        .then((r) => {
          process.stdout.write(`${f.json === true ? JSON.stringify(r) : formatBenchReport(r)}\n`);
        })
        .catch(fail),
    );

  worldOptions(
    sandbox
      .command('export')
      .description('Write train/dev/test question splits as parquet (DeepResearcher row layout)'),
  )
    .requiredOption('--out <dir>', 'output directory')
    .option('--meta', 'also write <split>.meta.jsonl with hops, placements and difficulty')
    .action((f: ExportFlags) => {
      try {
        exportSplits(f);
      } catch (err) {
        fail(err);
      }
    });
}
