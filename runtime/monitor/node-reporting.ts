import { nodeMetrics, type MetricsRecorder } from '../../cluster/monitor/metrics-recorder.ts';
import { startMetricsReporting } from '../../cluster/monitor/node-metrics.ts';
import type { ActorSystem } from '../actor.ts';
import { MONITOR_ACTOR, type MonitorMessage } from './protocol.ts';

export interface NodeReportingOptions {
  /** Defaults to this process's `nodeMetrics`, where actors report. */
  recorder?: MetricsRecorder;
  intervalMs?: number;
}

/**
 * Run on every node (head included) once its runtime has started: the node's metrics go to the head's
 * monitor actor every interval. Returns the function that stops it.
 */
export function startNodeReporting(
  runtime: Pick<ActorSystem, 'rank' | 'tell'>,
  options: NodeReportingOptions = {},
): () => void {
  return startMetricsReporting({
    recorder: options.recorder ?? nodeMetrics,
    ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
    send: (batch) => {
      const message: MonitorMessage = { v: 1, type: 'metrics', rank: runtime.rank, batch };
      runtime.tell(MONITOR_ACTOR, message);
    },
  });
}
