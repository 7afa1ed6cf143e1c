import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{lib,sriov,device-plugin,cni,webhook,sim,proto,hack,test,bin,deployments}/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**', 'test/vm/**', 'test/cluster/**', 'test/fixtures/**'],
    // Network-namespace tests share the host's kernel objects; keep files isolated in forks.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    allowOnly: false,
  },
});
