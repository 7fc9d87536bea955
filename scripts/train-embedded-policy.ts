/**
 * Produces the embedded policy's weights (runtime/model/embedded/): a supervised warm start of the small
 * Qwen2 (runtime/model/embedded.ts) on expert trajectories from the sandbox world (actors/sandbox).
 *
 * The experts, for training questions whose every hop shows in a top-3 search snippet: think, call
 * web_search with the question's key words, then for each further hop search the entity found with the words
 * of the fact it needs next, and answer with the value from the last snippet. With `--browse-demos N`, also N
 * single-hop questions whose answer is only on the subject's page: search, read that page with the real
 * browse tool (the sandbox served over HTTP, the extractive reader), answer from what it returned. The
 * conversations use the rollout's own system prompt and tool-response formats (actors/rollout,
 * actors/search, actors/browse), rendered with the Qwen2.5 chat template, and the loss covers the assistant
 * turns only. Everything is seeded and runs in a fixed order on a fixed thread count. Search responses carry
 * the top 5 results (the rollout default is 10) to keep sequences short enough for this model.
 *
 *   npx tsx scripts/train-embedded-policy.ts [--steps 600] [--out runtime/model/embedded] [--eval 40]
 *
 * The same data can be trained on a GPU with PyTorch instead (scripts/train-embedded-policy-torch.py;
 * the commands that made the shipped weights are in runtime/model/embedded/README.md):
 *
 *   npx tsx scripts/train-embedded-policy.ts --worlds 20 --browse-demos 1600 --init DIR --export .gpu-train
 *   npx tsx scripts/train-embedded-policy.ts --init DIR --evaluate-only   # held-out score of DIR's weights
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import {
  buildSite,
  generateQuestions,
  generateWorld,
  SearchIndex,
  type SandboxQuestion,
  type World,
} from '../actors/sandbox/index.ts';
import { initialMessages, type Message } from '../actors/rollout/prompt.ts';
import { parseTurn } from '../actors/rollout/parser.ts';
import { formatAndF1 } from '../actors/rollout/reward.ts';
import { formatSearchResponse } from '../actors/search/search-format.ts';
import { formatBrowseResponse } from '../actors/browse/browse-format.ts';
import { BrowseService } from '../actors/browse/browse-service.ts';
import { DocumentStore } from '../actors/browse/document-store.ts';
import { PageFetcher } from '../actors/browse/page-fetcher.ts';
import { UrlPolicy } from '../actors/browse/url-safety.ts';
import { startSandboxServer } from '../actors/sandbox/server.ts';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../runtime/model/checkpoint.ts';
import { EMBEDDED_CONFIG, EMBEDDED_DIR, writeEmbeddedTokenizer } from '../runtime/model/embedded.ts';
import { Policy } from '../runtime/model/policy.ts';
import { randomCheckpoint } from '../runtime/model/testing.ts';
import { loadTokenizer, type TextTokenizer } from '../runtime/model/tokenizer.ts';
import { fusedTrainStepGraph, sequenceFeeds } from '../runtime/model/trainer.ts';
import { OnnxSession } from '../runtime/onnx/session.ts';
import { TrainState } from '../runtime/onnx/train-state.ts';

const opts = new Command()
  .option('--steps <n>', 'optimizer steps', '600')
  .option('--batch <n>', 'conversations per step', '4')
  .option('--lr <x>', 'peak learning rate', '3e-3')
  .option('--out <dir>', 'output folder', EMBEDDED_DIR)
  .option('--eval <n>', 'held-out (dev) questions to evaluate before and after', '40')
  .option('--threads <n>', 'onnxruntime threads (results are reproducible for a given count)', '2')
  .option(
    '--worlds <n>',
    'training questions come from sandbox worlds with seeds 1..n (dev questions: seed 1)',
    '1',
  )
  .option(
    '--browse-demos <n>',
    'also this many browse experts: single-hop questions whose answer is only on the page (worlds 1, 2, ...)',
    '0',
  )
  .option('--init <dir>', 'start from this checkpoint instead of seeded random weights')
  .option('--evaluate-only', 'evaluate the initial weights on the dev questions and exit')
  .option(
    '--export <dir>',
    'write the SFT data, config and initial weights there (for the torch trainer) and exit',
  )
  .parse()
  .opts<Record<string, string>>();
const steps = Number(opts.steps);
const batchSize = Number(opts.batch);
const peakLr = Number(opts.lr);
const out = opts.out!;
const threads = Number(opts.threads);

/** Fixed date and base URL: the trajectories must not depend on when or where the script runs. */
const DATE = new Date('2026-01-15T00:00:00Z');
const BASE_URL = 'http://127.0.0.1:8080';
const TOP_K = 5;
const STOP_WORDS = new Set(
  'a an and are as at be by did do does for from had has have in is it its of on or the to was were what when where which who whom whose why how with in which year name'.split(
    ' ',
  ),
);

