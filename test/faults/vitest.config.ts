// The fault suite (`npm run test:faults`, issue 12): the fast fault tests that `npm test` also runs
// (test/faults/*.test.ts) plus the thick-mode suite (*.suite.ts: the daemon as a process, kill -9,
// 50 concurrent pods for 30 s), which is too slow for every `npm test`.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/faults/**/*.test.ts', 'test/faults/**/*.suite.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    allowOnly: false,
  },
});
