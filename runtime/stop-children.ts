/**
 * Stopping the node processes a launcher started (`npm start`, the F1 script) so that none outlives it:
 * SIGTERM first, so each node stops cleanly, then SIGKILL for any still running after a grace period. A node
 * bounds its own stop (kill-deadline.ts), so the SIGKILL is for whatever ignores SIGTERM all the same.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Longer than a node's own bound on its stop (12 s), so a node that is merely slow stops by itself. */
export const CHILD_GRACE_MS = 15_000;

/** SIGTERMs every child still running, SIGKILLs those still running `graceMs` later; resolves once all have
 * exited. */
export async function stopChildren(
  children: readonly ChildProcess[],
  graceMs = CHILD_GRACE_MS,
): Promise<void> {
  await Promise.all(
    children.filter(running).map(async (child) => {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
      if (await Promise.race([exited.then(() => false), late])) {
        child.kill('SIGKILL');
        await exited;
      }
      clearTimeout(timer);
    }),
  );
}

/**
 * For a process 'exit' listener, where no timer of this process will run again: SIGTERMs every child still
 * running and leaves a detached reaper process behind that SIGKILLs those still running `graceMs` later (it
 * ends as soon as they are all gone). It notes each pid's start time first, so a pid the system has reused
 * in the meantime is never killed.
 */
export function stopChildrenOnExit(children: readonly ChildProcess[], graceMs = CHILD_GRACE_MS): void {
  const left = children.filter(running);
  if (left.length === 0) return;
  for (const child of left) child.kill('SIGTERM');
  spawn(process.execPath, ['-e', REAPER, String(graceMs), ...left.map((c) => String(c.pid))], {
    detached: true,
    stdio: 'ignore',
  }).unref();
}

function running(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

const REAPER = `
const { readFileSync } = require('node:fs');
const [grace, ...pids] = process.argv.slice(1).map(Number);
const deadline = Date.now() + grace;
// Start time in clock ticks since boot (/proc/PID/stat field 22; the command name, field 2, may hold spaces
// and parentheses); '' where there is no /proc, or the process is gone.
function startTime(pid) {
  try {
    const stat = readFileSync('/proc/' + pid + '/stat', 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return '';
  }
}
const started = new Map(pids.map((pid) => [pid, startTime(pid)]));
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return started.get(pid) === startTime(pid);
}
const timer = setInterval(() => {
  const left = pids.filter(alive);
  if (left.length > 0 && Date.now() < deadline) return;
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone since
    }
  }
  clearInterval(timer);
}, 250);
`;
