/**
 * The cluster with real processes on loopback: a head and three workers running `dr`, driven through the
 * client API and the CLI. The scenarios run in order on one cluster (starting processes is the slow part):
 * remote tell/ask, node loss and re-spawn, rejoin, head restart, refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDrError } from '../config/errors.ts';
import { connectClient, type ClusterClient } from './client.ts';
import type { ClusterStatus } from './node-runtime.ts';
import {
  FAST_DOWN_AFTER_MS as DOWN_AFTER_MS,
  FAST_HEARTBEAT_MS as HEARTBEAT_MS,
  runDr,
  startHead,
  startWorker,
  TEST_TOKEN,
  type NodeProcess,
} from './testing/node-process.ts';

let head: NodeProcess;
let headPort: number;
const workers = new Map<number, NodeProcess>();
let client: ClusterClient;

// A deadline for "eventually", generous for a loaded 2-core CI machine; a passing run never waits it out.
async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const nodeState = (s: ClusterStatus, rank: number) => s.nodes.find((n) => n.rank === rank)?.state;
const where = (name: string) =>
  client.ask<{ rank: number; pid: number }>(name, { op: 'where' }, { timeoutMs: 15_000 });

beforeAll(async () => {
  ({ node: head, port: headPort } = await startHead());
  const started = await Promise.all([1, 2, 3].map((r) => startWorker(headPort, r)));
  started.forEach((w, i) => workers.set(i + 1, w));
  client = await connectClient({ head: `127.0.0.1:${headPort}`, token: TEST_TOKEN });
});

afterAll(async () => {
  await client?.close();
  await Promise.all([...workers.values()].map((w) => w.kill('SIGKILL')));
  await head?.kill('SIGKILL');
});

describe.sequential('a head and three workers on loopback', () => {
  it('lists every node with its resources and every actor in `dr status --json`', async () => {
    await client.spawn({ kind: 'echo', name: 'a', placement: { kind: 'rank', rank: 1 } });
    const out = await runDr(['status', '--json', '--head', `127.0.0.1:${headPort}`]);
    expect(out.code).toBe(0);
    const status = JSON.parse(out.stdout) as ClusterStatus;
    expect(status.nodes.map((n) => [n.rank, n.state])).toEqual([
      [0, 'alive'],
      [1, 'alive'],
      [2, 'alive'],
      [3, 'alive'],
    ]);
    for (const n of status.nodes)
      expect(n.resources).toMatchObject({
        cpus: expect.any(Number),
        memoryBytes: expect.any(Number),
        gpus: [],
      });
    // The head runs the dashboard's `monitor` actor from the start; the rest is what this test spawned.
    expect(status.actors).toEqual([
      expect.objectContaining({ path: 'monitor', kind: 'monitor', node: 0, state: 'running', restarts: 0 }),
      expect.objectContaining({ path: 'a', kind: 'echo', node: 1, state: 'running', restarts: 0 }),
    ]);
  });

  it('tells and asks between actors on different workers', async () => {
    await client.spawn({ kind: 'echo', name: 'b', placement: { kind: 'rank', rank: 2 } });
    expect(await client.ask('a', { op: 'relay', to: 'b', msg: { op: 'where' } })).toMatchObject({ rank: 2 });
    await client.ask('a', { op: 'tell', to: 'b', msg: { op: 'add', n: 5 } });
    await client.ask('a', { op: 'tell', to: 'b', msg: { op: 'add', n: 2 } });
    expect(await waitFor(async () => ((await client.ask('b', { op: 'get' })) === 7 ? 7 : undefined))).toBe(7);
    client.tell('b', { op: 'add', n: 1 });
    expect(await waitFor(async () => ((await client.ask('b', { op: 'get' })) === 8 ? 8 : undefined))).toBe(8);
  });

  it('serves remote asks concurrently, worker to worker, on actors spawned with maxConcurrency', async () => {
    await client.spawn({
      kind: 'echo',
      name: 'wide',
      placement: { kind: 'rank', rank: 2 },
      maxConcurrency: 6,
    });
    await client.spawn({
      kind: 'echo',
      name: 'fan',
      placement: { kind: 'rank', rank: 1 },
      maxConcurrency: 6,
    });
    const sleep = { op: 'sleep', ms: 300 };
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => client.ask('fan', { op: 'relay', to: 'wide', msg: sleep })),
    );
    expect(replies).toEqual(Array(6).fill('slept'));
    expect(await client.ask('wide', { op: 'peak' })).toBe(6);
    expect(await client.ask('fan', { op: 'peak' })).toBe(6);
    const echoes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.ask('wide', { op: 'echo', value: i })),
    );
    expect(echoes).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('restarts a remote actor that throws under the same name and reports the restart in status', async () => {
    await client.spawn({
      kind: 'echo',
      name: 'fragile',
      placement: { kind: 'rank', rank: 2 },
      supervision: { backoffInitialMs: 10 },
    });
    await client.ask('fragile', { op: 'add', n: 4 });
    await expect(client.ask('a', { op: 'relay', to: 'fragile', msg: { op: 'boom' } })).rejects.toMatchObject({
      code: 'ACTOR_FAILED',
      message: 'boom requested',
    });
    expect(await client.ask('fragile', { op: 'get' })).toBe(0);
    const entry = await waitFor(async () =>
      (await client.status()).actors.find((x) => x.name === 'fragile' && x.restarts === 1),
    );
    expect(entry).toMatchObject({ node: 2, state: 'running' });
    const failure = await workers
      .get(2)
      ?.waitForLog((l) => l.msg === 'actor failed while handling a message');
    expect(failure).toMatchObject({ rank: 2, actor: 'fragile', failingMessage: '{"op":"boom"}' });
  });

  it('fails an ask to an unknown actor, a stopped actor, and a hung actor within its timeout', async () => {
    await expect(client.ask('ghost', { op: 'where' })).rejects.toSatisfy((e) =>
      isDrError(e, 'ACTOR_NOT_FOUND'),
    );
    await client.spawn({ kind: 'echo', name: 'short-lived', placement: { kind: 'rank', rank: 3 } });
    await client.stopActor('short-lived');
    await expect(client.ask('a', { op: 'relay', to: 'short-lived', msg: { op: 'where' } })).rejects.toSatisfy(
      (e) => isDrError(e, 'ACTOR_NOT_FOUND'),
    );
    const started = Date.now();
    await expect(client.ask('b', { op: 'sleep', ms: 5_000 }, { timeoutMs: 300 })).rejects.toSatisfy((e) =>
      isDrError(e, 'ACTOR_ASK_TIMEOUT'),
    );
    // Long before the actor's 5 s reply; the rest is slack for a loaded 2-core CI machine.
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('detects a SIGKILLed worker within the configured timeout and re-spawns its actors on survivors', async () => {
    await client.spawn({
      kind: 'echo',
      name: 'mover',
      placement: { kind: 'rank', rank: 3 },
      respawnOnNodeLoss: true,
    });
    await client.spawn({
      kind: 'echo',
      name: 'pinned',
      placement: { kind: 'rank', rank: 3 },
      maxConcurrency: 4,
    });
    await client.ask('mover', { op: 'add', n: 3 });
    expect((await where('mover')).rank).toBe(3);
    expect(await client.ask('a', { op: 'relay', to: 'mover', msg: { op: 'where' } })).toMatchObject({
      rank: 3,
    });

    const hung = { op: 'sleep', ms: 60_000 };
    const inFlight = [
      ...Array.from({ length: 3 }, () => client.ask('pinned', hung, { timeoutMs: 20_000 })),
      client.ask('fan', { op: 'relay', to: 'pinned', msg: hung, timeoutMs: 20_000 }, { timeoutMs: 20_000 }),
    ].map((p) =>
      p.then(
        () => 'answered',
        (e: unknown) => [(e as { code?: string }).code, Date.now()],
      ),
    );
    await waitFor(async () => ((await client.ask('pinned', { op: 'peak' })) === 4 ? true : undefined));

    const killedAt = Date.now();
    await workers.get(3)?.kill('SIGKILL');
    // Asks in flight to the dead node fail at once (its links close), not at the detector or their timeout.
    const settled = (await Promise.all(inFlight)) as Array<[string, number]>;
    // Named per ask (3 direct from the client through the head, 1 relayed worker to worker), so a failure
    // says which path did not fail fast.
    expect(settled.map(([code]) => code)).toEqual(Array(4).fill('ACTOR_NODE_DOWN'));
    for (const [, at] of settled) expect(at - killedAt).toBeLessThan(DOWN_AFTER_MS);
    await waitFor(async () => (nodeState(await client.status(), 3) === 'down' ? true : undefined));
    // The detector checks every heartbeat; the status poll adds an ask round trip. The rest is slack for a
    // loaded 2-core CI machine (as in the dashboard e2e test), still far below a 20 s ask timeout.
    expect(Date.now() - killedAt).toBeLessThan(DOWN_AFTER_MS + 2 * HEARTBEAT_MS + 1_500);

    const moved = await waitFor(async () =>
      (await client.status()).actors.find((x) => x.name === 'mover' && x.state === 'running' && x.node !== 3),
    );
    expect([0, 1, 2]).toContain(moved.node);
    expect((await where('mover')).rank).toBe(moved.node);
    expect(await client.ask('mover', { op: 'get' })).toBe(0);
    expect(await client.ask('a', { op: 'relay', to: 'mover', msg: { op: 'where' } })).toMatchObject({
      rank: moved.node,
    });

    const askedAt = Date.now();
    await expect(client.ask('pinned', { op: 'where' }, { timeoutMs: 5_000 })).rejects.toSatisfy((e) =>
      isDrError(e, 'ACTOR_NODE_DOWN'),
    );
    // Refused because the node is down, not after the ask's 5 s timeout; slack for a loaded CI machine.
    expect(Date.now() - askedAt).toBeLessThan(3_000);
  });

  it('lets a restarted worker rejoin under its rank', async () => {
    workers.set(3, await startWorker(headPort, 3));
    const status = await waitFor(async () => {
      const s = await client.status();
      return nodeState(s, 3) === 'alive' ? s : undefined;
    });
    expect(status.nodes).toHaveLength(4);
    await client.spawn({ kind: 'echo', name: 'back', placement: { kind: 'rank', rank: 3 } });
    expect(await client.ask('a', { op: 'relay', to: 'back', msg: { op: 'where' } })).toMatchObject({
      rank: 3,
    });
  });

  it('refuses a second live node that claims a taken rank', async () => {
    const impostor = await runDr([
      'worker',
      '--head',
      `127.0.0.1:${headPort}`,
      '--rank',
      '2',
      '--listen-host',
      '127.0.0.1',
    ]);
    expect(impostor.code).toBe(1);
    expect(impostor.stderr).toContain('CLUSTER_RANK_TAKEN');
    expect((await where('b')).pid).toBe((await where('b')).pid);
    expect(nodeState(await client.status(), 2)).toBe('alive');
  });

  it('refuses a worker and a client with the wrong token', async () => {
    const worker = await runDr(
      ['worker', '--head', `127.0.0.1:${headPort}`, '--rank', '9', '--listen-host', '127.0.0.1'],
      {
        DR_CLUSTER_TOKEN: 'wrong-token-0123456789',
      },
    );
    expect(worker.code).toBe(1);
    expect(worker.stderr).toContain('CLUSTER_AUTH_REFUSED');
    await expect(
      connectClient({ head: `127.0.0.1:${headPort}`, token: 'wrong-token-0123456789' }),
    ).rejects.toSatisfy((e) => isDrError(e, 'CLUSTER_AUTH_REFUSED'));
    expect((await client.status()).nodes.map((n) => n.rank)).toEqual([0, 1, 2, 3]);
  });

  it('keeps the workers and their actors across a head restart', async () => {
    const pidsBefore = [...workers.values()].map((w) => w.proc.pid);
    const bBefore = await where('b');
    await client.close();
    await head.kill('SIGKILL');
    ({ node: head } = await startHead([], headPort));
    client = await connectClient({ head: `127.0.0.1:${headPort}`, token: TEST_TOKEN });
    const status = await waitFor(async () => {
      const s = await client.status();
      return [1, 2, 3].every((r) => nodeState(s, r) === 'alive') ? s : undefined;
    });
    expect(status.actors.map((a) => [a.name, a.node]).sort()).toEqual(
      expect.arrayContaining([
        ['a', 1],
        ['b', 2],
        ['back', 3],
      ]),
    );
    expect([...workers.values()].map((w) => w.proc.pid)).toEqual(pidsBefore);
    expect(await where('b')).toEqual(bBefore);
    expect(await client.ask('a', { op: 'relay', to: 'b', msg: { op: 'get' } })).toBe(8);
  });

  it('stops every node on `dr stop`', async () => {
    const out = await runDr(['stop', '--head', `127.0.0.1:${headPort}`]);
    expect(out.code).toBe(0);
    const codes = await Promise.all([head.exited, ...[...workers.values()].map((w) => w.exited)]);
    expect(codes).toEqual([0, 0, 0, 0]);
  });
});
