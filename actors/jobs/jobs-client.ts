/**
 * The job manager as seen from outside the cluster (the `dr` CLI, scripts, tests): typed calls over a
 * cluster client, and `ensureJobManager`, which spawns the `jobs` actor on the head the first time it is
 * needed (it then replays its journal, so a re-spawn after a head restart resumes unfinished jobs).
 */
import { DrError, isDrError } from '../../config/errors.ts';
import type { ClusterClient } from '../../runtime/client.ts';
import type { JobManagerArgs } from './job-manager.ts';
import {
  JOBS_PROTOCOL_VERSION,
  JOB_MANAGER_NAME,
  type JobKind,
  type JobListReply,
  type JobLogsReply,
  type JobRecord,
  type JobReply,
  type JobsMessage,
  type JobsRefusedReply,
} from './protocol.ts';

export const DEFAULT_JOB_MANAGER_ARGS: JobManagerArgs = {
  dataDir: '.data/jobs',
  outputsDir: 'outputs',
  rolloutActors: 2,
};

type Asker = Pick<ClusterClient, 'ask' | 'spawn'>;

export async function ensureJobManager(
  client: Asker,
  args: JobManagerArgs = DEFAULT_JOB_MANAGER_ARGS,
): Promise<void> {
  try {
    await client.ask(
      JOB_MANAGER_NAME,
      { v: JOBS_PROTOCOL_VERSION, type: 'jobs.list' },
      { timeoutMs: 10_000 },
    );
    return;
  } catch (err) {
    if (!isDrError(err, 'ACTOR_NOT_FOUND')) throw err;
  }
  try {
    await client.spawn({
      kind: 'jobs',
      name: JOB_MANAGER_NAME,
      args,
      placement: { kind: 'rank', rank: 0 },
      supervision: { strategy: 'restart' },
    });
  } catch (err) {
    if (!isDrError(err, 'ACTOR_NAME_TAKEN')) throw err;
  }
}

export class JobsClient {
  constructor(private readonly client: Asker) {}

  /** Asks the job manager; a refusal comes back as the DrError it names. */
  private async call<R>(msg: JobsMessage): Promise<R> {
    const reply = await this.client.ask<R | JobsRefusedReply>(JOB_MANAGER_NAME, msg);
    if ((reply as JobsRefusedReply).type === 'jobs.refused') {
      const { code, message, details } = (reply as JobsRefusedReply).error;
      throw new DrError(code, message, details === undefined ? {} : { details });
    }
    return reply as R;
  }

  async submit(kind: JobKind, config: unknown): Promise<JobRecord> {
    return (await this.call<JobReply>({ v: 1, type: 'jobs.submit', kind, config })).job;
  }

  async list(): Promise<JobRecord[]> {
    return (await this.call<JobListReply>({ v: 1, type: 'jobs.list' })).jobs;
  }

  async get(jobId: string): Promise<JobRecord> {
    return (await this.call<JobReply>({ v: 1, type: 'jobs.get', jobId })).job;
  }

  async logs(jobId: string, after = 0): Promise<JobLogsReply> {
    return this.call<JobLogsReply>({ v: 1, type: 'jobs.logs', jobId, after });
  }

  async cancel(jobId: string): Promise<JobRecord> {
    return (await this.call<JobReply>({ v: 1, type: 'jobs.cancel', jobId })).job;
  }
}
