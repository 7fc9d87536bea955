/**
 * `npm start`: the main job on the embedded defaults. Starts a local head and a worker (real `dr` node
 * processes on loopback), the sandbox web and the search/browse tools over it, then a short GRPO run of the
 * embedded policy (config/presets/embedded-demo.json) as a TrainerActor on the head, showing progress and
 * where to watch it, and ends with held-out (dev split) F1 before and after training.
 *
 * Flags: --steps N (override the preset), --seed N, --workers N (worker processes, default 1); --help.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { parseTrainConfig } from '../config/train.ts';
import { EMBEDDED_DIR } from '../runtime/model/embedded.ts';
import { followTrainJob, startLocalCluster, submitTrainJob } from './local-training.ts';

const SANDBOX = { seed: 1, size: 1000 };

const USAGE = `Usage: npm start [-- OPTIONS]

The main job on the embedded defaults: a local head and worker(s) on 127.0.0.1 started from a cluster file
with the sandbox web's search and browse services, then a short GRPO run of the embedded policy
(config/presets/embedded-demo.json) submitted like \`dr submit train\`, ending with held-out F1 before and
after training.

Options:
  --steps <n>     optimizer steps (default: the preset's)
  --seed <n>      training seed (default 0)
  --workers <n>   worker processes beside the head (default 1)
  -h, --help      print this help
`;

function parseFlags(): { steps?: string; seed: string; workers: string } {
  try {
    const { values } = parseArgs({
      options: {
        steps: { type: 'string' },
        seed: { type: 'string', default: '0' },
        workers: { type: 'string', default: '1' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help === true) {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    for (const [name, value] of Object.entries({
      steps: values.steps,
      seed: values.seed,
      workers: values.workers,
    }))
      if (value !== undefined && !/^\d+$/.test(value))
        throw new Error(`--${name} must be a whole number, not '${value}'`);
    return values;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

const flags = parseFlags();

if (!existsSync(join(EMBEDDED_DIR, 'model.safetensors'))) {
  console.error(
    `error TRAIN_NO_EMBEDDED_POLICY: the embedded policy's weights are missing in ${EMBEDDED_DIR}; ` +
      'generate them as runtime/model/embedded/README.md says and run npm start again',
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

const workers = Number(flags.workers);
console.log(
  `starting a local cluster: head + ${workers} worker(s) on 127.0.0.1, sandbox web (seed ${SANDBOX.seed})`,
);
const cluster = await startLocalCluster({ workers, ...SANDBOX });
try {
  console.log(`sandbox web: ${cluster.sandbox.url} (${cluster.sandbox.pages} pages)`);
  const jobId = await submitTrainJob(cluster, config);
  console.log(
    `GRPO job ${jobId}: ${config.steps} steps x ${config.rollout.questionsPerStep} questions x ${config.rollout.n} rollouts`,
  );
  console.log(`watch it:  metrics   ${join(config.outputDir!, 'metrics.jsonl')}`);
  if (typeof cluster.ready.dashboard === 'string')
    console.log(`           dashboard ${cluster.ready.dashboard}`);
  const cli = `DR_CLUSTER_TOKEN=${cluster.token} npx dr`;
  const head = `--head 127.0.0.1:${cluster.port}`;
  console.log(`           ${cli} status ${head}`);
  console.log(`           ${cli} jobs ${head}   |   ${cli} logs ${jobId} ${head}`);

  const bar = process.stdout.isTTY
    ? new cliProgress.SingleBar(
        { format: 'training [{bar}] {value}/{total} steps | reward {reward} | F1 {f1} | {phase}' },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(config.steps, 0, { reward: '-', f1: '-', phase: 'setting up' });
  let shown = -1;
  const status = await followTrainJob(cluster, jobId, (s) => {
    const last = s.lastStep;
    const payload = {
      reward: last === null ? '-' : last.rollout.rewardMean.toFixed(3),
      f1: last === null ? '-' : last.rollout.f1Mean.toFixed(3),
      phase: s.validation.before === null ? 'validating the initial policy' : s.state,
    };
    if (bar !== null) bar.update(s.step, payload);
    else if (s.step !== shown)
      console.log(`step ${s.step}/${s.steps} reward ${payload.reward} F1 ${payload.f1}`);
    shown = s.step;
  });
  bar?.stop();
  if (status.state !== 'succeeded') {
    console.error(`training ${status.state}: ${status.error?.code ?? ''} ${status.error?.message ?? ''}`);
    process.exitCode = 1;
  } else {
    const { before, latest } = status.validation;
    console.log(
      `held-out F1 (sandbox dev split, ${config.validation.limit} questions, greedy): ${before?.toFixed(3)} -> ${latest?.toFixed(3)}`,
    );
    console.log(`outputs: ${status.outputDir}`);
  }
} finally {
  await cluster.stop();
}
