/**
 * The job manager's durable state: an append-only JSON-lines journal of job events (submitted, state
 * changes, results) and, per job, an append-only file of finished trajectories. Replaying both rebuilds
 * every job after a head restart; a line torn by a crash mid-write is skipped. Writes are synchronous
 * appends so an event is on disk before the manager acts on it.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Trajectory } from '../rollout/trajectory.ts';
import type { JobRecord, JobResult, JobState } from './protocol.ts';

export type JournalEvent =
  | { t: 'submitted'; at: string; job: JobRecord }
  | {
      t: 'state';
      at: string;
      jobId: string;
      state: JobState;
      /** Progress when the state changed: a finished job's count, which is not re-derived after a restart. */
      done?: number;
      error?: { code: string; message: string };
    }
  | { t: 'total'; at: string; jobId: string; total: number }
  | { t: 'result'; at: string; jobId: string; result: JobResult };

function readLines(path: string): unknown[] {
  if (!existsSync(path)) return [];
  const out: unknown[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // A torn final line from a crash mid-append: the event never happened.
    }
  }
  return out;
}

export class JobJournal {
  private readonly journalPath: string;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.journalPath = join(dir, 'journal.jsonl');
  }

  append(event: JournalEvent): void {
    appendFileSync(this.journalPath, `${JSON.stringify(event)}\n`);
  }

  jobDir(jobId: string): string {
    const dir = join(this.dir, jobId);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  appendTrajectory(jobId: string, trajectory: Trajectory): void {
    appendFileSync(join(this.jobDir(jobId), 'trajectories.jsonl'), `${JSON.stringify(trajectory)}\n`);
  }

  /** Finished trajectories of a job, first record per trajectory id. */
  trajectories(jobId: string): Map<string, Trajectory> {
    const out = new Map<string, Trajectory>();
    for (const t of readLines(join(this.dir, jobId, 'trajectories.jsonl')) as Trajectory[]) {
      if (typeof t?.id === 'string' && !out.has(t.id)) out.set(t.id, t);
    }
    return out;
  }

  appendLog(jobId: string, line: string): void {
    appendFileSync(join(this.jobDir(jobId), 'log.txt'), `${new Date().toISOString()} ${line}\n`);
  }

  logLines(jobId: string): string[] {
    const path = join(this.dir, jobId, 'log.txt');
    if (!existsSync(path)) return [];
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
  }

  /** Every job as of the last event on disk. */
  replay(): Map<string, JobRecord> {
    const jobs = new Map<string, JobRecord>();
    for (const raw of readLines(this.journalPath) as JournalEvent[]) {
      if (raw.t === 'submitted') {
        jobs.set(raw.job.id, structuredClone(raw.job));
        continue;
      }
      const job = jobs.get(raw.jobId);
      if (job === undefined) continue;
      if (raw.t === 'state') {
        job.state = raw.state;
        if (raw.state === 'running' && job.startedAt === undefined) job.startedAt = raw.at;
        if (raw.state === 'succeeded' || raw.state === 'failed' || raw.state === 'cancelled')
          job.finishedAt = raw.at;
        if (raw.error !== undefined) job.error = raw.error;
        if (raw.done !== undefined) job.progress.done = raw.done;
      } else if (raw.t === 'total') {
        job.progress.total = raw.total;
      } else if (raw.t === 'result') {
        job.result = raw.result;
        // The counts a finished job reported live are the ones its result carries.
        if (raw.result.tools !== undefined) job.tools = raw.result.tools;
      }
    }
    return jobs;
  }
}
