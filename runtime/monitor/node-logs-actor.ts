import { z } from 'zod';
import { isDrError } from '../../config/errors.ts';
import type { ActorFactory } from '../actor.ts';
import { readJobLines, type LogLine } from './job-log-reader.ts';

/** The actor kind that reads its node's log; one per node, named `node-logs/<rank>`. */
export const NODE_LOGS_KIND = 'node-logs';
export const nodeLogsName = (rank: number): string => `node-logs/${rank}`;

export const jobLinesRequestSchema = z.object({
  v: z.literal(1),
  type: z.literal('job-lines'),
  job: z.string().min(1).max(200),
  limit: z.number().int().min(1).max(100_000).optional(),
});
export type JobLinesRequest = z.infer<typeof jobLinesRequestSchema>;

/** Failures are replies, not throws: a node without a log file is an answer, not a reason to restart. */
export type JobLinesReply =
  | { v: 1; rank: number; file: string; lines: LogLine[]; truncated: boolean }
  | { v: 1; rank: number; error: { code: string; message: string } };

/**
 * Answers `job-lines` asks with the lines of this node's pino JSON log (DR_LOG_FILE, or `args.file`) that
 * carry the job id. Placed on a given rank by whoever gathers a job's logs.
 */
export const nodeLogsActor: ActorFactory<{ file?: string } | undefined> = (args, ctx) => ({
  async receive(raw): Promise<JobLinesReply> {
    const failed = (code: string, message: string): JobLinesReply => ({
      v: 1,
      rank: ctx.rank,
      error: { code, message },
    });
    const parsed = jobLinesRequestSchema.safeParse(raw);
    if (!parsed.success) {
      return failed(
        'MONITOR_BAD_REQUEST',
        `node-logs expects {v:1, type:'job-lines', job}: ${parsed.error.issues[0]?.message}`,
      );
    }
    const file = args?.file ?? process.env.DR_LOG_FILE;
    if (file === undefined || file === '') {
      return failed(
        'MONITOR_NO_LOG_FILE',
        `Node ${ctx.rank} keeps no log file: start it with DR_LOG_FILE=<path> so its lines can be gathered.`,
      );
    }
    try {
      const { lines, truncated } = await readJobLines(file, parsed.data.job, parsed.data.limit);
      return { v: 1, rank: ctx.rank, file, lines, truncated };
    } catch (err) {
      return isDrError(err) ? failed(err.code, err.message) : failed('MONITOR_LOG_UNREADABLE', String(err));
    }
  },
});
