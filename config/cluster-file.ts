/**
 * The cluster file (`dr head --config cluster.yaml`): one YAML or JSON document that describes a whole
 * cluster. `cluster` holds node settings (config/cluster.ts), `search` and `browse` the tool services the
 * head spawns, places and re-spawns, and `policies` the named policies jobs refer to (`--policy NAME`):
 * OpenAI-compatible endpoints, or checkpoints the cluster serves itself.
 *
 * Validation is strict and complete: an unknown key is an error, and every problem is reported at once, each
 * with its path, the value found and what to do. `--set a.b=value` overrides any setting (Hydra style).
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { applySet, isPlainObject, OverridePathError } from './overrides.ts';
import { z } from 'zod';
import { nodeSettingsSchema } from './cluster.ts';
import { DrError } from './errors.ts';

export type Placement = 'head' | 'spread' | { rank: number } | { resource: string };

export interface SearchServiceConfig {
  backend: 'serper' | 'bing' | 'searxng' | 'sandbox';
  baseUrl?: string;
  /** Variable holding the API key on the nodes that run search (serper and bing). */
  apiKeyEnv?: string;
  shards: number;
  /** Results per query for jobs that set none. */
  topK: number;
  rateLimit: { perSecond: number; burst: number; maxConcurrent: number };
  /** Folder of the cache files; ':memory:' keeps none. */
  cacheDir: string;
  /** `head`: one cache on the head that every shard asks (survives shard re-spawn and node loss);
   * `shard`: a file per shard on the node that runs it. */
  cacheOwner: 'head' | 'shard';
  cacheTtlHours: number;
  timeoutMs: number;
  placement: Placement;
  /** The offline sandbox web the head serves (backend `sandbox`). */
  sandbox: { seed: number; size: number; port: number };
}

export type ReaderConfig =
  | 'extractive'
  | {
      baseUrl: string;
      model: string;
      apiKeyEnv?: string;
      maxPages?: number;
      timeoutMs?: number;
      maxConcurrent?: number;
    };

export interface BrowseServiceConfig {
  reader: ReaderConfig;
  shards: number;
  /** Hosts and networks browse may fetch although they are not public. */
  allowHosts: string[];
  allowCidrs: string[];
  fetch: {
    connectTimeoutMs?: number;
    readTimeoutMs?: number;
    totalTimeoutMs?: number;
    maxRedirects?: number;
    maxBytes?: number;
  };
  placement: Placement;
}

/** How a train job tells an external engine to load a new weight version (actors/trainer/engine-sync.ts). */
export type WeightSyncConfig =
  | {
      /** SGLang's `POST /update_weights_from_disk`. */
      kind: 'sglang';
      /** A folder the head writes each version into and the engine reads (shared storage). */
      dir: string;
      timeoutMs?: number;
    }
  | {
      /** A restart hook (vLLM): run with DR_WEIGHTS_DIR and DR_WEIGHT_VERSION set, exit 0. */
      kind: 'command';
      dir: string;
      command: string[];
      timeoutMs?: number;
    };

/** A checkpoint the cluster serves (`policy/<name>`), or an OpenAI-compatible endpoint it only names. */
export type PolicyServiceConfig =
  | {
      /** `embedded` (the policy shipped in runtime/model/embedded) or a Qwen2 checkpoint folder. */
      checkpoint: string;
      provider: 'cpu' | 'cuda';
      maxBatch: number;
      placement: Placement;
    }
  | {
      baseUrl: string;
      model: string;
      /** chat: /v1/chat/completions; completions: /v1/completions with token ids (vLLM); sglang: SGLang's
       * native /generate with token ids. */
      api: 'chat' | 'completions' | 'sglang';
      apiKeyEnv?: string;
      tools?: 'text' | 'native';
      timeoutMs?: number;
      /** completions: the served model's tokenizer folder (vocabulary and chat template). */
      tokenizer?: string;
      /** completions: lets train jobs roll out on this engine (`rollout.engine`), syncing weights each step. */
      weightSync?: WeightSyncConfig;
    };

