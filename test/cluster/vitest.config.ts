// The real-cluster suite (`npm run test:cluster`, hack/cluster test): needs the cluster that
// `hack/cluster up` starts. Files run one at a time (they share the one node and its kubelet), and
// the tests inside a file run in order.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/cluster/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    pool: 'forks',
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 300_000,
    hookTimeout: 300_000,
    allowOnly: false,
  },
});
