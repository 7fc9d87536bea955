import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { startDashboardServer, type DashboardServer } from './dashboard-server.ts';
import { MonitorHub } from './monitor-hub.ts';
import { MonitorTables } from './monitor-tables.ts';
import { renderStatus } from './status-view.ts';
import { watchStatus } from './status-watch.ts';

const resources = { cpus: 4, memoryBytes: 16 * 2 ** 30, gpus: [{ id: '0' }], labels: {} };

function cluster(now: number) {
  const tables = new MonitorTables();
  tables.nodeJoined(0, { resources, address: '10.0.0.1:7400' }, now - 1500);
  tables.nodeJoined(1, { resources }, now - 1500);
  tables.nodeState(1, 'down', now - 500);
  tables.upsertActor({
    path: 'search/0',
    kind: 'search',
    node: 0,
    state: 'running',
    restarts: 3,
    mailboxDepth: 12,
  });
  tables.upsertJob({
    id: 'job-a',
    kind: 'evaluate',
    state: 'running',
    progress: { done: 25, total: 100 },
    submittedAt: now - 10_000,
    startedAt: now - 10_000,
    results: [],
  });
  return tables;
}

describe('renderStatus', () => {
  it('lays out nodes, actors and jobs with states, heartbeat ages, progress and ETA', () => {
    const now = Date.UTC(2026, 0, 1);
    const text = renderStatus(new MonitorHub({ source: cluster(now) }).state(now), { width: 200 });
    const lines = text.split('\n');
    expect(lines[0]).toBe(
      'dr cluster at 2026-01-01T00:00:00.000Z: 1/2 nodes alive, 1 actors, 1 jobs running',
    );
    expect(lines.find((l) => l.startsWith('  0 '))).toMatch(
      /^ {2}0\s+alive\s+10\.0\.0\.1:7400\s+4\s+16G\s+1\s+1\.5s ago\s+1$/,
    );
    expect(lines.find((l) => l.startsWith('  1 '))).toMatch(/^ {2}1\s+down\s/);
    expect(text).toMatch(/ {2}0\s+search\/0\s+search\s+running\s+3\s+12/);
    expect(text).toMatch(/job-a\s+evaluate\s+running\s+\[#####\.{15}\] 25\/100\s+30s/);
  });

  it('colours states on a terminal and keeps every line within the width', () => {
    const now = Date.now();
    const state = new MonitorHub({ source: cluster(now) }).state(now);
    expect(renderStatus(state, { color: true })).toContain('\x1b[31mdown\x1b[0m');
    for (const line of renderStatus(state, { width: 40, color: true }).split('\n')) {
      // eslint-disable-next-line no-control-regex
      expect(line.replace(/\x1b\[[0-9;]*m/g, '').length).toBeLessThanOrEqual(40);
    }
  });
});

describe('watchStatus', () => {
  let server: DashboardServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('redraws from the head dashboard and picks up changes between frames', async () => {
    const tables = cluster(Date.now());
    server = await startDashboardServer({
      hub: new MonitorHub({ source: tables }),
      tokens: ['watch-token-123'],
    });
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const stop = new AbortController();
    const watching = watchStatus({
      target: { url: server.url, token: 'watch-token-123' },
      intervalMs: 50,
      out,
      signal: stop.signal,
    });
    await expect.poll(() => text).toContain('job-a');
    tables.upsertJob({
      id: 'job-b',
      kind: 'train',
      state: 'queued',
      progress: { done: 0, total: 10 },
      submittedAt: Date.now(),
      results: [],
    });
    await expect.poll(() => text).toContain('job-b');
    stop.abort();
    await watching;
  });

  it('fails a one-shot view with MONITOR_UNAUTHORIZED on a wrong token', async () => {
    server = await startDashboardServer({
      hub: new MonitorHub({ source: cluster(Date.now()) }),
      tokens: ['watch-token-123'],
    });
    await expect(
      watchStatus({ target: { url: server.url, token: 'nope' }, once: true, out: new PassThrough() }),
    ).rejects.toMatchObject({
      code: 'MONITOR_UNAUTHORIZED',
    });
  });
});
