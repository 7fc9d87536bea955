/**
 * `dr submit research|evaluate|train`, `dr jobs`, `dr logs JOB`, `dr cancel JOB`: users' jobs on a running
 * cluster, through the job manager on the head. `--wait` follows a job to its end (a progress bar on a
 * terminal, progress lines otherwise) and exits non-zero unless it succeeded.
 */
import type { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { resolveClusterToken } from '../../config/cluster.ts';
import { loadTrainConfig, type TrainConfig } from '../../config/train.ts';
import { isDrError } from '../../config/errors.ts';
import { connectClient, type ClusterClient } from '../../runtime/client.ts';
import { ensureJobManager, JobsClient } from '../../actors/jobs/jobs-client.ts';
import { describeBudget } from '../../actors/jobs/job-tools.ts';
import { describeCacheHits } from '../../actors/rollout/trajectory.ts';
import { TERMINAL_STATES, type JobKind, type JobRecord } from '../../actors/jobs/protocol.ts';

interface ConnectFlags {
  head?: string;
  tokenFile?: string;
}

interface RolloutFlags extends ConnectFlags {
  policy?: string;
  policyUrl?: string;
  model?: string;
  policyKind?: string;
  apiKeyEnv?: string;
  nativeTools?: boolean;
  maxTurns?: string;
  maxTokens?: string;
  temperature?: string;
  searchTopK?: string;
  schedule?: string;
  n?: string;
  maxToolErrorRate?: string;
  searchBudget?: string;
  browseBudget?: string;
  webRecord?: string;
  webReplay?: string;
  webReplayMiss?: string;
  wait?: boolean;
  json?: boolean;
}

/** One line of JSON per job for scripts: what `--json` prints. */
export interface JobSummary {
  id: string | null;
  kind: JobKind;
  state: JobRecord['state'] | 'refused';
  progress: JobRecord['progress'];
  toolCalls: number;
  toolErrors: number;
  /** web_search queries, and those the search cache answered. */
  searchQueries: number;
  cachedQueries: number;
  createdAt?: string;
  finishedAt?: string;
  result?: JobRecord['result'];
  error?: { code: string; message: string };
}

export function jobSummary(job: JobRecord): JobSummary {
  const tools = job.result?.tools ?? job.tools ?? { calls: 0, errors: 0 };
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    progress: job.progress,
    toolCalls: tools.calls,
    toolErrors: tools.errors,
    searchQueries: tools.queries ?? 0,
    cachedQueries: tools.cachedQueries ?? 0,
    createdAt: job.createdAt,
    ...(job.finishedAt === undefined ? {} : { finishedAt: job.finishedAt }),
    ...(job.result === undefined ? {} : { result: job.result }),
    ...(job.error === undefined ? {} : { error: job.error }),
  };
}

async function withJobs(
  flags: ConnectFlags,
  use: (jobs: JobsClient) => Promise<void>,
  onError: (err: unknown) => void = () => undefined,
): Promise<void> {
  const head =
    flags.head ?? `${process.env.PET_MASTER_ADDR ?? '127.0.0.1'}:${process.env.PET_MASTER_PORT ?? 29500}`;
  let client: ClusterClient | undefined;
  try {
    client = await connectClient({ head, token: resolveClusterToken({ tokenFile: flags.tokenFile }) });
    await ensureJobManager(client);
    await use(new JobsClient(client));
  } catch (err) {
    const message = isDrError(err) ? `${err.code}: ${err.message}` : String(err);
    process.stderr.write(`dr: ${message}\n`);
    process.exitCode = 1;
    onError(err);
  } finally {
    await client?.close();
  }
}

const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));

