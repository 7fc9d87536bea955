import { InvalidArgumentError, Option, type Command } from 'commander';
import { resolveClusterToken } from '../../config/cluster.ts';
import { isDrError } from '../../config/errors.ts';
import { resolveDashboardTarget } from '../../cluster/monitor/dashboard-client.ts';
import { watchStatus } from '../../cluster/monitor/status-watch.ts';
import { connectClient } from '../../runtime/client.ts';
import { formatLogLine, gatherJobLogs } from '../../runtime/monitor/gather-job-logs.ts';

/**
 * `dr watch`: the refreshing terminal view of the cluster, read from the head's dashboard.
 * `dr node-logs JOB`: the job's lines from every node's log file, merged by time.
 */
export function register(program: Command): void {
  program
    .command('watch')
    .description('Refreshing terminal view of nodes, actors and jobs (same as `dr status --watch`)')
    .option(
      '--url <url>',
      'dashboard URL of the head (default: DR_DASHBOARD_URL, else http://PET_MASTER_ADDR:8265)',
    )
    .addOption(
      new Option('--interval <seconds>', 'seconds between refreshes').default(2).argParser(positiveNumber),
    )
    .option('--once', 'print one view and exit')
    .action(runWatch);

  program
    .command('node-logs <job>')
    .description(
      "Gather a job's log lines from every node (nodes keep JSON logs in DR_LOG_FILE), merged by time",
    )
    .option(
      '--head <host:port>',
      "the head's address (default PET_MASTER_ADDR:PET_MASTER_PORT or 127.0.0.1:29500)",
    )
    .option(
      '--token-file <path>',
      'file holding the cluster token (default .dr-token; DR_CLUSTER_TOKEN wins)',
    )
    .option('--json', 'print the lines as JSON, one per line')
    .addOption(
      new Option('--limit <n>', 'newest lines kept per node').default(5_000).argParser(positiveNumber),
    )
    .action((job: string, opts: NodeLogsOptions) => exitOnError(printNodeLogs(job, opts)));
}

interface NodeLogsOptions {
  head?: string;
  tokenFile?: string;
  json?: boolean;
  limit: number;
}

async function printNodeLogs(job: string, opts: NodeLogsOptions): Promise<void> {
  const env = process.env;
  const head = opts.head ?? `${env.PET_MASTER_ADDR ?? '127.0.0.1'}:${env.PET_MASTER_PORT ?? 29500}`;
  const token = resolveClusterToken({
    ...(opts.tokenFile === undefined ? {} : { tokenFile: opts.tokenFile }),
  });
  const client = await connectClient({ head, token });
  try {
    const gathered = await gatherJobLogs(client, job, { limitPerNode: Math.floor(opts.limit) });
    for (const line of gathered.lines) {
      process.stdout.write(`${opts.json === true ? JSON.stringify(line) : formatLogLine(line)}\n`);
    }
    for (const m of gathered.missing) process.stderr.write(`rank ${m.rank}: ${m.code}: ${m.message}\n`);
    if (gathered.truncated) {
      process.stderr.write(`(only the newest ${opts.limit} lines per node; raise --limit for more)\n`);
    }
  } finally {
    await client.close();
  }
}

/**
 * The watch view until Ctrl-C: what `dr watch` runs and `dr status --watch` calls. A typed failure (head
 * unreachable, token refused) ends the process with its code and message.
 */
export function runWatch(opts: WatchOptions): Promise<void> {
  return exitOnError(watch(opts));
}

interface WatchOptions {
  url?: string;
  interval?: number;
  once?: boolean;
}

async function watch(opts: WatchOptions): Promise<void> {
  const target = resolveDashboardTarget({ ...(opts.url === undefined ? {} : { url: opts.url }) });
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  await watchStatus({
    target,
    intervalMs: (opts.interval ?? 2) * 1000,
    signal: stop.signal,
    once: opts.once === true,
  });
}

/** A typed failure ends the command with its code and message, not a stack trace. */
async function exitOnError(run: Promise<void>): Promise<void> {
  try {
    await run;
  } catch (err) {
    if (!isDrError(err)) throw err;
    process.stderr.write(`error ${err.code}: ${err.message}\n`);
    process.exit(err.code === 'CONFIG_INVALID' ? 2 : 1);
  }
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError(`must be a positive number, got '${value}'`);
  return n;
}
