/**
 * `npm run bench:learner` — two measurements, each beside a baseline taken in the same run:
 *
 * 1. Train-step tokens/s of the LearnerActor's step (old + reference log-probs, GRPO loss gradients through
 *    runtime/model's graphs, clipping, AdamW) on a Qwen2 model, beside PyTorch running the same model,
 *    micro-batch and loss (scripts/bench-learner-torch.py; skipped with a note when python3 has no torch).
 *    `--provider cuda --device cuda` runs both on the GPU (the GPU machine has torch).
 * 2. Time to publish a new weight version from a learner to the ParameterServerActor on another node
 *    process and to pull it back into a subscriber (what a rollout worker does), beside the loopback
 *    bandwidth bound: the same bytes in the same frame size over a raw ws connection between two processes.
 *
 * Flags: --hidden 128 --layers 2 --vocab 151936 --rows 4 --cols 128 --steps 3 --warmup 1 (untimed steps
 *        first, on both sides) --provider cpu --device cpu
 *        --skip-publish --skip-torch
 *        --shape qwen2.5-0.5b    the Qwen2.5-0.5B architecture (24 layers, hidden 896, 14/2 heads, MLP 4864, tied)
 *        --device-resident       ours = the LearnerActor's step on its device-resident engine (actors/learner/
 *                                device-engine.ts: weights, moments, gradients, log-probs on the device)
 *                                instead of the host engine
 *        --json FILE             also write {ours_tokens_per_s, torch_tokens_per_s, ratio, gpu, date, ...}
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import { defaultAdamWConfig } from '../actors/learner/adamw.ts';
import {
  buildMicroBatches,
  prepareSamples,
  type PreparedSample,
  type TrainSample,
} from '../actors/learner/batching.ts';
import { defaultGrpoLossConfig } from '../actors/learner/grpo.ts';
import { HostEngine, type LearnerEngine } from '../actors/learner/engine.ts';
import { Learner } from '../actors/learner/learner.ts';
import { LearnerGroup } from '../actors/learner/learner-group.ts';
import { kinds } from '../actors/kinds.ts';
import { DrError } from '../config/errors.ts';
import { ActorErrorCode } from '../runtime/actor.ts';
import { WeightSubscriber } from '../actors/params/weight-transfer.ts';
import { DEFAULT_CHUNK_BYTES } from '../actors/params/weights-codec.ts';
import { saveCheckpoint } from '../runtime/model/checkpoint.ts';
import { parseQwen2Config, qwen2ParamShapes, type Qwen2Config } from '../runtime/model/qwen2-config.ts';
import type { FloatTensor } from '../runtime/model/safetensors.ts';
import { benchConfig, randomCheckpoint } from '../runtime/model/testing.ts';
import { Qwen2Trainer } from '../runtime/model/trainer.ts';
import { startWorker } from '../runtime/testing/node-process.ts';
import { startLoopbackNode } from '../runtime/testing/loopback-node.ts';

const SELF = fileURLToPath(import.meta.url);
const KINDS = fileURLToPath(new URL('../actors/kinds.ts', import.meta.url));

const { values: flags } = parseArgs({
  options: {
    hidden: { type: 'string', default: '128' },
    layers: { type: 'string', default: '2' },
    vocab: { type: 'string', default: '151936' },
    rows: { type: 'string', default: '4' },
    cols: { type: 'string', default: '128' },
    steps: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    provider: { type: 'string', default: 'cpu' },
    device: { type: 'string', default: 'cpu' },
    'skip-publish': { type: 'boolean', default: false },
    'skip-torch': { type: 'boolean', default: false },
    'raw-peer': { type: 'boolean', default: false },
    shape: { type: 'string' },
    'device-resident': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

/** Qwen2.5-0.5B's architecture (its config.json), with this bench's random weights. */
const QWEN25_05B = parseQwen2Config({
  model_type: 'qwen2',
  vocab_size: 151936,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  eos_token_id: 151643,
});

/** What the run measured, written with --json at the end. */
const result: Record<string, unknown> = {};
/** The train step's copy of the weights to the host, for the publish section's total. */
let copyOut = { seconds: 0, bytes: 0 };

