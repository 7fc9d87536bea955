/**
 * `npm run bench:model`: forward, decode and train-step tokens/s of the embedded policy's model on
 * onnxruntime (CPU by default, `--provider cuda` on a GPU node), beside PyTorch on the same model, batch and
 * loss (scripts/bench-model.py) in the same run when a python with torch is found, with the ratios.
 * On CUDA it also measures the host<->device copy rate with a copy-only graph and estimates how much of each
 * run is spent copying the feeds and fetches that onnxruntime-node moves on every `run`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../runtime/model/checkpoint.ts';
import { EMBEDDED_CONFIG, EMBEDDED_DIR } from '../runtime/model/embedded.ts';
import { Qwen2Generator } from '../runtime/model/generate.ts';
import { randomCheckpoint } from '../runtime/model/testing.ts';
import { fusedTrainStepGraph, sequenceFeeds } from '../runtime/model/trainer.ts';
import { Graph, op } from '../runtime/onnx/index.ts';
import { OnnxSession } from '../runtime/onnx/session.ts';
import { TrainState } from '../runtime/onnx/train-state.ts';

const opts = new Command()
  .option('--provider <p>', 'cpu or cuda', 'cpu')
  .option('--batch <n>', 'rows', '8')
  .option('--seq <n>', 'tokens per row for forward and train step', '256')
  .option('--prompt <n>', 'prompt tokens per row for decode', '128')
  .option('--new <n>', 'new tokens per row for decode', '64')
  .option('--steps <n>', 'timed train steps', '3')
  .option('--threads <n>', 'CPU threads for both runtimes', String(os.availableParallelism()))
  .option(
    '--python <path>',
    'python with torch (default: the first of $PYTHON, python3, /usr/bin/python3 that imports torch)',
  )
  .option('--json <file>', 'also write the results as JSON')
  .parse()
  .opts<Record<string, string>>();
const provider = opts.provider as 'cpu' | 'cuda';
const [B, T, P, N, steps, threads] = ['batch', 'seq', 'prompt', 'new', 'steps', 'threads'].map((k) =>
  Number(opts[k]),
);

async function timed(fn: () => Promise<unknown>, repeats: number): Promise<number> {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < repeats; i++) await fn();
  return (performance.now() - t0) / 1000 / repeats;
}

const checkpoint: Checkpoint = existsSync(path.join(EMBEDDED_DIR, 'model.safetensors'))
  ? await loadCheckpoint(EMBEDDED_DIR)
  : randomCheckpoint(EMBEDDED_CONFIG, 1, 0.05);
const config = checkpoint.config;
const session = { provider, intraOpThreads: provider === 'cpu' ? threads! : 1 };
let seed = 12345;
const randomIds = (n: number): number[] =>
  Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % (config.vocabSize - 64));
const rows = Array.from({ length: B! }, () => randomIds(T!));

const gen = await Qwen2Generator.create(checkpoint, session);
const forward = await timed(() => gen.logits(rows), 3);
const prompts = rows.map((r) => r.slice(0, P!));
const greedy = { temperature: 0, stopTokenIds: [] as number[] };
const full = await timed(() => gen.generate(prompts, { ...greedy, maxNewTokens: N! }), 1);
const prefillOnly = await timed(() => gen.generate(prompts, { ...greedy, maxNewTokens: 1 }), 2);
await gen.release();

const train = await OnnxSession.create(fusedTrainStepGraph(config, 'sft', { weightDecay: 0.01 }), session);
const state = new TrainState(
  Object.fromEntries([...checkpoint.weights].map(([n, w]) => [n, { dims: w.shape, data: w.data }])),
);
const mask = new Float32Array(B! * T!).map((_, i) => (i % T! < T! / 4 ? 0 : 1));
const batchFeeds = {
  ...sequenceFeeds({
    rows: B!,
    cols: T!,
    inputIds: Int32Array.from(rows.flat()),
    attention: new Float32Array(B! * T!).fill(1),
  }),
  loss_mask: new ort.Tensor('float32', mask, [B!, T!]),
  denominator: new ort.Tensor(
    'float32',
    Float32Array.of(mask.reduce((a, m, i) => a + (i % T! === 0 ? 0 : m), 0)),
    [],
  ),
};
const trainStep = await timed(() => state.run(train, batchFeeds, 1e-4), steps!);
await train.release();

const ours = {
  provider: train.provider,
  forward_tokens_per_s: (B! * T!) / forward,
  decode_tokens_per_s: (B! * (N! - 1)) / Math.max(full - prefillOnly, 1e-9),
  train_tokens_per_s: (B! * T!) / trainStep,
};

const paramCount = [...checkpoint.weights.values()].reduce((a, w) => a + w.data.length, 0);
let copies: Record<string, number> | undefined;
if (ours.provider === 'cuda') {
  // Host<->device rate of onnxruntime-node's per-run copies: one float input echoed to one output.
  const g = new Graph('copy');
  g.output(op.identity(g.input('x', 'float32', ['n'])), 'y');
  const echo = await OnnxSession.create(g, session);
  const n = 16 * 2 ** 20;
  const x = new ort.Tensor('float32', new Float32Array(n), [n]);
  const perByteRoundTrip = (await timed(() => echo.run({ x }), 5)) / (4 * n);
  await echo.release();
  // Bytes each train step and decode step move: params + moments in and out; cache in, logits and new k/v out.
  const trainBytes = 2 * 3 * 4 * paramCount;
  const cacheBytes = 2 * config.numLayers * B! * config.numKvHeads * config.headDim * (P! + N! / 2) * 4;
  const decodeBytes = cacheBytes + B! * config.vocabSize * 4 * 2;
  const decodeStep = Math.max(full - prefillOnly, 1e-9) / (N! - 1);
  copies = {
    copy_gb_per_s_round_trip: 1 / perByteRoundTrip / 1e9,
    train_step_s: trainStep,
    train_copy_s_estimate: (trainBytes / 2) * perByteRoundTrip,
    decode_step_s: decodeStep,
    decode_copy_s_estimate: (decodeBytes / 2) * perByteRoundTrip,
  };
}

function findPython(): string | undefined {
  const candidates = [opts.python, process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(
    (c): c is string => !!c,
  );
  return candidates.find((c) => {
    try {
      execFileSync(c, ['-c', 'import torch'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
}

let torch: Record<string, number | string> | undefined;
const python = findPython();
if (python !== undefined) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-model-'));
  try {
    await saveCheckpoint(dir, checkpoint);
    const args = [
      'scripts/bench-model.py',
      '--dir',
      dir,
      '--batch',
      `${B}`,
      '--seq',
      `${T}`,
      '--prompt',
      `${P}`,
    ];
    args.push('--new', `${N}`, '--steps', `${steps}`, '--threads', `${threads}`, '--device', provider);
    torch = JSON.parse(execFileSync(python, args, { encoding: 'utf8' }).trim().split('\n').at(-1)!);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(
  `embedded Qwen2: ${(paramCount / 1e6).toFixed(2)}M params, vocab ${config.vocabSize}; batch ${B}, seq ${T}, ` +
    `decode ${P}+${N}; onnxruntime ${ours.provider}, ${provider === 'cpu' ? `${threads} threads` : 'GPU'}` +
    (torch
      ? `; torch ${torch.torch} on ${torch.device} (${torch.threads} threads)`
      : '; torch not found: no baseline'),
);
console.log('metric                 onnxruntime        torch      ratio');
for (const key of ['forward_tokens_per_s', 'decode_tokens_per_s', 'train_tokens_per_s'] as const) {
  const t = torch?.[key] as number | undefined;
  const cols = [
    key.padEnd(22),
    ours[key].toFixed(0).padStart(11),
    (t === undefined ? '-' : t.toFixed(0)).padStart(12),
  ];
  console.log(`${cols.join(' ')} ${t === undefined ? '-' : `${(ours[key] / t).toFixed(2)}x`.padStart(10)}`);
}
if (copies) console.log('host<->device copies:', JSON.stringify(copies));
if (opts.json) {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(
    opts.json,
    JSON.stringify({ batch: B, seq: T, prompt: P, new: N, ours, torch, copies }, null, 1),
  );
}
