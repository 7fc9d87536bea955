/**
 * `npm test`'s first step (the `pretest` script): the dashboard's end-to-end test drives a real headless
 * Chromium, so a fresh machine gets Debian's `chromium` package when this process may install it (root, or
 * password-less sudo, with apt-get), and otherwise a message saying exactly how to get one. A browser is
 * found at $DR_CHROMIUM_PATH, else /usr/bin/chromium.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { pathToFileURL } from 'node:url';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

export interface BrowserHost {
  /** The browser binary the test will launch. */
  path: string;
  executable: (path: string) => boolean;
  platform: NodeJS.Platform;
  isRoot: boolean;
  has: (command: string) => boolean;
}

export type BrowserPlan =
  | { kind: 'ready'; path: string }
  | { kind: 'install'; command: string[] }
  | { kind: 'missing'; message: string };

const APT = ['sh', '-c', 'apt-get update && apt-get install -y --no-install-recommends chromium'];

export function planBrowser(host: BrowserHost): BrowserPlan {
  if (host.executable(host.path)) return { kind: 'ready', path: host.path };
  const custom = host.path !== DEFAULT_CHROMIUM;
  if (!custom && host.platform === 'linux' && host.has('apt-get')) {
    if (host.isRoot) return { kind: 'install', command: APT };
    if (host.has('sudo') && spawnSync('sudo', ['-n', 'true']).status === 0)
      return { kind: 'install', command: ['sudo', '-n', ...APT] };
  }
  return {
    kind: 'missing',
    message: custom
      ? `DR_CHROMIUM_PATH=${host.path} is not an executable file. Fix: point it at a Chromium or Chrome binary`
      : `the dashboard's end-to-end test needs headless Chromium at ${DEFAULT_CHROMIUM}, and this process cannot install it. Fix: run \`sudo apt-get install chromium\` (Debian/Ubuntu), or set DR_CHROMIUM_PATH to a Chromium or Chrome binary, then npm test again`,
  };
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function main(): number {
  const host: BrowserHost = {
    path: process.env.DR_CHROMIUM_PATH ?? DEFAULT_CHROMIUM,
    executable,
    platform: process.platform,
    isRoot: process.getuid?.() === 0,
    has: (command) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0,
  };
  const plan = planBrowser(host);
  if (plan.kind === 'ready') return 0;
  if (plan.kind === 'missing') {
    process.stderr.write(`npm test: ${plan.message}\n`);
    return 1;
  }
  process.stderr.write(
    `npm test: installing Debian's chromium for the dashboard test: ${plan.command.join(' ')}\n`,
  );
  const [cmd = 'sh', ...args] = plan.command;
  const run = spawnSync(cmd, args, { stdio: 'inherit' });
  if (run.status === 0 && executable(DEFAULT_CHROMIUM)) return 0;
  process.stderr.write(
    `npm test: installing chromium failed (exit ${run.status}). Fix: install it yourself (apt-get install chromium), or set DR_CHROMIUM_PATH to a Chromium or Chrome binary\n`,
  );
  return 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main();
