import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OwnerLock } from './owner-lock.ts';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dr-owner-lock-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('OwnerLock', () => {
  it('refuses a second owner while the holder lives, naming the holder, and admits one after release', () => {
    const path = join(dir, 'x.lock');
    const first = OwnerLock.acquire(path, 'the first', 'TEST_HELD');
    expect(() => OwnerLock.acquire(path, 'the second', 'TEST_HELD')).toThrow(
      expect.objectContaining({
        code: 'TEST_HELD',
        message: expect.stringContaining(`held by the first (pid ${process.pid}`),
      }),
    );
    first.release();
    expect(existsSync(path)).toBe(false);
    OwnerLock.acquire(path, 'the second', 'TEST_HELD').release();
  });

  it('takes over the lock of a process that is gone (a killed head)', () => {
    const path = join(dir, 'x.lock');
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    writeFileSync(
      path,
      JSON.stringify({ host: hostname(), pid: gone, started: '1', owner: 'a dead one', at: '', token: 't' }),
    );
    const lock = OwnerLock.acquire(path, 'the heir', 'TEST_HELD');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid, owner: 'the heir' });
    lock.release();
  });

  it('does not remove a lock that another owner took over since', () => {
    const path = join(dir, 'x.lock');
    const old = OwnerLock.acquire(path, 'the old', 'TEST_HELD');
    const theirs = { host: hostname(), pid: process.pid, started: '', owner: 'another', at: '', token: 'u' };
    writeFileSync(path, JSON.stringify(theirs));
    old.release();
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ owner: 'another' });
  });
});
