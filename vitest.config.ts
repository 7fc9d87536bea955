import { defineConfig } from 'vitest/config';

// Cluster tests start real processes and sockets; keep parallelism modest on 2-core CI machines.
export default defineConfig({
  test: {
    include: ['{actors,runtime,cluster,config,scripts}/**/*.test.ts'],
    // Generous: process-spawning tests take several times longer on a loaded 2-core CI machine than here (the
    // cluster-jobs file ran 221 s under stress), and a timeout only decides how long a hung test takes to fail.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    // expect.poll asserts that something happens eventually, not how fast: vitest's 1 s default is shorter
    // than a heartbeat round or a metrics report takes on a loaded 2-core CI machine.
    expect: { poll: { timeout: 15_000 } },
  },
});
