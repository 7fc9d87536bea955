/** `dr` node start-up: failures stop the process naming the setting and the fix; the dashboard and log files. */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient } from '../../runtime/client.ts';
import { runDr, startDr, startWorker, TEST_KINDS, TEST_TOKEN } from '../../runtime/testing/node-process.ts';

let busy: Server;
let busyPort: number;
beforeAll(async () => {
  busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  busyPort = (busy.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => busy.close(() => r())));

/** `dr worker` rank 1 on loopback, joining the head at `port`. */
const workerOf = (port: number, ...extra: string[]): string[] => [
  'worker',
  '--head',
  `127.0.0.1:${port}`,
  '--rank',
  '1',
  '--listen-host',
  '127.0.0.1',
  ...extra,
];

describe('dr node start-up errors', () => {
  it('stops on a non-numeric PET_NODE_RANK, naming the variable', async () => {
    const out = await runDr(['start'], {
      PET_NODE_RANK: 'two',
      PET_MASTER_ADDR: '127.0.0.1',
      PET_MASTER_PORT: String(busyPort),
    });
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(
      /CONFIG_INVALID: invalid cluster setting rank \(PET_NODE_RANK or --rank\) = "two"/,
    );
  });

  it('stops when the head port is in use and says how to fix it', async () => {
    const out = await runDr(['head', '--port', String(busyPort), '--listen-host', '127.0.0.1']);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/CLUSTER_PORT_IN_USE: port \d+ on 127\.0\.0\.1 is already in use\. Fix:/);
  });

  it('stops a worker whose head never answers within the join timeout', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const out = await runDr(workerOf(port, '--join-timeout-ms', '300'));
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/CLUSTER_HEAD_UNREACHABLE: cannot reach the head .* Fix: start it first/);
  });

  it('stops with CLUSTER_HEAD_UNREACHABLE when the head accepts connections but never answers', async () => {
    // A frozen host: TCP connects, the WebSocket handshake never completes.
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const out = await runDr(
        workerOf(
          port,
          '--heartbeat-ms',
          '100',
          '--suspect-after-ms',
          '250',
          '--down-after-ms',
          '500',
          '--join-timeout-ms',
          '1000',
        ),
      );
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/CLUSTER_HEAD_UNREACHABLE/);
      expect(sockets.length).toBeGreaterThan(1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('stops without a token, pointing at DR_CLUSTER_TOKEN and .dr-token', async () => {
    const out = await runDr(['head', '--port', '0'], {
      DR_CLUSTER_TOKEN: undefined,
      DR_CLUSTER_TOKEN_FILE: '/nonexistent/dr-token',
    });
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/token.*DR_CLUSTER_TOKEN.*\.dr-token/);
  });
});

