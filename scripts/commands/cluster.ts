/**
 * `dr head`, `dr worker`, `dr start`, `dr status`, `dr stop`: run a cluster node in this process, or talk to
 * a running cluster as a client.
 */
import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigError,
  loadClusterConfig,
  parseGpuList,
  parseHostPort,
  resolveClusterToken,
  type ClusterConfigInput,
} from '../../config/cluster.ts';
import { loadClusterFile, parseClusterFile, type ClusterFile } from '../../config/cluster-file.ts';
import { DrError, isDrError } from '../../config/errors.ts';
import { createLogger, type Logger } from '../../config/log.ts';
import { detectResources } from '../../cluster/resources.ts';
import { DEFAULT_JOB_MANAGER_ARGS, ensureJobManager } from '../../actors/jobs/jobs-client.ts';
import { startServices, toolServices, type RunningServices } from '../../actors/services/services.ts';
import type { ActorKinds } from '../../runtime/actor.ts';
import { connectClient } from '../../runtime/client.ts';
import { armKillDeadline } from '../../runtime/kill-deadline.ts';
import { createHeadMonitor, dashboardPort } from '../../runtime/monitor/head-monitor.ts';
import { startNodeReporting } from '../../runtime/monitor/node-reporting.ts';
import { NodeRuntime, type ClusterStatus } from '../../runtime/node-runtime.ts';

interface NodeFlags {
  port?: string;
  nodePort?: string;
  head?: string;
  rank?: string;
  nnodes?: string;
  listenHost?: string;
  advertiseHost?: string;
  kinds?: string;
  config?: string;
  set?: string[];
  tokenFile?: string;
  heartbeatMs?: string;
  suspectAfterMs?: string;
  downAfterMs?: string;
  joinTimeoutMs?: string;
  maxFrameBytes?: string;
  label?: string[];
  gpus?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  dashboardPort?: string;
  logFile?: string;
  jobsDir?: string;
  outputsDir?: string;
}

type Role = 'head' | 'worker';