export interface ClusterFile {
  /** Node settings as written (validated per node, with flags and environment, by loadClusterConfig). */
  cluster: Record<string, unknown>;
  search?: SearchServiceConfig;
  browse?: BrowseServiceConfig;
  policies: Record<string, PolicyServiceConfig>;
}

export interface ConfigIssue {
  /** Dotted path of the setting, e.g. `search.shards`. */
  path: string;
  /** The value found (JSON), or `missing`. */
  value: string;
  message: string;
  fix: string;
}

/** Every problem of a cluster file at once. */
export class ClusterFileError extends DrError {
  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
  ) {
    super(
      'CONFIG_INVALID',
      `${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n${issues
        .map((i) => `  ${i.path} = ${i.value}: ${i.message}. Fix: ${i.fix}`)
        .join('\n')}`,
      { details: { file, issues } },
    );
    this.name = 'ClusterFileError';
  }
}

export interface LoadClusterFileOptions {
  /** `key.path=value` overrides, applied in order after the file is read. */
  sets?: readonly string[];
  /** Check that the API-key variables the file names are set here (the head and `dr config check`). */
  checkEnv?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const placementSchema = z.union([
  z.enum(['head', 'spread']),
  z.strictObject({ rank: z.number().int().min(0) }),
  z.strictObject({ resource: z.string().min(1) }),
]);

const count = z.number().int().min(1);

const searchSchema = z
  .strictObject({
    backend: z.enum(['serper', 'bing', 'searxng', 'sandbox']),
    baseUrl: z.url().optional(),
    apiKeyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    shards: count.max(256).default(1),
    topK: z.number().int().min(1).max(50).default(10),
    rateLimit: z
      .strictObject({ perSecond: z.number().positive(), burst: count, maxConcurrent: count })
      .default({ perSecond: 50, burst: 50, maxConcurrent: 32 }),
    cacheDir: z.string().min(1).default('.data/search-cache'),
    cacheOwner: z.enum(['head', 'shard']).default('head'),
    cacheTtlHours: z.number().positive().default(168),
    timeoutMs: count.default(15_000),
    placement: placementSchema.default('spread'),
    sandbox: z
      .strictObject({
        seed: z.number().int().min(0).default(1),
        size: z.number().int().min(30).default(1000),
        port: z.number().int().min(0).max(65535).default(0),
      })
      .prefault({}),
  })
  .superRefine((s, ctx) => {
    if (s.backend === 'searxng' && s.baseUrl === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['baseUrl'],
        message: 'a searxng backend needs the URL of its instance',
      });
    if ((s.backend === 'searxng' || s.backend === 'sandbox') && s.apiKeyEnv !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['apiKeyEnv'],
        message: `the ${s.backend} backend takes no API key`,
      });
    if (s.backend === 'sandbox' && s.baseUrl !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['baseUrl'],
        message: 'the sandbox backend is served by the head; it takes no URL',
      });
  });

const browseSchema = z.strictObject({
  reader: z
    .union([
      z.literal('extractive'),
      z.strictObject({
        baseUrl: z.url(),
        model: z.string().min(1),
        apiKeyEnv: z.string().min(1).optional(),
        maxPages: count.optional(),
        timeoutMs: count.optional(),
        maxConcurrent: count.optional(),
      }),
    ])
    .default('extractive'),
  shards: count.max(256).default(1),
  allowHosts: z.array(z.string().min(1)).default([]),
  allowCidrs: z.array(z.string().min(1)).default([]),
  fetch: z
    .strictObject({
      connectTimeoutMs: count.optional(),
      readTimeoutMs: count.optional(),
      totalTimeoutMs: count.optional(),
      maxRedirects: z.number().int().min(0).optional(),
      maxBytes: count.optional(),
    })
    .default({}),
  placement: placementSchema.default('spread'),
});

