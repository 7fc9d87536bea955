import { isDrError } from '../../config/errors.ts';
import { ActorErrorCode, type ActorSystem } from '../actor.ts';
import type { ClusterStatus } from '../node-runtime.ts';
import type { LogLine } from './job-log-reader.ts';
import { NODE_LOGS_KIND, nodeLogsName, type JobLinesReply, type JobLinesRequest } from './node-logs-actor.ts';

export interface GatheredLogs {
  /** Every node's lines for the job, merged in time order, each with the `rank` it came from. */
  lines: Array<LogLine & { rank: number }>;
  /** Nodes whose lines could not be read, with the reason (no log file, down, timed out). */
  missing: Array<{ rank: number; code: string; message: string }>;
  truncated: boolean;
}

/** What gathering needs: a cluster client or a node runtime. */
export type LogGatherer = Pick<ActorSystem, 'spawn' | 'ask'> & { status(): Promise<ClusterStatus> };

/**
 * `dr logs JOB` across the cluster: asks a `node-logs` actor on every alive node (spawning it there the
 * first time) for the lines of its log that carry the job id, and merges them by time.
 */
export async function gatherJobLogs(
  system: LogGatherer,
  job: string,
  options: { limitPerNode?: number; timeoutMs?: number } = {},
): Promise<GatheredLogs> {
  const status = await system.status();
  const request: JobLinesRequest = {
    v: 1,
    type: 'job-lines',
    job,
    ...(options.limitPerNode === undefined ? {} : { limit: options.limitPerNode }),
  };
  const replies = await Promise.all(
    status.nodes
      .filter((n) => n.state === 'alive')
      .map(async (node) => {
        try {
          await ensureReader(system, node.rank);
          return await system.ask<JobLinesReply>(nodeLogsName(node.rank), request, {
            timeoutMs: options.timeoutMs ?? 30_000,
          });
        } catch (err) {
          return {
            rank: node.rank,
            code: isDrError(err) ? err.code : 'MONITOR_LOGS_FAILED',
            message: err instanceof Error ? err.message : String(err),
          };
        }
      }),
  );
  const lines: GatheredLogs['lines'] = [];
  const missing: GatheredLogs['missing'] = [];
  let truncated = false;
  for (const reply of replies) {
    if ('error' in reply) {
      missing.push({ rank: reply.rank, ...reply.error });
    } else if ('lines' in reply) {
      for (const line of reply.lines) lines.push({ ...line, rank: reply.rank });
      truncated ||= reply.truncated;
    } else {
      missing.push(reply);
    }
  }
  lines.sort((a, b) => (a.time ?? 0) - (b.time ?? 0));
  return { lines, missing, truncated };
}

async function ensureReader(system: LogGatherer, rank: number): Promise<void> {
  try {
    await system.spawn({ kind: NODE_LOGS_KIND, name: nodeLogsName(rank), placement: { kind: 'rank', rank } });
  } catch (err) {
    if (!isDrError(err, ActorErrorCode.NAME_TAKEN)) throw err;
  }
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const SHOWN_ELSEWHERE = new Set(['time', 'level', 'msg', 'rank', 'job', 'pid', 'hostname', 'role']);

/** One gathered line for a terminal: time, rank, level, message, then the other fields as JSON. */
export function formatLogLine(line: LogLine & { rank: number }): string {
  const time = typeof line.time === 'number' ? new Date(line.time).toISOString() : '-';
  const level = typeof line.level === 'number' ? (LEVELS[line.level] ?? String(line.level)) : '-';
  const extra = Object.fromEntries(Object.entries(line).filter(([k]) => !SHOWN_ELSEWHERE.has(k)));
  const rest = Object.keys(extra).length === 0 ? '' : ` ${JSON.stringify(extra)}`;
  return `${time} [rank ${line.rank}] ${level.padEnd(5)} ${line.msg ?? ''}${rest}`;
}
