/**
 * A lock file that makes a directory belong to one live process: the job manager's journal (two job
 * managers replaying one journal would each resume the other's running jobs) and a train job's outputs (two
 * trainers would interleave metrics and overwrite each other's checkpoints). The file names its holder (host,
 * pid and the pid's start time, so a reused pid is not taken for the holder); a holder that is gone, e.g. a
 * SIGKILLed head, leaves a stale file that the next owner takes over.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DrError } from '../config/errors.ts';

export interface LockHolder {
  host: string;
  pid: number;
  /** The pid's start time in clock ticks since boot ('' where /proc is missing). */
  started: string;
  /** What holds it, for the error a refused owner gets (e.g. "trainer of job-…"). */
  owner: string;
  at: string;
  token: string;
}

export class OwnerLock {
  private constructor(
    readonly path: string,
    readonly holder: LockHolder,
  ) {}

  /** Takes the lock at `path` for `owner`; fails with `code` naming the live holder when another has it. */
  static acquire(path: string, owner: string, code: string): OwnerLock {
    const me: LockHolder = {
      host: hostname(),
      pid: process.pid,
      started: startTime(process.pid),
      owner,
      at: new Date().toISOString(),
      token: randomBytes(8).toString('hex'),
    };
    for (;;) {
      try {
        writeFileSync(path, JSON.stringify(me), { flag: 'wx' });
        return new OwnerLock(path, me);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = readHolder(path);
      if (held !== null && alive(held)) {
        throw new DrError(
          code,
          `${path} is held by ${held.owner} (pid ${held.pid} on ${held.host} since ${held.at}), so ${owner} ` +
            'cannot start: two owners would corrupt what it guards. Stop that process first; if it is gone ' +
            `(another host), delete ${path}`,
          { details: { path, holder: held } },
        );
      }
      try {
        unlinkSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  /** Removes the file if it is still this lock's (a stale-lock takeover may have replaced it). */
  release(): void {
    if (readHolder(this.path)?.token !== this.holder.token) return;
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

function readHolder(path: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? (h as LockHolder) : null;
  } catch {
    // Missing, or torn by a crash mid-write: no live holder.
    return null;
  }
}

/** A holder on another host cannot be checked from here, so it counts as alive. */
function alive(h: LockHolder): boolean {
  if (h.host !== hostname()) return true;
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return h.started === '' || h.started === startTime(h.pid);
}

/** /proc/PID/stat field 22 (the command name, field 2, may hold spaces and parentheses). */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}
