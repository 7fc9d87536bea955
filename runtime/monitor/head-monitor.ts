import { ConfigError } from '../../config/cluster.ts';
import { DrError, isDrError } from '../../config/errors.ts';
import { DEFAULT_DASHBOARD_PORT } from '../../cluster/monitor/dashboard-client.ts';
import { silentLogger, type Logger } from '../../config/log.ts';
import { startDashboardServer, type DashboardServer } from '../../cluster/monitor/dashboard-server.ts';
import { MetricsStore } from '../../cluster/monitor/metrics-store.ts';
import { MonitorHub } from '../../cluster/monitor/monitor-hub.ts';
import { MonitorTables } from '../../cluster/monitor/monitor-tables.ts';
import type { Panels } from '../../cluster/monitor/panels.ts';
import type { ActorFactory } from '../actor.ts';
import type { NodeRuntime } from '../node-runtime.ts';
import { MONITOR_ACTOR, MONITOR_KIND, monitorMessageSchema } from './protocol.ts';
import { RuntimeMonitorSource } from './runtime-source.ts';

export interface HeadMonitorOptions {
  /** Accepted dashboard tokens: the cluster token, plus DR_DASHBOARD_TOKEN when set. */
  tokens: readonly string[];
  host?: string;
  /** Host name for the dashboard URL when `host` is a wildcard (the node's advertised host). */
  publicHost?: string;
  port?: number;
  log?: Logger;
  panels?: Panels;
  sampleIntervalMs?: number;
}

export interface HeadMonitor {
  /** Add to the head's actor kinds before the runtime is built: `new Map([...kinds, monitor.kind])`. */
  readonly kind: readonly [string, ActorFactory<never>];
  readonly store: MetricsStore;
  readonly jobs: MonitorTables;
  /**
   * Once the runtime has started: spawn the monitor actor on the head and serve the dashboard. Resolves to
   * the dashboard's URL, or undefined (logged as an error) when its port is taken: the head keeps running
   * without a dashboard rather than failing a cluster over its monitoring.
   */
  attach(runtime: NodeRuntime): Promise<string | undefined>;
  close(): Promise<void>;
}

/**
 * Everything the head runs for monitoring: the `monitor` actor that receives metrics snapshots and job
 * changes from anywhere in the cluster, the MonitorSource over the runtime, and the dashboard server.
 *
 * ```ts
 * const monitor = createHeadMonitor({ tokens: [config.token], port: 8265 });
 * const runtime = new NodeRuntime({ ...options, kinds: new Map([...kinds, monitor.kind]) });
 * await runtime.start();
 * const dashboard = await monitor.attach(runtime); // dashboard.url
 * ```
 */
export function createHeadMonitor(options: HeadMonitorOptions): HeadMonitor {
  const log = options.log ?? silentLogger;
  const store = new MetricsStore({ log });
  const jobs = new MonitorTables();
  let source: RuntimeMonitorSource | undefined;
  let server: DashboardServer | undefined;

  const monitorActor: ActorFactory<unknown> = (_args, ctx) => {
    if (ctx.rank !== 0)
      throw new DrError('MONITOR_NOT_ON_HEAD', 'The monitor actor runs on the head only (placement rank 0).');
    return {
      receive(raw) {
        const parsed = monitorMessageSchema.safeParse(raw);
        if (!parsed.success) {
          ctx.log.warn(
            { issue: parsed.error.issues[0]?.message },
            'monitor message dropped: not a v1 monitor message',
          );
          return;
        }
        const msg = parsed.data;
        if (msg.type === 'job') {
          jobs.upsertJob(msg.job);
          return;
        }
        // A snapshot still in the mailbox when its node went down or left would bring back the figures the
        // monitor just forgot.
        if (source?.isGone(msg.rank) === true) return;
        try {
          store.ingest(msg.rank, msg.batch);
        } catch (err) {
          ctx.log.warn({ err, from: msg.rank }, 'metrics batch refused');
        }
      },
    };
  };

  return {
    kind: [MONITOR_KIND, monitorActor as ActorFactory<never>],
    store,
    jobs,
    async attach(runtime) {
      if (server !== undefined) return server.url;
      await runtime.spawn({ kind: MONITOR_KIND, name: MONITOR_ACTOR, placement: { kind: 'rank', rank: 0 } });
      source = new RuntimeMonitorSource({ runtime, jobs, store, log });
      const hub = new MonitorHub({
        source,
        store,
        ...(options.panels === undefined ? {} : { panels: options.panels }),
        ...(options.sampleIntervalMs === undefined ? {} : { sampleIntervalMs: options.sampleIntervalMs }),
      });
      try {
        server = await startDashboardServer({
          hub,
          tokens: options.tokens,
          log,
          ...(options.host === undefined ? {} : { host: options.host }),
          ...(options.publicHost === undefined ? {} : { publicHost: options.publicHost }),
          ...(options.port === undefined ? {} : { port: options.port }),
        });
      } catch (err) {
        if (!isDrError(err, 'MONITOR_PORT_IN_USE')) throw err;
        log.error({ code: err.code }, err.message);
        source.close();
        return undefined;
      }
      return server.url;
    },
    async close() {
      source?.close();
      await server?.close();
    },
  };
}

/** The dashboard port from `--dashboard-port`, else DR_DASHBOARD_PORT, else 8265; 0 picks a free port. */
export function dashboardPort(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const text = flag ?? env.DR_DASHBOARD_PORT;
  if (text === undefined) return DEFAULT_DASHBOARD_PORT;
  const port = Number(text);
  if (text.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(
      `invalid dashboard port '${text}' (--dashboard-port or DR_DASHBOARD_PORT). Fix: a TCP port 0-65535 (0 picks a free one)`,
      {
        setting: 'dashboardPort',
      },
    );
  }
  return port;
}
