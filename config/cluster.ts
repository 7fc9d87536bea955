/**
 * The typed configuration of one cluster node, from (lowest to highest precedence) the cluster file's
 * `cluster` section (config/cluster-file.ts), the environment (torchrun/PyTorchJob's PET_* variables, DR_*
 * for the rest) and command-line flags. Validated with zod at start-up: a bad value stops the process with a ConfigError naming the setting and the fix.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { DrError } from './errors.ts';

export interface TlsPaths {
  cert: string;
  key: string;
  /** CA bundle to verify peers with (self-signed clusters). */
  ca?: string;
}

export interface ClusterConfig {
  rank: number;
  /** Head host and port (the head listens on masterPort; workers dial it). */
  masterAddr: string;
  masterPort: number;
  /** Expected number of nodes, head included (status shows how many have joined). */
  nnodes: number;
  /** Interface this node listens on. */
  listenHost: string;
  /** Port a worker listens on for direct peer links (0: any free port). The head uses masterPort. */
  port: number;
  /** Host peers should dial to reach this node (default: the local address of its link to the head). */
  advertiseHost: string | undefined;
  token: string;
  tls: TlsPaths | undefined;
  heartbeatIntervalMs: number;
  /** Silence after which a node is suspect (also: at once when its link drops). */
  suspectAfterMs: number;
  /** Silence after which a node is down: its actors are re-spawned elsewhere. */
  downAfterMs: number;
  /** A worker that cannot join the head within this time on first start gives up. */
  joinTimeoutMs: number;
  maxFrameBytes: number;
  /** Per-link queued bytes above which sends report backpressure (tell returns false, `writable` is false). */
  queueHighWaterBytes: number;
  /** Per-link queued bytes beyond which sends fail with CLUSTER_QUEUE_FULL. */
  queueMaxBytes: number;
  labels: Record<string, string>;
  /** GPU ids to announce instead of asking nvidia-smi (DR_GPUS=0,1 or DR_GPUS=none). */
  gpus: string[] | undefined;
}

/** Where each setting can come from, for error messages that say how to fix it. */
const SOURCES: Record<keyof ClusterConfig, { env?: string; flag?: string; fix: string }> = {
  rank: { env: 'PET_NODE_RANK', flag: '--rank', fix: 'a whole number >= 0; 0 is the head' },
  masterAddr: { env: 'PET_MASTER_ADDR', flag: '--head HOST:PORT', fix: "the head's host name or IP" },
  masterPort: {
    env: 'PET_MASTER_PORT',
    flag: '--port (head) or --head HOST:PORT',
    fix: 'a TCP port 1-65535 (0 lets a head pick a free one)',
  },
  nnodes: { env: 'PET_NNODES', flag: '--nnodes', fix: 'a whole number >= 1 (head included)' },
  listenHost: {
    env: 'DR_LISTEN_HOST',
    flag: '--listen-host',
    fix: 'an interface address such as 0.0.0.0 or 127.0.0.1',
  },
  port: { env: 'DR_NODE_PORT', flag: '--node-port', fix: 'a TCP port 0-65535 (0 picks a free one)' },
  advertiseHost: {
    env: 'DR_ADVERTISE_HOST',
    flag: '--advertise-host',
    fix: 'a host name or IP that other nodes can reach',
  },
  token: {
    env: 'DR_CLUSTER_TOKEN',
    flag: '--token-file',
    fix: 'at least 16 characters; set DR_CLUSTER_TOKEN or write one to .dr-token (openssl rand -hex 32 > .dr-token)',
  },
  tls: {
    env: 'DR_TLS_CERT / DR_TLS_KEY / DR_TLS_CA',
    flag: '--tls-cert/--tls-key/--tls-ca',
    fix: 'paths to readable PEM files',
  },
  heartbeatIntervalMs: { env: 'DR_HEARTBEAT_MS', flag: '--heartbeat-ms', fix: 'milliseconds >= 10' },
  suspectAfterMs: {
    env: 'DR_SUSPECT_AFTER_MS',
    flag: '--suspect-after-ms',
    fix: 'milliseconds, more than the heartbeat interval',
  },
  downAfterMs: {
    env: 'DR_DOWN_AFTER_MS',
    flag: '--down-after-ms',
    fix: 'milliseconds, at least suspect-after',
  },
  joinTimeoutMs: { env: 'DR_JOIN_TIMEOUT_MS', flag: '--join-timeout-ms', fix: 'milliseconds >= 100' },
  maxFrameBytes: { env: 'DR_MAX_FRAME_BYTES', flag: '--max-frame-bytes', fix: 'bytes, 1 KiB to 1 GiB' },
  queueHighWaterBytes: { env: 'DR_QUEUE_HIGH_WATER_BYTES', fix: 'bytes, below the queue maximum' },
  queueMaxBytes: { env: 'DR_QUEUE_MAX_BYTES', fix: 'bytes, at least max-frame-bytes' },
  labels: { env: 'DR_NODE_LABELS', flag: '--label k=v', fix: 'comma-separated key=value pairs' },
  gpus: { env: 'DR_GPUS', flag: '--gpus', fix: "comma-separated GPU ids, or 'none'" },
};

