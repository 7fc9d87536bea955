import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadClusterConfig, parseHostPort, resolveClusterToken } from './cluster.ts';

const TOKEN = 'abcdefghijklmnop-token';
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dr-config-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('cluster configuration', () => {
  it('reads node identity from the PET_* variables torchrun and PyTorchJob set', () => {
    const c = loadClusterConfig({
      env: {
        PET_NODE_RANK: '3',
        PET_MASTER_ADDR: '10.0.0.1',
        PET_MASTER_PORT: '7400',
        PET_NNODES: '4',
        DR_CLUSTER_TOKEN: TOKEN,
      },
      cwd: tempDir(),
    });
    expect(c).toMatchObject({
      rank: 3,
      masterAddr: '10.0.0.1',
      masterPort: 7400,
      nnodes: 4,
      token: TOKEN,
      heartbeatIntervalMs: 1_000,
    });
  });

  it('lets flags override the environment, and the environment override the file', () => {
    const c = loadClusterConfig({
      env: { PET_NODE_RANK: '1', PET_NNODES: '5', DR_CLUSTER_TOKEN: TOKEN },
      flags: { rank: '2' },
      fileSettings: { masterAddr: 'file-host', nnodes: 2, downAfterMs: 9_000 },
      cwd: tempDir(),
    });
    expect(c).toMatchObject({ rank: 2, masterAddr: 'file-host', nnodes: 5, downAfterMs: 9_000 });
  });

  it('names the setting and the fix for a non-numeric rank', () => {
    expect(() =>
      loadClusterConfig({
        env: { PET_NODE_RANK: 'abc', PET_MASTER_ADDR: 'h', DR_CLUSTER_TOKEN: TOKEN },
        cwd: tempDir(),
      }),
    ).toThrow(
      /invalid cluster setting rank \(PET_NODE_RANK or --rank\) = "abc".*Fix: set it to a whole number >= 0/,
    );
  });

  it('refuses to start without a token and says how to make one', () => {
    expect(() =>
      loadClusterConfig({ env: { PET_NODE_RANK: '0', PET_MASTER_ADDR: 'h' }, cwd: tempDir() }),
    ).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(/token.*missing.*DR_CLUSTER_TOKEN.*\.dr-token/),
      }),
    );
  });

  it('reads the token from a git-ignored .dr-token file when the environment has none', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.dr-token'), `${TOKEN}\n`);
    expect(loadClusterConfig({ env: { PET_NODE_RANK: '0', PET_MASTER_ADDR: 'h' }, cwd }).token).toBe(TOKEN);
    expect(resolveClusterToken({ env: {}, cwd })).toBe(TOKEN);
  });

  it('rejects failure-detector timings that cannot work', () => {
    const env = {
      PET_NODE_RANK: '0',
      PET_MASTER_ADDR: 'h',
      DR_CLUSTER_TOKEN: TOKEN,
      DR_HEARTBEAT_MS: '1000',
      DR_SUSPECT_AFTER_MS: '500',
    };
    expect(() => loadClusterConfig({ env, cwd: tempDir() })).toThrow(
      /suspectAfterMs .*must exceed the heartbeat interval/,
    );
  });

  it('parses --head HOST:PORT including IPv6 and rejects a missing port', () => {
    expect(parseHostPort('10.1.2.3:7400')).toEqual({ host: '10.1.2.3', port: 7400 });
    expect(parseHostPort('[::1]:7400')).toEqual({ host: '::1', port: 7400 });
    expect(() => parseHostPort('headnode')).toThrow(/Fix: give the head as HOST:PORT/);
  });
});
