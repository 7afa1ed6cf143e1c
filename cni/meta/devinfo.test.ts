import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyDeviceInfo } from './devinfo.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-devinfo-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('copyDeviceInfo', () => {
  it('copies atomically even when the daemon runs many copies to one file at once', async () => {
    const from = path.join(dir, 'dp.json');
    await writeFile(from, '{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:3b:02.0"}}');
    const to = path.join(dir, 'cni', 'net-a-cid_net1');
    const results = await Promise.all(Array.from({ length: 20 }, () => copyDeviceInfo(from, to)));
    expect(results.every(Boolean)).toBe(true);
    expect(await readFile(to, 'utf8')).toBe(await readFile(from, 'utf8'));
    expect(await readdir(path.dirname(to))).toEqual(['net-a-cid_net1']);
  });

  it('answers false when the device plugin wrote no file', async () => {
    expect(await copyDeviceInfo(path.join(dir, 'missing.json'), path.join(dir, 'out'))).toBe(false);
  });
});
