/** A link's outbound queue is bounded and its backpressure observable, against a real peer that stops reading. */
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../config/log.ts';
import { Link } from './link.ts';
import { Kind, type Envelope } from './wire.ts';

const servers: WebSocketServer[] = [];
const links: Link[] = [];
afterEach(async () => {
  for (const l of links.splice(0)) l.terminate();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A peer that stops reading its socket until `resume()`; counts the envelopes it decodes. */
async function stalledPeer(): Promise<{ port: number; resume(): void; received(): number }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  servers.push(wss);
  await once(wss, 'listening');
  let socket: Socket | undefined;
  let count = 0;
  wss.on('connection', (ws, req) => {
    socket = req.socket;
    socket.pause();
    const peer = new Link(
      ws,
      { maxFrameBytes: 1 << 20, queueHighWaterBytes: 1 << 30, queueMaxBytes: 1 << 30 },
      silentLogger,
    );
    peer.on('envelope', () => count++);
  });
  return { port: (wss.address() as AddressInfo).port, resume: () => socket?.resume(), received: () => count };
}

const chunk = (i: number): Envelope => ({
  kind: Kind.TELL,
  from: 1,
  target: 'sink',
  cid: 0,
  payload: Buffer.alloc(16 * 1024, i),
});

describe('link backpressure', () => {
  it('reports high water, refuses past the maximum, and drains once the peer reads again', async () => {
    const peer = await stalledPeer();
    const ws = new WebSocket(`ws://127.0.0.1:${peer.port}/`);
    const link = new Link(
      ws,
      { maxFrameBytes: 1 << 20, queueHighWaterBytes: 1 << 20, queueMaxBytes: 4 << 20 },
      silentLogger,
    );
    links.push(link);
    await once(ws, 'open');

    let sent = 0;
    let firstFalseAt: number | undefined;
    let refused: unknown;
    for (let i = 0; i < 100_000 && refused === undefined; i++) {
      try {
        if (!link.send(chunk(i)) && firstFalseAt === undefined) firstFalseAt = sent + 1;
        sent++;
      } catch (err) {
        refused = err;
      }
      if (i % 16 === 15) await new Promise((r) => setImmediate(r));
    }
    expect(firstFalseAt).toBeDefined();
    expect(link.writable).toBe(false);
    expect(refused).toMatchObject({ code: 'CLUSTER_QUEUE_FULL' });
    expect(link.queuedBytes).toBeLessThanOrEqual(4 << 20);

    const drained = link.whenWritable();
    peer.resume();
    await drained;
    expect(link.writable).toBe(true);
    await expect.poll(() => peer.received(), { timeout: 10_000 }).toBe(sent);
  });

  it('refuses an envelope larger than the frame limit before queueing it', async () => {
    const peer = await stalledPeer();
    const ws = new WebSocket(`ws://127.0.0.1:${peer.port}/`);
    const link = new Link(
      ws,
      { maxFrameBytes: 8 * 1024, queueHighWaterBytes: 1 << 20, queueMaxBytes: 4 << 20 },
      silentLogger,
    );
    links.push(link);
    expect(() => link.send(chunk(0))).toThrow(expect.objectContaining({ code: 'CLUSTER_FRAME_TOO_LARGE' }));
    expect(link.queuedBytes).toBe(0);
  });
});
