import { Command } from 'commander';
import { readFileSync } from 'node:fs';

// Each command group lives in scripts/commands/<group>.ts and exports `register(program)`.
const commandGroups: Array<() => Promise<{ register(program: Command): void }>> = [
  () => import('./commands/cluster.ts'),
  () => import('./commands/config.ts'),
  () => import('./commands/score.ts'),
  () => import('./commands/export.ts'),
  () => import('./commands/jobs.ts'),
  () => import('./commands/monitor.ts'),
  () => import('./commands/sandbox.ts'),
];

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const program = new Command('dr')
  .description('DeepResearcher on Node.js: run the cluster, send research/evaluate/train jobs, watch it all')
  .version(pkg.version)
  .showHelpAfterError();

for (const load of commandGroups) (await load()).register(program);

await program.parseAsync(process.argv);
