import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DrError } from '../../config/errors.ts';

/** One pino JSON line of a node's log. */
export type LogLine = Record<string, unknown> & { time?: number; msg?: string; job?: string };

export interface JobLines {
  lines: LogLine[];
  /** More lines matched than `limit`: only the last `limit` are returned. */
  truncated: boolean;
}

/**
 * The lines of a node's pino JSON log file that carry `job: <jobId>`, oldest first, at most `limit` (the
 * newest ones). Reads the file as a stream, so a large log costs time, not memory; lines that are not JSON
 * (a pretty-printed stretch, a torn last line) are skipped.
 */
export async function readJobLines(file: string, jobId: string, limit = 5_000): Promise<JobLines> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (err) {
    throw new DrError(
      'MONITOR_LOG_UNREADABLE',
      `Cannot read the node log ${file}: ${(err as Error).message}. Check DR_LOG_FILE on that node.`,
      {
        cause: err,
      },
    );
  }
  const lines: LogLine[] = [];
  let matched = 0;
  const needle = JSON.stringify(jobId);
  for await (const text of createInterface({ input: stream, crlfDelay: Infinity })) {
    // Cheap filter first: most lines belong to other jobs or none.
    if (!text.includes(needle)) continue;
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      continue;
    }
    if (typeof line !== 'object' || line === null || (line as LogLine).job !== jobId) continue;
    matched++;
    lines.push(line as LogLine);
    // Trim in batches so a job with millions of lines stays linear.
    if (lines.length >= 2 * limit) lines.splice(0, lines.length - limit);
  }
  return { lines: lines.slice(-limit), truncated: matched > limit };
}