function rolloutConfig(f: RolloutFlags): Record<string, unknown> {
  const baseURL = f.policyUrl ?? process.env.DR_POLICY_URL;
  const model = f.model ?? process.env.DR_POLICY_MODEL;
  const config: Record<string, unknown> = {};
  // A named policy of the cluster file; else an endpoint spelled out; else the cluster's only policy.
  if (f.policy !== undefined) config.policy = { name: f.policy };
  else if (baseURL !== undefined)
    config.policy = {
      kind: f.policyKind ?? 'chat',
      baseURL,
      model,
      ...(f.apiKeyEnv === undefined ? {} : { apiKeyEnv: f.apiKeyEnv }),
      ...(f.nativeTools === true ? { tools: 'native' } : {}),
    };
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) config[key] = value;
  };
  set('maxTurns', num(f.maxTurns));
  set('maxTokensPerTurn', num(f.maxTokens));
  set('temperature', num(f.temperature));
  set('searchTopK', num(f.searchTopK));
  set('schedule', f.schedule);
  set('n', num(f.n));
  set('maxToolErrorRate', num(f.maxToolErrorRate));
  if (f.searchBudget !== undefined || f.browseBudget !== undefined)
    config.budget = {
      ...(f.searchBudget === undefined ? {} : { searchCalls: num(f.searchBudget) }),
      ...(f.browseBudget === undefined ? {} : { browseCalls: num(f.browseBudget) }),
    };
  if (f.webRecord !== undefined || f.webReplay !== undefined)
    config.web = {
      ...(f.webRecord === undefined ? {} : { record: f.webRecord }),
      ...(f.webReplay === undefined ? {} : { replay: f.webReplay }),
      ...(f.webReplayMiss === undefined ? {} : { onMiss: f.webReplayMiss }),
    };
  return config;
}

function rolloutOptions(cmd: Command): Command {
  return cmd
    .option('--policy <name>', "one of the cluster file's policies (default: its only one)")
    .option(
      '--policy-url <url>',
      'OpenAI-compatible base URL of the policy, e.g. http://host:8000/v1 (DR_POLICY_URL)',
    )
    .option('--model <name>', 'model name at that endpoint (DR_POLICY_MODEL)')
    .option(
      '--policy-kind <kind>',
      "chat (chat completions), completions (raw completions with token ids, vLLM) or sglang (SGLang's /generate)",
    )
    .option('--api-key-env <VAR>', 'environment variable on the workers that holds the API key')
    .option('--native-tools', 'send tool definitions and read native tool_calls (hosted APIs)')
    .option('--max-turns <n>', 'turns per trajectory (default 10)')
    .option('--max-tokens <n>', 'tokens per turn (default 2048)')
    .option('--temperature <t>', 'sampling temperature (default 1)')
    .option(
      '--search-top-k <k>',
      "results per web_search query (default: the cluster file's search.topK, else 10 as in DeepResearcher)",
    )
    .option(
      '--max-tool-error-rate <r>',
      'fail the job when more than this share of tool calls fail (default 0.5)',
    )
    .option('--schedule <s>', 'async (default) or barrier (the original turn-synchronous schedule)')
    .option('--search-budget <n>', 'most web_search calls the whole job may make (then calls are refused)')
    .option('--browse-budget <n>', 'most browse_webpage calls the whole job may make')
    .option(
      '--web-record <dir>',
      'keep every web call the job makes and its response in DIR/web.jsonl (a folder on the head)',
    )
    .option('--web-replay <dir>', 'answer every web call from a recording in DIR instead of the live web')
    .option(
      '--web-replay-miss <mode>',
      "a call the recording lacks: 'error' (the job fails with JOB_WEB_REPLAY_MISS; default) or 'live'",
    )
    .option('--wait', 'follow the job until it ends')
    .option(
      '--json',
      'print one JSON object: id, state, toolCalls, toolErrors, searchQueries, cachedQueries, result, error',
    )
    .option(
      '--head <host:port>',
      "the head's address (default PET_MASTER_ADDR:PET_MASTER_PORT or 127.0.0.1:29500)",
    )
    .option(
      '--token-file <path>',
      'file holding the cluster token (default .dr-token; DR_CLUSTER_TOKEN wins)',
    );
}

function describe(job: JobRecord): string {
  const progress = job.progress.total === 0 ? '-' : `${job.progress.done}/${job.progress.total}`;
  return `${job.id}  ${job.kind.padEnd(8)}  ${job.state.padEnd(9)}  ${progress.padStart(11)}  ${job.createdAt}`;
}

