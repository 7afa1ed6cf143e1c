import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CniError, CniErrorCode } from '../errors.js';
import { CACHE_KIND, cachePath, readCache, writeCache } from './cache.js';
import type { MetaCache } from './cache.js';

const cache: MetaCache = {
  kind: CACHE_KIND,
  containerId: 'c1',
  netns: '/run/netns/x',
  podNamespace: 'ns',
  podName: 'p',
  podUid: 'u',
  attachments: [],
};

describe('writeCache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'np-cache-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a missing cache directory 0700 and the cache 0600, readable back', async () => {
    const cniDir = path.join(dir, 'cni', 'cache');
    await writeCache(cniDir, cache);
    expect((await stat(cniDir)).mode & 0o777).toBe(0o700);
    expect((await stat(cachePath(cniDir, 'c1'))).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(cachePath(cniDir, 'c1'), 'utf8'))).toEqual(cache);
    expect(await readCache(cniDir, 'c1', 'eth0')).toMatchObject({ state: 'ok', cache });
  });

  it('rejects with an I/O CniError naming the file when the directory cannot be made', async () => {
    const blocker = path.join(dir, 'file');
    await writeFile(blocker, '');
    const err = await writeCache(path.join(blocker, 'cache'), cache).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(CniErrorCode.IoFailure);
    expect((err as CniError).message).toContain(path.join(blocker, 'cache', 'c1'));
  });
});

describe('readCache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'np-cache-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('calls a cache of the wrong shape corrupt, naming each bad key and what it should be', async () => {
    const text = JSON.stringify({ ...cache, podUid: 7, attachments: [{ name: 'a', cniArgs: [['K']] }] });
    await writeFile(cachePath(dir, 'c1'), text);
    expect(await readCache(dir, 'c1', 'eth0')).toEqual({
      state: 'corrupt',
      problem:
        'podUid: Invalid input: expected string, received number; ' +
        'attachments[0].ifname: Invalid input: expected string, received undefined; ' +
        'attachments[0].isDefault: Invalid input: expected boolean, received undefined; ' +
        'attachments[0].config: Invalid input; ' +
        'attachments[0].capabilityArgs: Invalid input; ' +
        'attachments[0].cniArgs[0]: Too small: expected array to have >=2 items',
      text,
    });
  });

  it('calls an array that is not a Multus cache corrupt, with the first problem', async () => {
    const text = JSON.stringify([{ Name: 'x' }]);
    await writeFile(cachePath(dir, 'c1'), text);
    expect(await readCache(dir, 'c1', 'eth0')).toEqual({
      state: 'corrupt',
      problem: 'neither a netplumb nor a Multus cache: Invalid input: expected string, received undefined',
      text,
    });
  });
});
