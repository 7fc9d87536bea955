/**
 * Real `dr` node processes for tests and benchmarks: start one, read its JSON log lines, wait for a line,
 * signal it, and make sure it is gone when the test ends: each node exits when its stdin pipe from this
 * process closes (DR_EXIT_WITH_PARENT), so a crashed or killed test run leaves no orphans behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const DR = fileURLToPath(new URL('../../scripts/dr.js', import.meta.url));
export const TEST_KINDS = fileURLToPath(new URL('./test-kinds.ts', import.meta.url));
export const TEST_TOKEN = 'test-token-0123456789abcdef';

export const FAST_HEARTBEAT_MS = 100;
export const FAST_DOWN_AFTER_MS = 2_000;
/**
 * Fast failure detection so the suite stays short: heartbeats every 100 ms, suspect after 1 s, down after 2 s
 * of silence. Not shorter: a suspect node takes no new actors and can lose its rank to a newcomer, and a node
 * of a loaded 2-core CI machine can miss heartbeats for several hundred ms without being in trouble.
 */
export const FAST_HEARTBEAT = [
  '--heartbeat-ms',
  String(FAST_HEARTBEAT_MS),
  '--suspect-after-ms',
  '1000',
  '--down-after-ms',
  String(FAST_DOWN_AFTER_MS),
];

export interface NodeProcess {
  readonly proc: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  readonly stderrText: () => string;
  /** Resolves with the first log line matching `pred` (already seen or future). */
  waitForLog(
    pred: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startDr(args: string[], env: Record<string, string | undefined> = {}): NodeProcess {
  const proc = spawn(process.execPath, [DR, ...args], {
    env: {
      ...process.env,
      DR_CLUSTER_TOKEN: TEST_TOKEN,
      DR_LOG_FORMAT: 'json',
      DR_LOG_LEVEL: 'info',
      DR_EXIT_WITH_PARENT: '1',
      // A head's dashboard on a free port: tests never hold the default 8265 a real cluster wants.
      DR_DASHBOARD_PORT: '0',
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let raw = '';
  let partial = '';
  const watchers = new Set<() => void>();
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => (raw += chunk));
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    raw += chunk;
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p) as Record<string, unknown>);
      } catch {
        continue;
      }
    }
    for (const w of watchers) w();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    lines,
    stderrText: () => raw,
    exited,
    waitForLog(pred, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find(pred);
          if (hit === undefined) return false;
          done();
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`no matching log line within ${timeoutMs} ms; output so far:\n${raw.slice(-3_000)}`),
          );
        }, timeoutMs);
        const onExit = () => {
          if (check()) return;
          done();
          // The exit code or signal tells a crash or an outside kill (no output, a signal) from a refusal.
          const how = proc.signalCode ?? `code ${proc.exitCode}`;
          reject(
            new Error(`process exited (${how}) before the expected log line; output:\n${raw.slice(-3_000)}`),
          );
        };
        const done = () => {
          clearTimeout(timer);
          watchers.delete(watcher);
          proc.off('exit', onExit);
        };
        const watcher = () => void check();
        if (check()) return;
        watchers.add(watcher);
        proc.once('exit', onExit);
      });
    },
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Start a head on a free port (or `port`) and wait until it listens. */
export async function startHead(
  extra: string[] = [],
  port = 0,
): Promise<{ node: NodeProcess; port: number }> {
  const node = startDr([
    'head',
    '--port',
    String(port),
    '--listen-host',
    '127.0.0.1',
    '--kinds',
    TEST_KINDS,
    ...FAST_HEARTBEAT,
    ...extra,
  ]);
  const ready = await node.waitForLog((l) => l.msg === 'node ready');
  return { node, port: Number(ready.port) };
}

export async function startWorker(
  headPort: number,
  rank: number,
  extra: string[] = [],
  env: Record<string, string | undefined> = {},
): Promise<NodeProcess> {
  const node = startDr(
    [
      'worker',
      '--head',
      `127.0.0.1:${headPort}`,
      '--rank',
      String(rank),
      '--listen-host',
      '127.0.0.1',
      '--kinds',
      TEST_KINDS,
      ...FAST_HEARTBEAT,
      ...extra,
    ],
    env,
  );
  await node.waitForLog((l) => l.msg === 'node ready');
  return node;
}

/** Run `dr <args>` to completion and collect its output. */
export function runDr(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [DR, ...args], {
      env: {
        ...process.env,
        DR_CLUSTER_TOKEN: TEST_TOKEN,
        DR_LOG_FORMAT: 'json',
        DR_EXIT_WITH_PARENT: '1',
        // A head's dashboard on a free port: tests never hold the default 8265 a real cluster wants.
        DR_DASHBOARD_PORT: '0',
        ...env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
