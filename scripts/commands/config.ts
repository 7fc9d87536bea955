/**
 * `dr config check FILE`: validates a cluster file the way `dr head --config FILE` does (every problem at
 * once, the API-key variables checked in this environment) without starting anything, and says what the
 * cluster would run.
 */
import { Option, type Command } from 'commander';
import { loadClusterFile, type ClusterFile } from '../../config/cluster-file.ts';
import { isDrError } from '../../config/errors.ts';

export function register(program: Command): void {
  const config = program.command('config').description('Cluster files (dr head --config FILE)');
  config
    .command('check <file>')
    .description('Validate a cluster file (YAML or JSON) without starting anything; exit 2 if it is invalid')
    .addOption(
      new Option(
        '--set <key.path=value>',
        'override one setting first, as dr head does (repeatable)',
      ).argParser((v: string, prev: string[] = []) => [...prev, v]),
    )
    .option('--no-env', 'do not check that the API-key variables it names are set here')
    .option('--json', 'print the validated file (defaults filled in) as JSON')
    .action((file: string, f: { set?: string[]; env: boolean; json?: boolean }) => {
      let parsed: ClusterFile;
      try {
        parsed = loadClusterFile(file, { sets: f.set ?? [], checkEnv: f.env });
      } catch (err) {
        if (!isDrError(err)) throw err;
        process.stderr.write(`error ${err.code}: ${err.message}\n`);
        process.exit(2);
      }
      process.stdout.write(f.json === true ? `${JSON.stringify(parsed)}\n` : describe(file, parsed));
    });
}

function describe(file: string, c: ClusterFile): string {
  const lines = [`${file}: valid`];
  const search = c.search;
  lines.push(
    search === undefined
      ? '  search:   none (jobs fail with JOB_TOOLS_UNAVAILABLE)'
      : `  search:   ${search.backend}${search.baseUrl === undefined ? '' : ` at ${search.baseUrl}`}, ${search.shards} shard(s), top ${search.topK}, cache ${search.cacheDir}`,
  );
  const browse = c.browse;
  lines.push(
    browse === undefined
      ? '  browse:   none (jobs fail with JOB_TOOLS_UNAVAILABLE)'
      : `  browse:   ${browse.reader === 'extractive' ? 'extractive reader' : `reader ${browse.reader.model} at ${browse.reader.baseUrl}`}, ${browse.shards} shard(s)`,
  );
  const policies = Object.entries(c.policies);
  lines.push(`  policies: ${policies.length === 0 ? 'none' : ''}`);
  for (const [name, p] of policies)
    lines.push(
      `    ${name}: ${'checkpoint' in p ? `served by the cluster from ${p.checkpoint} (${p.provider})` : `${p.api} endpoint ${p.baseUrl}, model ${p.model}`}`,
    );
  return `${lines.join('\n')}\n`;
}
