/**
 * Garbage on the wire never takes a node down: random bytes, truncated msgpack, unknown versions, text
 * frames and oversized frames sent to a real head and a real worker (its peer port) are dropped with a
 * logged reason, and both nodes keep serving.
 */
import { randomBytes } from 'node:crypto';
import { pack } from 'msgpackr';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEnvelope, Kind, PROTOCOL_VERSION } from '../cluster/wire.ts';
import { connectClient, type ClusterClient } from './client.ts';
import { startHead, startWorker, TEST_TOKEN, type NodeProcess } from './testing/node-process.ts';

const MAX_FRAME = 4_096;
let head: NodeProcess;
let worker: NodeProcess;
let headPort: number;
let workerPort: number;
let client: ClusterClient;

beforeAll(async () => {
  ({ node: head, port: headPort } = await startHead(['--max-frame-bytes', String(MAX_FRAME)]));
  worker = await startWorker(headPort, 1, ['--max-frame-bytes', String(MAX_FRAME)]);
  workerPort = Number((await worker.waitForLog((l) => l.msg === 'node ready')).port);
  client = await connectClient({ head: `127.0.0.1:${headPort}`, token: TEST_TOKEN });
  await client.spawn({ kind: 'echo', name: 'w', placement: { kind: 'rank', rank: 1 } });
});

afterAll(async () => {
  await client?.close();
  await worker?.kill('SIGKILL');
  await head?.kill('SIGKILL');
});

/**
 * Open an authenticated raw socket, send `frames`, and report whether the node closed it within `watchMs`.
 * A close that is expected gets a long watch (it returns as soon as the close comes): pushing megabytes
 * through loopback on a loaded CI machine can take longer than the short watch that shows a link stays open.
 */
async function sendRaw(
  port: number,
  frames: Array<Buffer | string>,
  watchMs = 300,
): Promise<{ closedByNode: boolean; code?: number }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  for (const f of frames) ws.send(f);
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    closed,
    new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), watchMs))),
  ]);
  clearTimeout(timer);
  if (code === undefined) {
    ws.close();
    return { closedByNode: false };
  }
  return { closedByNode: true, code };
}

async function nodesStillServe(): Promise<void> {
  expect((await client.status()).nodes.map((n) => n.state)).toEqual(['alive', 'alive']);
  expect(await client.ask('w', { op: 'echo', value: 'still here' })).toBe('still here');
}

const droppedReasons = (node: NodeProcess) =>
  node.lines.filter((l) => l.msg === 'dropped an invalid frame').map((l) => l.reason);

describe.each([
  ['head', () => ({ node: head, port: headPort })],
  ['worker', () => ({ node: worker, port: workerPort })],
])('a %s receiving hostile frames', (_name, target) => {
  it('drops random bytes, truncated msgpack, unknown versions and text frames, and keeps serving', async () => {
    const { node, port } = target();
    const truncated = encodeEnvelope({
      kind: Kind.TELL,
      from: 1,
      target: 'w',
      cid: 0,
      payload: 'z'.repeat(200),
    });
    const cases: Array<Buffer | string> = [
      randomBytes(64),
      truncated.subarray(0, truncated.length - 20),
      pack([PROTOCOL_VERSION + 7, Kind.TELL, 1, 'w', 0, null]),
      'not binary',
    ];
    for (const frame of cases) expect(await sendRaw(port, [frame])).toEqual({ closedByNode: false });
    await expect
      .poll(() => new Set(droppedReasons(node)))
      .toEqual(new Set(['decode', 'version', 'malformed']));
    await nodesStillServe();
  });

  it('drops a frame over the frame limit and closes a link that sends one far beyond it', async () => {
    const { node, port } = target();
    expect(await sendRaw(port, [randomBytes(MAX_FRAME + 100)])).toEqual({ closedByNode: false });
    await expect.poll(() => droppedReasons(node)).toContain('oversized');
    expect(await sendRaw(port, [randomBytes(4 * MAX_FRAME)], 15_000)).toEqual({
      closedByNode: true,
      code: 1009,
    });
    await nodesStillServe();
  });
});
