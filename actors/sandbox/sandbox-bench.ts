/**
 * Benchmark of the sandbox web under a DeepResearcher-sized fan-out (4,096 concurrent requests), with
 * baselines measured in the same run:
 * - pages vs a bare node:http server answering a constant (what the sandbox adds per request);
 * - memoised vs first-time searches (what the result cache saves);
 * - a fan-out with injected heavy-tailed latency vs its lower bound, the largest injected delay (all
 *   requests are in flight at once, so nothing can finish before the slowest draw).
 * Each server runs in its own process (the sandbox through `dr sandbox`); the client is this process, so
 * throughput includes the client's own cost.
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DrError } from '../../config/errors.ts';
import type { LatencySpec } from './injection.ts';
import { generateQuestions } from './questions.ts';
import type { SandboxStats } from './server.ts';
import { buildSite } from './site.ts';
import { generateWorld } from './world.ts';

export interface BenchOptions {
  seed?: number;
  size?: number;
  concurrency?: number;
  latency?: LatencySpec;
}

export interface PhaseResult {
  name: string;
  requests: number;
  makespanMs: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
  /** Latest (sent at + injected delay) over the phase's requests: no server can finish sooner. */
  boundMs: number;
}

export interface BenchReport {
  phases: PhaseResult[];
  /** Bare server throughput / sandbox page throughput (1.0: the sandbox adds nothing). */
  pageOverhead: number;
  /** Cached / uncached search throughput. */
  cacheSpeedup: number;
  /** `delayBoundMs`: the largest injected delay; `boundMs`: the latest (sent at + delay), which also counts
   * the time the client needs to put 4,096 requests on the wire. */
  fanOut: { makespanMs: number; delayBoundMs: number; boundMs: number; ratio: number };
}

interface Shot {
  url: string;
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
}

interface Outcome {
  status: number;
  ms: number;
  /** When the request was fully sent plus the delay the server injected (ms since the phase began). */
  boundMs: number;
}

function fire(agent: Agent, shot: Shot, phaseStart: number): Promise<Outcome> {
  const t0 = performance.now();
  let sentAt = t0;
  return new Promise((resolve) => {
    const req = request(shot.url, { method: shot.method ?? 'GET', agent, headers: shot.headers }, (res) => {
      const delay = Number(res.headers['x-sandbox-delay-ms'] ?? 0);
      res.resume();
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          ms: performance.now() - t0,
          boundMs: sentAt - phaseStart + delay,
        }),
      );
    });
    req.on('finish', () => (sentAt = performance.now()));
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0, boundMs: 0 }));
    req.end(shot.body);
  });
}

async function phase(name: string, agent: Agent, shots: Shot[]): Promise<PhaseResult> {
  const t0 = performance.now();
  const results = await Promise.all(shots.map((s) => fire(agent, s, t0)));
  const makespanMs = performance.now() - t0;
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const q = (p: number): number => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? 0;
  return {
    name,
    requests: shots.length,
    makespanMs,
    perSecond: (shots.length / makespanMs) * 1000,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    failures: results.filter((r) => r.status !== 200).length,
    boundMs: Math.max(...results.map((r) => r.boundMs)),
  };
}

interface Child {
  info: { url: string; searchUrl: string; apiKey: string };
  stop(): Promise<void>;
}

/** Starts a server in its own process (so client and server do not share an event loop); it prints one
 * JSON line with its endpoints. */
