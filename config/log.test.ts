import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from './log.ts';

const dir = mkdtempSync(join(tmpdir(), 'dr-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const readLines = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('createLogger with a log file', () => {
  it('writes every line at or above its level to the file as JSON, with the bindings and fields', () => {
    const file = join(dir, 'nested', 'node.log');
    const log = createLogger({ role: 'worker' }, 'debug', file);
    log.trace('below the level');
    log.debug({ job: 'job-1' }, 'rollout started');
    log.child({ actor: 'search/0' }).warn({ job: 'job-1', code: 'SEARCH_HTTP_429' }, 'rate limited');
    expect(readLines(file)).toEqual([
      expect.objectContaining({ level: 20, role: 'worker', job: 'job-1', msg: 'rollout started' }),
      expect.objectContaining({
        level: 40,
        role: 'worker',
        actor: 'search/0',
        job: 'job-1',
        code: 'SEARCH_HTTP_429',
        msg: 'rate limited',
        time: expect.any(Number),
      }),
    ]);
  });

  it('appends to an existing file instead of replacing it', () => {
    const file = join(dir, 'kept.log');
    writeFileSync(file, `${JSON.stringify({ level: 30, time: 1, msg: 'before restart' })}\n`);
    createLogger({ role: 'head' }, 'info', file).info('after restart');
    expect(readLines(file).map((l) => l.msg)).toEqual(['before restart', 'after restart']);
  });

  it('refuses a path that cannot be a file with CONFIG_INVALID naming the path and the setting', () => {
    const notADir = join(dir, 'plain-file');
    writeFileSync(notADir, '');
    expect(() => createLogger({}, 'info', join(notADir, 'node.log'))).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(
          /cannot open the log file .*plain-file\/node\.log \(--log-file or DR_LOG_FILE\)/,
        ),
      }),
    );
  });
});