const policySchema = z
  .strictObject({
    checkpoint: z.string().min(1).optional(),
    provider: z.enum(['cpu', 'cuda']).optional(),
    maxBatch: count.max(1024).optional(),
    placement: placementSchema.optional(),
    baseUrl: z.url().optional(),
    model: z.string().min(1).optional(),
    api: z.enum(['chat', 'completions', 'sglang']).optional(),
    apiKeyEnv: z.string().min(1).optional(),
    tools: z.enum(['text', 'native']).optional(),
    timeoutMs: count.optional(),
    tokenizer: z.string().min(1).optional(),
    weightSync: z
      .discriminatedUnion('kind', [
        z.strictObject({ kind: z.literal('sglang'), dir: z.string().min(1), timeoutMs: count.optional() }),
        z.strictObject({
          kind: z.literal('command'),
          dir: z.string().min(1),
          command: z.array(z.string().min(1)).min(1),
          timeoutMs: count.optional(),
        }),
      ])
      .optional(),
  })
  .superRefine((p, ctx) => {
    const served = p.checkpoint !== undefined;
    if (served === (p.baseUrl !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'a policy is either served by the cluster (checkpoint) or an endpoint (baseUrl + model)',
      });
      return;
    }
    const wrong = served
      ? (['model', 'api', 'apiKeyEnv', 'tools', 'timeoutMs', 'tokenizer', 'weightSync'] as const)
      : (['provider', 'maxBatch', 'placement'] as const);
    for (const key of wrong)
      if (p[key] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: served
            ? 'only endpoint policies (baseUrl) take this'
            : 'only checkpoint policies take this',
        });
    if (!served && p.model === undefined)
      ctx.addIssue({ code: 'custom', path: ['model'], message: 'an endpoint policy needs the model name' });
    for (const key of ['tokenizer', 'weightSync'] as const)
      if (!served && p[key] !== undefined && p.api !== 'completions' && p.api !== 'sglang')
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'only token-id endpoints (api: completions or sglang) take this: training needs token ids',
        });
  })
  .transform((p): PolicyServiceConfig => {
    if (p.checkpoint !== undefined)
      return {
        checkpoint: p.checkpoint,
        provider: p.provider ?? 'cpu',
        maxBatch: p.maxBatch ?? 32,
        placement: p.placement ?? 'spread',
      };
    return {
      baseUrl: p.baseUrl as string,
      model: p.model as string,
      api: p.api ?? 'chat',
      ...(p.apiKeyEnv === undefined ? {} : { apiKeyEnv: p.apiKeyEnv }),
      ...(p.tools === undefined ? {} : { tools: p.tools }),
      ...(p.timeoutMs === undefined ? {} : { timeoutMs: p.timeoutMs }),
      ...(p.tokenizer === undefined ? {} : { tokenizer: p.tokenizer }),
      ...(p.weightSync === undefined ? {} : { weightSync: p.weightSync }),
    };
  });

/** Node settings a cluster file may hold: all but the node's own rank and the secret token. */
const clusterSectionSchema = nodeSettingsSchema.omit({ rank: true, token: true }).partial().strict();

const fileSchema = z.strictObject({
  cluster: clusterSectionSchema.default({}),
  search: searchSchema.optional(),
  browse: browseSchema.optional(),
  policies: z
    .record(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'names are letters, digits, . _ -'), policySchema)
    .default({}),
});

/** Keys that belong somewhere else than a file shared by every node. */
const SECRET_OR_OWN: Record<string, string> = {
  token: 'secrets never live in the cluster file: set DR_CLUSTER_TOKEN or write .dr-token',
  rank: "a node's rank is its own: set PET_NODE_RANK or --rank on each node",
};

/** What to do about a problem at a path, where the schema's message alone does not say. */
const FIXES: Array<[RegExp, string]> = [
  [/^cluster\./, 'see config/cluster.ts for node settings (the same keys as the --flags, in camelCase)'],
  [/^search\.backend$/, 'one of serper, bing, searxng, sandbox'],
  [/\.placement$/, "'head', 'spread', {rank: N} or {resource: gpu}"],
  [/^search\./, 'see config/examples/ for a search section of each backend'],
  [/^browse\.reader/, "'extractive', or {baseUrl, model, apiKeyEnv} of an OpenAI-compatible reading model"],
  [/^browse\./, 'see config/examples/ for a browse section'],
  [
    /^policies\./,
    'a policy is {checkpoint: embedded | DIR} or {baseUrl, model, api: chat | completions | sglang, tokenizer?, weightSync?: {kind: sglang | command, dir}}',
  ],
];

