import { Registry, type Metric } from 'prom-client';
import { etaSeconds, progressRatio } from './job-progress.ts';
import type { MetricsStore } from './metrics-store.ts';
import type { Labels } from './protocol.ts';
import type { MonitorSource } from './source.ts';

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

interface Row {
  labels: Labels;
  value: number;
  metricName?: string;
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  rows: Row[];
}

/**
 * The Prometheus text exposition (format 0.0.4) of the cluster: the built-in node/actor/job figures read
 * from the MonitorSource, then every metric the nodes reported. Built fresh per scrape, so label sets that
 * disappeared (a removed actor) disappear from the output too. prom-client does the formatting and escaping.
 */
export async function renderPrometheus(
  source: MonitorSource,
  store: MetricsStore,
  now = Date.now(),
): Promise<string> {
  const registry = new Registry();
  const builtIn = clusterFamilies(source, now);
  // The built-in names are the monitor's own: a node reporting one of them cannot overwrite it.
  const taken = new Set(builtIn.map((f) => f.name));
  for (const family of [...builtIn, ...reportedFamilies(store).filter((f) => !taken.has(f.name))]) {
    if (family.rows.length === 0) continue;
    const { name, help, type, rows } = family;
    const metric = {
      name,
      help,
      type,
      get: async () => ({ name, help, type, aggregator: 'sum', values: rows }),
    };
    registry.registerMetric(metric as unknown as Metric);
  }
  return registry.metrics();
}

function clusterFamilies(source: MonitorSource, now: number): Family[] {
  const nodes = source.nodes();
  const actors = source.actors();
  const jobs = source.jobs();
  const rank = (r: number) => String(r);
  return [
    {
      name: 'dr_node_up',
      help: 'Whether the node is alive (1) or suspect, down or left (0).',
      type: 'gauge',
      rows: nodes.map((n) => ({ labels: { rank: rank(n.rank) }, value: n.state === 'alive' ? 1 : 0 })),
    },
    {
      name: 'dr_node_state',
      help: 'The node membership state: 1 for the current state label, one series per state.',
      type: 'gauge',
      rows: nodes.flatMap((n) =>
        (['alive', 'suspect', 'down', 'left'] as const).map((s) => ({
          labels: { rank: rank(n.rank), state: s },
          value: n.state === s ? 1 : 0,
        })),
      ),
    },
    {
      name: 'dr_node_heartbeat_age_seconds',
      help: 'Seconds since the head last heard a heartbeat from the node.',
      type: 'gauge',
      rows: nodes.flatMap((n) =>
        n.lastHeartbeatAt === null
          ? []
          : [{ labels: { rank: rank(n.rank) }, value: Math.max(0, (now - n.lastHeartbeatAt) / 1000) }],
      ),
    },
    {
      name: 'dr_node_cpu_cores',
      help: 'CPU cores the node announced.',
      type: 'gauge',
      rows: nodes.map((n) => ({ labels: { rank: rank(n.rank) }, value: n.resources.cpus })),
    },
    {
      name: 'dr_node_memory_bytes',
      help: 'Memory the node announced, in bytes.',
      type: 'gauge',
      rows: nodes.map((n) => ({ labels: { rank: rank(n.rank) }, value: n.resources.memoryBytes })),
    },
    {
      name: 'dr_node_gpus',
      help: 'GPUs the node announced.',
      type: 'gauge',
      rows: nodes.map((n) => ({ labels: { rank: rank(n.rank) }, value: n.resources.gpus.length })),
    },
    {
      name: 'dr_actor_restarts_total',
      help: 'Supervised restarts of the actor since it was first spawned.',
      type: 'counter',
      rows: actors.map((a) => ({
        labels: { rank: rank(a.node), actor: a.path, kind: a.kind },
        value: a.restarts,
      })),
    },
    {
      name: 'dr_actor_mailbox_depth',
      help: 'Messages waiting in the actor mailbox.',
      type: 'gauge',
      rows: actors.flatMap((a) =>
        a.mailboxDepth === null
          ? []
          : [{ labels: { rank: rank(a.node), actor: a.path, kind: a.kind }, value: a.mailboxDepth }],
      ),
    },
    {
      name: 'dr_actor_running',
      help: 'Whether the actor is running (1) or starting, restarting, stopped or failed (0).',
      type: 'gauge',
      rows: actors.map((a) => ({
        labels: { rank: rank(a.node), actor: a.path, kind: a.kind },
        value: a.state === 'running' ? 1 : 0,
      })),
    },
    {
      name: 'dr_job_progress_ratio',
      help: 'Fraction of the job done, from 0 to 1.',
      type: 'gauge',
      rows: jobs.map((j) => ({
        labels: { job: j.id, kind: j.kind, state: j.state },
        value: progressRatio(j),
      })),
    },
    {
      name: 'dr_job_items_done',
      help: 'Items (questions, rollouts, steps) the job has finished.',
      type: 'gauge',
      rows: jobs.map((j) => ({ labels: { job: j.id, kind: j.kind }, value: j.progress.done })),
    },
    {
      name: 'dr_job_items',
      help: 'Items the job has in total.',
      type: 'gauge',
      rows: jobs.map((j) => ({ labels: { job: j.id, kind: j.kind }, value: j.progress.total })),
    },
    {
      name: 'dr_job_eta_seconds',
      help: 'Estimated seconds until the running job finishes, at its average rate so far.',
      type: 'gauge',
      rows: jobs.flatMap((j) => {
        const eta = etaSeconds(j, now);
        return eta === null ? [] : [{ labels: { job: j.id, kind: j.kind }, value: eta }];
      }),
    },
    {
      name: 'dr_jobs',
      help: 'Jobs in the job table by state.',
      type: 'gauge',
      rows: (['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const).map((s) => ({
        labels: { state: s },
        value: jobs.filter((j) => j.state === s).length,
      })),
    },
  ];
}

function reportedFamilies(store: MetricsStore): Family[] {
  const families: Family[] = [];
  for (const family of store.families()) {
    const rows: Row[] = [];
    for (const series of family.series.values()) {
      if (family.kind !== 'histogram') {
        rows.push({ labels: series.labels, value: series.value });
        continue;
      }
      const buckets = family.buckets ?? [];
      const counts = series.counts ?? [];
      buckets.forEach((le, i) =>
        rows.push({
          metricName: `${family.name}_bucket`,
          labels: { ...series.labels, le: String(le) },
          value: counts[i] ?? 0,
        }),
      );
      rows.push({
        metricName: `${family.name}_bucket`,
        labels: { ...series.labels, le: '+Inf' },
        value: series.value,
      });
      rows.push({ metricName: `${family.name}_sum`, labels: series.labels, value: series.sum ?? 0 });
      rows.push({ metricName: `${family.name}_count`, labels: series.labels, value: series.value });
    }
    families.push({ name: family.name, help: family.help, type: family.kind, rows });
  }
  return families;
}
