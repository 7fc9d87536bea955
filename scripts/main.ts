/**
 * `npm start`: the main job on the embedded defaults. Starts a local head and a worker (real `dr` node
 * processes on loopback), the sandbox web and the search/browse tools over it, then a short GRPO run of the
 * embedded policy (config/presets/embedded-demo.json) as a TrainerActor on the head, showing progress and
 * where to watch it, and ends with held-out (dev split) F1 before and after training.
 *
 * Flags: --steps N (override the preset), --seed N, --workers N (worker processes, default 1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { parseTrainConfig } from '../config/train.ts';
import { EMBEDDED_DIR } from '../runtime/model/embedded.ts';
import { connectClient, type ClusterClient } from '../runtime/client.ts';
import type { SandboxInfoReply } from '../actors/sandbox/protocol.ts';
import type { TrainerStatus } from '../actors/trainer/protocol.ts';

const DR = fileURLToPath(new URL('./dr.js', import.meta.url));
const SANDBOX = { seed: 1, size: 1000 };

const { values: flags } = parseArgs({
  options: {
    steps: { type: 'string' },
    seed: { type: 'string', default: '0' },
    workers: { type: 'string', default: '1' },
  },
});

const token = randomBytes(24).toString('hex');
const sandboxKey = randomBytes(12).toString('hex');
const children: ChildProcess[] = [];
const stopAll = (): void => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
};
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));

if (!existsSync(join(EMBEDDED_DIR, 'model.safetensors'))) {
  console.error(
    `error TRAIN_NO_EMBEDDED_POLICY: the embedded policy's weights are missing in ${EMBEDDED_DIR}; ` +
      'generate them with the embedded policy script (runtime/model/embedded/README.md) and run npm start again',
  );
  process.exit(1);
}

const config = parseTrainConfig({
  preset: 'embedded-demo',
  seed: Number(flags.seed),
  ...(flags.steps === undefined ? {} : { steps: Number(flags.steps) }),
  policy: { kind: 'embedded', dir: EMBEDDED_DIR },
  data: {
    train: `sandbox:train:${SANDBOX.seed}:${SANDBOX.size}`,
    dev: `sandbox:dev:${SANDBOX.seed}:${SANDBOX.size}`,
  },
  outputDir: join('outputs', `embedded-demo-${new Date().toISOString().replace(/[:.]/g, '-')}`),
});

console.log('starting a local cluster: head + %d worker(s) on 127.0.0.1', Number(flags.workers));
const env = {
  ...process.env,
  DR_CLUSTER_TOKEN: token,
  DR_SANDBOX_API_KEY: sandboxKey,
  DR_LOG_FORMAT: 'json',
};
const head = await startNode(['head', '--port', '0', '--listen-host', '127.0.0.1'], env);
const port = Number(head.port);
for (let rank = 1; rank <= Number(flags.workers); rank++) {
  await startNode(
    ['worker', '--head', `127.0.0.1:${port}`, '--rank', String(rank), '--listen-host', '127.0.0.1'],
    env,
  );
}
const client = await connectClient({ head: `127.0.0.1:${port}`, token });
try {
  await run(client, head);
} finally {
  await client.shutdownCluster().catch(() => undefined);
  await client.close();
  stopAll();
}

async function run(client: ClusterClient, ready: Record<string, unknown>): Promise<void> {
  await client.spawn({
    kind: 'sandbox',
    name: 'sandbox',
    args: { ...SANDBOX, apiKey: sandboxKey },
    placement: { kind: 'rank', rank: 0 },
  });
  const info = await client.ask<SandboxInfoReply>('sandbox', { v: 1, type: 'sandbox.info' });
  const toolRank = Number(flags.workers) >= 1 ? 1 : 0;
  await client.spawn({
    kind: 'search',
    name: 'search/0',
    args: {
      shard: 0,
      backend: { kind: 'serper', baseUrl: info.searchUrl, apiKeyEnv: 'DR_SANDBOX_API_KEY' },
      cacheDir: ':memory:',
    },
    placement: { kind: 'rank', rank: toolRank },
  });
  await client.spawn({
    kind: 'browse',
    name: 'browse/0',
    args: { allowHosts: ['127.0.0.1'] },
    placement: { kind: 'rank', rank: toolRank },
  });
  console.log(`sandbox web: ${info.url} (${info.pages} pages, seed ${info.seed})`);

  const jobId = `train-${Date.now().toString(36)}`;
  await client.spawn({
    kind: 'trainer',
    name: `trainer/${jobId}`,
    args: { jobId, config },
    placement: { kind: 'rank', rank: 0 },
  });
  console.log(
    `GRPO job ${jobId}: ${config.steps} steps x ${config.rollout.questionsPerStep} questions x ${config.rollout.n} rollouts`,
  );
  console.log(`watch it: metrics in ${join(config.outputDir!, 'metrics.jsonl')}`);
  if (typeof ready.dashboard === 'string')
    console.log(`          dashboard ${ready.dashboard} (token in DR_CLUSTER_TOKEN of this run)`);
  console.log(`          dr status --head 127.0.0.1:${port}`);

  const bar = process.stdout.isTTY
    ? new cliProgress.SingleBar(
        { format: 'training [{bar}] {value}/{total} steps | reward {reward} | F1 {f1} | {phase}' },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(config.steps, 0, { reward: '-', f1: '-', phase: 'setting up' });
  let shown = -1;
  let status: TrainerStatus;
  for (;;) {
    status = await client.ask<TrainerStatus>(`trainer/${jobId}`, { v: 1, type: 'trainer.status' });
    const s = status.lastStep;
    const payload = {
      reward: s === null ? '-' : s.rollout.rewardMean.toFixed(3),
      f1: s === null ? '-' : s.rollout.f1Mean.toFixed(3),
      phase: status.validation.before === null ? 'validating the initial policy' : status.state,
    };
    if (bar !== null) bar.update(status.step, payload);
    else if (status.step !== shown)
      console.log(`step ${status.step}/${status.steps} reward ${payload.reward} F1 ${payload.f1}`);
    shown = status.step;
    if (status.state !== 'starting' && status.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  bar?.stop();
  if (status.state !== 'succeeded') {
    console.error(`training ${status.state}: ${status.error?.code ?? ''} ${status.error?.message ?? ''}`);
    process.exitCode = 1;
    return;
  }
  const { before, latest } = status.validation;
  console.log(
    `held-out F1 (sandbox dev split, ${config.validation.limit} questions, greedy): ${before?.toFixed(3)} -> ${latest?.toFixed(3)}`,
  );
  console.log(`outputs: ${status.outputDir}`);
}

/** Starts a `dr` node process and resolves with its "node ready" log line. */
function startNode(args: string[], env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [DR, ...args], { env, stdio: ['pipe', 'ignore', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.includes('"node ready"')) continue;
        resolve(JSON.parse(line) as Record<string, unknown>);
      }
    });
    child.once('exit', (code) => reject(new Error(`dr ${args[0]} exited with ${code}`)));
  });
}