/** Reads, overrides and validates a cluster file; throws ClusterFileError listing every problem. */
export function loadClusterFile(file: string, options: LoadClusterFileOptions = {}): ClusterFile {
  const path = isAbsolute(file) ? file : resolve(options.cwd ?? process.cwd(), file);
  return parseClusterFile(readDocument(path), file, options);
}

/** Validates a cluster file's document (`origin` names it in errors); `{}` with `--set`s when there is no
 * file. */
export function parseClusterFile(
  doc: Record<string, unknown>,
  origin: string,
  options: LoadClusterFileOptions = {},
): ClusterFile {
  const cwd = options.cwd ?? process.cwd();
  const file = origin;
  const raw = structuredClone(doc);
  for (const set of options.sets ?? []) applyOverride(raw, set, file);
  const parsed = fileSchema.safeParse(raw);
  const issues = parsed.success ? [] : parsed.error.issues.flatMap((i) => describeIssue(i, raw));
  if (options.checkEnv === true) issues.push(...environmentIssues(raw, options.env ?? process.env, cwd));
  if (!parsed.success || issues.length > 0) throw new ClusterFileError(file, issues);
  // Checkpoint folders are named relative to where the file was loaded, not to each node's working directory.
  for (const p of Object.values(parsed.data.policies)) {
    if ('checkpoint' in p && p.checkpoint !== 'embedded') p.checkpoint = resolve(cwd, p.checkpoint);
    if ('baseUrl' in p && p.tokenizer !== undefined) p.tokenizer = resolve(cwd, p.tokenizer);
    if ('baseUrl' in p && p.weightSync !== undefined) p.weightSync.dir = resolve(cwd, p.weightSync.dir);
  }
  return parsed.data;
}

function applyOverride(doc: Record<string, unknown>, set: string, file: string): void {
  try {
    applySet(doc, set);
  } catch (err) {
    if (!(err instanceof OverridePathError)) throw err;
    throw new ClusterFileError(file, [
      {
        path: err.at,
        value: JSON.stringify(err.found),
        message: `--set ${set} reaches into a value that is not a map`,
        fix: 'set the whole value instead, or check the path',
      },
    ]);
  }
}