/** torchrun's default MASTER_PORT. */
export const DEFAULT_MASTER_PORT = 29500;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v),
    z.number().int().min(min).max(max),
  );

/** Every node setting with its type and default (config/cluster-file.ts validates a file's `cluster` section
 * against it too). */
export const nodeSettingsSchema = z.object({
  rank: int(0),
  masterAddr: z.string().min(1),
  masterPort: int(0, 65535).default(DEFAULT_MASTER_PORT),
  nnodes: int(1).default(1),
  listenHost: z.string().min(1).default('0.0.0.0'),
  port: int(0, 65535).default(0),
  advertiseHost: z.string().min(1).optional(),
  token: z.string().min(16),
  tls: z
    .object({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1).optional() })
    .optional(),
  heartbeatIntervalMs: int(10).default(1_000),
  suspectAfterMs: int(20).default(3_000),
  downAfterMs: int(20).default(10_000),
  joinTimeoutMs: int(100).default(60_000),
  maxFrameBytes: int(1_024, 1 << 30).default(64 * 1024 * 1024),
  queueHighWaterBytes: int(1_024).default(16 * 1024 * 1024),
  queueMaxBytes: int(1_024).default(256 * 1024 * 1024),
  labels: z.record(z.string(), z.string()).default({}),
  gpus: z.array(z.string()).optional(),
});

const schema = nodeSettingsSchema.superRefine((c, ctx) => {
  if (c.suspectAfterMs <= c.heartbeatIntervalMs)
    ctx.addIssue({
      code: 'custom',
      path: ['suspectAfterMs'],
      message: `must exceed the heartbeat interval (${c.heartbeatIntervalMs} ms)`,
    });
  if (c.downAfterMs < c.suspectAfterMs)
    ctx.addIssue({
      code: 'custom',
      path: ['downAfterMs'],
      message: `must be at least suspect-after (${c.suspectAfterMs} ms)`,
    });
  if (c.queueMaxBytes < c.maxFrameBytes)
    ctx.addIssue({
      code: 'custom',
      path: ['queueMaxBytes'],
      message: `must be at least max-frame-bytes (${c.maxFrameBytes})`,
    });
  if (c.queueHighWaterBytes > c.queueMaxBytes)
    ctx.addIssue({
      code: 'custom',
      path: ['queueHighWaterBytes'],
      message: 'must not exceed the queue maximum',
    });
});

export type ClusterConfigInput = { [K in keyof ClusterConfig]?: unknown };

export interface LoadOptions {
  /** Values from command-line flags (highest precedence); undefined entries are ignored. */
  flags?: ClusterConfigInput & { tokenFile?: string };
  env?: NodeJS.ProcessEnv;
  /** The `cluster` section of the cluster file (config/cluster-file.ts), lowest precedence. */
  fileSettings?: Record<string, unknown>;
  /** Working directory for relative paths (.dr-token). */
  cwd?: string;
}

export class ConfigError extends DrError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CONFIG_INVALID', message, { details });
    this.name = 'ConfigError';
  }
}

