// The pod netns look before ADD: the listing starts early (it overlaps the API reads) and is listed
// again when an earlier, never-completed ADD was undone in between (that DEL changes the netns).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../lib/clock.js';
import { CniError, CniErrorCode } from '../errors.js';
import { createInProcessRunner } from '../exec.js';
import { createPlugin } from '../skel.js';
import { CACHE_KIND, writeCache } from './cache.js';
import { createMetaPlugin } from './plugin.js';
import { checkPodNetns, prefetchLinkNames } from './pod-netns.js';
import type { PodNetns } from './pod-netns.js';

function fakeNetns(links: Set<string>, fail?: Error) {
  const listed: string[] = [];
  const port: PodNetns = {
    linkNames(netns) {
      listed.push(netns);
      return fail === undefined ? Promise.resolve([...links]) : Promise.reject(fail);
    },
  };
  return { port, listed };
}

describe('prefetchLinkNames', () => {
  it('lists at once and answers that listing on the first call, then lists again', async () => {
    const links = new Set(['lo', 'eth0']);
    const f = fakeNetns(links);
    const pre = prefetchLinkNames(f.port, '/run/netns/a');
    expect(f.listed).toEqual(['/run/netns/a']);
    links.delete('eth0');
    expect(await pre.linkNames('/run/netns/a')).toEqual(['lo', 'eth0']);
    expect(await pre.linkNames('/run/netns/a')).toEqual(['lo']);
    expect(await pre.linkNames('/run/netns/b')).toEqual(['lo']);
    expect(f.listed).toEqual(['/run/netns/a', '/run/netns/a', '/run/netns/b']);
  });

  it('reports a failed listing only when asked, and starts none for an empty CNI_NETNS', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => {
      unhandled.push(err);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const f = fakeNetns(new Set(), new Error('no such netns'));
      const pre = prefetchLinkNames(f.port, '/run/netns/gone');
      await new Promise((r) => setTimeout(r, 10));
      expect(unhandled).toEqual([]);
      await expect(pre.linkNames('/run/netns/gone')).rejects.toThrow('no such netns');
      const none = fakeNetns(new Set());
      const empty = prefetchLinkNames(none.port, '');
      expect(none.listed).toEqual([]);
      const err = await checkPodNetns(empty, '', [{ name: 'cluster', ifname: 'eth0' }]).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CniError);
      expect((err as CniError).code).toBe(CniErrorCode.InvalidEnvironmentVariables);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('ADD after an earlier ADD that never completed', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'np-pod-netns-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('looks at the pod netns again after undoing it (the early listing still shows its eth0)', async () => {
    const netns = '/run/netns/np-pod-netns-test';
    const links = new Set(['lo', 'eth0']);
    const f = fakeNetns(links);
    const calls: string[] = [];
    const rec = createPlugin({
      supportedVersions: ['1.0.0', '1.1.0'],
      add: (c) => {
        calls.push(`ADD ${c.ifname}`);
        links.add(c.ifname);
        return Promise.resolve({
          interfaces: [{ name: c.ifname, sandbox: c.netns }],
          ips: [],
          routes: [],
          dns: {},
        });
      },
      del: (c) => {
        calls.push(`DEL ${c.ifname}`);
        links.delete(c.ifname);
        return Promise.resolve();
      },
      check: () => Promise.resolve(),
    });
    const cluster = { cniVersion: '1.1.0', name: 'cluster', type: 'rec' };
    const cniDir = path.join(dir, 'cache');
    // What a crash after the delegate attached eth0, before its result was recorded, leaves behind.
    await writeCache(cniDir, {
      kind: CACHE_KIND,
      containerId: 'c1',
      netns,
      podNamespace: '',
      podName: '',
      podUid: '',
      attachments: [
        {
          name: 'cluster',
          ifname: 'eth0',
          isDefault: true,
          config: cluster,
          capabilityArgs: {},
          cniArgs: [],
        },
      ],
    });
    const plugin = createMetaPlugin({
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      kubeFor: () => undefined,
      podResourcesFor: () => {
        throw new Error('not used');
      },
      runnerFor: () => createInProcessRunner({ rec }),
      podNetns: f.port,
    });
    const res = await plugin({
      env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: netns, CNI_IFNAME: 'eth0' },
      stdin: JSON.stringify({
        cniVersion: '1.1.0',
        name: 'np',
        type: 'netplumb',
        delegates: [cluster],
        cniDir,
      }),
    });
    expect(res.exitCode, res.stdout).toBe(0);
    expect(calls).toEqual(['DEL eth0', 'ADD eth0']);
    expect(f.listed).toEqual([netns, netns]);
  });
});
