import { InvalidArgumentError, Option, type Command } from 'commander';
import { resolveDashboardTarget } from '../../cluster/monitor/dashboard-client.ts';
import { watchStatus } from '../../cluster/monitor/status-watch.ts';

/** `dr watch`: the refreshing terminal view of the cluster, read from the head's dashboard. */
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
    .action(async (opts: { url?: string; interval: number; once?: boolean }) => {
      const target = resolveDashboardTarget({ ...(opts.url === undefined ? {} : { url: opts.url }) });
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      await watchStatus({
        target,
        intervalMs: opts.interval * 1000,
        signal: stop.signal,
        once: opts.once === true,
      });
    });
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0))
    throw new InvalidArgumentError(`--interval must be a positive number of seconds, got '${value}'`);
  return n;
}
