import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Most test files wait on real brokers, sockets, ptys and child processes more than they
    // compute: one more fork than there are cores keeps the cores busy (on 2 cores the suite
    // took 329 s with vitest's default of cores - 1 forks, 152 s with 3).
    maxWorkers: availableParallelism() + 1,
    minWorkers: 1,
  },
});