describe('dr start', () => {
  it('runs the head for PET_NODE_RANK=0 and a worker that joins it otherwise', async () => {
    const common = ['--listen-host', '127.0.0.1', '--kinds', TEST_KINDS];
    const head = startDr(['start', ...common], { PET_NODE_RANK: '0', PET_MASTER_PORT: '0', PET_NNODES: '2' });
    const worker = { kill: async () => null as number | null };
    try {
      const ready = await head.waitForLog((l) => l.msg === 'node ready');
      expect(ready.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const port = Number(ready.port);
      const w = startDr(['start', ...common], {
        PET_NODE_RANK: '1',
        PET_MASTER_ADDR: '127.0.0.1',
        PET_MASTER_PORT: String(port),
        PET_NNODES: '2',
      });
      worker.kill = () => w.kill('SIGKILL');
      await w.waitForLog((l) => l.msg === 'node ready');
      const client = await connectClient({ head: `127.0.0.1:${port}`, token: TEST_TOKEN });
      const status = await client.status();
      await client.close();
      expect(status.nnodes).toBe(2);
      expect(status.nodes.map((n) => [n.rank, n.state])).toEqual([
        [0, 'alive'],
        [1, 'alive'],
      ]);
    } finally {
      await worker.kill();
      await head.kill('SIGKILL');
    }
  });
});

describe('the dashboard of dr head', () => {
  it('serves the dashboard to the cluster token and to DR_DASHBOARD_TOKEN, at the URL in `node ready`', async () => {
    const readToken = 'read-only-token-0123456789';
    const head = startDr(
      ['head', '--port', '0', '--listen-host', '127.0.0.1', '--kinds', TEST_KINDS, '--dashboard-port', '0'],
      { DR_DASHBOARD_TOKEN: readToken },
    );
    try {
      const ready = await head.waitForLog((l) => l.msg === 'node ready');
      expect(ready.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const state = (token: string) =>
        fetch(`${String(ready.dashboard)}/api/state`, { headers: { authorization: `Bearer ${token}` } });
      expect((await state(TEST_TOKEN)).status).toBe(200);
      expect((await state(readToken)).status).toBe(200);
      expect((await state('not-a-token-0123456789')).status).toBe(401);
    } finally {
      await head.kill('SIGKILL');
    }
  });

  it('keeps the head running without a dashboard when the dashboard port is taken', async () => {
    const head = startDr([
      'head',
      '--port',
      '0',
      '--listen-host',
      '127.0.0.1',
      '--kinds',
      TEST_KINDS,
      '--dashboard-port',
      String(busyPort),
    ]);
    try {
      const ready = await head.waitForLog((l) => l.msg === 'node ready');
      expect(ready.dashboard).toBeUndefined();
      expect(head.lines).toContainEqual(
        expect.objectContaining({
          level: 50,
          code: 'MONITOR_PORT_IN_USE',
          msg: expect.stringMatching(/--dashboard-port/),
        }),
      );
      const client = await connectClient({ head: `127.0.0.1:${Number(ready.port)}`, token: TEST_TOKEN });
      const status = await client.status();
      await client.close();
      expect(status.nodes.map((n) => [n.rank, n.state])).toEqual([[0, 'alive']]);
    } finally {
      await head.kill('SIGKILL');
    }
  });

  it('stops on an invalid --dashboard-port, naming the flag', async () => {
    const out = await runDr([
      'head',
      '--port',
      '0',
      '--listen-host',
      '127.0.0.1',
      '--dashboard-port',
      'http',
    ]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/CONFIG_INVALID: invalid dashboard port 'http' \(--dashboard-port/);
  });
});

describe('node log files', () => {
  const NODE_LOGS_KINDS = fileURLToPath(new URL('../../runtime/monitor/testing/kinds.ts', import.meta.url));

  it('dr head/worker --log-file write their JSON lines there, where dr node-logs reads them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dr-log-file-'));
    const workerLog = join(dir, 'logs', 'worker-1.log');
    const head = startDr([
      'head',
      '--port',
      '0',
      '--listen-host',
      '127.0.0.1',
      '--kinds',
      NODE_LOGS_KINDS,
      '--log-file',
      join(dir, 'head.log'),
    ]);
    const nodes = [head];
    try {
      const port = Number((await head.waitForLog((l) => l.msg === 'node ready')).port);
      const worker = await startWorker(port, 1, ['--kinds', NODE_LOGS_KINDS, '--log-file', workerLog]);
      nodes.push(worker);
      const fromFile = readFileSync(workerLog, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const readyOnStderr = await worker.waitForLog((l) => l.msg === 'node ready');
      expect(readyOnStderr).toMatchObject({ role: 'worker', rank: 1 });
      expect(fromFile.find((l) => l.msg === 'node ready')).toEqual(readyOnStderr);

      // Another writer's job line lands in the same file; both nodes' readers find their files.
      appendFileSync(
        workerLog,
        `${JSON.stringify({ level: 30, time: 5_000, job: 'job-f', msg: 'step done' })}\n`,
      );
      const out = await runDr(['node-logs', 'job-f', '--head', `127.0.0.1:${port}`]);
      expect(out.code).toBe(0);
      expect(out.stdout.trim()).toBe('1970-01-01T00:00:05.000Z [rank 1] INFO  step done');
      expect(out.stderr).not.toContain('MONITOR_NO_LOG_FILE');
    } finally {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops on a --log-file that cannot be opened, naming the path and the flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dr-log-file-'));
    try {
      writeFileSync(join(dir, 'plain-file'), '');
      const out = await runDr(['head', '--port', '0', '--log-file', join(dir, 'plain-file', 'head.log')]);
      expect(out.code).toBe(2);
      expect(out.stderr).toMatch(
        /CONFIG_INVALID: cannot open the log file .*plain-file\/head\.log \(--log-file/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
