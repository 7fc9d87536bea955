/**
 * What a job needs from the cluster before it runs, and what its tool calls came to: the named policy
 * resolved against the cluster file's `policies`, the search and browse services checked in the actor
 * directory (a job whose tools have no service fails at submit, never with a silent `succeeded`), and the
 * tool-call counts that decide whether a finished job failed on its tools.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import { browseActorName } from '../browse/browse-routing.ts';
import type { PolicyConfig } from '../rollout/protocol.ts';
import { toolErrorRateExceeded, type ToolCounts, type Trajectory } from '../rollout/trajectory.ts';
import { searchActorName } from '../search/search-routing.ts';
import type { EngineSpec, ToolServices } from '../services/services.ts';
import type { BudgetUse, JobPolicy } from './protocol.ts';

/** Results per query when neither the job nor the cluster's search service says (DeepResearcher's). */
export const DEFAULT_SEARCH_TOP_K = 10;

export function searchShards(services: ToolServices | undefined): number {
  return services?.search?.shards ?? 1;
}

export function browseShards(services: ToolServices | undefined): number {
  return services?.browse?.shards ?? 1;
}

/** The policy a job samples from. Throws JOB_POLICY_UNKNOWN / JOB_POLICY_REQUIRED. */
export function resolvePolicy(
  policy: JobPolicy | undefined,
  services: ToolServices | undefined,
): PolicyConfig {
  const named = Object.keys(services?.policies ?? {});
  if (policy !== undefined && !('name' in policy)) return policy;
  const name = policy?.name ?? (named.length === 1 ? named[0] : undefined);
  const found = name === undefined ? undefined : services?.policies[name];
  if (found !== undefined) return found;
  if (name === undefined)
    throw new DrError(
      'JOB_POLICY_REQUIRED',
      named.length === 0
        ? 'the job names no policy and the cluster file declares none. Fix: pass --policy-url URL --model NAME, or add a `policies:` section to the cluster file'
        : `the job names no policy and the cluster has ${named.length} (${named.join(', ')}). Fix: pass --policy NAME`,
    );
  throw new DrError(
    'JOB_POLICY_UNKNOWN',
    `the cluster has no policy named '${name}'${named.length === 0 ? '' : ` (it has: ${named.join(', ')})`}. Fix: add policies.${name} to the cluster file, or pass --policy-url URL --model NAME`,
  );
}

/** The engine a train job rolls out on (`rollout.engine`), or undefined for the trainer's own policy server.
 * Throws JOB_ENGINE_UNKNOWN when the cluster file declares no such completions policy with `weightSync`. */
export function resolveEngine(
  name: string | undefined,
  services: ToolServices | undefined,
): EngineSpec | undefined {
  if (name === undefined) return undefined;
  const found = services?.engines?.[name];
  if (found !== undefined) return found;
  const engines = Object.keys(services?.engines ?? {});
  throw new DrError(
    'JOB_ENGINE_UNKNOWN',
    `rollout.engine names '${name}', but the cluster file has no completions policy of that name with weightSync${engines.length === 0 ? '' : ` (engines: ${engines.join(', ')})`}. Fix: add policies.${name} with baseUrl, model, api: completions and weightSync: {kind: sglang | command, dir}`,
  );
}

/**
 * Fails with JOB_TOOLS_UNAVAILABLE unless every search and browse shard is in the directory, and with
 * JOB_POLICY_UNAVAILABLE when a served policy is not running (yet).
 */
export async function checkTools(
  resolve: (name: string) => Promise<unknown>,
  services: ToolServices | undefined,
  policy?: PolicyConfig,
): Promise<void> {
  const wanted = [
    ...shardNames('search', searchShards(services), searchActorName, services?.search !== undefined),
    ...shardNames('browse', browseShards(services), browseActorName, services?.browse !== undefined),
  ];
  const missing = (
    await Promise.all(wanted.map(async (w) => ((await exists(resolve, w.actor)) ? [] : [w])))
  ).flat();
  if (missing.length > 0) {
    const names = missing.map((m) => m.actor).join(', ');
    const absent = [...new Set(missing.filter((m) => !m.declared).map((m) => m.service))];
    const tools = absent.map((s) => (s === 'search' ? 'web_search' : 'browse_webpage')).join(' and ');
    throw new DrError(
      'JOB_TOOLS_UNAVAILABLE',
      absent.length === 0
        ? `the cluster's tool services are declared but ${names} not running yet. Fix: wait for them (dr status lists them once they run), then submit again`
        : `the cluster has no ${absent.join(' or ')} service (${names} missing): the agent's ${tools} calls would all fail. Fix: add ${absent.map((s) => `a \`${s}:\``).join(' and ')} section to the cluster file and restart the head with dr head --config FILE (config/examples/ has some)`,
      { details: { missing: missing.map((m) => m.actor), configKeys: absent } },
    );
  }
  if (policy?.kind === 'served' && !(await exists(resolve, policy.actor)))
    throw new DrError(
      'JOB_POLICY_UNAVAILABLE',
      `the policy ${policy.model} (${policy.actor}) is not running yet; a checkpoint takes a while to load. Fix: wait until dr status lists ${policy.actor}, then submit again`,
    );
}

function shardNames(
  service: 'search' | 'browse',
  shards: number,
  name: (shard: number) => string,
  declared: boolean,
): Array<{ service: 'search' | 'browse'; actor: string; declared: boolean }> {
  return Array.from({ length: shards }, (_, i) => ({ service, actor: name(i), declared }));
}

async function exists(resolve: (name: string) => Promise<unknown>, name: string): Promise<boolean> {
  try {
    await resolve(name);
    return true;
  } catch (err) {
    if (isDrError(err, 'ACTOR_NOT_FOUND')) return false;
    throw err;
  }
}

/** JOB_TOOL_ERRORS when more than `maxRate` of the calls failed, naming the commonest failures. */
export function toolFailure(
  counts: ToolCounts,
  maxRate: number,
  trajectories: Iterable<Trajectory>,
): { code: string; message: string } | undefined {
  if (!toolErrorRateExceeded(counts, maxRate)) return undefined;
  const byCode = new Map<string, number>();
  for (const t of trajectories)
    for (const turn of t.turns)
      if (turn.tool !== undefined && !turn.tool.ok) {
        const code = turn.tool.error ?? 'unknown';
        byCode.set(code, (byCode.get(code) ?? 0) + 1);
      }
  const commonest = [...byCode]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([code, n]) => `${code} x${n}`)
    .join(', ');
  return {
    code: 'JOB_TOOL_ERRORS',
    message: `${counts.errors} of ${counts.calls} tool calls failed (more than ${Math.round(maxRate * 100)}%): ${commonest}. Fix: check the search and browse services (dr status, dr node-logs JOB), or raise maxToolErrorRate`,
  };
}

/** One line for a budgeted job's log and `dr submit`: what each limited tool used of its limit. */
export function describeBudget(b: BudgetUse): string {
  const parts = (['searchCalls', 'browseCalls'] as const)
    .filter((k) => b[k] !== undefined)
    .map((k) => `${k} ${b[k]!.used} of ${b[k]!.limit}`);
  return `${parts.join(', ')}${b.refused > 0 ? `; ${b.refused} calls refused` : ''}`;
}
