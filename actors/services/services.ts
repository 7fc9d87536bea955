/**
 * The cluster's tool services, from the cluster file (config/cluster-file.ts): the head spawns the search
 * shards (`search/<i>`), the browse shards (`browse/<i>`), the served policies (`policy/<name>`) and, for
 * the offline `sandbox` backend, the sandbox web they read (`sandbox`), each a supervised actor that is
 * re-spawned on a survivor when its node goes down. A reconcile loop spawns again whatever is missing (a
 * placement that could not be met yet, an actor that failed for good), so a service comes back by itself.
 *
 * `toolServices` is what jobs need to know of them: shard counts, the default search top-k, and each named
 * policy as the rollout side reaches it.
 */
import { join } from 'node:path';
import { createServer } from 'node:net';
import type {
  ClusterFile,
  Placement as FilePlacement,
  SearchServiceConfig,
  WeightSyncConfig,
} from '../../config/cluster-file.ts';
import { isDrError } from '../../config/errors.ts';
import type { Logger } from '../../config/log.ts';
import type { ActorInfo, ActorRef, AskOptions, Placement, SpawnSpec } from '../../runtime/actor.ts';
import { browseActorName } from '../browse/browse-routing.ts';
import { policyActorName } from '../policy/protocol.ts';
import type { EndpointPolicyConfig, PolicyConfig } from '../rollout/protocol.ts';
import type { SandboxInfoReply } from '../sandbox/protocol.ts';
import { SEARCH_CACHE_ACTOR } from '../search/protocol.ts';
import { searchActorName } from '../search/search-routing.ts';

/** What a job needs to know about the cluster's tools (passed to the job manager). */
export interface ToolServices {
  search?: { shards: number; topK: number };
  browse?: { shards: number };
  /** Named policies as a rollout reaches them. */
  policies: Record<string, PolicyConfig>;
  /** The completions policies train jobs may roll out on (`rollout.engine`), with their weight sync. */
  engines?: Record<string, EngineSpec>;
}

export interface EngineSpec {
  policy: EndpointPolicyConfig;
  weightSync: WeightSyncConfig;
}

/** The verbs of the head's runtime the services use. */
export interface ServiceHost {
  spawn(spec: SpawnSpec): Promise<ActorRef>;
  ask<R = unknown>(target: string, msg: unknown, options?: AskOptions): Promise<R>;
  actors(): Promise<ActorInfo[]>;
  /** Nodes alive now, and how many are expected (PET_NNODES). */
  nodes(): Promise<{ alive: number; expected: number }>;
}

export interface ServicesOptions {
  /** Interface the head listens on: the sandbox web binds it too. */
  listenHost: string;
  log: Logger;
  /** How long to wait for the expected nodes before placing services on those that joined. */
  joinWaitMs: number;
  reconcileMs?: number;
}

export interface RunningServices {
  /** Resolves once every service was spawned once (or failed to be, which is logged and retried). */
  readonly started: Promise<void>;
  stop(): void;
}

export function toolServices(file: ClusterFile): ToolServices {
  const policies: Record<string, PolicyConfig> = {};
  const engines: Record<string, EngineSpec> = {};
  for (const [name, p] of Object.entries(file.policies)) {
    policies[name] =
      'checkpoint' in p
        ? { kind: 'served', actor: policyActorName(name), model: name }
        : {
            kind: p.api,
            baseURL: p.baseUrl,
            model: p.model,
            ...(p.apiKeyEnv === undefined ? {} : { apiKeyEnv: p.apiKeyEnv }),
            ...(p.tools === undefined ? {} : { tools: p.tools }),
            ...(p.timeoutMs === undefined ? {} : { timeoutMs: p.timeoutMs }),
            ...(p.tokenizer === undefined ? {} : { tokenizerDir: p.tokenizer }),
          };
    if ('baseUrl' in p && p.weightSync !== undefined)
      engines[name] = { policy: policies[name] as EndpointPolicyConfig, weightSync: p.weightSync };
  }
  return {
    ...(file.search === undefined ? {} : { search: { shards: file.search.shards, topK: file.search.topK } }),
    ...(file.browse === undefined ? {} : { browse: { shards: file.browse.shards } }),
    policies,
    engines,
  };
}

