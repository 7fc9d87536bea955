import { nodeMetrics, type MetricsRecorder } from '../../cluster/monitor/metrics-recorder.ts';
import { startMetricsReporting } from '../../cluster/monitor/node-metrics.ts';
import type { ActorSystem } from '../actor.ts';
import { MONITOR_ACTOR, type MonitorMessage } from './protocol.ts';

export interface NodeReportingOptions {
  /** Defaults to this process's `nodeMetrics`, where actors report. */
  recorder?: MetricsRecorder;
  intervalMs?: number;
  /** Messages waiting per actor hosted on this node, reported as `dr_actor_mailbox_depth{actor}`. */
  mailboxDepths?: () => Iterable<readonly [actor: string, depth: number]>;
}

/**
 * Run on every node (head included) once its runtime has started: the node's metrics go to the head's
 * monitor actor every interval. Returns the function that stops it.
 */
export function startNodeReporting(
  runtime: Pick<ActorSystem, 'rank' | 'tell'>,
  options: NodeReportingOptions = {},
): () => void {
  const recorder = options.recorder ?? nodeMetrics;
  const depths = options.mailboxDepths;
  const mailbox = recorder.gauge('dr_actor_mailbox_depth', 'Messages waiting in the actor mailbox.');
  let reported = new Set<string>();
  const sampleMailboxes = () => {
    if (depths === undefined) return;
    const now = new Set<string>();
    for (const [actor, depth] of depths()) {
      mailbox.set({ actor }, depth);
      now.add(actor);
    }
    // Actors that stopped or moved away are no longer this node's to report.
    for (const actor of reported) if (!now.has(actor)) mailbox.remove({ actor });
    reported = now;
  };
  return startMetricsReporting({
    recorder,
    sample: sampleMailboxes,
    ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
    send: (batch) => {
      const message: MonitorMessage = { v: 1, type: 'metrics', rank: runtime.rank, batch };
      runtime.tell(MONITOR_ACTOR, message);
    },
  });
}
