/**
 * `npm run bench:cluster`: the actor runtime between two processes on loopback against a raw ws + msgpackr
 * baseline with the same payloads, measured in the same run.
 *
 *   tell throughput  this process tells N messages to an actor on a worker process, then asks it (the reply
 *                    comes after all N were handled, since a link and a mailbox keep order); raw: N ws
 *                    frames of one msgpack message each to a process that decodes and counts them.
 *   ask latency      open loop at a fixed offered rate (default 5,000/s): each ask is sent on schedule
 *                    whether or not earlier ones were answered; p50/p99 of send -> reply.
 *   1:1 calls        asks/s one at a time (like Ray's 1_1_actor_calls_sync) and with 256 in flight (like
 *                    its 1_1_actor_calls_async).
 *
 * Both senders respect backpressure the same way (wait while more than 8 MiB is queued). Before the
 * measured asks each stack answers `--warmup` asks at the offered rate: V8 keeps compiling the ask path with
 * TurboFan for the first ~10,000 asks, on background threads that take a core for 1-12 ms per function,
 * and on two cores that shows up as ask stalls of about 3 ms (the actor path has more code to compile than
 * raw ws + msgpackr, so a short warm-up favours raw).
 * Usage: npm run bench:cluster [-- --small 200000 --large 40000 --asks 10000 --rate 5000 --warmup 20000 --rounds 3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pack, unpack } from 'msgpackr';
import WebSocket, { WebSocketServer } from 'ws';
import { detectResources } from '../cluster/resources.ts';
import { startLoopbackNode } from '../runtime/testing/loopback-node.ts';
import { kinds } from '../runtime/testing/test-kinds.ts';

const HIGH_WATER = 8 * 1024 * 1024;

interface TellResult {
  msgsPerSec: number;
  /** Share of the time spent in the sending loop (the rest waits for the receiver to catch up). */
  senderShare: number;
}
interface AskResult {
  p50Ms: number;
  p99Ms: number;
  achievedPerSec: number;
}

/** The two ways of sending: through the actor runtime, or raw. */
interface Sender {
  tell(msg: unknown): void;
  backlogged(): boolean;
  drained(): Promise<void>;
  ask(msg: unknown): Promise<unknown>;
  close(): Promise<void>;
}

async function measureTells(s: Sender, n: number, msg: unknown): Promise<TellResult> {
  const before = (await s.ask({ op: 'count' })) as number;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    s.tell(msg);
    if ((i & 255) === 255 && s.backlogged()) await s.drained();
  }
  const loopSecs = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = (await s.ask({ op: 'count' })) as number;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (after - before !== n) throw new Error(`receiver counted ${after - before} of ${n} tells`);
  return { msgsPerSec: n / secs, senderShare: loopSecs / secs };
}

async function measureAsks(s: Sender, n: number, rate: number): Promise<AskResult> {
  const latencies: number[] = [];
  const inFlight: Array<Promise<void>> = [];
  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(n, Math.floor(((performance.now() - start) * rate) / 1_000));
      for (; sent < due; sent++) {
        const t = performance.now();
        inFlight.push(
          s.ask({ op: 'echo', value: sent }).then(() => void latencies.push(performance.now() - t)),
        );
      }
      if (sent >= n) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all(inFlight);
  const secs = (performance.now() - start) / 1_000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { p50Ms: at(0.5), p99Ms: at(0.99), achievedPerSec: n / secs };
}

// ---- raw baseline: a ws server process that decodes and counts, and answers [id] asks -----------------

function rawPeerMain(): void {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
  });
  let told = 0;
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      const m = unpack(data) as { id?: number; msg: { op: string; value?: unknown } };
      if (m.id === undefined) {
        told++;
        return;
      }
      ws.send(pack({ id: m.id, value: m.msg.op === 'count' ? told : m.msg.value }));
    });
  });
  wss.on('listening', () => process.stdout.write(`${(wss.address() as AddressInfo).port}\n`));
  exitWithParent();
}

/** Worker side of the actor stack: a worker NodeRuntime (what `dr worker` runs) hosting the test kinds. */
async function actorPeerMain(headPort: number): Promise<void> {
  await startLoopbackNode({ rank: 1, masterPort: headPort, kinds });
  exitWithParent();
}

