/** `dr node-logs JOB` against real `dr head` and `dr worker` processes, each with its own log file. */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_HEARTBEAT, runDr, startDr, startWorker, type NodeProcess } from '../testing/node-process.ts';

const KINDS = fileURLToPath(new URL('./testing/kinds.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'dr-node-logs-'));
const nodes: NodeProcess[] = [];
let headPort: number;

function logLines(file: string, rank: number, lines: Array<[time: number, job: string, msg: string]>): void {
  appendFileSync(
    file,
    lines.map(([time, job, msg]) => `${JSON.stringify({ level: 30, time, rank, job, msg })}\n`).join(''),
  );
}

beforeAll(async () => {
  const head = startDr(
    ['head', '--port', '0', '--listen-host', '127.0.0.1', '--kinds', KINDS, ...FAST_HEARTBEAT],
    { DR_LOG_FILE: join(dir, 'head.log') },
  );
  nodes.push(head);
  headPort = Number((await head.waitForLog((l) => l.msg === 'node ready')).port);
  nodes.push(await startWorker(headPort, 1, ['--kinds', KINDS], { DR_LOG_FILE: join(dir, 'worker-1.log') }));
  nodes.push(await startWorker(headPort, 2, ['--kinds', KINDS], { DR_LOG_FILE: '' }));
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  rmSync(dir, { recursive: true, force: true });
});

describe('dr node-logs', () => {
  it("prints the job's lines from every node in time order and names the node without a log file", async () => {
    logLines(join(dir, 'head.log'), 0, [
      [1_000, 'job-z', 'submitted evaluate job'],
      [1_500, 'job-other', 'not this job'],
      [4_000, 'job-z', 'state succeeded'],
    ]);
    logLines(join(dir, 'worker-1.log'), 1, [
      [2_000, 'job-z', 'trajectory 0 done'],
      [3_000, 'job-z', 'trajectory 1 done'],
    ]);
    const { code, stdout, stderr } = await runDr(['node-logs', 'job-z', '--head', `127.0.0.1:${headPort}`]);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toEqual([
      '1970-01-01T00:00:01.000Z [rank 0] INFO  submitted evaluate job',
      '1970-01-01T00:00:02.000Z [rank 1] INFO  trajectory 0 done',
      '1970-01-01T00:00:03.000Z [rank 1] INFO  trajectory 1 done',
      '1970-01-01T00:00:04.000Z [rank 0] INFO  state succeeded',
    ]);
    expect(stderr).toContain('rank 2: MONITOR_NO_LOG_FILE');
  });
});
