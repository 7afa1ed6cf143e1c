// The meta-plugin's verbs that Debian's 1.1.1 plugins cannot serve (STATUS/GC need CNI 1.1.0):
// the cluster network here is an in-process recording plugin built on the same skeleton.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CniError } from '../errors.js';
import { createInProcessRunner } from '../exec.js';
import { createPlugin } from '../skel.js';
import type { CniPluginFn } from '../skel.js';
import { systemClock } from '../../lib/clock.js';
import type { Clock } from '../../lib/clock.js';
import { createTestNetns } from '../../test/support/netns.js';
import type { TestNetns } from '../../test/support/netns.js';
import type { KubeClient, PodInfo } from './kube.js';
import { createMetaPlugin } from './plugin.js';

let dir: string;
// ADD checks the pod netns before the first delegate: a real one.
let netns: TestNetns;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-cni-plugin-'));
  netns = await createTestNetns('np-mp');
});
afterEach(async () => {
  await netns.remove();
  await rm(dir, { recursive: true, force: true });
});

function recorder(opts: { statusFails?: boolean } = {}) {
  const calls: string[] = [];
  const fn = createPlugin({
    supportedVersions: ['1.0.0', '1.1.0'],
    add: (c) => {
      calls.push(`ADD ${c.ifname}`);
      return Promise.resolve({
        interfaces: [{ name: c.ifname, sandbox: c.netns }],
        ips: [{ address: '10.9.0.2/24', interface: 0 }],
        routes: [],
        dns: {},
      });
    },
    del: (c) => {
      calls.push(`DEL ${c.ifname}`);
      return Promise.resolve();
    },
    check: (c) => {
      calls.push(`CHECK ${c.ifname}`);
      return Promise.resolve();
    },
    status: () => {
      calls.push('STATUS');
      return opts.statusFails === true ? Promise.reject(new CniError(50, 'no IPs left')) : Promise.resolve();
    },
    gc: (c) => {
      calls.push(`GC ${c.validAttachments.map((a) => `${a.containerId}/${a.ifname}`).join(',')}`);
      return Promise.resolve();
    },
  });
  return { calls, fn };
}

function meta(cluster: CniPluginFn, clock?: Clock) {
  return createMetaPlugin({
    logger: pino({ level: 'silent' }),
    clock: clock ?? { ...systemClock, sleep: () => Promise.resolve() },
    kubeFor: () => undefined,
    podResourcesFor: () => {
      throw new Error('not used');
    },
    runnerFor: () => createInProcessRunner({ rec: cluster }),
  });
}

const conf = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: '1.1.0',
    name: 'np',
    type: 'netplumb',
    delegates: [{ cniVersion: '1.1.0', name: 'cluster', type: 'rec' }],
    cniDir: path.join(dir, 'cache'),
    ...extra,
  });

