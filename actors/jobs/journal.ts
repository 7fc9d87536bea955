/**
 * The job manager's durable state: an append-only JSON-lines journal of job events (submitted, state
 * changes, results) and, per job, an append-only file of finished trajectories. Replaying both rebuilds
 * every job after a head restart.
 *
 * Durability: every append is written and fsynced before the manager acts on it (a submission is
 * acknowledged, a trajectory counted, only after that). A head killed with SIGKILL loses nothing written,
 * since the kernel holds the bytes; the fsync extends that to a power loss or a kernel crash, at one disk
 * flush per event, which job events (a few per second at most, one per finished trajectory) afford. A line
 * torn by a crash mid-write never reached its fsync, so the event it held was never acted on: replay skips
 * it. A trajectory written twice (a unit re-sent after a restart that had in fact finished) counts once.
 *
 * Compaction: replaying rewrites the journal as one snapshot line per job, and a trajectory file with
 * duplicates or a torn line as its unique records, each atomically (temporary file, fsync, rename), so
 * replay time stays proportional to jobs and trajectories, not to the history of events.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendDurablySync, syncFolder, writeFileAtomicallySync } from '../../runtime/durable-file.ts';
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

/** The parsed lines of a JSON-lines file, and how many lines it had (torn ones included). */
function readLines(path: string): { records: unknown[]; lines: number } {
  if (!existsSync(path)) return { records: [], lines: 0 };
  const records: unknown[] = [];
  let lines = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    lines++;
    try {
      records.push(JSON.parse(line));
    } catch {
      // A torn final line from a crash mid-append: the event never happened.
    }
  }
  return { records, lines };
}

const jsonLines = (records: readonly unknown[]): string =>
  records.map((r) => `${JSON.stringify(r)}\n`).join('');

export class JobJournal {
  private readonly journalPath: string;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.journalPath = join(dir, 'journal.jsonl');
  }

  append(event: JournalEvent): void {
    appendDurablySync(this.journalPath, `${JSON.stringify(event)}\n`);
  }

  jobDir(jobId: string): string {
    const dir = join(this.dir, jobId);
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true });
      syncFolder(this.dir);
    }
    return dir;
  }

  appendTrajectory(jobId: string, trajectory: Trajectory): void {
    appendDurablySync(join(this.jobDir(jobId), 'trajectories.jsonl'), `${JSON.stringify(trajectory)}\n`);
  }

  /** Finished trajectories of a job, first record per trajectory id; compacts the file if it had repeats. */
  trajectories(jobId: string): Map<string, Trajectory> {
    const path = join(this.dir, jobId, 'trajectories.jsonl');
    const { records, lines } = readLines(path);
    const out = new Map<string, Trajectory>();
    for (const t of records as Trajectory[]) {
      if (typeof t?.id === 'string' && !out.has(t.id)) out.set(t.id, t);
    }
    if (out.size < lines) writeFileAtomicallySync(path, jsonLines([...out.values()]));
    return out;
  }

  /** The human-readable job log: not fsynced (the journal is the record; the log narrates it). */
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

  /** Every job as of the last event on disk; compacts the journal to one snapshot line per job. */
  replay(): Map<string, JobRecord> {
    const jobs = new Map<string, JobRecord>();
    const { records, lines } = readLines(this.journalPath);
    for (const raw of records as JournalEvent[]) {
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
    if (lines > jobs.size)
      writeFileAtomicallySync(
        this.journalPath,
        jsonLines(
          [...jobs.values()].map(
            (job) => ({ t: 'submitted', at: job.createdAt, job }) satisfies JournalEvent,
          ),
        ),
      );
    return jobs;
  }
}
