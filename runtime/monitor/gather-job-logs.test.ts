import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadClusterConfig } from '../../config/cluster.ts';
import { silentLogger } from '../../config/log.ts';
import type { Resources } from '../../cluster/resources.ts';
import type { ActorFactory, ActorKinds } from '../actor.ts';
import { NodeRuntime } from '../node-runtime.ts';
import { gatherJobLogs } from './gather-job-logs.ts';
import { readJobLines } from './job-log-reader.ts';
import { NODE_LOGS_KIND, nodeLogsActor, nodeLogsName } from './node-logs-actor.ts';

const TOKEN = 'gather-job-logs-test-token';
const resources: Resources = {
  cpus: 1,
  memoryBytes: 2 ** 30,
  gpus: [],
  labels: {},
  version: 'test',
  hostname: 'localhost',
  pid: process.pid,
};
const kinds: ActorKinds = new Map<string, ActorFactory<never>>([
  [NODE_LOGS_KIND, nodeLogsActor as ActorFactory<never>],
]);

let dir: string;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

function tempDir(): string {
  dir = mkdtempSync(join(tmpdir(), 'dr-logs-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A node's log as pino writes it: JSON lines with the node's bindings. */
function nodeLog(
  file: string,
  rank: number,
  entries: Array<{ time: number; job?: string; msg: string }>,
): void {
  const log = pino({ base: { rank }, timestamp: false }, pino.destination({ dest: file, sync: true }));
  for (const { time, job, msg } of entries) log.info(job === undefined ? { time } : { time, job }, msg);
}

describe('readJobLines', () => {
  it("returns only the job's lines, skips lines that are not JSON, and keeps the newest past the limit", async () => {
    const file = join(tempDir(), 'node.log');
    nodeLog(file, 1, [
      { time: 1, job: 'job-1', msg: 'submitted' },
      { time: 2, job: 'job-10', msg: 'another job whose id contains job-1' },
      { time: 3, msg: 'no job' },
    ]);
    appendFileSync(file, 'pretty text mentioning "job-1"\n{"job":"job-1","msg":"torn');
    appendFileSync(file, '\n');
    nodeLog(file, 1, [
      { time: 4, job: 'job-1', msg: 'progress 5/10' },
      { time: 5, job: 'job-1', msg: 'done' },
    ]);
    expect((await readJobLines(file, 'job-1')).lines.map((l) => l.msg)).toEqual([
      'submitted',
      'progress 5/10',
      'done',
    ]);
    expect(await readJobLines(file, 'job-1', 2)).toMatchObject({
      truncated: true,
      lines: [{ msg: 'progress 5/10' }, { msg: 'done' }],
    });
    await expect(readJobLines(join(dir, 'missing.log'), 'job-1')).rejects.toMatchObject({
      code: 'MONITOR_LOG_UNREADABLE',
    });
  });
});

describe('gatherJobLogs', () => {
  it("merges the job's lines from every node in time order and names the nodes it could not read", async () => {
    const logs = tempDir();
    // The head listens on a port of its own choosing (0); the workers join it there.
    const config = (rank: number, masterPort: number) =>
      loadClusterConfig({
        env: {},
        cwd: logs,
        flags: {
          rank,
          masterAddr: '127.0.0.1',
          masterPort,
          nnodes: 3,
          token: TOKEN,
          listenHost: '127.0.0.1',
        },
      });
    const nodes: NodeRuntime[] = [];
    for (const rank of [0, 1, 2]) {
      const node = new NodeRuntime({
        config: config(rank, nodes[0]?.node.port ?? 0),
        role: rank === 0 ? 'head' : 'worker',
        kinds,
        resources,
        logger: silentLogger,
      });
      await node.start();
      cleanups.push(() => node.stop());
      nodes.push(node);
    }
    nodeLog(join(logs, 'node-0.log'), 0, [
      { time: 100, job: 'job-7', msg: 'submitted evaluate job' },
      { time: 400, job: 'job-7', msg: 'state succeeded' },
      { time: 150, job: 'job-8', msg: 'other job' },
    ]);
    nodeLog(join(logs, 'node-1.log'), 1, [
      { time: 200, job: 'job-7', msg: 'trajectory 1 done' },
      { time: 300, job: 'job-7', msg: 'trajectory 2 done' },
    ]);
    const head = nodes[0]!;
    for (const rank of [0, 1]) {
      await head.spawn({
        kind: NODE_LOGS_KIND,
        name: nodeLogsName(rank),
        args: { file: join(logs, `node-${rank}.log`) },
        placement: { kind: 'rank', rank },
      });
    }
    // Rank 2 gets its reader spawned by gatherJobLogs, without a log file configured.
    const gathered = await gatherJobLogs(head, 'job-7');
    expect(gathered.lines.map((l) => [l.time, l.rank, l.msg])).toEqual([
      [100, 0, 'submitted evaluate job'],
      [200, 1, 'trajectory 1 done'],
      [300, 1, 'trajectory 2 done'],
      [400, 0, 'state succeeded'],
    ]);
    expect(gathered.missing).toEqual([
      { rank: 2, code: 'MONITOR_NO_LOG_FILE', message: expect.stringContaining('DR_LOG_FILE') },
    ]);
  });
});