describe('createMetaPlugin without an API server (delegates-only mode)', () => {
  it('passes STATUS and GC through to the cluster network', async () => {
    const rec = recorder();
    const plugin = meta(rec.fn);
    expect((await plugin({ env: { CNI_COMMAND: 'STATUS' }, stdin: conf() })).exitCode).toBe(0);
    const gcConf = JSON.parse(conf()) as Record<string, unknown>;
    gcConf['cni.dev/valid-attachments'] = [{ containerID: 'c1', ifname: 'eth0' }];
    const gc = await plugin({
      env: { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' },
      stdin: JSON.stringify(gcConf),
    });
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect(rec.calls).toEqual(['STATUS', 'GC c1/eth0']);
  });

  it("reports the cluster network's STATUS error code (50)", async () => {
    const res = await meta(recorder({ statusFails: true }).fn)({
      env: { CNI_COMMAND: 'STATUS' },
      stdin: conf(),
    });
    expect(JSON.parse(res.stdout)).toMatchObject({
      code: 50,
      msg: expect.stringContaining('no IPs left') as string,
    });
  });

  it('runs ADD, CHECK and DEL of the delegates list from the cache', async () => {
    const rec = recorder();
    const plugin = meta(rec.fn);
    const env = (c: string) => ({
      CNI_COMMAND: c,
      CNI_CONTAINERID: 'c1',
      CNI_NETNS: netns.path,
      CNI_IFNAME: 'eth0',
    });
    const add = await plugin({ env: env('ADD'), stdin: conf() });
    expect(JSON.parse(add.stdout)).toMatchObject({ cniVersion: '1.1.0', ips: [{ address: '10.9.0.2/24' }] });
    expect((await plugin({ env: env('CHECK'), stdin: conf() })).exitCode).toBe(0);
    expect((await plugin({ env: env('DEL'), stdin: conf() })).exitCode).toBe(0);
    expect(rec.calls).toEqual(['ADD eth0', 'CHECK eth0', 'DEL eth0']);
  });

  it('waits for the readiness indicator file, polling each second, and gives up after 45 s with code 11', async () => {
    let now = 0;
    const sleeps: number[] = [];
    const file = path.join(dir, 'ready');
    const clock: Clock = {
      ...systemClock,
      now: () => now,
      sleep: async (ms) => {
        sleeps.push(ms);
        now += ms;
        if (now === 3_000) await writeFile(file, '');
      },
    };
    const rec = recorder();
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c2', CNI_NETNS: netns.path, CNI_IFNAME: 'eth0' };
    const ok = await meta(rec.fn, clock)({ env, stdin: conf({ readinessindicatorfile: file }) });
    expect(ok.exitCode, ok.stdout).toBe(0);
    expect(sleeps).toEqual([1000, 1000, 1000]);

    now = 0;
    const missing = await meta(
      rec.fn,
      clock,
    )({ env, stdin: conf({ readinessindicatorfile: path.join(dir, 'never') }) });
    expect(JSON.parse(missing.stdout)).toMatchObject({
      code: 11,
      msg: expect.stringMatching(/did not appear within 45 s/) as string,
    });
  });
});

// Issue 12 item 8: Multus's early configs (delegates without "name", "masterplugin").
describe('createMetaPlugin with Multus-era delegates', () => {
  const env = (c: string) => ({
    CNI_COMMAND: c,
    CNI_CONTAINERID: 'c9',
    CNI_NETNS: netns.path,
    CNI_IFNAME: 'eth0',
  });
  const stdin = (delegates: object[]) =>
    JSON.stringify({
      cniVersion: '1.1.0',
      name: 'multus-demo',
      type: 'netplumb',
      delegates,
      cniDir: path.join(dir, 'cache'),
    });

  it('accepts delegates without "name" and makes the "masterplugin" one the cluster network', async () => {
    const other = recorder();
    const master = recorder();
    const plugin = createMetaPlugin({
      logger: pino({ level: 'silent' }),
      clock: { ...systemClock, sleep: () => Promise.resolve() },
      kubeFor: () => undefined,
      podResourcesFor: () => {
        throw new Error('not used');
      },
      runnerFor: () => createInProcessRunner({ other: other.fn, master: master.fn }),
    });
    const conf = stdin([
      { cniVersion: '1.1.0', type: 'other' },
      { cniVersion: '1.1.0', type: 'master', masterplugin: true },
    ]);
    const add = await plugin({ env: env('ADD'), stdin: conf });
    expect(add.exitCode, add.stdout).toBe(0);
    expect(master.calls).toEqual(['ADD eth0']);
    expect(other.calls).toEqual(['ADD net1']);
    expect((await plugin({ env: env('DEL'), stdin: conf })).exitCode).toBe(0);
  });

  it('refuses two "masterplugin" delegates, naming them', async () => {
    const res = await meta(recorder().fn)({
      env: env('ADD'),
      stdin: stdin([
        { cniVersion: '1.1.0', type: 'rec', masterplugin: true },
        { cniVersion: '1.1.0', type: 'rec', masterplugin: true },
      ]),
    });
    expect(JSON.parse(res.stdout)).toMatchObject({
      code: 7,
      msg: expect.stringMatching(/delegates\[0\], delegates\[1\] are all "masterplugin"/) as string,
    });
  });
});

describe('AddedInterface events', () => {
  async function addWithEvents(eventTiming?: 'per-attachment' | 'after-status'): Promise<string[]> {
    const rec = recorder();
    const pod: PodInfo = {
      namespace: 'ns',
      name: 'p',
      uid: 'uid-p',
      resourceVersion: '1',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'n1' },
      containerNames: ['c'],
    };
    const kube: KubeClient = {
      getPod: () => Promise.resolve(pod),
      getNad: (namespace, name) =>
        Promise.resolve({
          namespace,
          name,
          annotations: {},
          config: JSON.stringify({ cniVersion: '1.1.0', name, type: 'rec' }),
        }),
      updatePodStatusAnnotations: () => {
        rec.calls.push('STATUS WRITE');
        return Promise.resolve();
      },
      recordEvent: (_pod, event) => {
        rec.calls.push(`EVENT ${event.message}`);
        return Promise.resolve();
      },
    };
    const plugin = createMetaPlugin({
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      kubeFor: () => kube,
      podResourcesFor: () => {
        throw new Error('not used');
      },
      runnerFor: () => createInProcessRunner({ rec: rec.fn }),
      ...(eventTiming !== undefined && { eventTiming }),
    });
    const add = await plugin({
      env: {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'c1',
        CNI_NETNS: netns.path,
        CNI_IFNAME: 'eth0',
        CNI_ARGS: 'IgnoreUnknown=true;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=uid-p',
      },
      stdin: conf(),
    });
    expect(add.exitCode, add.stdout).toBe(0);
    return rec.calls;
  }

  it("posts each attachment's event as its ADD succeeds (as Multus does), not after the status write", async () => {
    expect(await addWithEvents()).toEqual([
      'ADD eth0',
      'EVENT Add eth0 [10.9.0.2/24] from cluster',
      'ADD net1',
      'EVENT Add net1 [10.9.0.2/24] from ns/n1',
      'STATUS WRITE',
    ]);
  });

  it("holds them until the ADD succeeded with eventTiming 'after-status' (the daemon's)", async () => {
    expect(await addWithEvents('after-status')).toEqual([
      'ADD eth0',
      'ADD net1',
      'STATUS WRITE',
      'EVENT Add eth0 [10.9.0.2/24] from cluster',
      'EVENT Add net1 [10.9.0.2/24] from ns/n1',
    ]);
  });
});
