import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startDashboardServer, type DashboardServer } from './dashboard-server.ts';
import { MonitorHub, type ClusterState, type DashboardMessage } from './monitor-hub.ts';
import { MonitorTables } from './monitor-tables.ts';
import type { RunHistory } from './run-history.ts';

const TOKEN = 'cluster-secret';
const READ_TOKEN = 'read-only-secret';
const resources = { cpus: 2, memoryBytes: 2 ** 33, gpus: [], labels: {} };

let server: DashboardServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start() {
  const tables = new MonitorTables();
  tables.nodeJoined(0, { resources, address: '127.0.0.1:7000' });
  tables.nodeJoined(1, { resources });
  const hub = new MonitorHub({ source: tables, sampleIntervalMs: 60_000, stateDebounceMs: 10 });
  server = await startDashboardServer({ hub, tokens: [TOKEN, READ_TOKEN] });
  return { tables, hub, url: server.url };
}

function openSocket(
  url: string,
  headers: Record<string, string>,
): Promise<{ ws: WebSocket; messages: DashboardMessage[]; next: () => Promise<DashboardMessage> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`, { headers });
    const messages: DashboardMessage[] = [];
    const waiters: Array<(m: DashboardMessage) => void> = [];
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as DashboardMessage;
      const waiter = waiters.shift();
      if (waiter === undefined) messages.push(message);
      else waiter(message);
    });
    ws.on('open', () =>
      resolve({
        ws,
        messages,
        next: () =>
          messages.length > 0 ? Promise.resolve(messages.shift()!) : new Promise((r) => waiters.push(r)),
      }),
    );
    ws.on('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

describe('dashboard server', () => {
  it('refuses every route without a valid token with 401', async () => {
    const { url } = await start();
    for (const path of [
      '/',
      '/metrics',
      '/api/state',
      '/api/snapshot',
      '/assets/dashboard.js',
      '/assets/uplot.js',
    ]) {
      const attempts: Array<Record<string, string>> = [
        {},
        { authorization: 'Bearer wrong' },
        { cookie: 'dr_token=wrong' },
        { authorization: `Basic ${TOKEN}` },
      ];
      for (const headers of attempts) {
        const res = await fetch(`${url}${path}`, { headers });
        expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toContain('Bearer');
        expect(await res.text()).not.toContain('dr_node_up');
      }
    }
    await expect(openSocket(server!.url, {})).rejects.toThrow('status 401');
    await expect(openSocket(server!.url, { cookie: 'dr_token=wrong' })).rejects.toThrow('status 401');
  });

  it('serves the page, assets, state and metrics to either accepted token', async () => {
    const { url } = await start();
    for (const token of [TOKEN, READ_TOKEN]) {
      const auth = { authorization: `Bearer ${token}` };
      const page = await fetch(`${url}/`, { headers: auth });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('/assets/dashboard.js');
      const uplot = await fetch(`${url}/assets/uplot.js`, { headers: auth });
      expect(uplot.headers.get('content-type')).toContain('javascript');
      expect(await uplot.text()).toContain('export { uPlot as default }');
      const state = (await (await fetch(`${url}/api/state`, { headers: auth })).json()) as {
        nodes: Array<{ rank: number; state: string }>;
      };
      expect(state.nodes.map((n) => [n.rank, n.state])).toEqual([
        [0, 'alive'],
        [1, 'alive'],
      ]);
      const metrics = await fetch(`${url}/metrics`, { headers: auth });
      expect(metrics.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      const up = parsePrometheusTextFormat(await metrics.text()).find((f) => f.name === 'dr_node_up');
      expect(up?.metrics.map((m) => m.value)).toEqual(['1', '1']);
    }
  });

  it('trades a token posted to /login for an HttpOnly cookie that opens the page', async () => {
    const { url } = await start();
    const refused = await fetch(`${url}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: 'nope' }),
      redirect: 'manual',
    });
    expect(refused.status).toBe(401);
    const login = await fetch(`${url}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: READ_TOKEN }),
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const page = await fetch(`${url}/`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
  });

  it('shows a login form, not the dashboard, to a browser without a token', async () => {
    const { url } = await start();
    const res = await fetch(`${url}/`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(401);
    const html = await res.text();
    expect(html).toContain('action="/login"');
    expect(html).not.toContain('dashboard.js');
  });

  it('pushes a snapshot on connect, then the new state when a node goes down', async () => {
    const { url, tables } = await start();
    const { ws, next } = await openSocket(url, { authorization: `Bearer ${READ_TOKEN}` });
    const first = await next();
    expect(first.type).toBe('snapshot');
    expect(first.type === 'snapshot' && first.data.charts.length).toBeGreaterThan(5);
    tables.nodeState(1, 'down');
    const update = await next();
    expect(update.type).toBe('state');
    expect(update.data.nodes.find((n) => n.rank === 1)?.state).toBe('down');
    expect(update.data.nodes.find((n) => n.rank === 1)?.history.map((h) => h.state)).toEqual([
      'alive',
      'down',
    ]);
    ws.close();
  });

  it('refuses a WebSocket opened from another origin even with a valid cookie', async () => {
    const { url } = await start();
    await expect(
      openSocket(url, { cookie: `dr_token=${TOKEN}`, origin: 'http://evil.example' }),
    ).rejects.toThrow('status 403');
    const { ws } = await openSocket(url, { cookie: `dr_token=${TOKEN}`, origin: url });
    ws.close();
  });

  it("serves a job's result files listed in the job table, and nothing else", async () => {
    const { url, tables } = await start();
    const dir = mkdtempSync(join(tmpdir(), 'dr-results-'));
    try {
      writeFileSync(join(dir, 'scores.json'), '{"f1":0.42}');
      writeFileSync(join(dir, 'secret.txt'), 'not listed');
      tables.upsertJob({
        id: 'job/1',
        kind: 'evaluate',
        state: 'succeeded',
        progress: { done: 1, total: 1 },
        submittedAt: 0,
        results: [
          { label: 'scores', href: join(dir, 'scores.json') },
          { label: 'gone', href: join(dir, 'deleted.json') },
          { label: 'wandb', href: 'https://example.org/run/1' },
          { label: 'trap', href: 'javascript:alert(1)' },
        ],
      });
      const auth = { authorization: `Bearer ${TOKEN}` };
      const state = (await (await fetch(`${url}/api/state`, { headers: auth })).json()) as ClusterState;
      expect(state.jobs[0]?.resultLinks).toEqual([
        { label: 'scores', href: '/results/job%2F1/0' },
        { label: 'gone', href: '/results/job%2F1/1' },
        { label: 'wandb', href: 'https://example.org/run/1' },
        { label: 'trap', href: null },
      ]);
      const scores = await fetch(`${url}/results/job%2F1/0`, { headers: auth });
      expect([scores.status, scores.headers.get('content-type'), await scores.text()]).toEqual([
        200,
        'application/json',
        '{"f1":0.42}',
      ]);
      expect((await fetch(`${url}/results/job%2F1/0`)).status).toBe(401);
      for (const path of [
        '/results/job%2F1/1',
        '/results/job%2F1/2',
        '/results/job%2F1/9',
        '/results/nope/0',
        `/results/job%2F1/..%2F${'secret.txt'}`,
      ]) {
        expect((await fetch(`${url}${path}`, { headers: auth })).status, path).toBe(404);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves a job's whole-run history and the files its steps name, from its metrics folder only", async () => {
    const { tables, url } = await start();
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-run-'));
    try {
      mkdirSync(join(dir, 'run', 'rollout'), { recursive: true });
      writeFileSync(join(dir, 'secret.json'), '{}');
      writeFileSync(join(dir, 'run', 'rollout', 'rollout_step_1.json'), '[{"idx":3}]');
      writeFileSync(
        join(dir, 'run', 'metrics.jsonl'),
        [
          {
            type: 'step',
            step: 1,
            rollout: { rewardMean: 0.5, f1Mean: 0.6 },
            rolloutFile: 'rollout/rollout_step_1.json',
          },
          { type: 'step', step: 2, rollout: { rewardMean: 0.7, f1Mean: 0.8 } },
        ]
          .map((e) => JSON.stringify(e))
          .join('\n'),
      );
      const job = (id: string, results: { label: string; href: string }[]) =>
        tables.upsertJob({
          id,
          kind: 'train',
          state: 'running',
          progress: { done: 2, total: 4 },
          submittedAt: 0,
          results,
        });
      job('job-t', [{ label: 'metrics', href: join(dir, 'run', 'metrics.jsonl') }]);
      job('job-e', [{ label: 'scores', href: join(dir, 'secret.json') }]);
      const auth = { authorization: `Bearer ${READ_TOKEN}` };

      const res = await fetch(`${url}/api/jobs/job-t/history`, { headers: auth });

      expect(res.status).toBe(200);
      const history = (await res.json()) as RunHistory;
      expect(history.panels.find((p) => p.id === 'reward')).toMatchObject({
        x: [1, 2],
        series: [{ label: 'train', values: [0.5, 0.7] }, { label: 'held-out' }],
      });
      expect(history.steps).toEqual([
        { step: 1, type: 'step', files: [{ label: 'rolloutFile', path: 'rollout/rollout_step_1.json' }] },
      ]);
      const file = await fetch(`${url}/api/jobs/job-t/files/rollout/rollout_step_1.json`, { headers: auth });
      expect([file.status, await file.text()]).toEqual([200, '[{"idx":3}]']);
      expect((await fetch(`${url}/api/jobs/job-t/history`)).status).toBe(401);
      for (const path of [
        '/api/jobs/job-t/files/..%2Fsecret.json',
        '/api/jobs/job-t/files/rollout%2F..%2F..%2Fsecret.json',
        '/api/jobs/job-e/history',
        '/api/jobs/nope/history',
      ])
        expect((await fetch(`${url}${path}`, { headers: auth })).status, path).toBe(404);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a taken port as MONITOR_PORT_IN_USE', async () => {
    await start();
    const hub = new MonitorHub({ source: new MonitorTables() });
    await expect(startDashboardServer({ hub, tokens: [TOKEN], port: server!.port })).rejects.toMatchObject({
      code: 'MONITOR_PORT_IN_USE',
    });
  });

  it('prints the advertised host, not the wildcard address, in its URL when bound to all interfaces', async () => {
    const hub = new MonitorHub({ source: new MonitorTables() });
    server = await startDashboardServer({
      hub,
      tokens: [TOKEN],
      host: '0.0.0.0',
      publicHost: 'head-0.example',
    });

    expect(server.url).toBe(`http://head-0.example:${server.port}`);
  });
});
