/**
 * Held-out sandbox F1 before and after a short GRPO run of the embedded policy, over 3 training seeds (the
 * `npm start` setup: local head + worker, sandbox web, embedded-demo preset). Prints a table and writes it,
 * with the raw numbers, to scripts/sandbox-f1-seeds.results.md. The claim it checks: the mean gain is larger
 * than the spread (max − min) of the final F1 across seeds.
 *
 * Usage: npx tsx scripts/sandbox-f1-seeds.ts [--steps N] [--seeds 0,1,2] [--set JSON] [--results FILE]
 *
 * --set merges a JSON object over the preset (e.g. '{"optimizer":{"lr":3e-4}}') to compare settings;
 * --results writes the report elsewhere (the committed file is the preset's own run).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseTrainConfig } from '../config/train.ts';
import { EMBEDDED_DIR } from '../runtime/model/embedded.ts';
import { followTrainJob, startLocalCluster, submitTrainJob } from './local-training.ts';

const SANDBOX = { seed: 1, size: 1000 };
const { values: flags } = parseArgs({
  options: {
    steps: { type: 'string' },
    seeds: { type: 'string', default: '0,1,2' },
    set: { type: 'string', default: '{}' },
    results: { type: 'string' },
  },
});
const seeds = flags.seeds!.split(',').map(Number);
const overrides = JSON.parse(flags.set!) as Record<string, unknown>;
const resultsFile = flags.results ?? fileURLToPath(new URL('./sandbox-f1-seeds.results.md', import.meta.url));

const rows: { seed: number; before: number; after: number; seconds: number }[] = [];
const cluster = await startLocalCluster({ workers: 1, ...SANDBOX });
try {
  for (const seed of seeds) {
    const config = parseTrainConfig({
      preset: 'embedded-demo',
      policy: { kind: 'embedded', dir: EMBEDDED_DIR },
      data: {
        train: `sandbox:train:${SANDBOX.seed}:${SANDBOX.size}`,
        dev: `sandbox:dev:${SANDBOX.seed}:${SANDBOX.size}`,
      },
      outputDir: join('outputs', `f1-seeds-${Date.now().toString(36)}-${seed}`),
      ...overrides,
      seed,
      ...(flags.steps === undefined ? {} : { steps: Number(flags.steps) }),
    });
    const t0 = performance.now();
    const status = await followTrainJob(cluster, await submitTrainJob(cluster, config));
    if (status.state !== 'succeeded')
      throw new Error(`seed ${seed}: ${status.state} ${status.error?.code} ${status.error?.message}`);
    rows.push({
      seed,
      before: status.validation.before!,
      after: status.validation.latest!,
      seconds: (performance.now() - t0) / 1000,
    });
    console.log(
      `seed ${seed}: F1 ${status.validation.before!.toFixed(3)} -> ${status.validation.latest!.toFixed(3)}`,
    );
  }
} finally {
  await cluster.stop();
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const gain = mean(rows.map((r) => r.after - r.before));
const spread = Math.max(...rows.map((r) => r.after)) - Math.min(...rows.map((r) => r.after));
const table = [
  '| seed | F1 before | F1 after | gain | wall (s) |',
  '| --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.seed} | ${r.before.toFixed(3)} | ${r.after.toFixed(3)} | ${(r.after - r.before).toFixed(3)} | ${r.seconds.toFixed(0)} |`,
  ),
].join('\n');
const verdict = `mean gain ${gain.toFixed(3)} vs spread of final F1 across seeds ${spread.toFixed(3)}: ${gain > spread ? 'gain larger than spread' : 'gain NOT larger than spread'}`;
const settings =
  flags.set === '{}' ? 'the embedded-demo preset' : `the embedded-demo preset with ${flags.set}`;
const report = `# Held-out sandbox F1 before/after GRPO (embedded policy, ${new Date().toISOString()})\n\nSettings: ${settings}.\n\n${table}\n\n${verdict}\n`;
console.log(`\n${table}\n\n${verdict}`);
await writeFile(resultsFile, report);
