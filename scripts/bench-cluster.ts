/**
 * `npm run bench:cluster`: the actor runtime between two processes on loopback against a raw ws + msgpackr
 * baseline with the same payloads, measured in the same run.
 *
 *   tell throughput  this process tells N messages to an actor on a worker process, then asks it (the reply
 *                    comes after all N were handled, since a link and a mailbox keep order); raw: N ws
 *                    frames of one msgpack message each to a process that decodes and counts them.
 *   ask latency      open loop at a fixed offered rate (default 5,000/s): each ask is sent on schedule
 *                    whether or not earlier ones were answered; p50/p99 of send -> reply.
 *
 * Both senders respect backpressure the same way (wait while more than 8 MiB is queued).
 * Usage: npm run bench:cluster [-- --small 200000 --large 40000 --asks 10000 --rate 5000]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pack, unpack } from 'msgpackr';
import WebSocket, { WebSocketServer } from 'ws';
import { loadClusterConfig } from '../config/cluster.ts';
import { silentLogger } from '../config/log.ts';
import { detectResources } from '../cluster/resources.ts';
import { NodeRuntime } from '../runtime/node-runtime.ts';
import { startWorker, TEST_TOKEN } from '../runtime/testing/node-process.ts';
import { kinds } from '../runtime/testing/test-kinds.ts';

const HIGH_WATER = 8 * 1024 * 1024;

interface TellResult {
  msgsPerSec: number;
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
  const after = (await s.ask({ op: 'count' })) as number;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (after - before !== n) throw new Error(`receiver counted ${after - before} of ${n} tells`);
  return { msgsPerSec: n / secs };
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
        inFlight.push(s.ask({ op: 'echo', value: sent }).then(() => void latencies.push(performance.now() - t)));
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
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { p50Ms: at(0.5), p99Ms: at(0.99), achievedPerSec: n / secs };
}

// ---- raw baseline: a ws server process that decodes and counts, and answers [id] asks -----------------

function rawPeerMain(): void {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
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
}

async function rawSender(): Promise<Sender> {
  const peer = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--raw-peer'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(peer.stdout, 'data')) as [Buffer];
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
  const config = loadClusterConfig({
    flags: { rank: 0, masterAddr: '127.0.0.1', masterPort: 0, listenHost: '127.0.0.1', queueHighWaterBytes: HIGH_WATER },
    env: { DR_CLUSTER_TOKEN: TEST_TOKEN },
  });
  const head = new NodeRuntime({ config, role: 'head', kinds, resources: await detectResources({ gpuIds: [] }), logger: silentLogger });
  await head.start();
  const worker = await startWorker(head.node.port, 1);
  await head.spawn({ kind: 'echo', name: 'sink', placement: { kind: 'rank', rank: 1 } });
  const link = head.node.linkTo(1);
  return {
    tell: (msg) => head.tell('sink', msg),
    backlogged: () => !link.writable,
    drained: () => head.whenWritable('sink'),
    ask: (msg) => head.ask('sink', msg, { timeoutMs: 10_000 }),
    close: async () => {
      await worker.kill('SIGTERM');
      await head.stop();
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'raw-peer': { type: 'boolean' },
      small: { type: 'string', default: '200000' },
      large: { type: 'string', default: '40000' },
      asks: { type: 'string', default: '10000' },
      rate: { type: 'string', default: '5000' },
    },
  });
  if (values['raw-peer'] === true) {
    rawPeerMain();
    return;
  }
  const nSmall = Number(values.small);
  const nLarge = Number(values.large);
  const nAsks = Number(values.asks);
  const rate = Number(values.rate);
  const small = { op: 'add', n: 1 };
  const large = { op: 'echo', value: randomBytes(4_096) };

  const results: Record<string, { raw: TellResult | AskResult; actor: TellResult | AskResult }> = {};
  for (const [label, make] of [
    ['raw', rawSender],
    ['actor', actorSender],
  ] as const) {
    const s = await make();
    await measureTells(s, 20_000, small);
    await measureAsks(s, 1_000, rate);
    const tellSmall = await measureTells(s, nSmall, small);
    const tellLarge = await measureTells(s, nLarge, large);
    const asks = await measureAsks(s, nAsks, rate);
    await s.close();
    for (const [k, v] of [
      ['tellSmall', tellSmall],
      ['tellLarge', tellLarge],
      ['ask', asks],
    ] as const) {
      results[k] = { ...(results[k] ?? { raw: v, actor: v }), [label]: v };
    }
  }
  const tellRow = (name: string, key: string) => {
    const r = results[key] as { raw: TellResult; actor: TellResult };
    return `${name.padEnd(26)} raw ${fmt(r.raw.msgsPerSec)} msg/s   actor ${fmt(r.actor.msgsPerSec)} msg/s   ratio ${(r.actor.msgsPerSec / r.raw.msgsPerSec).toFixed(2)} (target >= 0.80)`;
  };
  const a = results.ask as { raw: AskResult; actor: AskResult };
  console.log(`cluster benchmark: 2 processes on loopback, node ${process.version}, ${(await detectResources({ gpuIds: [] })).cpus} CPUs`);
  console.log(tellRow('tell, small payload', 'tellSmall'));
  console.log(tellRow('tell, 4 KiB payload', 'tellLarge'));
  console.log(
    `${`ask @ ${rate}/s offered`.padEnd(26)} raw p50 ${a.raw.p50Ms.toFixed(3)} ms p99 ${a.raw.p99Ms.toFixed(3)} ms   actor p50 ${a.actor.p50Ms.toFixed(3)} ms p99 ${a.actor.p99Ms.toFixed(3)} ms   p99 ratio ${(a.actor.p99Ms / a.raw.p99Ms).toFixed(2)}   achieved ${fmt(a.actor.achievedPerSec)}/s (target p99 < 2 ms)`,
  );
  console.log(JSON.stringify({ results }));
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

await main();
