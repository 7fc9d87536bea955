/** A launcher's node processes never outlive it: SIGTERM, then SIGKILL for those that ignore it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { stopChildren } from './stop-children.ts';

const STOP_CHILDREN = fileURLToPath(new URL('./stop-children.ts', import.meta.url));
/** Prints its pid, then runs until SIGKILL: it ignores SIGTERM. */
const STUBBORN = `process.on('SIGTERM', () => {}); console.log(process.pid); setInterval(() => {}, 1000);`;
const OBEDIENT = `console.log(process.pid); setInterval(() => {}, 1000);`;

const started: ChildProcess[] = [];
const pidsToKill: number[] = [];
afterEach(() => {
  for (const c of started.splice(0)) c.kill('SIGKILL');
  for (const pid of pidsToKill.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
});

function node(code: string, args: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...args, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(child);
  return child;
}

/** The first line the child prints (its pid): it has installed its handlers. */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('stopChildren', () => {
  it('SIGTERMs children and SIGKILLs the one still running after the grace period', async () => {
    const obedient = node(OBEDIENT);
    const stubborn = node(STUBBORN);
    await Promise.all([firstLine(obedient), firstLine(stubborn)]);

    await stopChildren([obedient, stubborn], 500);

    expect(obedient.signalCode).toBe('SIGTERM');
    expect(stubborn.signalCode).toBe('SIGKILL');
  });
});

describe('stopChildrenOnExit', () => {
  it('kills, after the grace period, the child of an exited launcher that ignored SIGTERM', async () => {
    // The launcher starts a child that ignores SIGTERM, prints the child's pid and exits at once.
    const launcher = node(
      `import { spawn } from 'node:child_process';
       import { stopChildrenOnExit } from ${JSON.stringify(STOP_CHILDREN)};
       const child = spawn(process.execPath, ['-e', ${JSON.stringify(STUBBORN)}], { stdio: ['ignore', 'pipe', 'inherit'] });
       child.stdout.once('data', () => { console.log(child.pid); process.exit(0); });
       process.once('exit', () => stopChildrenOnExit([child], 500));`,
      ['--import', 'tsx', '--input-type=module'],
    );
    const pid = Number(await firstLine(launcher));
    pidsToKill.push(pid);
    await new Promise((r) => launcher.once('exit', r));
    expect(isAlive(pid)).toBe(true);

    const deadline = Date.now() + 10_000;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(isAlive(pid)).toBe(false);
  });
});
