/**
 * The job manager's reports to the head's `monitor` actor (runtime/monitor/protocol.ts), so the dashboard's
 * jobs table shows every job's state, progress and result files. The monitor is optional (a cluster without
 * a dashboard, the in-process tests): its name is resolved once, and a miss is retried at most every
 * `retryMs` when the next change comes; the first successful lookup sends the whole table so nothing told
 * before it existed is missing.
 */
import { resolve } from 'node:path';
import { isDrError } from '../../config/errors.ts';
import type { JobView } from '../../cluster/monitor/source.ts';
import { ActorErrorCode, type ActorContext, type ActorRef } from '../../runtime/actor.ts';
import { MONITOR_ACTOR, type MonitorMessage } from '../../runtime/monitor/protocol.ts';
import { describeCacheHits, type ToolCounts } from '../rollout/trajectory.ts';
import type { JobRecord } from './protocol.ts';

const at = (iso: string | undefined): number | undefined => (iso === undefined ? undefined : Date.parse(iso));

/** The dashboard's view of a job; result paths become absolute so the dashboard can serve them. */
export function jobView(job: JobRecord): JobView {
  const tools = job.result?.tools ?? job.tools;
  const startedAt = at(job.startedAt);
  const finishedAt = at(job.finishedAt);
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    progress: { done: job.progress.done, total: job.progress.total },
    submittedAt: Date.parse(job.createdAt),
    ...(startedAt === undefined ? {} : { startedAt }),
    ...(finishedAt === undefined ? {} : { finishedAt }),
    results: Object.entries(job.result?.paths ?? {}).map(([label, path]) => ({ label, href: resolve(path) })),
    ...(job.error === undefined ? {} : { error: `${job.error.code}: ${job.error.message}` }),
    ...(tools === undefined || tools.calls === 0 ? {} : { detail: describeTools(tools) }),
  };
}

function describeTools(tools: ToolCounts): string {
  const hits = describeCacheHits(tools);
  return `${tools.calls} tool calls, ${tools.errors} failed${hits === null ? '' : `; ${hits}`}`;
}

export class MonitorReporter {
  private ref: ActorRef | undefined;
  private lookup: Promise<void> | undefined;
  private lastMiss = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly ctx: Pick<ActorContext, 'resolve' | 'tell' | 'log'>,
    /** Every job, sent in full once the monitor is found. */
    private readonly all: () => Iterable<JobRecord>,
    private readonly retryMs = 10_000,
  ) {}

  report(job: JobRecord): void {
    if (this.ref === undefined) this.find();
    else this.tell(this.ref, job);
  }

  /** Every job (a job manager that just started: the monitor may hold none or stale ones). */
  reportAll(): void {
    if (this.ref === undefined) this.find();
    else for (const j of this.all()) this.tell(this.ref, j);
  }

  private find(): void {
    if (this.lookup !== undefined || Date.now() - this.lastMiss < this.retryMs) return;
    this.lookup = this.ctx
      .resolve(MONITOR_ACTOR)
      .then(
        (ref) => {
          this.ref = ref;
          for (const j of this.all()) this.tell(ref, j);
        },
        (err: unknown) => {
          this.lastMiss = Date.now();
          if (!isDrError(err, ActorErrorCode.NOT_FOUND))
            this.ctx.log.warn({ err }, 'monitor lookup failed; jobs are not shown on the dashboard');
        },
      )
      .finally(() => {
        this.lookup = undefined;
      });
  }

  private tell(ref: ActorRef, job: JobRecord): void {
    const msg: MonitorMessage = { v: 1, type: 'job', job: jobView(job) };
    this.ctx.tell(ref, msg);
  }
}
