import { resolveClusterToken } from '../../config/cluster.ts';
import { DrError } from '../../config/errors.ts';
import type { ClusterState } from './monitor-hub.ts';

/** Ray's dashboard port: familiar to people moving from Ray, and free on most hosts. */
export const DEFAULT_DASHBOARD_PORT = 8265;

export interface DashboardTarget {
  url: string;
  token: string;
}

/**
 * Where the head's dashboard is and which token to present, for CLI commands: `--url`, else
 * DR_DASHBOARD_URL, else PET_MASTER_ADDR (or 127.0.0.1) on DR_DASHBOARD_PORT (8265); the token is
 * DR_DASHBOARD_TOKEN, else the cluster token (DR_CLUSTER_TOKEN, else the .dr-token file).
 */
export function resolveDashboardTarget(
  flags: { url?: string },
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): DashboardTarget {
  const url =
    flags.url ??
    env.DR_DASHBOARD_URL ??
    `http://${env.PET_MASTER_ADDR ?? '127.0.0.1'}:${env.DR_DASHBOARD_PORT ?? DEFAULT_DASHBOARD_PORT}`;
  const token = env.DR_DASHBOARD_TOKEN ?? resolveClusterToken({ env, cwd });
  return { url: url.replace(/\/+$/, ''), token };
}

/** GET /api/state from the head's dashboard. */
export async function fetchClusterState(target: DashboardTarget, timeoutMs = 5_000): Promise<ClusterState> {
  let res: Response;
  try {
    res = await fetch(`${target.url}/api/state`, {
      headers: { authorization: `Bearer ${target.token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new DrError(
      'MONITOR_UNREACHABLE',
      `Cannot reach the dashboard at ${target.url}: is the head running? Pass --url or set DR_DASHBOARD_URL.`,
      {
        cause: err,
      },
    );
  }
  if (res.status === 401)
    throw new DrError(
      'MONITOR_UNAUTHORIZED',
      `The dashboard at ${target.url} refused the token: use the cluster token or the dashboard read token.`,
    );
  if (!res.ok)
    throw new DrError('MONITOR_UNREACHABLE', `The dashboard at ${target.url} answered HTTP ${res.status}.`);
  return (await res.json()) as ClusterState;
}
