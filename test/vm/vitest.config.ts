// The real-kernel suite: runs only inside the hack/vm-e2e guest (`npm run test:vm`), one file at a
// time, because every file works on the same kernel objects (the NVMe PF, the netdevsim PF).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/vm/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    globalSetup: ['test/vm/support/guest-only.ts'],
    pool: 'forks',
    fileParallelism: false,
    // One worker for every file: under TCG each fresh worker spends seconds importing vitest and
    // the modules the files share. The files keep no module-level state.
    isolate: false,
    // TCG runs 10x slower than the host, and more when the host's cores are busy.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    allowOnly: false,
  },
});
