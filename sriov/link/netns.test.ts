import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { netnsAlive } from './netns.js';
import { createTestNetns } from '../../test/support/netns.js';

describe('netnsAlive', () => {
  it('is true for a named netns and for /proc/<pid>/ns/net, false once the netns is deleted', async () => {
    const ns = await createTestNetns('np-sln');
    expect(await netnsAlive(ns.path)).toBe(true);
    expect(await netnsAlive(`/proc/${process.pid}/ns/net`)).toBe(true);
    await ns.remove();
    expect(await netnsAlive(ns.path)).toBe(false);
  });

  it('is false for a left-behind pin file that is no longer a netns, and for ""', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'np-sriovcni-ns-'));
    const pin = path.join(dir, 'cni-1234');
    await writeFile(pin, '');
    expect(await netnsAlive(pin)).toBe(false);
    expect(await netnsAlive('')).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });
});
