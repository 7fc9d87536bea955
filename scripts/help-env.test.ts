/**
 * Help texts name only environment variables that the code reads: every DR_* and PET_* variable in the
 * `--help` of every `dr` command and of `npm start` must be read somewhere in the product's source.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GROUPS = ['cluster', 'config', 'score', 'jobs', 'monitor', 'sandbox'];

function helpOf(cmd: Command): string[] {
  return [cmd.helpInformation(), ...cmd.commands.flatMap((c) => helpOf(c))];
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('help texts', () => {
  it('name no environment variable that the code does not read', async () => {
    const program = new Command('dr');
    for (const group of GROUPS) {
      const mod = (await import(`./commands/${group}.ts`)) as { register(p: Command): void };
      mod.register(program);
    }
    const mainHelp = execFileSync(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'scripts/main.ts'), '--help'],
      {
        encoding: 'utf8',
      },
    );
    const help = [...helpOf(program), mainHelp].join('\n');
    const named = new Set(help.match(/\b(?:DR|PET)_[A-Z0-9_]+\b/g) ?? []);
    const code = ['actors', 'cluster', 'config', 'runtime', 'scripts']
      .flatMap((d) => sources(join(ROOT, d)))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');

    // Reading means `env.NAME`, `env['NAME']` or the name as a whole string literal (a table of variables).
    const unread = [...named].filter(
      (name) => !new RegExp(`env\\.${name}\\b|\\[['"\`]${name}['"\`]\\]|['"\`]${name}['"\`]`).test(code),
    );

    expect(named.size).toBeGreaterThan(3);
    expect(unread).toEqual([]);
  });
});
