/** Asks over a real link: replies settle them, and the shared deadline queue times out the unanswered ones. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DrError, isDrError } from '../config/errors.ts';
import { silentLogger } from '../config/log.ts';
import { Link } from '../cluster/link.ts';
import { Kind } from '../cluster/wire.ts';
import { LinkReply, PendingAsks } from './remote-ask.ts';

const LIMITS = { maxFrameBytes: 1 << 20, queueHighWaterBytes: 1 << 24, queueMaxBytes: 1 << 26 };
const servers: WebSocketServer[] = [];
const links: Link[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const l of links.splice(0)) l.terminate();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A peer that echoes asks to 'echo' and never answers asks to anything else. */
async function connect(): Promise<Link> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  servers.push(wss);
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    const peer = new Link(ws, LIMITS, silentLogger);
    links.push(peer);
    peer.on('envelope', (env) => {
      if (env.kind === Kind.ASK && env.target === 'echo')
        new LinkReply(peer, 1, env.cid).resolve((env.payload as [unknown])[0]);
    });
  });
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`);
  const link = new Link(ws, LIMITS, silentLogger);
  links.push(link);
  await once(ws, 'open');
  return link;
}

function wire(link: Link): PendingAsks {
  const asks = new PendingAsks(0);
  link.on('envelope', (env) => asks.onReply(env));
  return asks;
}

describe('remote asks', () => {
  it('resolves an answered ask with the reply and leaves nothing pending', async () => {
    const link = await connect();
    const asks = wire(link);
    await expect(asks.ask(link, 1, 'echo', { n: 7 }, 5_000)).resolves.toEqual({ n: 7 });
    expect(asks.size).toBe(0);
  });

  it('fails an unanswered ask with ACTOR_ASK_TIMEOUT at its deadline, within the tick, never before', async () => {
    const link = await connect();
    const asks = wire(link);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const start = performance.now();
    let failedAt: number | undefined;
    let failure: unknown;
    void asks.ask(link, 1, 'silent', null, 200).catch((err: unknown) => {
      failedAt = performance.now();
      failure = err;
    });
    const answered = asks.ask(link, 1, 'echo', 'hi', 200);
    await expect(answered).resolves.toBe('hi');
    await vi.advanceTimersByTimeAsync(199);
    expect(failedAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(10);
    expect(isDrError(failure, 'ACTOR_ASK_TIMEOUT')).toBe(true);
    expect((failure as Error).message).toMatch(/within 200 ms/);
    expect((failedAt as number) - start).toBeGreaterThanOrEqual(200);
    expect((failedAt as number) - start).toBeLessThanOrEqual(210);
    expect(asks.size).toBe(0);
  });

  it('times out each of many unanswered asks with different timeouts at its own deadline', async () => {
    const link = await connect();
    const asks = wire(link);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const start = performance.now();
    const timeouts = [300, 50, 1_000, 50, 120];
    const failedAfter: number[] = [];
    const all = timeouts.map((t, i) =>
      asks.ask(link, 1, 'silent', i, t).catch((err: unknown) => {
        if (isDrError(err, 'ACTOR_ASK_TIMEOUT')) failedAfter[i] = performance.now() - start;
      }),
    );
    await vi.advanceTimersByTimeAsync(1_100);
    await Promise.all(all);
    timeouts.forEach((t, i) => {
      expect(failedAfter[i], `ask ${i}`).toBeGreaterThanOrEqual(t);
      expect(failedAfter[i], `ask ${i}`).toBeLessThanOrEqual(t + 10);
    });
  });

  it('settles each ask once when one timing out makes another settle before its own expiry runs', async () => {
    const link = await connect();
    const asks = wire(link);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const outcomes: string[][] = [[], []];
    const record = (i: number) => ({
      resolve: () => outcomes[i]?.push('reply'),
      reject: (e: unknown) => outcomes[i]?.push(isDrError(e) ? e.code : 'other'),
    });
    // Both come due in the same tick; the first one's failure handler fails what else is on the link (as
    // a retry that finds the node gone would), so the second is settled before its expiry is reached.
    asks.send(link, 1, 'silent', 0, 100, {
      ...record(0),
      reject: (e) => {
        record(0).reject(e);
        asks.failLink(link, new DrError('ACTOR_NODE_DOWN', 'gone'));
      },
    });
    asks.send(link, 1, 'silent', 1, 100, record(1));
    await vi.advanceTimersByTimeAsync(120);
    expect(outcomes).toEqual([['ACTOR_ASK_TIMEOUT'], ['ACTOR_NODE_DOWN']]);
    expect(asks.size).toBe(0);
  });

  it('fails asks in flight with the given error when their link closes, and not again at their deadline', async () => {
    const link = await connect();
    const asks = wire(link);
    const pending = asks.ask(link, 1, 'silent', null, 60_000);
    link.on('close', () => asks.failLink(link, new DrError('ACTOR_NODE_DOWN', 'closed')));
    link.terminate();
    await expect(pending).rejects.toThrow('closed');
    expect(asks.size).toBe(0);
  });
});
