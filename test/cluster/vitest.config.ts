// The real-cluster suite (`npm run test:cluster`, hack/cluster test): needs the cluster that
// `hack/cluster up` starts. Files run one at a time (they share the one node and its kubelet), and
// the tests inside a file run in order. netplumb.test.ts runs first (it ends with `kubectl delete -k`
// and checks the node is clean); the others follow by name, each installing and removing netplumb.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { BaseSequencer } from 'vitest/node';
import type { TestSpecification } from 'vitest/node';

class NetplumbFirst extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification): number => (f.moduleId.endsWith('/netplumb.test.ts') ? 0 : 1);
    return Promise.resolve(
      [...files].sort((a, b) => rank(a) - rank(b) || a.moduleId.localeCompare(b.moduleId)),
    );
  }
}

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/cluster/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    pool: 'forks',
    fileParallelism: false,
    sequence: { concurrent: false, sequencer: NetplumbFirst },
    testTimeout: 300_000,
    hookTimeout: 300_000,
    allowOnly: false,
  },
});
