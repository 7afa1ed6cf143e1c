// The build-time warm-up of the thin executable's code cache (cni/daemon/sea-build.ts runs it before
// it saves the cache): a whole ADD and DEL against fakes, which fails the build when it fails.
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { warmUpCodeCache } from './netplumb-cni-main.js';

const warmDirs = async (): Promise<string[]> =>
  (await readdir(tmpdir())).filter((f) => f.startsWith('netplumb-cni-warm-'));

describe('warmUpCodeCache', () => {
  it('runs ADD and DEL through the plugin against fakes and leaves no temp dir behind', async () => {
    const before = await warmDirs();
    await expect(warmUpCodeCache()).resolves.toBeUndefined();
    expect(await warmDirs()).toEqual(before);
  });
});
