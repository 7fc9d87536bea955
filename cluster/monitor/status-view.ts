import type { ClusterState } from './monitor-hub.ts';

export interface StatusViewOptions {
  /** Terminal columns; long cells are cut to fit. */
  width?: number;
  /** ANSI colours for states. */
  color?: boolean;
  /** Actor rows shown at most (the rest are counted). */
  maxActors?: number;
}

const COLORS: Record<string, string> = {
  alive: '32',
  running: '32',
  succeeded: '32',
  suspect: '33',
  restarting: '33',
  starting: '33',
  queued: '33',
  down: '31',
  failed: '31',
  lost: '31',
  left: '90',
  stopped: '90',
  cancelled: '90',
};

/** The text `dr watch` (and `dr status --watch`) redraws: nodes, actors and jobs as aligned tables. */
export function renderStatus(state: ClusterState, options: StatusViewOptions = {}): string {
  const width = options.width ?? 120;
  const paint = (s: string) =>
    options.color === true && COLORS[s] !== undefined ? `\x1b[${COLORS[s]}m${s}\x1b[0m` : s;
  const maxActors = options.maxActors ?? 40;
  const alive = state.nodes.filter((n) => n.state === 'alive').length;
  const running = state.jobs.filter((j) => j.state === 'running').length;
  const out: string[] = [
    `dr cluster at ${new Date(state.now).toISOString()}: ${alive}/${state.nodes.length} nodes alive, ${state.actors.length} actors, ${running} jobs running`,
    '',
    'NODES',
    ...table(
      ['rank', 'state', 'address', 'cpus', 'memory', 'gpus', 'heartbeat', 'actors'],
      state.nodes.map((n) => [
        String(n.rank),
        n.state,
        n.address ?? '',
        String(n.resources.cpus),
        formatBytes(n.resources.memoryBytes),
        String(n.resources.gpus.length),
        n.heartbeatAgeSeconds === null ? '-' : `${n.heartbeatAgeSeconds.toFixed(1)}s ago`,
        String(n.actorCount),
      ]),
      1,
      paint,
    ),
    '',
    'ACTORS',
    ...table(
      ['node', 'actor', 'kind', 'state', 'restarts', 'mailbox'],
      state.actors
        .slice(0, maxActors)
        .map((a) => [
          String(a.node),
          a.path,
          a.kind,
          a.state,
          String(a.restarts),
          a.mailboxDepth === null ? '-' : String(a.mailboxDepth),
        ]),
      3,
      paint,
    ),
    ...(state.actors.length > maxActors ? [`  … ${state.actors.length - maxActors} more`] : []),
    '',
    'JOBS',
    ...table(
      ['job', 'kind', 'state', 'progress', 'eta'],
      state.jobs.map((j) => [
        j.id,
        j.kind,
        j.state,
        `${bar(j.progressRatio, 20)} ${j.progress.done}/${j.progress.total}`,
        j.etaSeconds === null ? '-' : formatDuration(j.etaSeconds),
      ]),
      2,
      paint,
    ),
  ];
  return `${out.map((l) => cut(l, width)).join('\n')}\n`;
}

function table(
  headers: string[],
  rows: string[][],
  stateColumn: number,
  paint: (s: string) => string,
): string[] {
  if (rows.length === 0) return ['  (none)'];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], painted: boolean) =>
    `  ${cells
      .map((c, i) => {
        const padded = c.padEnd(widths[i] ?? 0);
        return painted && i === stateColumn ? padded.replace(c, paint(c)) : padded;
      })
      .join('  ')}`.trimEnd();
  return [line(headers, false), ...rows.map((r) => line(r, true))];
}

/** Fits a line in `width` columns; a line that must be cut loses its colours. */
function cut(text: string, width: number): string {
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  return plain.length <= width ? text : `${plain.slice(0, Math.max(0, width - 1))}…`;
}

function bar(ratio: number, cells: number): string {
  const full = Math.round(Math.min(1, Math.max(0, ratio)) * cells);
  return `[${'#'.repeat(full)}${'.'.repeat(cells - full)}]`;
}

function formatBytes(bytes: number): string {
  const gib = bytes / 2 ** 30;
  return gib >= 1 ? `${gib.toFixed(gib >= 10 ? 0 : 1)}G` : `${Math.round(bytes / 2 ** 20)}M`;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600)
    return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.round((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
