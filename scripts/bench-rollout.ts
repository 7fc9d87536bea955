/**
 * `npm run bench:rollout`: makespan of a DeepResearcher rollout batch under the asynchronous schedule
 * (every trajectory advances on its own) and the original's turn-synchronous barrier schedule, in the same
 * run, on the sandbox web with heavy-tailed tool latency and a latency-modelled policy server.
 *
 * Latencies are seconds, as in the paper's setting (a 7B policy decoding hundreds of tokens per turn in
 * batches; search APIs and reading agents that take seconds, with a heavy tail). With millisecond latencies
 * both schedules are bound by this process's CPU (it also hosts the policy and sandbox servers) and the
 * comparison says nothing about scheduling.
 *
 * Defaults: 256 sandbox questions x 16 rollouts = 4,096 trajectories, up to 10 turns. The policy is a local
 * OpenAI-compatible server that decodes at most `--slots` sequences at once, each taking a lognormal time
 * (median `--gen-ms`); it plans 1-9 tool calls per trajectory (searches, then browses of what it found)
 * before it answers. Tools go over HTTP to the sandbox server (Serper search and page fetches), whose
 * injector adds Pareto-distributed latency. Both schedules see the same seeded draws.
 */
import { parseArgs } from 'node:util';
import { createRng } from '../actors/sandbox/rng.ts';
import {
  buildSite,
  generateWorld,
  questions,
  startSandboxServer,
  type InjectionConfig,
} from '../actors/sandbox/index.ts';
import { ChatPolicy } from '../actors/rollout/chat-policy.ts';
import { startOpenAITestServer, type ScriptedRequest } from '../actors/rollout/openai-test-server.ts';
import {
  DEFAULT_ROLLOUT_SETTINGS,
  runTrajectory,
  type RolloutTask,
} from '../actors/rollout/run-trajectory.ts';
import type { ToolRunner } from '../actors/rollout/tool-runner.ts';
import { TurnBarrier } from '../actors/rollout/turn-barrier.ts';

const { values: opts } = parseArgs({
  options: {
    questions: { type: 'string', default: '256' },
    n: { type: 'string', default: '16' },
    'max-turns': { type: 'string', default: '10' },
    slots: { type: 'string', default: '1024' },
    'gen-ms': { type: 'string', default: '1500' },
    'tool-scale-ms': { type: 'string', default: '500' },
    'tool-alpha': { type: 'string', default: '1.5' },
    'tool-cap-ms': { type: 'string', default: '20000' },
    seed: { type: 'string', default: '1' },
  },
});
const N_QUESTIONS = Number(opts.questions);
const N = Number(opts.n);
const MAX_TURNS = Number(opts['max-turns']);
const SLOTS = Number(opts.slots);
const GEN_MS = Number(opts['gen-ms']);
const SEED = Number(opts.seed);
/** A tool call that takes longer fails (its error is the observation), as a real tool actor's would. */
const TOOL_TIMEOUT_MS = 60_000;

const injection: InjectionConfig = {
  seed: SEED,
  rules: [
    {
      latency: {
        kind: 'pareto',
        scaleMs: Number(opts['tool-scale-ms']),
        alpha: Number(opts['tool-alpha']),
        capMs: Number(opts['tool-cap-ms']),
      },
    },
  ],
};

/** The decode engine: at most SLOTS sequences at once, a lognormal generation time each. */
function policyModel(seed: number) {
  const rng = createRng(seed).fork('policy');
  let free = SLOTS;
  const queue: Array<() => void> = [];
  const acquire = (): Promise<void> =>
    free > 0 ? Promise.resolve(void (free -= 1)) : new Promise<void>((resolve) => queue.push(resolve));
  const release = (): void => {
    const next = queue.shift();
    if (next !== undefined) next();
    else free += 1;
  };
  const genMs = (): number => {
    const z = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
    return GEN_MS * Math.exp(0.4 * z);
  };
  const PLAN = /\[plan (\d+)\]/;
  const URL_LINE = /^URL: (\S+)/m;
  return async (req: ScriptedRequest) => {
    await acquire();
    try {
      await new Promise((r) => setTimeout(r, genMs()));
      const messages = req.messages ?? [];
      const question = messages.find((m) => m.role === 'user')?.content ?? '';
      const assistant = messages.filter((m) => m.role === 'assistant');
      const plan = Number(PLAN.exec(assistant[0]?.content ?? '')?.[1] ?? 1 + Math.floor(rng.next() * 9));
      const done = assistant.length;
      if (done >= plan) return '<think>enough evidence</think>\n<answer>unknown</answer>';
      const last = messages[messages.length - 1]?.content ?? '';
      const url = URL_LINE.exec(last)?.[1];
      const call =
        done % 2 === 1 && url !== undefined
          ? { name: 'browse_webpage', arguments: { url_list: [url] } }
          : { name: 'web_search', arguments: { query: [question.slice(0, 120)] } };
      return `<think>[plan ${plan}] step ${done + 1}</think>\n<tool_call>\n${JSON.stringify(call)}\n</tool_call>`;
    } finally {
      release();
    }
  };
}

