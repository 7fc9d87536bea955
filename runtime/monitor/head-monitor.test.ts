import { afterEach, describe, expect, it } from 'vitest';
import { loadClusterConfig } from '../../config/cluster.ts';
import { silentLogger } from '../../config/log.ts';
import type { ClusterState } from '../../cluster/monitor/monitor-hub.ts';
import { MetricsRecorder } from '../../cluster/monitor/metrics-recorder.ts';
import type { Resources } from '../../cluster/resources.ts';
import type { ActorFactory, ActorKinds } from '../actor.ts';
import { NodeRuntime } from '../node-runtime.ts';
import { createHeadMonitor, type HeadMonitor } from './head-monitor.ts';
import { startNodeReporting } from './node-reporting.ts';
import { MONITOR_ACTOR, type MonitorMessage } from './protocol.ts';

const TOKEN = 'head-monitor-test-token';
const resources: Resources = {
  cpus: 2,
  memoryBytes: 2 ** 32,
  gpus: [],
  labels: {},
  version: 'test',
  hostname: 'localhost',
  pid: process.pid,
};

/** Reports a job's progress to the monitor the way the job manager does. */
const jobReporter: ActorFactory<unknown> = (_args, ctx) => ({
  receive(msg) {
    const { done } = msg as { done: number };
    const update: MonitorMessage = {
      v: 1,
      type: 'job',
      job: {
        id: 'job-1',
        kind: 'evaluate',
        state: 'running',
        progress: { done, total: 10 },
        submittedAt: 1,
        startedAt: 1,
        results: [],
      },
    };
    ctx.tell(MONITOR_ACTOR, update);
    return 'ok';
  },
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

async function cluster() {
  // The head listens on a port of its own choosing (0); the workers join it there.
  const config = (rank: number, masterPort: number) =>
    loadClusterConfig({
      env: {},
      cwd: '/nonexistent',
      flags: {
        rank,
        masterAddr: '127.0.0.1',
        masterPort,
        nnodes: 3,
        token: TOKEN,
        listenHost: '127.0.0.1',
        // No test here is about failure detection: thresholds a loaded CI machine's event-loop stalls stay
        // under, so a node's history reads 'alive' until it leaves.
        heartbeatIntervalMs: 100,
        suspectAfterMs: 3_000,
        downAfterMs: 6_000,
      },
    });
  const monitor: HeadMonitor = createHeadMonitor({ tokens: [TOKEN], sampleIntervalMs: 100 });
  const kinds: ActorKinds = new Map<string, ActorFactory<never>>([
    ['job-reporter', jobReporter as ActorFactory<never>],
    monitor.kind,
  ]);
  const head = new NodeRuntime({
    config: config(0, 0),
    role: 'head',
    kinds,
    resources,
    logger: silentLogger,
  });
  await head.start();
  cleanups.push(() => head.stop());
  const dashboardUrl = await monitor.attach(head);
  if (dashboardUrl === undefined) throw new Error('dashboard did not start');
  const dashboard = { url: dashboardUrl };
  cleanups.push(() => monitor.close());
  const workers = await Promise.all(
    [1, 2].map(async (rank) => {
      const worker = new NodeRuntime({
        config: config(rank, head.node.port),
        role: 'worker',
        kinds,
        resources,
        logger: silentLogger,
      });
      await worker.start();
      cleanups.push(() => worker.stop());
      return worker;
    }),
  );
  const state = async (): Promise<ClusterState> =>
    (await (
      await fetch(`${dashboard.url}/api/state`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as ClusterState;
  return { head, workers, dashboard, monitor, state };
}

describe('head monitor on a real runtime', () => {
  it('shows every node and actor of the cluster, and a node that leaves (forgetting its metrics)', async () => {
    const { workers, head, state, monitor } = await cluster();
    const stopReporting = startNodeReporting(workers[0]!, {
      recorder: new MetricsRecorder(),
      intervalMs: 50,
    });
    const reportingRanks = () =>
      [...(monitor.store.family('dr_process_resident_memory_bytes')?.series.values() ?? [])].map(
        (s) => s.labels.rank,
      );
    await expect.poll(reportingRanks).toEqual(['1']);
    await head.spawn({ kind: 'job-reporter', name: 'reporter', placement: { kind: 'rank', rank: 2 } });
    await expect
      .poll(async () => (await state()).nodes.map((n) => [n.rank, n.state]))
      .toEqual([
        [0, 'alive'],
        [1, 'alive'],
        [2, 'alive'],
      ]);
    await expect
      .poll(async () => (await state()).actors.map((a) => [a.path, a.node, a.state]))
      .toEqual(
        expect.arrayContaining([
          ['monitor', 0, 'running'],
          ['reporter', 2, 'running'],
        ]),
      );
    // As a node shuts down: reporting stops (its last snapshot goes out), then it leaves.
    stopReporting();
    await workers[0]!.stop();
    await expect
      .poll(async () => (await state()).nodes.find((n) => n.rank === 1)?.history.map((h) => h.state))
      .toEqual(['alive', 'left']);
    expect(reportingRanks()).toEqual([]);
  });

  it('collects metrics from every node, labelled by rank, and job progress told by any actor', async () => {
    const { head, workers, monitor, state } = await cluster();
    const recorders = workers.map(() => new MetricsRecorder());
    workers.forEach((w, i) =>
      cleanups.push(startNodeReporting(w, { recorder: recorders[i]!, intervalMs: 50 })),
    );
    recorders[1]!.counter('dr_search_queries_total', 'q').inc({ actor: 'search/1' }, 7);
    await expect
      .poll(() =>
        [...(monitor.store.family('dr_process_resident_memory_bytes')?.series.values() ?? [])]
          .map((s) => s.labels.rank)
          .sort(),
      )
      .toEqual(['1', '2']);
    await expect
      .poll(() =>
        [...(monitor.store.family('dr_search_queries_total')?.series.values() ?? [])].map((s) => [
          s.labels,
          s.value,
        ]),
      )
      .toEqual([[{ actor: 'search/1', rank: '2' }, 7]]);

    await head.spawn({ kind: 'job-reporter', name: 'reporter', placement: { kind: 'rank', rank: 1 } });
    await head.ask('reporter', { done: 3 });
    await expect
      .poll(async () => (await state()).jobs.map((j) => [j.id, j.progress.done]))
      .toEqual([['job-1', 3]]);
    await head.ask('reporter', { done: 6 });
    await expect
      .poll(async () => (await state()).jobs.map((j) => [j.id, j.progress.done]))
      .toEqual([['job-1', 6]]);

    // A node's report of an actor's mailbox shows on that actor, and only there.
    recorders[0]!.gauge('dr_actor_mailbox_depth', 'waiting').set({ actor: 'reporter' }, 4);
    recorders[1]!.gauge('dr_actor_mailbox_depth', 'waiting').set({ actor: 'reporter' }, 99);
    await expect
      .poll(async () => (await state()).actors.find((a) => a.path === 'reporter')?.mailboxDepth)
      .toBe(4);
    expect((await state()).actors.find((a) => a.path === 'monitor')?.mailboxDepth).toBeNull();
  });
});
