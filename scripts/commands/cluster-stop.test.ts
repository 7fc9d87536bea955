/**
 * A `dr` node told to stop (SIGTERM) ends within a bound, whatever else has gone: its head, the process that
 * read its stderr (a launcher killed before it), the work it was doing. Real head and worker processes.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connectClient } from '../../runtime/client.ts';
import { startHead, startWorker, TEST_TOKEN, type NodeProcess } from '../../runtime/testing/node-process.ts';

const STUCK_EXIT = fileURLToPath(new URL('../../runtime/testing/stuck-exit.mjs', import.meta.url));

/** Generous: CI is a loaded 2-core box. A node that ignores SIGTERM stays for good. */
const EXIT_BOUND_MS = 15_000;

const started: NodeProcess[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.kill('SIGKILL')));
});

/** SIGTERMs `node`; true when it exits within the bound (on its own or by its own kill deadline). */
async function exitsOnSigterm(node: NodeProcess): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), EXIT_BOUND_MS)));
  node.proc.kill('SIGTERM');
  const exited = await Promise.race([node.exited.then(() => true as const), late]);
  clearTimeout(timer);
  return exited;
}

describe('dr worker on SIGTERM', () => {
  it('exits when its head is gone and nobody reads its stderr any more', async () => {
    const head = await startHead();
    started.push(head.node);
    const worker = await startWorker(head.port, 1);
    started.push(worker);
    await head.node.kill('SIGKILL');
    // It has noticed (a warning); its stop then logs more lines, which used to hang its exit on the closed
    // stderr now and then (a race with the failing write's callback; the next test makes it certain).
    await worker.waitForLog((l) => Number(l.level) >= 40, 20_000);
    worker.proc.stderr!.destroy();

    expect(await exitsOnSigterm(worker)).toBe(true);
  });

  it('exits while an actor on it is in the middle of a request', async () => {
    const head = await startHead();
    started.push(head.node);
    const worker = await startWorker(head.port, 1);
    started.push(worker);
    const client = await connectClient({ head: `127.0.0.1:${head.port}`, token: TEST_TOKEN });
    try {
      await client.spawn({ kind: 'echo', name: 'busy', placement: { kind: 'rank', rank: 1 } });
      const inFlight = client
        .ask('busy', { op: 'sleep', ms: 60_000 }, { timeoutMs: 60_000 })
        .catch(() => 'ended');
      worker.proc.stderr!.destroy();

      expect(await exitsOnSigterm(worker)).toBe(true);
      expect(await inFlight).toBe('ended');
    } finally {
      await client.close();
    }
  });

  it('is killed by its own deadline when process.exit never returns', async () => {
    const head = await startHead();
    started.push(head.node);
    const worker = await startWorker(head.port, 1, [], { NODE_OPTIONS: `--import ${STUCK_EXIT}` });
    started.push(worker);

    expect(await exitsOnSigterm(worker)).toBe(true);
    expect(worker.proc.signalCode).toBe('SIGKILL');
    const last = worker.lines.at(-1);
    expect(last?.msg).toBe('process still alive at its exit deadline; killing it');
    expect(last?.reason).toBe('process.exit(0) did not return after SIGTERM');
  });
});
