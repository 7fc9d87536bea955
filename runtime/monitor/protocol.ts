/**
 * Messages to the head's `monitor` actor (v1). Any actor or node can send them with a plain `tell`:
 * nodes send their metrics snapshots, whoever owns a job table (the job manager) sends every job change.
 */
import { z } from 'zod';
import type { MetricsBatch } from '../../cluster/monitor/protocol.ts';
import type { JobView } from '../../cluster/monitor/source.ts';

/** The monitor actor's cluster-wide name. */
export const MONITOR_ACTOR = 'monitor';
export const MONITOR_KIND = 'monitor';

export const jobViewSchema = z.object({
  id: z.string().min(1).max(200),
  kind: z.string().max(100),
  state: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
  progress: z.object({ done: z.number().finite().nonnegative(), total: z.number().finite().nonnegative() }),
  submittedAt: z.number().finite(),
  startedAt: z.number().finite().optional(),
  finishedAt: z.number().finite().optional(),
  results: z.array(z.object({ label: z.string().max(200), href: z.string().max(2000) })).max(100),
  error: z.string().max(4000).optional(),
  /** One line the job's owner has to say about it (the dashboard's `details` column). */
  detail: z.string().max(500).optional(),
});

export const monitorMessageSchema = z.discriminatedUnion('type', [
  /** The batch itself is validated by the MetricsStore. */
  z.object({
    v: z.literal(1),
    type: z.literal('metrics'),
    rank: z.number().int().nonnegative(),
    batch: z.unknown(),
  }),
  z.object({ v: z.literal(1), type: z.literal('job'), job: jobViewSchema }),
]);

export type MonitorMessage =
  { v: 1; type: 'metrics'; rank: number; batch: MetricsBatch } | { v: 1; type: 'job'; job: JobView };