function printOutcome(job: JobRecord): void {
  process.stdout.write(`${job.id} ${job.state}\n`);
  if (job.error !== undefined) process.stdout.write(`error: ${job.error.code}: ${job.error.message}\n`);
  const { toolCalls, toolErrors } = jobSummary(job);
  process.stdout.write(`tool calls: ${toolCalls}, failed: ${toolErrors}\n`);
  const hits = describeCacheHits(job.result?.tools ?? job.tools ?? { calls: 0, errors: 0 });
  if (hits !== null) process.stdout.write(`${hits}\n`);
  const budget = job.result?.budget;
  if (budget !== undefined) process.stdout.write(`budget: ${describeBudget(budget)}\n`);
  if (job.result?.stopped !== undefined)
    process.stdout.write(`stopped: ${job.result.stopped.code}: ${job.result.stopped.message}\n`);
  for (const [name, path] of Object.entries(job.result?.paths ?? {}))
    process.stdout.write(`${name}: ${path}\n`);
  if (job.kind === 'research' && Array.isArray(job.result?.summary)) {
    for (const s of job.result.summary as Array<{ sample: number; answer: string | null }>) {
      process.stdout.write(`answer[${s.sample}]: ${s.answer ?? '(none)'}\n`);
    }
  }
  if (job.kind === 'train' && job.result?.summary !== undefined) {
    const s = job.result.summary as { step: number; steps: number; validationF1: Record<string, unknown> };
    const f1 = s.validationF1;
    process.stdout.write(
      `steps: ${s.step}/${s.steps}, held-out F1: ${String(f1.before)} -> ${String(f1.latest)}\n`,
    );
  }
}

/** Follows a job to its end: a bar on a terminal, else progress lines (on stderr when stdout is JSON). */
async function follow(jobs: JobsClient, job: JobRecord, json: boolean): Promise<JobRecord> {
  const tty = process.stdout.isTTY === true && !json;
  const out = json ? process.stderr : process.stdout;
  const bar = tty
    ? new SingleBar({ format: `${job.id} [{bar}] {value}/{total} {state}` }, Presets.shades_classic)
    : null;
  let current = job;
  let last = '';
  bar?.start(Math.max(1, current.progress.total), current.progress.done, { state: current.state });
  while (!TERMINAL_STATES.has(current.state)) {
    await new Promise((r) => setTimeout(r, 500));
    current = await jobs.get(job.id);
    if (bar !== null) {
      bar.setTotal(Math.max(1, current.progress.total));
      bar.update(current.progress.done, { state: current.state });
    } else {
      const line = `${current.state} ${current.progress.done}/${current.progress.total}`;
      if (line !== last) out.write(`progress ${line}\n`);
      last = line;
    }
  }
  bar?.stop();
  return current;
}

async function submit(
  flags: ConnectFlags & { wait?: boolean; json?: boolean },
  kind: JobKind,
  config: unknown,
): Promise<void> {
  const json = flags.json === true;
  await withJobs(
    flags,
    async (jobs) => {
      let job = await jobs.submit(kind, config);
      if (!json) process.stdout.write(`submitted ${job.id}\n`);
      if (flags.wait === true) job = await follow(jobs, job, json);
      if (json) process.stdout.write(`${JSON.stringify(jobSummary(job))}\n`);
      else if (flags.wait === true) printOutcome(job);
      if (flags.wait === true && job.state !== 'succeeded') process.exitCode = 1;
    },
    (err) => {
      if (!json) return;
      const refused: JobSummary = {
        id: null,
        kind,
        state: 'refused',
        progress: { done: 0, total: 0 },
        toolCalls: 0,
        toolErrors: 0,
        searchQueries: 0,
        cachedQueries: 0,
        error: isDrError(err)
          ? { code: err.code, message: err.message }
          : { code: 'JOB_SUBMIT_FAILED', message: String(err) },
      };
      process.stdout.write(`${JSON.stringify(refused)}\n`);
    },
  );
}

