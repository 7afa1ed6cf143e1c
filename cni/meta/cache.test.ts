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