/** Read and validate a node's configuration. Throws ConfigError naming the setting and the fix. */
export function loadClusterConfig(opts: LoadOptions = {}): ClusterConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const merged: Record<string, unknown> = {
    ...opts.fileSettings,
    ...definedOnly(fromEnv(env)),
    ...definedOnly(opts.flags ?? {}),
  };
  delete merged.tokenFile;
  if (merged.token === undefined)
    merged.token = readToken(opts.flags?.tokenFile ?? env.DR_CLUSTER_TOKEN_FILE, cwd);
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? 'config') as keyof ClusterConfig;
    const src = SOURCES[key];
    const shown =
      key === 'token'
        ? merged.token === undefined
          ? 'missing'
          : '(hidden)'
        : (JSON.stringify(merged[key]) ?? 'missing');
    const where = src === undefined ? key : [src.env, src.flag].filter(Boolean).join(' or ');
    throw new ConfigError(
      `invalid cluster setting ${key} (${where}) = ${shown}: ${issue?.message ?? 'invalid'}. Fix: set it to ${src?.fix ?? 'a valid value'}.`,
      { setting: key },
    );
  }
  return {
    ...parsed.data,
    advertiseHost: parsed.data.advertiseHost,
    tls: parsed.data.tls,
    gpus: parsed.data.gpus,
  };
}

/** Parse "host:port" (IPv6 in brackets) as given to --head. */
export function parseHostPort(value: string, setting = '--head'): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value.trim());
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(
      `invalid ${setting} '${value}'. Fix: give the head as HOST:PORT, e.g. 10.0.0.1:7400`,
      { setting },
    );
  }
  return { host: m[1] as string, port };
}

function fromEnv(env: NodeJS.ProcessEnv): ClusterConfigInput {
  const tls =
    env.DR_TLS_CERT !== undefined || env.DR_TLS_KEY !== undefined
      ? { cert: env.DR_TLS_CERT, key: env.DR_TLS_KEY, ca: env.DR_TLS_CA }
      : undefined;
  return {
    rank: env.PET_NODE_RANK,
    masterAddr: env.PET_MASTER_ADDR,
    masterPort: env.PET_MASTER_PORT,
    nnodes: env.PET_NNODES,
    listenHost: env.DR_LISTEN_HOST,
    port: env.DR_NODE_PORT,
    advertiseHost: env.DR_ADVERTISE_HOST,
    token: env.DR_CLUSTER_TOKEN,
    tls,
    heartbeatIntervalMs: env.DR_HEARTBEAT_MS,
    suspectAfterMs: env.DR_SUSPECT_AFTER_MS,
    downAfterMs: env.DR_DOWN_AFTER_MS,
    joinTimeoutMs: env.DR_JOIN_TIMEOUT_MS,
    maxFrameBytes: env.DR_MAX_FRAME_BYTES,
    queueHighWaterBytes: env.DR_QUEUE_HIGH_WATER_BYTES,
    queueMaxBytes: env.DR_QUEUE_MAX_BYTES,
    labels: env.DR_NODE_LABELS === undefined ? undefined : parseLabels(env.DR_NODE_LABELS),
    gpus: env.DR_GPUS === undefined ? undefined : parseGpuList(env.DR_GPUS),
  };
}

/** "a=1,b=2" -> { a: '1', b: '2' }. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new ConfigError(`invalid label '${part}'. Fix: write labels as key=value (comma-separated)`, {
        setting: 'labels',
      });
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

export function parseGpuList(text: string): string[] {
  return text.trim() === 'none'
    ? []
    : text
        .split(',')
        .map((g) => g.trim())
        .filter(Boolean);
}

/** The cluster token alone (for clients such as `dr status`): env DR_CLUSTER_TOKEN, else the token file. */
export function resolveClusterToken(
  opts: { tokenFile?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): string {
  const env = opts.env ?? process.env;
  const token =
    env.DR_CLUSTER_TOKEN ?? readToken(opts.tokenFile ?? env.DR_CLUSTER_TOKEN_FILE, opts.cwd ?? process.cwd());
  if (token === undefined || token.length < 16) {
    throw new ConfigError(`no usable cluster token (token). Fix: ${SOURCES.token.fix}`, { setting: 'token' });
  }
  return token;
}

function readToken(file: string | undefined, cwd: string): string | undefined {
  const path = resolve(cwd, file ?? '.dr-token');
  if (file === undefined && !existsSync(path)) return undefined;
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(
      `cannot read the cluster token file ${path}: ${(err as Error).message}. Fix: ${SOURCES.token.fix}`,
      {
        setting: 'token',
      },
    );
  }
}

function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