interface Sandbox {
  world: World;
  index: SearchIndex;
}

async function sandbox(seed: number): Promise<Sandbox> {
  const world = generateWorld({ seed, size: 1000 });
  return { world, index: new SearchIndex((await buildSite(world)).indexed) };
}

function keywords(question: string): string {
  return question
    .replace(/[?.,!"]/g, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 0 && !STOP_WORDS.has(w.toLowerCase()))
    .join(' ');
}

function search(index: SearchIndex, query: string, base = BASE_URL): string {
  const page = index.search(query, TOP_K, 1);
  return formatSearchResponse({
    v: 1,
    type: 'web_search.reply',
    results: [
      {
        query,
        cached: false,
        hits: page.hits.map((h) => ({ title: h.title, url: base + h.path, snippet: h.snippet })),
      },
    ],
  });
}

function toolCall(name: string, args: Record<string, string[]>): string {
  return `<tool_call>${JSON.stringify({ name, arguments: args })}</tool_call>`;
}

const searchCall = (query: string): string => toolCall('web_search', { query: [query] });

/** Every expert's first thought, before its first search. */
const FIRST_THOUGHT = 'I need to look this up. I will search for the key words of the question.';

/** What a follow-up query asks about an entity, per fact key of the sandbox's question templates. */
const FACT_WORDS: Record<string, string> = {
  birthCity: 'born city',
  birthYear: 'born year',
  occupation: 'occupation',
  university: 'university',
  country: 'country',
  river: 'river',
  foundedYear: 'founded year',
  capital: 'capital',
  currency: 'currency',
  language: 'language',
  continent: 'continent',
  source: 'river source',
  city: 'city',
  founder: 'founder',
  hq: 'headquarters',
  industry: 'industry',
  author: 'author',
  year: 'published year',
  genre: 'genre',
};

/** True when `value` shows in the first three results of a formatted search response. */
function inTopThree(response: string, value: string): boolean {
  return response.split('\n\n').slice(0, 3).join('\n\n').toLowerCase().includes(value.toLowerCase());
}

/**
 * The expert conversation, or null when some hop's value is not in the top three snippets of its query.
 * Hop 1 searches the question's key words; each further hop searches the entity found so far with the
 * words of the fact it needs next, so multi-hop questions take one search per hop.
 */
function expert(index: SearchIndex, q: SandboxQuestion): Message[] | null {
  const messages: Message[] = [...initialMessages(q.question, DATE)];
  let thought = FIRST_THOUGHT;
  for (const [i, hop] of q.hops.entries()) {
    const query =
      i === 0 ? keywords(q.question) : `${q.hops[i - 1]!.value} ${FACT_WORDS[hop.fact] ?? hop.fact}`;
    const response = search(index, query);
    if (!inTopThree(response, hop.value)) return null;
    messages.push({ role: 'assistant', content: `<think>${thought}</think>\n${searchCall(query)}` });
    messages.push({ role: 'tool', content: response });
    const next = q.hops[i + 1];
    if (next) {
      thought = `The search results say: ${hop.value}. That is not the answer yet: I still need the ${FACT_WORDS[next.fact] ?? next.fact} of ${hop.value}.`;
    }
  }
  const answer = q.answers[0]!;
  messages.push({
    role: 'assistant',
    content: `<think>The search results say: ${answer}.</think>\n<answer>${answer}</answer>`,
  });
  return messages;
}

/**
 * The browse expert, for a single-hop question whose answer is not in any snippet: search the key words,
 * read the subject's page (a top-3 result) with the real browse tool (the sandbox served over HTTP, the
 * extractive reader), answer from what it returns. Null when the page is not a top-3 result or the reader
 * does not return the answer.
 */
async function browseExpert(
  index: SearchIndex,
  base: string,
  browser: BrowseService,
  q: SandboxQuestion,
): Promise<Message[] | null> {
  const hop = q.hops[0]!;
  const query = keywords(q.question);
  const response = search(index, query, base);
  const url = base + hop.path;
  if (!inTopThree(response, url)) return null;
  const reply = await browser.browse({
    v: 1,
    type: 'browse_webpage',
    urls: [url],
    question: q.question,
    subQuestion: query,
    trajectoryId: q.id,
  });
  browser.forget(q.id);
  const read = formatBrowseResponse(reply);
  const answer = q.answers[0]!;
  if (!read.toLowerCase().includes(answer.toLowerCase())) return null;
  return [
    ...initialMessages(q.question, DATE),
    { role: 'assistant', content: `<think>${FIRST_THOUGHT}</think>\n${searchCall(query)}` },
    { role: 'tool', content: response },
    {
      role: 'assistant',
      content: `<think>The snippets do not give it. The page of the subject should: I will read it.</think>\n${toolCall('browse_webpage', { url_list: [url] })}`,
    },
    { role: 'tool', content: read },
    { role: 'assistant', content: `<think>The page says: ${answer}.</think>\n<answer>${answer}</answer>` },
  ];
}

interface Example {
  ids: number[];
  mask: number[];
}

/** Token ids of the rendered conversation and a mask over the assistant turns (through <|im_end|>). */
function encode(tokenizer: TextTokenizer, messages: Message[]): Example | null {
  const ids = tokenizer.encode(tokenizer.renderChat(messages));
  const mask = new Array<number>(ids.length).fill(0);
  for (let i = 0; i < messages.length; i++) {
    if (messages[i]!.role !== 'assistant') continue;
    const start = tokenizer.encode(
      tokenizer.renderChat(messages.slice(0, i), { addGenerationPrompt: true }),
    ).length;
    const end = tokenizer.encode(tokenizer.renderChat(messages.slice(0, i + 1))).length - 1; // drop the final "\n"
    if (ids.slice(0, end).some((id, k) => k < end && id !== ids[k])) return null;
    for (let k = start; k < end; k++) mask[k] = 1;
  }
  return { ids, mask };
}

const tokenizer = await (async () => {
  await mkdir(out, { recursive: true });
  await writeEmbeddedTokenizer(out);
  return loadTokenizer(out);
})();
const evalSandbox = await sandbox(1);
const train: Example[] = [];
const trainByHops = new Map<number, number>();
for (let seed = 1; seed <= Number(opts.worlds); seed++) {
  const { world, index } = seed === 1 ? evalSandbox : await sandbox(seed);
  for (const q of generateQuestions(world).filter((x) => x.split === 'train')) {
    const conversation = expert(index, q);
    const ex = conversation && encode(tokenizer, conversation);
    if (!ex) continue;
    train.push(ex);
    trainByHops.set(q.hops.length, (trainByHops.get(q.hops.length) ?? 0) + 1);
  }
  console.log(`world ${seed}: ${train.length} expert trajectories so far`);
}
const browseDemos = Number(opts.browseDemos);
for (let seed = 1, made = 0; made < browseDemos && seed <= 50; seed++) {
  const { world, index } = seed === 1 ? evalSandbox : await sandbox(seed);
  const server = await startSandboxServer({ world });
  const fetcher = new PageFetcher(new UrlPolicy({ allowHosts: ['127.0.0.1'] }));
  const documents = new DocumentStore({ fetcher });
  const browser = new BrowseService({ documents });
  try {
    const pool = generateQuestions(world).filter(
      (x) => x.split === 'train' && x.hops.length === 1 && x.needsBrowse,
    );
    for (const q of pool) {
      if (made >= browseDemos) break;
      const conversation = await browseExpert(index, server.url, browser, q);
      const ex = conversation && encode(tokenizer, conversation);
      if (!ex) continue;
      train.push(ex);
      made++;
    }
  } finally {
    documents.close();
    await server.close();
  }
  console.log(`world ${seed}: ${made} browse expert trajectories so far`);
}
/** The first dev questions of world 1, every kind, as the training job's validation takes them. */
const dev = generateQuestions(evalSandbox.world)
  .filter((q) => q.split === 'dev')
  .slice(0, Number(opts.eval));
console.log(
  `expert trajectories: ${train.length} train (by hops: ${JSON.stringify(Object.fromEntries(trainByHops))}); ${dev.length} dev questions for evaluation`,
);

interface Evaluation {
  formatOk: number;
  f1: number;
  /** Mean F1 by number of hops ("1", "2", "3"). */
  f1ByHops: Record<string, number>;
  /** Mean web_search calls per trajectory. */
  searches: number;
}

/**
 * Greedy rollouts (up to 4 turns, as the embedded demo's) on dev questions, with search responses of the
 * top 5; a browse call gets an error observation (this evaluation serves no pages). Returns the share of
 * well-formed trajectories, mean F1 overall and by hop count, and searches per trajectory.
 */
async function evaluate(checkpoint: Checkpoint): Promise<Evaluation> {
  const policy = await Policy.fromCheckpoint(checkpoint, tokenizer, { intraOpThreads: threads });
  try {
    const convs = dev.map((q) => initialMessages(q.question, DATE));
    const solutions = dev.map(() => '');
    const open = new Set(dev.keys());
    let searches = 0;
    for (let turn = 0; turn < 4 && open.size > 0; turn++) {
      const rows = [...open];
      const outs = await policy.generate(
        rows.map((i) => tokenizer.encode(tokenizer.renderChat(convs[i]!, { addGenerationPrompt: true }))),
        { maxNewTokens: 96, temperature: 0, stop: ['</tool_call>', '</answer>'] },
      );
      outs.forEach((o, r) => {
        const i = rows[r]!;
        solutions[i] += o.text;
        convs[i]!.push({ role: 'assistant', content: o.text });
        const parsed = parseTurn(o.text);
        if (parsed.kind !== 'tool_call') {
          open.delete(i);
          return;
        }
        if (parsed.call.name !== 'web_search') {
          convs[i]!.push({ role: 'tool', content: 'The browse_webpage call failed: no pages here.' });
          return;
        }
        searches++;
        convs[i]!.push({
          role: 'tool',
          content: search(evalSandbox.index, parsed.call.arguments.query.join(' ')),
        });
      });
    }
    const scores = dev.map((q, i) => formatAndF1(solutions[i]!, q.answers.join('<|answer_split|>')));
    const mean = (xs: number[]): number =>
      xs.reduce((a, x) => a + Math.max(0, x), 0) / Math.max(1, xs.length);
    const hops = [...new Set(dev.map((q) => q.hops.length))].sort();
    return {
      formatOk: scores.filter((s) => s >= 0).length / scores.length,
      f1: mean(scores),
      f1ByHops: Object.fromEntries(
        hops.map((h) => [String(h), mean(scores.filter((_, i) => dev[i]!.hops.length === h))]),
      ),
      searches: searches / dev.length,
    };
  } finally {
    await policy.release();
  }
}

/**
 * The torch trainer's input: examples as little-endian uint32 lengths, then all token ids as uint16, then
 * all loss-mask bytes, gzipped (the shared system prompt makes it compress well), beside config.json and
 * model.safetensors of the initial weights.
 */
async function exportData(dir: string, examples: Example[], initDir: string | undefined): Promise<void> {
  await mkdir(dir, { recursive: true });
  const total = examples.reduce((a, e) => a + e.ids.length, 0);
  const lengths = Uint32Array.from(examples, (e) => e.ids.length);
  const ids = Uint16Array.from(examples.flatMap((e) => e.ids));
  const mask = Uint8Array.from(examples.flatMap((e) => e.mask));
  const header = Uint32Array.of(examples.length, total);
  await writeFile(
    path.join(dir, 'sft.bin.gz'),
    gzipSync(Buffer.concat([header, lengths, ids, mask].map((a) => Buffer.from(a.buffer)))),
  );
  if (initDir) {
    await copyFile(path.join(initDir, 'config.json'), path.join(dir, 'config.json'));
    await copyFile(path.join(initDir, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  } else {
    await saveCheckpoint(dir, randomCheckpoint(EMBEDDED_CONFIG, 2026, 0.05));
  }
  console.log(`exported ${examples.length} examples, ${total} tokens to ${dir}`);
}

if (opts.export) {
  await exportData(opts.export, train, opts.init);
  process.exit(0);
}
const init = opts.init ? await loadCheckpoint(opts.init) : randomCheckpoint(EMBEDDED_CONFIG, 2026, 0.05);
const before = await evaluate(init);
console.log(opts.evaluateOnly ? 'evaluation:' : 'before training:', JSON.stringify(before));
if (opts.evaluateOnly) process.exit(0);

const session = await OnnxSession.create(
  fusedTrainStepGraph(EMBEDDED_CONFIG, 'sft', { weightDecay: 0.01, maxGradNorm: 1 }),
  {
    intraOpThreads: threads,
  },
);
const state = new TrainState(
  Object.fromEntries([...init.weights].map(([n, w]) => [n, { dims: w.shape, data: w.data }])),
);
// A fixed shuffle: examples sorted into length buckets so a batch pads little, buckets visited in seeded order.
let seed = 7;
const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const order = train.map((_, i) => i).sort((a, b) => train[a]!.ids.length - train[b]!.ids.length);
const batches: number[][] = [];
for (let i = 0; i + batchSize <= order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
const t0 = performance.now();
let tokens = 0;
for (let step = 0; step < steps; step++) {
  const batch = batches[Math.floor(rand() * batches.length)]!.map((i) => train[i]!);
  const cols = Math.max(...batch.map((e) => e.ids.length));
  const ids = new Int32Array(batch.length * cols);
  const attention = new Float32Array(batch.length * cols);
  const mask = new Float32Array(batch.length * cols);
  batch.forEach((e, r) => {
    e.ids.forEach((id, t) => {
      ids[r * cols + t] = id;
      attention[r * cols + t] = 1;
      mask[r * cols + t] = e.mask[t]!;
    });
  });
  const denominator = mask.reduce((a, b) => a + b, 0);
  const lr =
    peakLr * Math.min(1, (step + 1) / 30) * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * step) / steps)));
  const r = await state.run(
    session,
    {
      ...sequenceFeeds({ rows: batch.length, cols, inputIds: ids, attention }),
      loss_mask: new ort.Tensor('float32', mask, [batch.length, cols]),
      denominator: new ort.Tensor('float32', Float32Array.of(denominator), []),
    },
    lr,
  );
  tokens += batch.length * cols;
  if (step % 25 === 0 || step === steps - 1) {
    const s = (performance.now() - t0) / 1000;
    console.log(
      `step ${step} loss ${r.loss.toFixed(4)} grad_norm ${r.gradNorm.toFixed(3)} lr ${lr.toExponential(2)} ${(tokens / s).toFixed(0)} tok/s`,
    );
  }
}
const seconds = (performance.now() - t0) / 1000;
await session.release();

const trained: Checkpoint = {
  config: EMBEDDED_CONFIG,
  weights: new Map(
    [...init.weights].map(([n, w]) => [n, { shape: w.shape, data: Float32Array.from(state.param(n)) }]),
  ),
};
const after = await evaluate(trained);
console.log('after training:', JSON.stringify(after));
await saveCheckpoint(out, trained, {
  metadata: { producer: 'scripts/train-embedded-policy.ts', steps: String(steps) },
});
await writeFile(
  path.join(out, 'training.json'),
  JSON.stringify(
    {
      steps,
      batch: batchSize,
      peakLr,
      threads,
      topK: TOP_K,
      trainTrajectories: train.length,
      trainSeconds: Math.round(seconds),
      trainTokens: tokens,
      devQuestions: dev.length,
      before,
      after,
    },
    null,
    1,
  ) + '\n',
);
console.log(`wrote ${out}`);
