/**
 * Where a GPU learner step's time goes, in one device run (runtime/model/README.md records the answer).
 * On one Qwen2 model and batch it times, with the CUDA provider of onnxruntime-node:
 *
 *   1. the LearnerActor's step as it is (old and reference log-probs, GRPO gradients, AdamW on the host),
 *      and each of its parts alone;
 *   2. the fused forward + backward + AdamW graph with every output fetched (weights and both moments in
 *      and out), and the same run fetching only the loss;
 *   3. a copy-only graph moving the same bytes in and out (Identity per tensor), and in only;
 *   4. a profiled run of the fused graph, node time summed by execution provider and by op;
 *   5. session creation with verbose logging (nodes placed on the CPU provider, inserted Memcpy nodes), and
 *      with `session.disable_cpu_ep_fallback` as a probe of which nodes CUDA cannot take.
 *
 *   npx tsx scripts/diagnose-learner-gpu.ts [--hidden 512 --layers 4 --vocab 151936 --rows 8 --cols 256]
 *        [--provider cuda] [--out DIR]         (writes DIR/diagnosis.json; --provider cpu dry-runs it)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { adamwStep, defaultAdamWConfig, initAdamWState } from '../actors/learner/adamw.ts';
import { buildMicroBatches, prepareSamples, type TrainSample } from '../actors/learner/batching.ts';
import { defaultGrpoLossConfig } from '../actors/learner/grpo.ts';
import { HostEngine } from '../actors/learner/engine.ts';
import { Learner } from '../actors/learner/learner.ts';
import { benchConfig, randomCheckpoint } from '../runtime/model/testing.ts';
import { fusedTrainStepGraph, Qwen2Trainer, sequenceFeeds } from '../runtime/model/trainer.ts';
import { Graph } from '../runtime/onnx/graph.ts';
import * as op from '../runtime/onnx/ops.ts';
import { OnnxSession } from '../runtime/onnx/session.ts';
import { ADAMW_LR, ADAMW_STEP, stateNames } from '../runtime/onnx/adamw.ts';
import { TrainState } from '../runtime/onnx/train-state.ts';

const { values: flags } = parseArgs({
  options: {
    hidden: { type: 'string', default: '512' },
    layers: { type: 'string', default: '4' },
    vocab: { type: 'string', default: '151936' },
    rows: { type: 'string', default: '8' },
    cols: { type: 'string', default: '256' },
    steps: { type: 'string', default: '3' },
    provider: { type: 'string', default: 'cuda' },
    out: { type: 'string', default: process.env.OUT ?? 'diagnosis' },
    'verbose-child': { type: 'string' },
  },
});
const provider = flags.provider === 'cpu' ? 'cpu' : 'cuda';
const eps: ort.InferenceSession.ExecutionProviderConfig[] = provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'];
const hidden = Number(flags.hidden);
const config = benchConfig(hidden, Number(flags.layers), Number(flags.vocab));
const rows = Number(flags.rows);
const cols = Number(flags.cols);
const steps = Number(flags.steps);

if (flags['verbose-child'] !== undefined) {
  // Child mode: only build a session, so its stderr holds nothing but onnxruntime's placement log.
  const extra = flags['verbose-child'] === 'no-fallback' ? { session: { disable_cpu_ep_fallback: '1' } } : {};
  try {
    const s = await ort.InferenceSession.create(fusedBytes(), {
      executionProviders: eps,
      logSeverityLevel: 0,
      logVerbosityLevel: 0,
      extra,
    });
    await s.release();
    console.log('created');
  } catch (err) {
    console.log(`refused: ${String(err)}`);
  }
  process.exit(0);
}

const out = flags.out!;
mkdirSync(out, { recursive: true });
const ckpt = randomCheckpoint(config, 1, 0.05);
const paramCount = [...ckpt.weights.values()].reduce((a, w) => a + w.data.length, 0);
const report: Record<string, unknown> = {
  model: { hidden, layers: config.numLayers, vocab: config.vocabSize, parameters: paramCount },
  batch: { rows, cols, tokens: rows * cols },
  provider,
  date: new Date().toISOString(),
};
const log = (k: string, v: unknown): void => {
  report[k] = v;
  console.log(k, JSON.stringify(v));
  writeFileSync(join(out, 'diagnosis.json'), JSON.stringify(report, null, 1));
};

async function timed(fn: () => Promise<unknown>, n = steps): Promise<number> {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - t0) / 1000 / n;
}

// 1. The learner's step as the LearnerActor runs it, and its parts.
let seed = 7;
const rnd = (): number => ((seed = (seed * 48271) % 2147483647), seed / 2147483647);
const samples = prepareSamples(
  Array.from({ length: rows }, (_, i): TrainSample => {
    const tokenIds = Array.from({ length: cols }, () => Math.floor(rnd() * config.vocabSize));
    return {
      group: `q${i % 2}`,
      tokenIds,
      lossMask: tokenIds.map((_, j) => (j < cols / 4 ? 0 : 1)),
      reward: rnd(),
      version: 0,
    };
  }),
);
const [mb] = buildMicroBatches(samples, { maxTokens: rows * cols, maxSeqLen: cols, padId: 0 });
const trainer = new Qwen2Trainer(config, { provider, thread: 'main' });
const weights = trainer.params.map((p) => Float32Array.from(ckpt.weights.get(p.name)!.data));
const learner = new Learner(
  new HostEngine(
    trainer,
    weights.map((w) => Float32Array.from(w)),
  ),
  {
    loss: defaultGrpoLossConfig,
    optimizer: defaultAdamWConfig,
    maxTokensPerMicroBatch: rows * cols,
    maxSeqLen: cols,
    padId: 0,
  },
);
let tag = 0;
const learnerStep = await timed(() => learner.trainStep(samples, 'grpo', `d${tag++}`));
const logprobs = await timed(() => trainer.logprobs(weights, mb!));
const settings = { clipRatioLow: 0.2, clipRatioHigh: 0.2, clipRatioC: null, klCoef: 0.001, entropyCoef: 0 };
const gradients = await timed(() => trainer.grpoGradients(weights, mb!, settings, rows * cols));
const state = initAdamWState(weights);
const grads = (await trainer.grpoGradients(weights, mb!, settings, rows * cols)).grads;
const hostAdamW = await timed(async () => adamwStep(weights, grads, state, defaultAdamWConfig));
await trainer.dispose();
log('learner_step', {
  step_s: learnerStep,
  tokens_per_s: (rows * cols) / learnerStep,
  logprobs_run_s: logprobs,
  grpo_gradients_run_s: gradients,
  host_adamw_s: hostAdamW,
  note: 'a step runs logprobs twice (old and reference) and the gradient graph once per micro-batch, then AdamW on the host',
});

// 2. The fused graph (forward + backward + AdamW), all outputs fetched vs only the loss.
const bytes = fusedBytes();
const fused = await OnnxSession.create(bytes, { provider, intraOpThreads: 1 });
const trainState = new TrainState(
  Object.fromEntries([...ckpt.weights].map(([n, w]) => [n, { dims: w.shape, data: w.data }])),
);
const mask = new Float32Array(rows * cols).map((_, i) => (i % cols < cols / 4 ? 0 : 1));
const batchFeeds: Record<string, ort.Tensor> = {
  ...sequenceFeeds({
    rows,
    cols,
    inputIds: Int32Array.from(mb!.inputIds),
    attention: new Float32Array(rows * cols).fill(1),
  }),
  loss_mask: new ort.Tensor('float32', mask, [rows, cols]),
  denominator: new ort.Tensor('float32', Float32Array.of(mask.reduce((a, b) => a + b, 0)), []),
};
const allFetches = await timed(() => trainState.run(fused, batchFeeds, 1e-4));
await fused.release();
const raw = await ort.InferenceSession.create(bytes, { executionProviders: eps, intraOpNumThreads: 1 });
const feeds: Record<string, ort.Tensor> = {
  ...batchFeeds,
  [ADAMW_LR]: scalar(1e-4),
  [ADAMW_STEP]: scalar(1),
};
for (const [name, w] of ckpt.weights) {
  const n = stateNames(name);
  feeds[name] = new ort.Tensor('float32', w.data, w.shape);
  feeds[n.m] = new ort.Tensor('float32', new Float32Array(w.data.length), w.shape);
  feeds[n.v] = new ort.Tensor('float32', new Float32Array(w.data.length), w.shape);
}
const lossOnly = await timed(() => raw.run(feeds, ['loss']));
await raw.release();
log('fused_step', {
  all_fetches_s: allFetches,
  all_fetches_tokens_per_s: (rows * cols) / allFetches,
  loss_only_s: lossOnly,
  bytes_in: 3 * 4 * paramCount,
  bytes_out_all: 3 * 4 * paramCount,
});

// 3. Copy-only: the same tensors through Identity, in and out, and in only (a scalar out).
const copy = new Graph('copy');
const sums: ReturnType<typeof op.reduceSum>[] = [];
for (const [name, w] of ckpt.weights)
  for (const suffix of ['', '.m', '.v']) {
    const x = copy.input(`${name}${suffix}`, 'float32', w.shape.map(String));
    copy.output(op.identity(x), `${name}${suffix}.out`);
    if (suffix === '') sums.push(op.reduceSum(op.reshape(x, [-1]), [0]));
  }
copy.output(
  sums.reduce((a, b) => op.add(a, b)),
  'checksum',
);
const copySession = await ort.InferenceSession.create(copy.serialize().model, { executionProviders: eps });
const copyFeeds: Record<string, ort.Tensor> = {};
for (const [name, w] of ckpt.weights)
  for (const suffix of ['', '.m', '.v'])
    copyFeeds[`${name}${suffix}`] = new ort.Tensor('float32', w.data, w.shape);
const roundTrip = await timed(() => copySession.run(copyFeeds));
const inOnly = await timed(() => copySession.run(copyFeeds, ['checksum']));
await copySession.release();
const gb = (3 * 4 * paramCount) / 1e9;
log('copy_only', {
  round_trip_s: roundTrip,
  in_only_s: inOnly,
  in_gb_per_s: gb / inOnly,
  round_trip_gb_per_s: (2 * gb) / roundTrip,
});

// 4. A profiled run: node time by provider and by op.
const profiled = await ort.InferenceSession.create(bytes, {
  executionProviders: eps,
  intraOpNumThreads: 1,
  enableProfiling: true,
  profileFilePrefix: join(out, 'fused-profile'),
});
for (let i = 0; i < 2; i++) await profiled.run(feeds, ['loss']);
profiled.endProfiling();
await profiled.release();
const profileFile = readdirSync(out).find((f) => f.startsWith('fused-profile') && f.endsWith('.json'));
const events =
  profileFile === undefined
    ? []
    : (JSON.parse(readFileSync(join(out, profileFile), 'utf8')) as ProfileEvent[]);
const byProvider = new Map<string, number>();
const byOp = new Map<string, number>();
let runs = 0;
let runUs = 0;
for (const e of events) {
  if (e.cat === 'Session' && e.name === 'model_run') {
    runs++;
    runUs += e.dur;
  }
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
  const p = e.args?.provider ?? '?';
  const o = `${e.args?.op_name ?? '?'} (${p.replace('ExecutionProvider', '')})`;
  byProvider.set(p, (byProvider.get(p) ?? 0) + e.dur);
  byOp.set(o, (byOp.get(o) ?? 0) + e.dur);
}
const perRun = (us: number): number => us / 1e6 / Math.max(1, runs);
log('profile', {
  runs,
  model_run_s: perRun(runUs),
  kernel_s_by_provider: Object.fromEntries([...byProvider].map(([k, v]) => [k, perRun(v)])),
  top_ops_s: Object.fromEntries(
    [...byOp]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([k, v]) => [k, perRun(v)]),
  ),
});

// 5. Placement: the verbose log of a session build, and the no-fallback probe (each in a child process).
const self = fileURLToPath(import.meta.url);
const child = (mode: string) =>
  spawnSync(
    process.execPath,
    [...process.execArgv, self, ...argvWithout('--verbose-child'), '--verbose-child', mode],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    },
  );
const verbose = child('verbose');
writeFileSync(join(out, 'verbose-session.log'), verbose.stderr);
const lines = verbose.stderr.split('\n');
const cpuPlaced = lines.filter((l) => /CPUExecutionProvider/.test(l) && /[Nn]ode/.test(l));
const memcpy = lines.filter((l) => /Memcpy/.test(l));
const noFallback = child('no-fallback');
log('placement', {
  verbose_lines: lines.length,
  cpu_placement_lines: cpuPlaced.slice(0, 40),
  memcpy_lines: memcpy.length,
  memcpy_examples: memcpy.slice(0, 10),
  disable_cpu_ep_fallback: noFallback.stdout.trim().split('\n').at(-1) ?? noFallback.stderr.slice(-500),
});

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; provider?: string };
}

function fusedBytes(): Uint8Array {
  return fusedTrainStepGraph(config, 'sft', { weightDecay: 0.01 }).serialize().model;
}

function scalar(v: number): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.of(v), []);
}

function argvWithout(flag: string): string[] {
  const args = process.argv.slice(2);
  const i = args.indexOf(flag);
  return i === -1 ? args : [...args.slice(0, i), ...args.slice(i + 2)];
}