function readDocument(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DrError(
      'CONFIG_INVALID',
      `cannot read the cluster file ${path}: ${(err as Error).message}. Fix: pass --config a readable YAML or JSON file (config/examples/ has some)`,
      { cause: err },
    );
  }
  let doc: unknown;
  try {
    doc = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    const where =
      err instanceof YAMLParseError && err.linePos !== undefined
        ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}`
        : '';
    throw new DrError(
      'CONFIG_INVALID',
      `the cluster file ${path} does not parse${where}: ${(err as Error).message.split('\n')[0]}. Fix: correct its syntax`,
      { cause: err },
    );
  }
  if (doc === null || doc === undefined) return {};
  if (!isPlainObject(doc)) {
    throw new DrError(
      'CONFIG_INVALID',
      `the cluster file ${path} must hold a map with cluster, search, browse and policies sections`,
    );
  }
  return doc;
}

function describeIssue(issue: z.core.$ZodIssue, doc: unknown): ConfigIssue[] {
  const at = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const path = [...at, key].join('.');
      const known = knownKeys(at);
      return {
        path,
        value: shown(valueAt(doc, [...at, key])),
        message: 'unknown key',
        fix:
          SECRET_OR_OWN[key] ??
          `remove it${known.length === 0 ? '' : `; ${suggest(key, known)}keys here: ${known.join(', ')}`}`,
      };
    });
  }
  const path = at.join('.') || '(file)';
  return [
    {
      path,
      value: shown(valueAt(doc, at)),
      message: issue.message,
      fix: fixFor(path) ?? 'see config/examples/',
    },
  ];
}

function fixFor(path: string): string | undefined {
  return FIXES.find(([re]) => re.test(path))?.[1];
}

/** The keys the schema accepts at a path of the document (for "unknown key" messages). */
function knownKeys(path: string[]): string[] {
  let schema: unknown = fileSchema;
  for (const key of path) {
    const shape = objectShape(schema);
    if (shape === undefined) {
      const record = unwrap(schema) as { def?: { type?: string; valueType?: unknown } };
      if (record.def?.type !== 'record') return [];
      schema = record.def.valueType;
    } else schema = shape[key];
  }
  return Object.keys(objectShape(schema) ?? {});
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { type?: string; innerType?: unknown; in?: unknown } } | undefined;
  for (let i = 0; i < 10 && s?.def !== undefined; i++) {
    const next = s.def.innerType ?? (s.def.type === 'pipe' ? s.def.in : undefined);
    if (next === undefined) break;
    s = next as typeof s;
  }
  return s;
}

function objectShape(schema: unknown): Record<string, unknown> | undefined {
  const s = unwrap(schema) as { def?: { type?: string; shape?: Record<string, unknown> } } | undefined;
  return s?.def?.type === 'object' ? s.def.shape : undefined;
}

/** "did you mean X? " for a key one or two edits away from a known one. */
function suggest(key: string, known: string[]): string {
  const near = known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
  return near === undefined ? '' : `did you mean '${near}'? `;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = row;
  }
  return prev[b.length] as number;
}

const DEFAULT_KEY_ENV: Partial<Record<SearchServiceConfig['backend'], string>> = {
  serper: 'SERPER_API_KEY',
  bing: 'BING_SEARCH_API_KEY',
};

/** Read from the document as written, so that these problems are listed beside any schema problems. */
function environmentIssues(doc: Record<string, unknown>, env: NodeJS.ProcessEnv, cwd: string): ConfigIssue[] {
  const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const section = (v: unknown): Record<string, unknown> => (isPlainObject(v) ? v : {});
  const needed: Array<{ path: string; name: string; who: string }> = [];
  const search = section(doc.search);
  const backend = text(search.backend) as SearchServiceConfig['backend'] | undefined;
  const searchEnv = text(search.apiKeyEnv) ?? (backend === undefined ? undefined : DEFAULT_KEY_ENV[backend]);
  if (searchEnv !== undefined && backend !== 'searxng' && backend !== 'sandbox')
    needed.push({ path: 'search.apiKeyEnv', name: searchEnv, who: 'the nodes that run search' });
  const readerEnv = text(section(section(doc.browse).reader).apiKeyEnv);
  if (readerEnv !== undefined)
    needed.push({ path: 'browse.reader.apiKeyEnv', name: readerEnv, who: 'the nodes that run browse' });
  const policies = Object.entries(section(doc.policies)).map(([name, p]) => [name, section(p)] as const);
  for (const [name, p] of policies) {
    const keyEnv = text(p.apiKeyEnv);
    if (keyEnv !== undefined)
      needed.push({ path: `policies.${name}.apiKeyEnv`, name: keyEnv, who: 'the nodes that run rollouts' });
  }
  const issues: ConfigIssue[] = needed
    .filter((n) => (env[n.name] ?? '') === '')
    .map((n) => ({
      path: n.path,
      value: JSON.stringify(n.name),
      message: `the environment variable ${n.name} is not set`,
      fix: `export ${n.name}=<your key> on ${n.who} before starting them (the head checks its own environment)`,
    }));
  for (const [name, p] of policies) {
    const checkpoint = text(p.checkpoint);
    if (checkpoint === undefined || checkpoint === 'embedded') continue;
    const dir = resolve(cwd, checkpoint);
    if (!existsSync(join(dir, 'config.json')))
      issues.push({
        path: `policies.${name}.checkpoint`,
        value: JSON.stringify(checkpoint),
        message: `no Qwen2 checkpoint at ${dir} (config.json missing)`,
        fix: "point it at a folder with config.json, model.safetensors and tokenizer.json on every node, or write 'embedded'",
      });
  }
  return issues;
}

function valueAt(doc: unknown, path: readonly string[]): unknown {
  let at = doc;
  for (const key of path) at = isPlainObject(at) ? at[key] : undefined;
  return at;
}

function shown(value: unknown): string {
  return value === undefined ? 'missing' : (JSON.stringify(value) ?? String(value));
}