/** Spawns the file's services in the background and keeps them running. */
export function startServices(
  host: ServiceHost,
  file: ClusterFile,
  options: ServicesOptions,
): RunningServices {
  let stopped = false;
  let specs: SpawnSpec[] = [];
  let timer: NodeJS.Timeout | undefined;
  const log = options.log;

  const spawn = async (spec: SpawnSpec): Promise<void> => {
    try {
      await host.spawn(spec);
      log.info({ actor: spec.name, kind: spec.kind }, 'service started');
    } catch (err) {
      if (isDrError(err, 'ACTOR_NAME_TAKEN')) return;
      log.warn({ actor: spec.name, err: describe(err) }, 'service did not start; will try again');
    }
  };

  const reconcile = async (): Promise<void> => {
    const running = new Set(
      (await host.actors()).filter((a) => a.state !== 'failed' && a.state !== 'stopped').map((a) => a.name),
    );
    await Promise.all(specs.filter((s) => !running.has(s.name)).map(spawn));
  };

  const started = (async () => {
    if (needsWorkers(file)) await waitForNodes(host, options.joinWaitMs, () => stopped);
    let sandboxUrl: string | undefined;
    if (file.search?.backend === 'sandbox') {
      const sandbox = sandboxSpec(
        file.search,
        options.listenHost,
        await freePort(options.listenHost, file.search.sandbox.port),
      );
      await spawn(sandbox);
      specs.push(sandbox);
      sandboxUrl = (await host.ask<SandboxInfoReply>('sandbox', { v: 1, type: 'sandbox.info' })).url;
    }
    const rest = serviceSpecs(file, sandboxUrl);
    specs = [...specs, ...rest];
    await Promise.all(rest.map(spawn));
  })().catch((err: unknown) => log.error({ err: describe(err) }, 'services did not start'));

  void started.then(() => {
    if (stopped) return;
    timer = setInterval(() => {
      reconcile().catch((err: unknown) => log.warn({ err: describe(err) }, 'service check failed'));
    }, options.reconcileMs ?? 5_000);
    timer.unref();
  });

  return {
    started,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** The spawn specs of every service but the sandbox web; `sandboxUrl` is that web's address, if any. */
export function serviceSpecs(file: ClusterFile, sandboxUrl?: string): SpawnSpec[] {
  const specs: SpawnSpec[] = [];
  const search = file.search;
  if (search !== undefined) {
    const cacheTtlMs = Math.round(search.cacheTtlHours * 3_600_000);
    const shared = search.cacheOwner === 'head';
    if (shared)
      specs.push({
        kind: 'search-cache',
        name: SEARCH_CACHE_ACTOR,
        args: {
          path: search.cacheDir === ':memory:' ? ':memory:' : join(search.cacheDir, 'search-cache.sqlite'),
          ttlMs: cacheTtlMs,
        },
        placement: { kind: 'rank', rank: 0 },
      });
    for (let shard = 0; shard < search.shards; shard++) {
      specs.push({
        kind: 'search',
        name: searchActorName(shard),
        args: {
          shard,
          backend: {
            kind: search.backend,
            ...(search.backend === 'sandbox'
              ? { baseUrl: sandboxUrl }
              : search.baseUrl === undefined
                ? {}
                : { baseUrl: search.baseUrl }),
            ...(search.apiKeyEnv === undefined ? {} : { apiKeyEnv: search.apiKeyEnv }),
            timeoutMs: search.timeoutMs,
          },
          cacheDir: search.cacheDir,
          ...(shared ? { cacheActor: SEARCH_CACHE_ACTOR } : {}),
          cacheTtlMs,
          rateLimit: search.rateLimit,
        },
        placement: placementOf(search.placement),
        respawnOnNodeLoss: true,
      });
    }
  }
  const browse = file.browse;
  if (browse !== undefined) {
    const sandboxHost =
      sandboxUrl === undefined ? [] : [new URL(sandboxUrl).hostname.replace(/^\[|\]$/g, '')];
    for (let shard = 0; shard < browse.shards; shard++) {
      specs.push({
        kind: 'browse',
        name: browseActorName(shard),
        args: {
          allowHosts: [...new Set([...browse.allowHosts, ...sandboxHost])],
          allowCidrs: browse.allowCidrs,
          fetch: browse.fetch,
          ...(browse.reader === 'extractive' ? {} : { reader: browse.reader }),
        },
        placement: placementOf(browse.placement),
        respawnOnNodeLoss: true,
      });
    }
  }
  for (const [name, p] of Object.entries(file.policies)) {
    if (!('checkpoint' in p)) continue;
    specs.push({
      kind: 'policy',
      name: policyActorName(name),
      args: { name, checkpoint: p.checkpoint, provider: p.provider, maxBatch: p.maxBatch },
      placement: placementOf(p.placement),
      respawnOnNodeLoss: true,
    });
  }
  return specs;
}

function sandboxSpec(search: SearchServiceConfig, host: string, port: number): SpawnSpec {
  return {
    kind: 'sandbox',
    name: 'sandbox',
    args: { seed: search.sandbox.seed, size: search.sandbox.size, port, host },
    placement: { kind: 'rank', rank: 0 },
  };
}

export function placementOf(p: FilePlacement): Placement {
  if (p === 'head') return { kind: 'rank', rank: 0 };
  if (p === 'spread') return { kind: 'spread' };
  return 'rank' in p ? { kind: 'rank', rank: p.rank } : { kind: 'resource', resource: p.resource };
}

/** Services other than the sandbox may go to workers: place them once the expected nodes are there. */
function needsWorkers(file: ClusterFile): boolean {
  const placements: FilePlacement[] = [
    ...(file.search === undefined ? [] : [file.search.placement]),
    ...(file.browse === undefined ? [] : [file.browse.placement]),
    ...Object.values(file.policies).flatMap((p) => ('placement' in p ? [p.placement] : [])),
  ];
  return placements.some((p) => p !== 'head');
}

async function waitForNodes(host: ServiceHost, waitMs: number, stopped: () => boolean): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!stopped() && Date.now() < deadline) {
    const { alive, expected } = await host.nodes();
    if (alive >= expected) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A pinned port keeps the sandbox's URLs valid across its restarts; 0 is resolved to a free one once. */
function freePort(host: string, port: number): Promise<number> {
  if (port !== 0) return Promise.resolve(port);
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port: free } = probe.address() as { port: number };
      probe.close(() => resolve(free));
    });
  });
}

function describe(err: unknown): { code?: string; message: string } {
  return isDrError(err) ? { code: err.code, message: err.message } : { message: String(err) };
}