export function register(program: Command): void {
  nodeOptions(
    program
      .command('head')
      .description('Run the head node (rank 0): membership, actor directory, placement, the dashboard'),
  )
    .option('--port <port>', 'port to listen on (PET_MASTER_PORT, default 29500)')
    .option(DASHBOARD_PORT_FLAG, DASHBOARD_PORT_HELP)
    .option(JOBS_DIR_FLAG, JOBS_DIR_HELP)
    .option(OUTPUTS_DIR_FLAG, OUTPUTS_DIR_HELP)
    .action((flags: NodeFlags) => runNode('head', flags));

  nodeOptions(program.command('worker').description('Run a worker node and join the head'))
    .requiredOption(
      '--head <host:port>',
      "the head's address (or PET_MASTER_ADDR + PET_MASTER_PORT)",
      process.env.PET_MASTER_ADDR === undefined
        ? undefined
        : `${process.env.PET_MASTER_ADDR}:${process.env.PET_MASTER_PORT ?? 29500}`,
    )
    .option('--rank <n>', "this node's rank, 1 or more (PET_NODE_RANK)")
    .option('--node-port <port>', 'port for direct links from peers (DR_NODE_PORT, default any free port)')
    .action((flags: NodeFlags) => runNode('worker', flags));

  nodeOptions(
    program
      .command('start')
      .description('Head when PET_NODE_RANK is 0, worker otherwise (torchrun / PyTorchJob launchers)'),
  )
    .option('--rank <n>', "this node's rank (PET_NODE_RANK)")
    .option('--head <host:port>', "the head's address (PET_MASTER_ADDR:PET_MASTER_PORT)")
    .option('--port <port>', 'head: port to listen on (PET_MASTER_PORT)')
    .option('--node-port <port>', 'worker: port for direct links from peers')
    .option(DASHBOARD_PORT_FLAG, `head: ${DASHBOARD_PORT_HELP}`)
    .option(JOBS_DIR_FLAG, `head: ${JOBS_DIR_HELP}`)
    .option(OUTPUTS_DIR_FLAG, `head: ${OUTPUTS_DIR_HELP}`)
    .action((flags: NodeFlags) => {
      const rankText = flags.rank ?? process.env.PET_NODE_RANK;
      if (rankText === undefined)
        fail(new ConfigError('dr start needs a rank. Fix: set PET_NODE_RANK (or --rank); 0 starts the head'));
      return runNode(Number(rankText) === 0 && rankText.trim() !== '' ? 'head' : 'worker', flags);
    });

  program
    .command('status')
    .description('Show the nodes and actors of a running cluster')
    .option('--json', 'print one JSON object: { nodes: [...], actors: [...] }')
    .option(
      '--head <host:port>',
      "the head's address (default PET_MASTER_ADDR:PET_MASTER_PORT or 127.0.0.1:29500)",
    )
    .option(
      '--token-file <path>',
      'file holding the cluster token (default .dr-token; DR_CLUSTER_TOKEN wins)',
    )
    .option('--watch', "refresh a terminal view until Ctrl-C (the monitor's `dr watch`)")
    .action(async (flags: { json?: boolean; head?: string; tokenFile?: string; watch?: boolean }) => {
      if (flags.watch === true) {
        const { runWatch } = await import('./monitor.ts');
        // The watch view reads the head's dashboard: on the --head host, at the dashboard port.
        const host = flags.head === undefined ? undefined : parseHostPort(flags.head).host;
        await runWatch({
          interval: 2,
          ...(host === undefined ? {} : { url: `http://${host}:${dashboardPort(undefined) || 8265}` }),
        });
        return;
      }
      const status = await withClient(flags, (c) => c.status());
      process.stdout.write(flags.json === true ? `${JSON.stringify(status)}\n` : formatStatus(status));
    });

  program
    .command('stop')
    .description('Stop every node of a running cluster')
    .option('--head <host:port>', "the head's address")
    .option('--token-file <path>', 'file holding the cluster token')
    .action(async (flags: { head?: string; tokenFile?: string }) => {
      await withClient(flags, (c) => c.shutdownCluster());
      process.stdout.write('cluster stopping\n');
    });
}

const DASHBOARD_PORT_FLAG = '--dashboard-port <port>';
const DASHBOARD_PORT_HELP =
  'port of the dashboard and /metrics (DR_DASHBOARD_PORT, default 8265; 0 picks a free one). ' +
  'Tokens: the cluster token or DR_DASHBOARD_TOKEN';

function nodeOptions(cmd: Command): Command {
  return cmd
    .option('--nnodes <n>', 'expected number of nodes, head included (PET_NNODES)')
    .option('--listen-host <host>', 'interface to listen on (default 0.0.0.0)')
    .option('--advertise-host <host>', 'address other nodes use to reach this one')
    .option('--kinds <module>', 'module exporting `kinds` (default actors/kinds.ts)')
    .option(
      '--config <file>',
      'cluster file, YAML or JSON: node settings, search/browse services, named policies (DR_CONFIG, default dr.config.local.json if present; see config/examples/)',
    )
    .addOption(
      new Option(
        '--set <key.path=value>',
        'override one cluster-file setting, e.g. search.shards=4 (repeatable)',
      ).argParser((v: string, prev: string[] = []) => [...prev, v]),
    )
    .option(
      '--token-file <path>',
      'file holding the cluster token (default .dr-token; DR_CLUSTER_TOKEN wins)',
    )
    .option('--heartbeat-ms <ms>', 'heartbeat interval (default 1000)')
    .option('--suspect-after-ms <ms>', 'silence before a node is suspect (default 3000)')
    .option('--down-after-ms <ms>', 'silence before a node is down and its actors move (default 10000)')
    .option('--join-timeout-ms <ms>', 'give up joining after this long on first start (default 60000)')
    .option('--max-frame-bytes <n>', 'largest frame accepted (default 64 MiB)')
    .addOption(
      new Option('--label <key=value>', 'node label for placement (repeatable)').argParser(
        (v: string, prev: string[] = []) => [...prev, v],
      ),
    )
    .option('--gpus <ids>', "GPU ids to announce instead of probing nvidia-smi, or 'none' (DR_GPUS)")
    .option('--tls-cert <path>', 'serve wss with this certificate')
    .option('--tls-key <path>', 'private key for --tls-cert')
    .option('--tls-ca <path>', 'CA bundle to verify other nodes')
    .option(
      '--log-file <path>',
      'also append JSON log lines to this file, where `dr node-logs JOB` reads them (DR_LOG_FILE)',
    );
}

