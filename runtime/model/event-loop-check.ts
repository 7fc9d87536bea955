/**
 * How long the node's event loop stalls while the embedded policy does what a training node does: switch to
 * a new weight version (generator sessions rebuilt), generate a rollout batch (prefill + decode), and run a
 * learner micro-batch (GRPO forward + backward). Each is measured with every session on the main thread
 * (how it was before session-thread.ts) and with the defaults (prefill, forward and train sessions on worker
 * threads), alternating, in the same run. A stall longer than the failure detector's suspect-after (10 s by
 * default) gets a healthy node declared down.
 *
 *   npx tsx runtime/model/event-loop-check.ts [--rounds 2] [--threads 2] [--provider cpu|cuda]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadCheckpoint } from './checkpoint.ts';
import { EMBEDDED_DIR } from './embedded.ts';
import { Qwen2Generator } from './generate.ts';
import type { FloatTensor } from './safetensors.ts';
import { Qwen2Trainer } from './trainer.ts';

type Thread = 'main' | 'worker';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
    provider: { type: 'string', default: 'cpu' },
  },
});
const rounds = Number(values.rounds);
const intraOpThreads = Number(values.threads);
if (values.provider !== 'cpu' && values.provider !== 'cuda') throw new Error('--provider is cpu or cuda');
const provider: 'cpu' | 'cuda' = values.provider;

/**
 * Wall time of `work` and the longest event-loop stall while it ran: the largest lateness of a 10 ms interval
 * (perf_hooks' monitorEventLoopDelay missed whole multi-second stalls in this measurement).
 */
async function measure(work: () => Promise<unknown>): Promise<{ ms: number; maxDelayMs: number }> {
  await new Promise((r) => setTimeout(r, 50));
  let last = performance.now();
  let maxDelay = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    maxDelay = Math.max(maxDelay, now - last - 10);
    last = now;
  }, 10);
  const start = performance.now();
  await work();
  const ms = performance.now() - start;
  // A stall at the very end shows once the next tick fires.
  await new Promise((r) => setTimeout(r, 30));
  clearInterval(ticker);
  return { ms: Math.round(ms), maxDelayMs: Math.round(maxDelay) };
}

const checkpoint = await loadCheckpoint(EMBEDDED_DIR);
const { config } = checkpoint;
const version = (v: number): Map<string, FloatTensor> =>
  new Map(
    [...checkpoint.weights].map(([name, w]) => [
      name,
      { shape: w.shape, data: w.data.map((x) => x * (1 + v * 1e-3)) },
    ]),
  );
const prompts = Array.from({ length: 16 }, (_, b) =>
  Array.from({ length: 800 - 10 * b }, (_, i) => (i * 31 + b) % config.vocabSize),
);
function batchOf(rows: number, cols: number) {
  const n = rows * cols;
  return {
    rows,
    cols,
    inputIds: Int32Array.from({ length: n }, (_, i) => (i * 7919) % config.vocabSize),
    attention: new Float32Array(n).fill(1),
    lossMask: new Float32Array(n).fill(1),
    advantage: new Float32Array(n).fill(0.5),
    oldLogprob: new Float32Array(n).fill(-3),
    refLogprob: new Float32Array(n).fill(-3),
  };
}
const microBatch = batchOf(4, 1024);
const warmUp = batchOf(1, 8);
const grpo = { clipRatioLow: 0.2, clipRatioHigh: 0.2, clipRatioC: null, klCoef: 0.001, entropyCoef: 0 };

async function round(thread: Thread): Promise<Record<string, { ms: number; maxDelayMs: number }>> {
  const options = { provider, intraOpThreads, thread };
  let generator = await Qwen2Generator.create(checkpoint, options);
  const out: Record<string, { ms: number; maxDelayMs: number }> = {};
  for (const v of [1, 2]) {
    out[`switch to v${v}`] = await measure(async () => {
      const next = await Qwen2Generator.create({ config, weights: version(v) }, options);
      await generator.release();
      generator = next;
    });
  }
  out['generate 16 x ~725 + 32'] = await measure(() =>
    generator.generate(prompts, { maxNewTokens: 32, temperature: 1, seed: 1 }),
  );
  await generator.release();
  const trainer = new Qwen2Trainer(config, options);
  const weights = trainer.params.map((p) => checkpoint.weights.get(p.name)!.data);
  // Session builds happen once per job; the runs are what repeats every step.
  await trainer.logprobs(weights, warmUp);
  await trainer.grpoGradients(weights, warmUp, grpo, 8);
  out['learner logprobs 4 x 1024'] = await measure(() => trainer.logprobs(weights, microBatch));
  out['learner grpo grads 4 x 1024'] = await measure(() =>
    trainer.grpoGradients(weights, microBatch, grpo, 4 * 1024),
  );
  await trainer.dispose();
  return out;
}

const results: { round: number; thread: Thread; phase: string; ms: number; maxDelayMs: number }[] = [];
for (let r = 0; r < rounds; r++) {
  for (const thread of ['main', 'worker'] as const) {
    for (const [phase, m] of Object.entries(await round(thread)))
      results.push({ round: r, thread, phase, ...m });
  }
}
console.table(results);
const worst = (t: Thread): number =>
  Math.max(...results.filter((r) => r.thread === t).map((r) => r.maxDelayMs));
console.log(
  JSON.stringify({
    maxDelayMs: { allMain: worst('main'), defaults: worst('worker') },
    intraOpThreads,
    rounds,
  }),
);