export function register(program: Command): void {
  const submitCmd = program.command('submit').description('Send a job to the cluster');

  rolloutOptions(submitCmd.command('research').description('Research one question'))
    .requiredOption('--question <text>', 'the question')
    .option('--ground-truth <aliases>', 'known answer(s), joined by <|answer_split|>, to score the result')
    .option('--n <k>', 'independent rollouts (default 1)')
    .action(async (f: RolloutFlags & { question: string; groundTruth?: string }) => {
      const config = {
        ...rolloutConfig(f),
        question: f.question,
        ...(f.groundTruth === undefined ? {} : { groundTruth: f.groundTruth }),
      };
      await submit(f, 'research', config);
    });

  rolloutOptions(submitCmd.command('evaluate').description('Evaluate the policy on a dataset'))
    .requiredOption(
      '--data <file>',
      '.parquet / .jsonl path on the head, or sandbox:<train|dev|test>[:seed[:size]]',
    )
    .option('--limit <n>', 'first N questions only')
    .option('--n <k>', 'rollouts per question (default 1)')
    .option('--project <name>', 'outputs/{project}/... (default deepresearcher)')
    .option('--experiment <name>', 'outputs/{project}/{experiment}/... (default eval)')
    .option('--step <k>', 'rollout_step_{k}.json (default 0)')
    .option('--judge-url <url>', 'OpenAI-compatible base URL of the MBE judge')
    .option('--judge-model <name>', 'judge model name')
    .option('--judge-key-env <VAR>', 'environment variable on the head holding the judge API key')
    .action(
      async (
        f: RolloutFlags & {
          data: string;
          limit?: string;
          project?: string;
          experiment?: string;
          step?: string;
          judgeUrl?: string;
          judgeModel?: string;
          judgeKeyEnv?: string;
        },
      ) => {
        const config: Record<string, unknown> = { ...rolloutConfig(f), data: f.data };
        if (f.limit !== undefined) config.limit = Number(f.limit);
        if (f.project !== undefined) config.project = f.project;
        if (f.experiment !== undefined) config.experiment = f.experiment;
        if (f.step !== undefined) config.step = Number(f.step);
        if (f.judgeUrl !== undefined) {
          config.judge = {
            baseURL: f.judgeUrl,
            model: f.judgeModel ?? 'judge',
            ...(f.judgeKeyEnv === undefined ? {} : { apiKeyEnv: f.judgeKeyEnv }),
          };
        }
        await submit(f, 'evaluate', config);
      },
    );

  submitCmd
    .command('train')
    .description('Train the policy with GRPO (one TrainerActor on the head; see actors/trainer)')
    .requiredOption(
      '--config <file>',
      'JSON training config (config/train.ts; "preset": "embedded-demo", "paper" or "smoke" plus overrides); its paths are read on the head',
    )
    .option(
      '--set <key.path=value>',
      'override a setting of the config, e.g. --set rollout.n=8 --set outputDir=/data/run1 (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--resume', "continue from the last checkpoint in the config's checkpoint folder")
    .option('--wait', 'follow the job until it ends')
    .option(
      '--json',
      'print one JSON object: id, state, toolCalls, toolErrors, searchQueries, cachedQueries, result, error',
    )
    .option('--head <host:port>', "the head's address")
    .option('--token-file <path>', 'file holding the cluster token')
    .action(
      async (
        f: ConnectFlags & { config: string; set: string[]; resume?: boolean; wait?: boolean; json?: boolean },
      ) => {
        let train: TrainConfig;
        try {
          train = loadTrainConfig(f.config, f.set);
        } catch (err) {
          process.stderr.write(`dr: ${isDrError(err) ? `${err.code}: ${err.message}` : String(err)}\n`);
          process.exitCode = 1;
          return;
        }
        await submit(f, 'train', { train, resume: f.resume === true });
      },
    );

  program
    .command('jobs')
    .description('List the jobs on the cluster')
    .option(
      '--json',
      'print a JSON array: per job id, kind, state, progress, toolCalls, toolErrors, result, error',
    )
    .option('--head <host:port>', "the head's address")
    .option('--token-file <path>', 'file holding the cluster token')
    .action(async (f: ConnectFlags & { json?: boolean }) => {
      await withJobs(f, async (jobs) => {
        const list = await jobs.list();
        if (f.json === true) process.stdout.write(`${JSON.stringify(list.map(jobSummary))}\n`);
        else process.stdout.write(list.length === 0 ? 'no jobs\n' : `${list.map(describe).join('\n')}\n`);
      });
    });

  program
    .command('logs <job>')
    .description("Print a job's log")
    .option('--follow', 'keep printing until the job ends')
    .option('--head <host:port>', "the head's address")
    .option('--token-file <path>', 'file holding the cluster token')
    .action(async (jobId: string, f: ConnectFlags & { follow?: boolean }) => {
      await withJobs(f, async (jobs) => {
        let after = 0;
        for (;;) {
          const logs = await jobs.logs(jobId, after);
          for (const line of logs.lines) process.stdout.write(`${line}\n`);
          after = logs.next;
          if (f.follow !== true || TERMINAL_STATES.has((await jobs.get(jobId)).state)) break;
          await new Promise((r) => setTimeout(r, 500));
        }
      });
    });

  program
    .command('cancel <job>')
    .description('Cancel a job')
    .option('--head <host:port>', "the head's address")
    .option('--token-file <path>', 'file holding the cluster token')
    .action(async (jobId: string, f: ConnectFlags) => {
      await withJobs(f, async (jobs) => {
        const job = await jobs.cancel(jobId);
        process.stdout.write(`${job.id} ${job.state}\n`);
      });
    });
}