function sandboxTools(searchUrl: string, apiKey: string): ToolRunner {
  return {
    async webSearch(queries) {
      const parts = await Promise.all(
        queries.map(async (q) => {
          const res = await fetch(searchUrl, {
            method: 'POST',
            headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
            body: JSON.stringify({ q, num: 10 }),
            signal: AbortSignal.timeout(TOOL_TIMEOUT_MS),
          });
          if (!res.ok) throw new Error(`search HTTP ${res.status}`);
          const body = (await res.json()) as {
            organic?: Array<{ title: string; link: string; snippet: string }>;
          };
          return (body.organic ?? [])
            .map((h, i) => `[${i + 1}] ${h.title}\nURL: ${h.link}\n${h.snippet}`)
            .join('\n\n');
        }),
      );
      return parts.join('\n\n');
    },
    async browse(urls) {
      const texts = await Promise.all(
        urls.map(async (u) => {
          const res = await fetch(u, { signal: AbortSignal.timeout(TOOL_TIMEOUT_MS) });
          // Only the page's head is read: the bench measures scheduling, not extraction.
          const text = (await res.text()).slice(0, 16_384);
          return `From ${u}:\n${text
            .replace(/<[^>]+>/g, ' ')
            .replace(/\s+/g, ' ')
            .slice(0, 800)}`;
        }),
      );
      return texts.join('\n\n');
    },
  };
}

async function runSchedule(schedule: 'async' | 'barrier', tasks: RolloutTask[]) {
  const sandbox = await startSandboxServer({ world, site, injection });
  const server = await startOpenAITestServer({ reply: policyModel(SEED) });
  const policy = new ChatPolicy({ baseURL: server.baseURL, model: 'policy', maxRetries: 2 });
  const tools = sandboxTools(sandbox.searchUrl, sandbox.apiKey);
  const settings = {
    ...DEFAULT_ROLLOUT_SETTINGS,
    maxTurns: MAX_TURNS,
    date: new Date('2026-01-01T00:00:00Z'),
  };
  const units = tasks.flatMap((task) => Array.from({ length: N }, (_, sample) => ({ task, sample })));
  const barrier = schedule === 'barrier' ? new TurnBarrier(units.length) : undefined;
  const started = performance.now();
  let finished = 0;
  const ticker = setInterval(() => {
    const s = ((performance.now() - started) / 1000).toFixed(0);
    process.stderr.write(`  ${schedule}: ${finished}/${units.length} trajectories done after ${s} s\n`);
  }, 10_000);
  const trajectories = await Promise.all(
    units.map(async ({ task, sample }) => {
      const t = await runTrajectory(task, sample, settings, {
        policy,
        tools,
        ...(barrier === undefined ? {} : { barrier }),
      });
      finished += 1;
      return t;
    }),
  );
  const makespanMs = performance.now() - started;
  clearInterval(ticker);
  await server.close();
  await sandbox.close();
  const turns = trajectories.reduce((s, t) => s + t.turns.length, 0);
  const toolCalls = trajectories.reduce((s, t) => s + t.toolStats.searchCalls + t.toolStats.browseCalls, 0);
  const ends = new Map<string, number>();
  for (const t of trajectories) {
    const key =
      t.end.reason === 'answer'
        ? 'answer'
        : `${t.end.reason}${t.end.detail === undefined ? '' : ` (${t.end.detail.slice(0, 160)})`}`;
    ends.set(key, (ends.get(key) ?? 0) + 1);
  }
  const errors =
    [...ends.entries()]
      .filter(([k]) => k !== 'answer')
      .map(([k, v]) => `${v} ${k}`)
      .join(', ') || '0';
  return { makespanMs, turns, toolCalls, errors, trajectories: trajectories.length };
}

const world = generateWorld({ seed: SEED, size: 1000 });
const site = await buildSite(world);
const tasks: RolloutTask[] = questions(world, 'train')
  .slice(0, N_QUESTIONS)
  .map((row, i) => ({
    questionId: `bench/${i}`,
    question: row.prompt[0]?.content ?? '',
    groundTruth: row.reward_model.ground_truth,
    dataSource: row.data_source,
  }));

console.log(
  `bench:rollout  ${tasks.length} questions x ${N} rollouts, <= ${MAX_TURNS} turns; policy: ${SLOTS} slots, ` +
    `lognormal median ${GEN_MS} ms; tools: pareto(scale ${opts['tool-scale-ms']} ms, alpha ${opts['tool-alpha']}, cap ${opts['tool-cap-ms']} ms)`,
);
const results: Record<string, Awaited<ReturnType<typeof runSchedule>>> = {};
for (const schedule of ['barrier', 'async'] as const) {
  const r = await runSchedule(schedule, tasks);
  results[schedule] = r;
  console.log(
    `${schedule.padEnd(8)} makespan ${(r.makespanMs / 1000).toFixed(2)} s  trajectories ${r.trajectories}  turns ${r.turns}  ` +
      `tool calls ${r.toolCalls}  unfinished ${r.errors}`,
  );
}
const speedup = (results.barrier?.makespanMs ?? 0) / (results.async?.makespanMs ?? 1);
console.log(`speedup (barrier / async makespan): ${speedup.toFixed(2)}x`);
