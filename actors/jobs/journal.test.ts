import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Trajectory } from '../rollout/trajectory.ts';
import { JobJournal } from './journal.ts';
import type { JobRecord } from './protocol.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dr-journal-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const job = (id: string): JobRecord => ({
  id,
  kind: 'research',
  config: { question: 'q' } as unknown as JobRecord['config'],
  state: 'queued',
  createdAt: '2026-12-04T00:00:00.000Z',
  progress: { done: 0, total: 0 },
  tools: { calls: 0, errors: 0 },
});

const lines = (file: string): string[] => readFileSync(file, 'utf8').trim().split('\n');

describe('JobJournal', () => {
  it('replays every job as of its last event, then compacts the journal to one line per job', () => {
    const journal = new JobJournal(dir);
    for (const id of ['a', 'b']) journal.append({ t: 'submitted', at: 'x', job: job(id) });
    journal.append({ t: 'total', at: 'x', jobId: 'a', total: 4 });
    journal.append({ t: 'state', at: 't1', jobId: 'a', state: 'running' });
    journal.append({ t: 'state', at: 't2', jobId: 'a', state: 'succeeded', done: 4 });
    journal.append({ t: 'state', at: 't3', jobId: 'b', state: 'running' });
    expect(lines(join(dir, 'journal.jsonl'))).toHaveLength(6);

    const first = new JobJournal(dir).replay();
    expect(first.get('a')).toMatchObject({
      state: 'succeeded',
      progress: { done: 4, total: 4 },
      finishedAt: 't2',
    });
    expect(first.get('b')).toMatchObject({ state: 'running', startedAt: 't3' });
    expect(lines(join(dir, 'journal.jsonl'))).toHaveLength(2);
    // The compacted journal replays to the same jobs, and takes new events after it.
    const again = new JobJournal(dir);
    expect(again.replay()).toEqual(first);
    again.append({ t: 'state', at: 't4', jobId: 'b', state: 'cancelled' });
    expect(new JobJournal(dir).replay().get('b')?.state).toBe('cancelled');
  });

  it('skips a line torn by a crash mid-append and keeps the events before it', () => {
    const journal = new JobJournal(dir);
    journal.append({ t: 'submitted', at: 'x', job: job('a') });
    appendFileSync(join(dir, 'journal.jsonl'), '{"t":"state","at":"t1","jobId":"a","sta');
    const jobs = new JobJournal(dir).replay();
    expect([...jobs.keys()]).toEqual(['a']);
    expect(jobs.get('a')?.state).toBe('queued');
    expect(lines(join(dir, 'journal.jsonl'))).toHaveLength(1);
  });

  it('counts a trajectory written twice once, and rewrites its file without the repeat', () => {
    const journal = new JobJournal(dir);
    const t = (id: string): Trajectory => ({ id, question: 'q' }) as unknown as Trajectory;
    for (const id of ['t1', 't2', 't1', 't3']) journal.appendTrajectory('a', t(id));
    appendFileSync(join(dir, 'a', 'trajectories.jsonl'), '{"id":"t4","quest');
    expect([...journal.trajectories('a').keys()]).toEqual(['t1', 't2', 't3']);
    expect(lines(join(dir, 'a', 'trajectories.jsonl')).map((l) => (JSON.parse(l) as Trajectory).id)).toEqual([
      't1',
      't2',
      't3',
    ]);
  });
});