if (flags['raw-peer']) rawPeer();
else await main();

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dr-bench-learner-'));
  try {
    const hidden = Number(flags.hidden);
    const config =
      flags.shape === 'qwen2.5-0.5b'
        ? QWEN25_05B
        : benchConfig(hidden, Number(flags.layers), Number(flags.vocab));
    await saveCheckpoint(dir, randomCheckpoint(config, 1, 0.05));
    const params = [...qwen2ParamShapes(config).values()].reduce(
      (s, d) => s + d.reduce((a, b) => a * b, 1),
      0,
    );
    console.log(
      `model: Qwen2 hidden ${config.hiddenSize}, ${config.numLayers} layers, vocab ${config.vocabSize} (${(params / 1e6).toFixed(1)} M params)`,
    );
    await trainStep(dir, config);
    if (!flags['skip-publish']) await publish(dir);
    if (flags.json !== undefined) await writeFile(flags.json, JSON.stringify(result, null, 1));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function batchOf(rows: number, cols: number, vocab: number): TrainSample[] {
  let s = 7;
  const rnd = (): number => ((s = (s * 48271) % 2147483647), s / 2147483647);
  return Array.from({ length: rows }, (_, i) => {
    const tokenIds = Array.from({ length: cols }, () => Math.floor(rnd() * vocab));
    // a prompt, then generated turns with a tool response between them (observation-masked)
    const lossMask = tokenIds.map((_, j) => (j < cols / 4 || (j > cols / 2 && j < (5 * cols) / 8) ? 0 : 1));
    return { group: `q${i % 2}`, tokenIds, lossMask, reward: rnd(), version: 0 };
  });
}

async function trainStep(dir: string, config: Qwen2Config): Promise<void> {
  const rows = Number(flags.rows);
  const cols = Number(flags.cols);
  const steps = Number(flags.steps);
  const samples = prepareSamples(batchOf(rows, cols, config.vocabSize));
  const options = { maxTokens: rows * cols, maxSeqLen: cols, padId: 0 };
  const [mb] = buildMicroBatches(samples, options);
  await writeFile(
    join(dir, 'batch.json'),
    JSON.stringify({
      rows,
      cols,
      inputIds: [...mb!.inputIds],
      attention: [...mb!.attention],
      lossMask: [...mb!.lossMask],
      advantage: [...mb!.advantage],
    }),
  );
  const provider = flags.provider === 'cuda' ? 'cuda' : 'cpu';
  const { loadCheckpoint } = await import('../runtime/model/checkpoint.ts');
  const ckpt = await loadCheckpoint(dir);
  const ours = await learnerStep(config, ckpt.weights, samples, options, steps, provider);
  console.log(`\ntrain step (${rows} x ${cols} tokens, GRPO, ${provider}):`);
  console.log(
    `  ours (${flags['device-resident'] ? 'device-resident, C API' : 'LearnerActor path, onnxruntime-node'} ${provider}): ${ours.tokensPerSecond.toFixed(0)} tokens/s   first loss ${ours.firstLoss.toExponential(6)}`,
  );
  const torch = flags['skip-torch'] ? null : runTorch(dir, steps);
  if (torch !== null) {
    console.log(
      `  PyTorch ${torch.device} (${torch.threads} threads, BLAS ${torch.blas}): ${torch.tokensPerSecond.toFixed(0)} tokens/s   first loss ${torch.firstLoss.toExponential(6)}`,
    );
    console.log(`  ratio ours / PyTorch: ${(ours.tokensPerSecond / torch.tokensPerSecond).toFixed(2)}x`);
  }
  Object.assign(result, {
    model: {
      hidden: config.hiddenSize,
      layers: config.numLayers,
      vocab: config.vocabSize,
      shape: flags.shape ?? null,
    },
    batch: { rows, cols },
    path: flags['device-resident'] ? 'device-resident' : 'learner-host',
    ours_tokens_per_s: ours.tokensPerSecond,
    torch_tokens_per_s: torch?.tokensPerSecond ?? null,
    ratio: torch === null ? null : ours.tokensPerSecond / torch.tokensPerSecond,
    ours_first_loss: ours.firstLoss,
    torch_first_loss: torch?.firstLoss ?? null,
    copy_out_seconds: ours.copyOutSeconds,
    gpu: provider === 'cuda' ? gpuName() : null,
    date: new Date().toISOString(),
  });
}

/** The LearnerActor's step (Learner.trainStep) on the device-resident or the host engine. */
async function learnerStep(
  config: Qwen2Config,
  weights: ReadonlyMap<string, FloatTensor>,
  samples: PreparedSample[],
  options: { maxTokens: number; maxSeqLen: number; padId: number },
  steps: number,
  provider: 'cpu' | 'cuda',
): Promise<{ tokensPerSecond: number; firstLoss: number; copyOutSeconds: number }> {
  const t0 = performance.now();
  let engine: LearnerEngine;
  if (flags['device-resident']) {
    const { DeviceEngine } = await import('../actors/learner/device-engine.ts');
    engine = new DeviceEngine(config, new Map([...weights].map(([n, w]) => [n, w.data])), {
      provider,
      optimizer: defaultAdamWConfig,
    });
  } else {
    const model = new Qwen2Trainer(config, { provider });
    engine = new HostEngine(
      model,
      model.params.map((p) => weights.get(p.name)!.data),
    );
  }
  const learner = new Learner(engine, {
    loss: defaultGrpoLossConfig,
    optimizer: defaultAdamWConfig,
    maxTokensPerMicroBatch: options.maxTokens,
    maxSeqLen: options.maxSeqLen,
    padId: 0,
  });
  console.log(`  engine built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const first = await learner.trainStep(samples, 'grpo', 'warm');
  for (let i = 1; i < Number(flags.warmup); i++) await learner.trainStep(samples, 'grpo', `warm${i}`);
  const t1 = performance.now();
  let tokens = 0;
  const stepMs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const m = await learner.trainStep(samples, 'grpo', `s${i}`);
    tokens += m.localTokens;
    stepMs.push(Math.round(m.seconds * 1000));
  }
  const tokensPerSecond = tokens / ((performance.now() - t1) / 1000);
  console.log(`  timed steps: ${stepMs.join(', ')} ms`);
  // What publishing a version adds before any byte goes on the wire: the weights copied to the host (a device
  // engine copies once per step; the host engine already holds them).
  // The first copy also allocates the host arrays the engine reuses afterwards; the second is the steady cost.
  const copyOnce = async (tag: string): Promise<number> => {
    await learner.trainStep(samples, 'grpo', tag);
    const t = performance.now();
    learner.currentWeights();
    return (performance.now() - t) / 1000;
  };
  const firstCopySeconds = await copyOnce('copy0');
  const copyOutSeconds = await copyOnce('copy1');
  const published = learner.currentWeights();
  const bytes = published.reduce((n, w) => n + w.byteLength, 0);
  console.log(
    `  weights to the host after a step: ${(copyOutSeconds * 1000).toFixed(0)} ms (first time ${(firstCopySeconds * 1000).toFixed(0)} ms) for ${(bytes / 2 ** 20).toFixed(0)} MiB (${(bytes / Math.max(copyOutSeconds, 1e-9) / 2 ** 30).toFixed(1)} GiB/s)`,
  );
  await learner.dispose();
  copyOut = { seconds: copyOutSeconds, bytes };
  return { tokensPerSecond, firstLoss: first.loss, copyOutSeconds };
}

function runTorch(
  dir: string,
  steps: number,
): { tokensPerSecond: number; firstLoss: number; device: string; threads: number; blas: string } | null {
  const torch = spawnSync(
    process.env.PYTHON ?? 'python3',
    [
      fileURLToPath(new URL('./bench-learner-torch.py', import.meta.url)),
      '--dir',
      dir,
      '--steps',
      String(steps),
      '--warmup',
      flags.warmup!,
      '--device',
      flags.device!,
      '--threads',
      String(availableParallelism()),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  const line = torch.stdout.trim().split('\n').at(-1) ?? '';
  if (torch.status !== 0 || !line.startsWith('{')) {
    console.log(
      `  PyTorch: not measured (${(torch.stderr || torch.error?.message || 'no output').trim().split('\n').at(-1)})`,
    );
    return null;
  }
  return JSON.parse(line) as {
    tokensPerSecond: number;
    firstLoss: number;
    device: string;
    threads: number;
    blas: string;
  };
}

function gpuName(): string {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0]! : 'unknown';
}

async function publish(dir: string): Promise<void> {
  const head = await startLoopbackNode({ rank: 0, masterPort: 0, kinds });
  // Production failure-detector timings (the test harness's are tuned for fast failure tests).
  const worker = await startWorker(head.node.port, 1, [
    '--kinds',
    KINDS,
    '--heartbeat-ms',
    '1000',
    '--suspect-after-ms',
    '3000',
    '--down-after-ms',
    '10000',
  ]);
  try {
    await head.spawn({
      kind: 'params',
      name: 'params/bench',
      args: { checkpointDir: join(dir, 'ckpt') },
      placement: { kind: 'rank', rank: 1 },
    });
    const ask = <R>(t: string, m: unknown, o?: { timeoutMs?: number }): Promise<R> => head.ask<R>(t, m, o);
    // The learner runs on this process's node, on the device the flags name.
    const device = flags.device === 'cuda' ? 'cuda' : 'cpu';
    const group = await LearnerGroup.spawn(
      (s) =>
        s.args?.device === device
          ? head.spawn({ ...s, placement: { kind: 'rank', rank: 0 } })
          : Promise.reject(
              new DrError(ActorErrorCode.PLACEMENT_UNSATISFIABLE, `the bench runs on ${device}`),
            ),
      ask,
      {
        group: 'bench',
        size: 1,
        model: { kind: 'qwen2', dir },
        config: {
          loss: defaultGrpoLossConfig,
          optimizer: defaultAdamWConfig,
          maxTokensPerMicroBatch: 4096,
          maxSeqLen: 1024,
          padId: 0,
        },
        paramServer: 'params/bench',
        residency: flags['device-resident'] ? 'device' : 'host',
      },
    );
    await group.publish(); // warm: the first publish also compiles nothing, but touches every path once
    const sub = new WeightSubscriber(ask, 'params/bench');
    const first = await sub.refresh();
    const bytes = first!.tensors.reduce((n, t) => n + t.byteLength, 0);
    const rounds = 3;
    let pubMs = 0;
    let pullMs = 0;
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await group.publish();
      const t1 = performance.now();
      await sub.refresh();
      pullMs += performance.now() - t1;
      pubMs += t1 - t0;
    }
    const raw = await rawLoopbackSeconds(bytes);
    const pub = pubMs / rounds / 1000;
    const pull = pullMs / rounds / 1000;
    console.log(
      `\nweight version (${(bytes / 2 ** 20).toFixed(1)} MiB, ${DEFAULT_CHUNK_BYTES / 2 ** 20} MiB chunks, sha256-checked), between two node processes:`,
    );
    console.log(
      `  publish learner -> parameter server: ${(pub * 1000).toFixed(0)} ms (${(bytes / pub / 2 ** 20).toFixed(0)} MiB/s)`,
    );
    console.log(
      `  pull parameter server -> subscriber: ${(pull * 1000).toFixed(0)} ms (${(bytes / pull / 2 ** 20).toFixed(0)} MiB/s)`,
    );
    console.log(
      `  loopback bound (raw ws, same bytes and frames): ${(raw * 1000).toFixed(0)} ms (${(bytes / raw / 2 ** 20).toFixed(0)} MiB/s)`,
    );
    console.log(`  ratio publish+pull / (2 x bound): ${((pub + pull) / (2 * raw)).toFixed(2)}x`);
    const fromDevice = pub + copyOut.seconds;
    if (flags['device-resident'])
      console.log(
        `  publish from the device (copy out ${(copyOut.seconds * 1000).toFixed(0)} ms + publish): ${(fromDevice * 1000).toFixed(0)} ms, ${(fromDevice / raw).toFixed(2)}x the bound`,
      );
    Object.assign(result, {
      publish_seconds: pub,
      pull_seconds: pull,
      loopback_bound_seconds: raw,
      publish_bytes: bytes,
      publish_from_device_over_bound: flags['device-resident'] ? fromDevice / raw : null,
    });
  } finally {
    await worker.kill('SIGTERM');
    await head.stop();
  }
}

/** Seconds to move `bytes` in DEFAULT_CHUNK_BYTES binary frames to another process over ws on loopback. */
async function rawLoopbackSeconds(bytes: number): Promise<number> {
  const peer = spawn(process.execPath, ['--import', 'tsx', SELF, '--raw-peer'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(peer.stdout, 'data')) as [Buffer];
  const ws = new WebSocket(`ws://127.0.0.1:${Number(line.toString().trim())}/`, {
    perMessageDeflate: false,
    maxPayload: 64 * 2 ** 20,
  });
  await once(ws, 'open');
  const frame = Buffer.alloc(DEFAULT_CHUNK_BYTES, 7);
  const frames = Math.ceil(bytes / DEFAULT_CHUNK_BYTES);
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    const acked = once(ws, 'message');
    for (let i = 0; i < frames; i++) ws.send(frame);
    ws.send('done');
    await acked;
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  ws.close();
  peer.kill();
  await once(peer, 'exit');
  return best;
}

function rawPeer(): void {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    perMessageDeflate: false,
    maxPayload: 64 * 2 ** 20,
  });
  let received = 0;
  wss.on('connection', (ws) =>
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) received += data.length;
      else {
        ws.send(String(received));
        received = 0;
      }
    }),
  );
  wss.on('listening', () => process.stdout.write(`${(wss.address() as AddressInfo).port}\n`));
}