function configFlags(role: Role, f: NodeFlags): ClusterConfigInput & { tokenFile?: string } {
  const head = f.head === undefined ? undefined : parseHostPort(f.head);
  const labels =
    f.label === undefined
      ? undefined
      : Object.fromEntries(f.label.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return {
    rank: role === 'head' ? 0 : f.rank,
    masterAddr: head?.host ?? (role === 'head' ? (process.env.PET_MASTER_ADDR ?? '127.0.0.1') : undefined),
    masterPort: role === 'head' ? (f.port ?? head?.port) : head?.port,
    nnodes: f.nnodes,
    listenHost: f.listenHost,
    port: role === 'worker' ? f.nodePort : undefined,
    advertiseHost: f.advertiseHost,
    heartbeatIntervalMs: f.heartbeatMs,
    suspectAfterMs: f.suspectAfterMs,
    downAfterMs: f.downAfterMs,
    joinTimeoutMs: f.joinTimeoutMs,
    maxFrameBytes: f.maxFrameBytes,
    labels,
    gpus: f.gpus === undefined ? undefined : parseGpuList(f.gpus),
    tls:
      f.tlsCert === undefined && f.tlsKey === undefined
        ? undefined
        : { cert: f.tlsCert, key: f.tlsKey, ca: f.tlsCa },
    tokenFile: f.tokenFile,
  };
}

/** The cluster file a node starts from: --config, else DR_CONFIG, else dr.config.local.json if present, else
 * none (only --set values). The head checks the API-key variables it names: it places the services. */
export function nodeClusterFile(flags: { config?: string; set?: string[] }, checkEnv: boolean): ClusterFile {
  const path = flags.config ?? process.env.DR_CONFIG ?? (existsSync(LOCAL_CONFIG) ? LOCAL_CONFIG : undefined);
  const options = { sets: flags.set ?? [], checkEnv };
  return path === undefined ? parseClusterFile({}, '--set', options) : loadClusterFile(path, options);
}

const LOCAL_CONFIG = 'dr.config.local.json';

async function runNode(role: Role, flags: NodeFlags): Promise<void> {
  let logger: Logger | undefined;
  try {
    // Before any port is bound: a bad cluster file stops the node with every problem listed.
    const file = nodeClusterFile(flags, role === 'head');
    const config = loadClusterConfig({ flags: configFlags(role, flags), fileSettings: file.cluster });
    if (role === 'worker' && config.rank === 0) {
      throw new ConfigError(
        'a worker cannot have rank 0 (that is the head). Fix: set PET_NODE_RANK / --rank to 1 or more, or run dr head',
      );
    }
    if (role === 'worker' && config.masterPort === 0) {
      throw new ConfigError("a worker needs the head's real port. Fix: --head HOST:PORT or PET_MASTER_PORT");
    }
    // The node-logs reader on this node finds the file through DR_LOG_FILE, as it does when the env sets it.
    if (flags.logFile !== undefined) process.env.DR_LOG_FILE = resolve(flags.logFile);
    logger = createLogger({ role });
    const kinds = await loadKinds(flags.kinds);
    const resources = await detectResources({ labels: config.labels, gpuIds: config.gpus });
    const monitor =
      role === 'head'
        ? createHeadMonitor({
            tokens: [config.token, process.env.DR_DASHBOARD_TOKEN ?? ''],
            host: config.listenHost,
            ...(config.advertiseHost === undefined ? {} : { publicHost: config.advertiseHost }),
            port: dashboardPort(flags.dashboardPort),
            log: logger,
          })
        : undefined;
    const runtime = new NodeRuntime({
      config,
      role,
      kinds: monitor === undefined ? kinds : new Map([...kinds, monitor.kind]),
      resources,
      logger,
    });
    const log = logger;
    let stopReporting = (): void => undefined;
    let services: RunningServices | undefined;
    let stopping = false;
    const shutdown = (why: string, code: number) => {
      if (stopping) return;
      stopping = true;
      log.info({ why }, 'node stopping');
      // A node told to stop always ends, even when process.exit itself never returns (see kill-deadline.ts).
      const deadline = armKillDeadline(STOP_GRACE_MS + EXIT_GRACE_MS, `did not stop after ${why}`, {
        role,
        rank: config.rank,
      });
      const exit = (status: number): never => {
        deadline.tighten(EXIT_GRACE_MS, `process.exit(${status}) did not return after ${why}`);
        return process.exit(status);
      };
      setTimeout(() => {
        log.warn({ why, open: openResources() }, `node did not stop within ${STOP_GRACE_MS} ms; exiting`);
        exit(code);
      }, STOP_GRACE_MS).unref();
      stopReporting();
      services?.stop();
      Promise.all([monitor?.close(), runtime.stop()]).then(
        () => exit(code),
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          exit(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM', 0));
    process.on('SIGINT', () => shutdown('SIGINT', 0));
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection'));
    runtime.on('shutdown', () => shutdown('cluster stop requested', 0));
    if (process.env.DR_EXIT_WITH_PARENT === '1') {
      // Set by test and benchmark harnesses: stdin is their pipe, and its end means they are gone.
      process.stdin.on('end', () => shutdown('parent exited', 0));
      process.stdin.on('error', () => shutdown('parent exited', 0));
      process.stdin.resume();
    }
    runtime.on('fatal', (err) => {
      process.stderr.write(`dr ${role}: ${err.code}: ${err.message}\n`);
      shutdown(err.code, 1);
    });
    await runtime.start();
    // A dashboard that cannot listen is logged and skipped: monitoring never stops a cluster from running.
    const dashboard = await monitor?.attach(runtime);
    stopReporting = startNodeReporting(runtime, { mailboxDepths: () => runtime.mailboxDepths() });
    if (role === 'head') {
      services = startServices(
        {
          spawn: (spec) => runtime.spawn(spec),
          ask: (target, msg, options) => runtime.ask(target, msg, options),
          actors: () => runtime.actors(),
          nodes: async () => {
            const s = await runtime.status();
            return { alive: s.nodes.filter((n) => n.state === 'alive').length, expected: s.nnodes };
          },
        },
        file,
        { listenHost: config.listenHost, log, joinWaitMs: config.joinTimeoutMs },
      );
      if (kinds.has('jobs')) await startJobManager(runtime, flags, file, log);
    }
    log.info(
      { rank: runtime.rank, port: runtime.node.port, kinds: [...kinds.keys()], dashboard },
      'node ready',
    );
  } catch (err) {
    fail(err);
  }
}

/** How long a stopping node's runtime gets to stop, and then how long process.exit gets to end it. */
const STOP_GRACE_MS = 10_000;
const EXIT_GRACE_MS = 2_000;

/** What still holds the event loop, by kind ({ TCPSocketWrap: 2, Timeout: 1 }): what a late stop waits on. */
function openResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

const JOBS_DIR_FLAG = '--jobs-dir <dir>';
const JOBS_DIR_HELP = "the job manager's journal (DR_JOBS_DIR, default .data/jobs)";
const OUTPUTS_DIR_FLAG = '--outputs-dir <dir>';
const OUTPUTS_DIR_HELP =
  'where evaluation and research jobs write their outputs (DR_OUTPUTS_DIR, default outputs)';

/** The head runs the job manager from the start, so a restarted head resumes its jobs without a CLI call.
 * Like the dashboard, a job manager that cannot start is logged and the head runs on. */
async function startJobManager(
  runtime: NodeRuntime,
  flags: NodeFlags,
  file: ClusterFile,
  log: Logger,
): Promise<void> {
  const args = {
    ...DEFAULT_JOB_MANAGER_ARGS,
    services: toolServices(file),
    dataDir: flags.jobsDir ?? process.env.DR_JOBS_DIR ?? DEFAULT_JOB_MANAGER_ARGS.dataDir,
    outputsDir: flags.outputsDir ?? process.env.DR_OUTPUTS_DIR ?? DEFAULT_JOB_MANAGER_ARGS.outputsDir,
  };
  try {
    await ensureJobManager(runtime, args);
  } catch (err) {
    log.error({ err, dataDir: args.dataDir }, 'job manager did not start; `dr submit` will try again');
  }
}

async function loadKinds(module: string | undefined): Promise<ActorKinds> {
  const url =
    module === undefined
      ? new URL('../../actors/kinds.ts', import.meta.url).href
      : pathToFileURL(resolve(module)).href;
  let mod: { kinds?: unknown };
  try {
    mod = (await import(url)) as { kinds?: unknown };
  } catch (err) {
    throw new ConfigError(
      `cannot load actor kinds from ${module ?? 'actors/kinds.ts'}: ${(err as Error).message}. Fix: point --kinds at a module exporting \`kinds\``,
      {
        setting: 'kinds',
      },
    );
  }
  if (!(mod.kinds instanceof Map)) {
    throw new ConfigError(
      `${module ?? 'actors/kinds.ts'} must export \`kinds\`: a Map of kind name -> actor factory`,
      { setting: 'kinds' },
    );
  }
  return mod.kinds as ActorKinds;
}

async function withClient<T>(
  flags: { head?: string; tokenFile?: string },
  use: (c: Awaited<ReturnType<typeof connectClient>>) => Promise<T>,
): Promise<T> {
  try {
    const env = process.env;
    const head = flags.head ?? `${env.PET_MASTER_ADDR ?? '127.0.0.1'}:${env.PET_MASTER_PORT ?? 29500}`;
    const client = await connectClient({ head, token: resolveClusterToken({ tokenFile: flags.tokenFile }) });
    try {
      return await use(client);
    } finally {
      await client.close();
    }
  } catch (err) {
    return fail(err);
  }
}

function fail(err: unknown): never {
  if (isDrError(err)) process.stderr.write(`error ${err.code}: ${err.message}\n`);
  else process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(err instanceof DrError && err.code === 'CONFIG_INVALID' ? 2 : 1);
}

function formatStatus(s: ClusterStatus): string {
  const lines = [`nodes (${s.nodes.filter((n) => n.state === 'alive').length}/${s.nnodes} expected alive)`];
  for (const n of s.nodes) {
    const gpus = n.resources.gpus.map((g) => g.id).join(',') || '-';
    lines.push(
      `  ${String(n.rank).padStart(3)}  ${n.state.padEnd(7)}  ${`${n.host ?? 'head'}:${n.port}`.padEnd(22)}  cpus ${n.resources.cpus}  mem ${(n.resources.memoryBytes / 2 ** 30).toFixed(1)} GiB  gpus ${gpus}  actors ${n.actors}  hb ${n.lastHeartbeatMsAgo} ms ago`,
    );
  }
  lines.push(`actors (${s.actors.length})`);
  for (const a of s.actors)
    lines.push(
      `  ${a.path.padEnd(28)}  ${a.kind.padEnd(14)}  node ${a.node}  ${a.state.padEnd(10)}  restarts ${a.restarts}`,
    );
  return `${lines.join('\n')}\n`;
}