async function startChild(args: string[]): Promise<Child> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) =>
      reject(new DrError('SANDBOX_BENCH_FAILED', `benchmark server exited with ${code}: ${args.join(' ')}`)),
    );
  });
  return {
    info: JSON.parse(line) as Child['info'],
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const DR = fileURLToPath(new URL('../../scripts/dr.js', import.meta.url));
const BARE_SERVER = `require('node:http').createServer((q,s)=>s.end('ok')).listen(0,'127.0.0.1',function(){console.log(JSON.stringify({url:'http://127.0.0.1:'+this.address().port}))})`;

export async function runSandboxBench(options: BenchOptions = {}): Promise<BenchReport> {
  const n = options.concurrency ?? 4096;
  const latency = options.latency ?? { kind: 'lognormal', medianMs: 100, sigma: 1, capMs: 3000 };
  const seed = options.seed ?? 1;
  const size = options.size ?? 1000;
  const world = generateWorld({ seed, size });
  const site = await buildSite(world);
  const worldArgs = ['--seed', String(seed), '--size', String(size), '--json'];
  const bare = await startChild(['-e', BARE_SERVER]);
  const plain = await startChild([DR, 'sandbox', ...worldArgs]);
  const slow = await startChild([
    DR,
    'sandbox',
    ...worldArgs,
    '--latency',
    latencyFlag(latency),
    '--injection-seed',
    '1',
  ]);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  try {
    const healthy = [...site.pages.values()].filter((p) => p.behaviour === 'ok' && p.status === 200);
    const pages = (base: string): Shot[] =>
      Array.from({ length: n }, (_, i) => ({
        url: base + encodeURI(healthy[i % healthy.length]?.path ?? '/'),
      }));
    const queries = generateQuestions(world).map((q) => q.question);
    const searchShots = Array.from({ length: n }, (_, i) => ({
      url: plain.info.searchUrl,
      method: 'POST' as const,
      headers: { 'X-API-KEY': plain.info.apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        q: `${queries[i % queries.length]}${i >= queries.length ? ` ${i}` : ''}`,
        num: 10,
      }),
    }));
    // Open every socket and warm the JIT first, so that no measured phase pays for connection set-up.
    for (const base of [bare.info.url, plain.info.url, slow.info.url])
      await phase('warm-up', agent, pages(base));
    const phases = [
      await phase('bare node:http (baseline)', agent, pages(bare.info.url)),
      await phase('sandbox pages', agent, pages(plain.info.url)),
      await phase('search, first time', agent, searchShots),
      await phase('search, memoised', agent, searchShots),
    ];
    const before = await stats(slow.info.url);
    const fan = await phase(`pages + injected ${latency.kind} latency`, agent, pages(slow.info.url));
    phases.push(fan);
    const after = await stats(slow.info.url);
    if (after.injected.delayed - before.injected.delayed !== n) {
      throw new DrError(
        'SANDBOX_BENCH_FAILED',
        'the fan-out phase did not see one injected delay per request',
      );
    }
    const delayBoundMs = after.injected.delayMsMax;
    const by = (name: string): PhaseResult => phases.find((p) => p.name.startsWith(name)) as PhaseResult;
    return {
      phases,
      pageOverhead: by('bare').perSecond / by('sandbox pages').perSecond,
      cacheSpeedup: by('search, memoised').perSecond / by('search, first').perSecond,
      fanOut: {
        makespanMs: fan.makespanMs,
        delayBoundMs,
        boundMs: fan.boundMs,
        ratio: fan.makespanMs / fan.boundMs,
      },
    };
  } finally {
    agent.destroy();
    await Promise.all([bare.stop(), plain.stop(), slow.stop()]);
  }
}

async function stats(base: string): Promise<SandboxStats> {
  return (await (await fetch(`${base}/_sandbox/stats`)).json()) as SandboxStats;
}

function latencyFlag(l: LatencySpec): string {
  switch (l.kind) {
    case 'none':
      return 'fixed:0';
    case 'fixed':
      return `fixed:${l.ms}`;
    case 'uniform':
      return `uniform:${l.minMs}:${l.maxMs}`;
    case 'lognormal':
      return `lognormal:${l.medianMs}:${l.sigma}${l.capMs !== undefined ? `:${l.capMs}` : ''}`;
    case 'pareto':
      return `pareto:${l.scaleMs}:${l.alpha}${l.capMs !== undefined ? `:${l.capMs}` : ''}`;
  }
}

export function formatBenchReport(r: BenchReport): string {
  const pad = (s: string, w: number): string => s.padEnd(w);
  const num = (x: number, d = 0): string => x.toFixed(d).padStart(9);
  const lines = [
    `${pad('phase', 38)}${'requests'.padStart(9)}${'makespan'.padStart(9)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'fail'.padStart(9)}`,
  ];
  for (const p of r.phases) {
    lines.push(
      `${pad(p.name, 38)}${num(p.requests)}${num(p.makespanMs)}${num(p.perSecond)}${num(p.p50Ms, 1)}${num(p.p99Ms, 1)}${num(p.failures)}`,
    );
  }
  lines.push(
    '',
    `bare/sandbox page throughput: ${r.pageOverhead.toFixed(2)}x (1.00 = no sandbox overhead)`,
    `memoised/first-time search throughput: ${r.cacheSpeedup.toFixed(2)}x`,
    `fan-out makespan ${r.fanOut.makespanMs.toFixed(0)} ms; largest injected delay ${r.fanOut.delayBoundMs.toFixed(0)} ms; ` +
      `bound (latest sent-at + delay) ${r.fanOut.boundMs.toFixed(0)} ms; makespan/bound ${r.fanOut.ratio.toFixed(3)}x`,
  );
  return lines.join('\n');
}
