import { defineConfig } from 'vitest/config';

// Cluster tests start real processes and sockets; keep parallelism modest on 2-core CI machines.
export default defineConfig({
  test: {
    include: ['{actors,runtime,cluster,config,scripts}/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    // expect.poll asserts that something happens eventually, not how fast: vitest's 1 s default is shorter
    // than a heartbeat round or a metrics report takes on a loaded 2-core CI machine.
    expect: { poll: { timeout: 15_000 } },
  },
});
