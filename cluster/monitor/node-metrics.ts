import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MetricsRecorder } from './metrics-recorder.ts';
import type { MetricsBatch } from './protocol.ts';

export interface MetricsReportingOptions {
  recorder: MetricsRecorder;
  /** Delivers one snapshot to the head (over the node's link; on the head, straight into its store). */
  send: (batch: MetricsBatch) => void;
  intervalMs?: number;
  /** Called before each snapshot, to bring sampled figures up to date. */
  sample?: () => void;
}

/**
 * Runs on every node: samples the process figures into the recorder and sends the recorder's snapshot to
 * the head every interval. Returns the function that stops it (and sends one last snapshot).
 */
export function startMetricsReporting(options: MetricsReportingOptions): () => void {
  const { recorder, send } = options;
  const rss = recorder.gauge(
    'dr_process_resident_memory_bytes',
    'Resident memory of the node process, in bytes.',
  );
  const heap = recorder.gauge('dr_process_heap_used_bytes', 'V8 heap in use by the node process, in bytes.');
  const load = recorder.gauge('dr_node_load1', 'One-minute load average of the host.');
  const lag = recorder.gauge(
    'dr_process_event_loop_delay_p99_seconds',
    'p99 event-loop delay of the node process over the last interval, in seconds.',
  );
  const cpu = recorder.counter(
    'dr_process_cpu_seconds_total',
    'CPU time (user + system) used by the node process, in seconds.',
  );
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  let lastCpu = process.cpuUsage();

  const report = () => {
    const memory = process.memoryUsage();
    rss.set({}, memory.rss);
    heap.set({}, memory.heapUsed);
    load.set({}, loadavg()[0] ?? 0);
    lag.set({}, delay.count > 0 ? delay.percentile(99) / 1e9 : 0);
    delay.reset();
    const used = process.cpuUsage(lastCpu);
    lastCpu = process.cpuUsage();
    cpu.inc({}, (used.user + used.system) / 1e6);
    options.sample?.();
    send(recorder.snapshot());
  };
  const timer = setInterval(report, options.intervalMs ?? 2_000);
  timer.unref();
  report();
  return () => {
    clearInterval(timer);
    report();
    delay.disable();
  };
}
