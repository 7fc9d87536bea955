import { setTimeout as sleep } from 'node:timers/promises';
import { isDrError } from '../../config/errors.ts';
import { fetchClusterState, type DashboardTarget } from './dashboard-client.ts';
import type { ClusterState } from './monitor-hub.ts';
import { renderStatus } from './status-view.ts';

export interface WatchOptions {
  /** Where the state comes from; defaults to the dashboard's /api/state. */
  fetchState?: () => Promise<ClusterState>;
  target?: DashboardTarget;
  intervalMs?: number;
  out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Stops the loop (Ctrl-C in the CLI). */
  signal?: AbortSignal;
  /** Draw once and return. */
  once?: boolean;
}

/**
 * `dr watch` / `dr status --watch`: redraws the nodes, actors and jobs every interval until aborted. On a
 * terminal it repaints the screen in place; otherwise it appends frames. A failed fetch is shown in place of
 * the view and retried, so a head restart does not end the watch.
 */
export async function watchStatus(options: WatchOptions): Promise<void> {
  const out = options.out ?? process.stdout;
  const target = options.target;
  const fetchState =
    options.fetchState ?? (target === undefined ? undefined : () => fetchClusterState(target));
  if (fetchState === undefined) throw new TypeError('watchStatus needs fetchState or target');
  const tty = out.isTTY === true;
  while (options.signal?.aborted !== true) {
    let frame: string;
    try {
      frame = renderStatus(await fetchState(), { width: out.columns ?? 120, color: tty });
    } catch (err) {
      if (options.once === true) throw err;
      frame = `dr watch: ${isDrError(err) ? err.message : String(err)} (retrying)\n`;
    }
    out.write(tty ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
    if (options.once === true) return;
    try {
      await sleep(options.intervalMs ?? 2_000, undefined, { signal: options.signal });
    } catch {
      return;
    }
  }
}