function exitWithParent(): void {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

/** This script again, in a child process, as a peer. */
function spawnPeer(args: string[]): ChildProcess {
  return spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

async function rawSender(): Promise<Sender> {
  const peer = spawnPeer(['--raw-peer']);
  const [line] = (await once(peer.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  const ws = new WebSocket(`ws://127.0.0.1:${Number(line.toString().trim())}/`, { perMessageDeflate: false });
  await once(ws, 'open');
  const waiting = new Map<number, (v: unknown) => void>();
  let seq = 0;
  ws.on('message', (data: Buffer) => {
    const r = unpack(data) as { id: number; value: unknown };
    waiting.get(r.id)?.(r.value);
    waiting.delete(r.id);
  });
  return {
    tell: (msg) => ws.send(pack({ msg })),
    backlogged: () => ws.bufferedAmount > HIGH_WATER,
    drained: async () => {
      while (ws.bufferedAmount > HIGH_WATER / 2) await new Promise((r) => setTimeout(r, 1));
    },
    ask: (msg) =>
      new Promise((resolve) => {
        const id = ++seq;
        waiting.set(id, resolve);
        ws.send(pack({ id, msg }));
      }),
    close: async () => {
      ws.close();
      peer.kill();
      await once(peer, 'exit');
    },
  };
}

// ---- the actor runtime: this process is the head, the actor runs on a worker process ---------------------

async function actorSender(): Promise<Sender> {
  const head = await startLoopbackNode({
    rank: 0,
    masterPort: 0,
    kinds,
    flags: { queueHighWaterBytes: HIGH_WATER },
  });
  const joined = new Promise<void>((resolve) =>
    head.node.on('member', (e) => e.type === 'joined' && e.member.rank === 1 && resolve()),
  );
  const worker = spawnPeer(['--actor-peer', String(head.node.port)]);
  await joined;
  await head.spawn({ kind: 'echo', name: 'sink', placement: { kind: 'rank', rank: 1 } });
  const link = head.node.linkTo(1);
  return {
    tell: (msg) => head.tell('sink', msg),
    backlogged: () => !link.writable,
    drained: () => head.whenWritable('sink'),
    ask: (msg) => head.ask('sink', msg, { timeoutMs: 10_000 }),
    close: async () => {
      worker.kill('SIGTERM');
      await once(worker, 'exit');
      await head.stop();
    },
  };
}

async function measureCalls(s: Sender, n: number, window: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next++;
      await s.ask({ op: 'echo', value: next });
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return n / ((performance.now() - t0) / 1_000);
}

const median = <T>(xs: T[], key: (x: T) => number): T =>
  [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)] as T;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'raw-peer': { type: 'boolean' },
      'actor-peer': { type: 'string' },
      small: { type: 'string', default: '200000' },
      large: { type: 'string', default: '40000' },
      asks: { type: 'string', default: '10000' },
      rate: { type: 'string', default: '5000' },
      warmup: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '3' },
    },
  });
  if (values['raw-peer'] === true) {
    rawPeerMain();
    return;
  }
  if (values['actor-peer'] !== undefined) {
    await actorPeerMain(Number(values['actor-peer']));
    return;
  }
  const [nSmall, nLarge, nAsks, rate, nWarmup, rounds] = [
    values.small,
    values.large,
    values.asks,
    values.rate,
    values.warmup,
    values.rounds,
  ].map(Number) as [number, number, number, number, number, number];
  const small = { op: 'add', n: 1 };
  const large = { op: 'echo', value: randomBytes(4_096) };

  // Each round measures both stacks one after the other, each in fresh processes, alternating which goes
  // first, so neither is favoured by what ran before it or by a busy machine; each figure is the median.
  const makers = { raw: rawSender, actor: actorSender };
  const runs = { raw: [] as Run[], actor: [] as Run[] };
  for (let r = 0; r < rounds; r++) {
    for (const key of r % 2 === 0 ? (['raw', 'actor'] as const) : (['actor', 'raw'] as const)) {
      const s = await makers[key]();
      await measureTells(s, 20_000, small);
      const tellSmall = await measureTells(s, nSmall, small);
      const tellLarge = await measureTells(s, nLarge, large);
      await measureAsks(s, nWarmup, rate);
      runs[key].push({
        tellSmall,
        tellLarge,
        ask: await measureAsks(s, nAsks, rate),
        callsSync: await measureCalls(s, 5_000, 1),
        callsAsync: await measureCalls(s, 20_000, 256),
      });
      await s.close();
    }
  }

  const pick = (key: 'raw' | 'actor') => ({
    tellSmall: median(
      runs[key].map((x) => x.tellSmall),
      (t) => t.msgsPerSec,
    ),
    tellLarge: median(
      runs[key].map((x) => x.tellLarge),
      (t) => t.msgsPerSec,
    ),
    ask: median(
      runs[key].map((x) => x.ask),
      (a) => a.p99Ms,
    ),
    callsSync: median(
      runs[key].map((x) => x.callsSync),
      (c) => c,
    ),
    callsAsync: median(
      runs[key].map((x) => x.callsAsync),
      (c) => c,
    ),
  });
  const raw = pick('raw');
  const actor = pick('actor');
  const tellRow = (name: string, r: TellResult, a: TellResult) =>
    `${name.padEnd(28)} raw ${fmt(r.msgsPerSec).padStart(9)} msg/s   actor ${fmt(a.msgsPerSec).padStart(9)} msg/s   ratio ${(a.msgsPerSec / r.msgsPerSec).toFixed(2)} (target >= 0.80)`;
  const callRow = (name: string, r: number, a: number) =>
    `${name.padEnd(28)} raw ${fmt(r).padStart(9)} /s      actor ${fmt(a).padStart(9)} /s      ratio ${(a / r).toFixed(2)}`;
  console.log(
    `cluster benchmark: 2 processes on loopback, node ${process.version}, ${(await detectResources({ gpuIds: [] })).cpus} CPUs, median of ${rounds} rounds, ${nWarmup} warm-up asks, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} (other processes compete for the same cores)`,
  );
  console.log(tellRow('tell, small payload', raw.tellSmall, actor.tellSmall));
  console.log(tellRow('tell, 4 KiB payload', raw.tellLarge, actor.tellLarge));
  console.log(
    `${`ask @ ${rate}/s offered`.padEnd(28)} raw p50 ${raw.ask.p50Ms.toFixed(3)} p99 ${raw.ask.p99Ms.toFixed(3)} ms   actor p50 ${actor.ask.p50Ms.toFixed(3)} p99 ${actor.ask.p99Ms.toFixed(3)} ms   p99 ratio ${(actor.ask.p99Ms / raw.ask.p99Ms).toFixed(2)} (target actor p99 < 2 ms)`,
  );
  console.log(callRow('1:1 calls, sequential', raw.callsSync, actor.callsSync));
  console.log(callRow('1:1 calls, 256 in flight', raw.callsAsync, actor.callsAsync));
  console.log(JSON.stringify({ raw, actor, runs }));
}

interface Run {
  tellSmall: TellResult;
  tellLarge: TellResult;
  ask: AskResult;
  callsSync: number;
  callsAsync: number;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

await main();
