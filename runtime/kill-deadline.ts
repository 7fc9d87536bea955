/**
 * The last resort of a process that has been told to end: a thread of its own that SIGKILLs the process if
 * it is still alive at a deadline. It needs nothing from the main thread, so it also fires when the main
 * thread never comes back: stuck in a synchronous call, or inside `process.exit` itself, whose 'exit'
 * listeners and native teardown can wait forever (pino flushing a log buffer to a stderr whose reader is
 * gone retries the write every 100 ms without end; a worker thread in a long onnxruntime run is joined).
 * Before the kill it writes one JSON log line saying why, to stderr and to DR_LOG_FILE when set.
 */
import { Worker } from 'node:worker_threads';

export interface KillDeadline {
  /** Moves the deadline to `ms` from now when that is sooner; `reason` is what the kill line will say. */
  tighten(ms: number, reason: string): void;
}

/** Arms the deadline `ms` from now; the thread never keeps the process alive by itself. */
export function armKillDeadline(
  ms: number,
  reason: string,
  fields: Record<string, unknown> = {},
): KillDeadline {
  const worker = new Worker(WATCHDOG, {
    eval: true,
    // Plain JavaScript: it needs none of the parent's loaders (tsx, vitest), and starts faster without.
    execArgv: [],
    workerData: { at: Date.now() + ms, reason, fields },
  });
  worker.unref();
  return {
    tighten(next, why) {
      worker.postMessage({ at: Date.now() + next, reason: why });
    },
  };
}

const WATCHDOG = `
const { parentPort, workerData } = require('node:worker_threads');
const { appendFileSync, writeSync } = require('node:fs');
let { at, reason } = workerData;
let timer;
function kill() {
  const line = JSON.stringify({
    level: 50, time: Date.now(), pid: process.pid, ...workerData.fields, reason,
    msg: 'process still alive at its exit deadline; killing it',
  }) + '\\n';
  try { writeSync(2, line); } catch {}
  try { if (process.env.DR_LOG_FILE) appendFileSync(process.env.DR_LOG_FILE, line); } catch {}
  process.kill(process.pid, 'SIGKILL');
}
function schedule() {
  clearTimeout(timer);
  timer = setTimeout(kill, Math.max(0, at - Date.now()));
}
parentPort.on('message', (m) => {
  if (m.at >= at) return;
  at = m.at;
  reason = m.reason;
  schedule();
});
schedule();
`;
