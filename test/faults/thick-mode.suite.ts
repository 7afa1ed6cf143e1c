// The fault suite (npm run test:faults): the thick-mode CNI path (C shim → daemon process →
// meta-plugin → real delegates and the in-process sriov plugin) under the faults of issue 12.
// After every fault: no leaked netns, host links, host-local leases, DEL cache or sriov state
// files, and the daemon still answers. Loopback only: a veth master, a simulated SR-IOV node whose
// VFs are veths, the fake API server on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildShim } from '../../cni/daemon/shim-build.js';
import { startFakeApiServer } from '../../sim/apiserver.js';
import type { FakeApiServer } from '../../sim/apiserver.js';
import { simulatedNode } from '../../sim/simulated-node.js';
import { createTestVeth } from '../support/netns.js';
import type { TestVeth } from '../support/netns.js';
import {
  callShim,
  filesUnder,
  healthy,
  hostLinks,
  leases,
  netnsNames,
  run,
  startDaemon,
  writeSlowMacvlan,
} from './harness.js';
import type { DaemonProcess, ShimResult } from './harness.js';

const id = randomBytes(3).toString('hex');
const NS_PREFIX = `npf${id}`;
const SOAK_SECONDS = Number(process.env['NETPLUMB_FAULTS_SOAK_S'] ?? 30);
const SOAK_WORKERS = Number(process.env['NETPLUMB_FAULTS_WORKERS'] ?? 50);

let dir: string;
let api: FakeApiServer;
let daemon: DaemonProcess;
let daemonArgs: string[];
let shim: string;
let master: TestVeth;
let vfVeth: TestVeth;
let vfPci: string;
let baseLinks: string[];
const summary: string[] = [];
const paths = () => ({
  socket: path.join(dir, 'run', 'cni.sock'),
  cniDir: path.join(dir, 'cache'),
  dataDir: path.join(dir, 'ipam'),
  sriovState: path.join(dir, 'sriov'),
  binDir: path.join(dir, 'bin'),
  confDir: path.join(dir, 'net.d'),
});

function macvlan(type = 'macvlan', subnet = '10.120.0.0/16') {
  return {
    cniVersion: '1.0.0',
    type,
    master: master.name,
    mode: 'bridge',
    ipam: { type: 'host-local', subnet, dataDir: paths().dataDir },
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-faults-'));
  const p = paths();
  master = await createTestVeth('npfm');
  vfVeth = await createTestVeth('npfv');
  await run(['ip', 'link', 'set', master.name, 'up']);
  shim = (await buildShim(path.join(dir, 'shim', 'netplumb-shim'))).file;
  await writeSlowMacvlan(p.binDir, 2);
  for (const plugin of ['macvlan', 'host-local'])
    await run(['ln', '-s', `/usr/lib/cni/${plugin}`, path.join(p.binDir, plugin)]);
  await mkdir(p.confDir, { recursive: true });
  await writeFile(
    path.join(p.confDir, '10-cluster.conflist'),
    JSON.stringify({ cniVersion: '1.0.0', name: 'cluster', plugins: [macvlan('macvlan', '10.110.0.0/16')] }),
  );
  const node = await simulatedNode()
    .pf('0000:5e:00.0', {
      netdev: `npfpf${id}`.slice(0, 15),
      vendor: '8086',
      device: '158b',
      driver: 'i40e',
      totalVfs: 4,
    })
    .vfs(1, { driver: 'iavf', device: '154c', overrides: { 0: { netdev: vfVeth.name } } })
    .write(path.join(dir, 'node'));
  vfPci = node.vfAddresses[0] ?? '';
  api = await startFakeApiServer();
  api.addNad('default', 'macvlan-conf', macvlan());
  api.addNad('default', 'slow', macvlan('slow-macvlan'));
  api.addNad('default', 'broken', { ...macvlan(), master: 'np-nosuch0' });
  api.addNad('default', 'sriov-bad-ipam', {
    cniVersion: '1.0.0',
    type: 'sriov',
    vlan: 77,
    ipam: { type: 'host-local', subnet: '10.0.0.0/33' },
  });
  const kubeconfig = await api.writeKubeconfig(path.join(dir, 'kubeconfig'));
  daemonArgs = [
    '--no-write-config',
    '--kubeconfig',
    kubeconfig,
    '--node-name',
    'node-a',
    '--simulated-node',
    path.join(dir, 'node'),
    '--sriov-state-dir',
    p.sriovState,
    '--ready-wait-ms',
    '20000',
    '--log-level',
    'warn',
  ];
  daemon = await startDaemon(daemonArgs, p.socket);
  expect(await healthy(p.socket), daemon.stderr()).toBe(true);
  baseLinks = await hostLinks();
}, 120_000);

afterAll(async () => {
  await daemon.stop();
  await api.stop().catch(() => undefined);
  for (const ns of await netnsNames(NS_PREFIX)) await run(['ip', 'netns', 'del', ns]).catch(() => undefined);
  await vfVeth.remove();
  await master.remove();
  await rm(dir, { recursive: true, force: true });
  console.log(`fault suite: ${summary.join('; ')}`);
});

let seq = 0;
interface Pod {
  readonly name: string;
  readonly cid: string;
  readonly ns: string;
}

async function newPod(networks: string | undefined): Promise<Pod> {
  seq++;
  const pod = { name: `pod-${seq}`, cid: `cid-${id}-${seq}`, ns: `${NS_PREFIX}-${seq}` };
  await run(['ip', 'netns', 'add', pod.ns]);
  api.addPod({
    namespace: 'default',
    name: pod.name,
    uid: `uid-${pod.name}`,
    ...(networks === undefined ? {} : { annotations: { 'k8s.v1.cni.cncf.io/networks': networks } }),
  });
  // The daemon reads pods from its informer; wait until the watch has delivered this one.
  await new Promise((r) => setTimeout(r, 150));
  return pod;
}

function cni(command: string, pod: Pod, opts: { netns?: string } = {}): Promise<ShimResult> {
  const p = paths();
  const env = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.cid,
    CNI_NETNS: opts.netns ?? `/run/netns/${pod.ns}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name};K8S_POD_UID=uid-${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.cid}`,
  };
  const stdin = {
    cniVersion: '1.0.0',
    name: 'netplumb',
    type: 'netplumb-shim',
    daemonSocket: p.socket,
    clusterNetwork: path.join(p.confDir, '10-cluster.conflist'),
    confDir: p.confDir,
    cniDir: p.cniDir,
    binDir: p.binDir,
    devinfoDir: path.join(dir, 'devinfo'),
  };
  return callShim(shim, env, JSON.stringify(stdin));
}

async function removeNetns(pod: Pod): Promise<void> {
  await run(['ip', 'netns', 'del', pod.ns]).catch(() => undefined);
}

const msgOf = (r: ShimResult) => JSON.parse(r.stdout) as { code: number; msg: string };

/** The promise kept after every fault. */
async function expectClean(what: string, allowCache: readonly string[] = []): Promise<void> {
  const p = paths();
  expect(await netnsNames(NS_PREFIX), `${what}: netns`).toEqual([]);
  // Only links this suite could leak (other suites run on the same host): its prefixes, temp names.
  const ours = (names: string[]) => names.filter((n) => /^(npf|npv)/.test(n));
  expect(ours(await hostLinks()), `${what}: host links`).toEqual(ours(baseLinks));
  expect(await leases(p.dataDir), `${what}: host-local leases`).toEqual([]);
  expect(
    (await filesUnder(p.cniDir)).filter((f) => !allowCache.includes(f)),
    `${what}: DEL cache`,
  ).toEqual([]);
  expect(await filesUnder(p.sriovState), `${what}: sriov state`).toEqual([]);
  expect(await healthy(p.socket), `${what}: daemon alive`).toBe(true);
  summary.push(`${what} ok`);
}

describe('fault suite: the thick-mode CNI path', () => {
  it('kill -9 of the daemon mid-ADD: the shim says so, the restarted daemon DELs everything', async () => {
    const pod = await newPod('macvlan-conf,slow');
    const add = cni('ADD', pod);
    await new Promise((r) => setTimeout(r, 1_000)); // inside the slow delegate
    await daemon.kill9();
    const res = await add;
    expect(res.code).toBe(1);
    expect(msgOf(res).code).toBe(11);
    expect(msgOf(res).msg).not.toMatch(/Success/);
    expect(msgOf(res).msg).toMatch(/daemon closed the connection without a response|not reachable/);
    daemon = await startDaemon(daemonArgs, paths().socket);
    await new Promise((r) => setTimeout(r, 2_000)); // the orphaned delegate finishes
    const del = await cni('DEL', pod);
    expect(del.code, del.stdout).toBe(0);
    await removeNetns(pod);
    await expectClean('kill -9 mid-ADD');
  }, 60_000);

  it('a failing 3rd delegate: ADD fails and leaves nothing', async () => {
    const pod = await newPod('macvlan-conf,broken');
    const add = await cni('ADD', pod);
    expect(add.code).toBe(1);
    expect(msgOf(add).msg).toMatch(/default\/broken/);
    expect((await cni('DEL', pod)).code).toBe(0);
    await removeNetns(pod);
    await expectClean('failing 3rd delegate');
  });

  it('pod and netns deleted before DEL: DEL still releases everything', async () => {
    const pod = await newPod('macvlan-conf');
    expect((await cni('ADD', pod)).code).toBe(0);
    api.removePod('default', pod.name);
    await removeNetns(pod);
    const del = await cni('DEL', pod, { netns: '' });
    expect(del.code, del.stdout).toBe(0);
    await expectClean('pod and netns deleted before DEL');
  });

  it('a corrupt DEL cache: DEL recovers from the API and releases every lease', async () => {
    const pod = await newPod('macvlan-conf,macvlan-conf');
    expect((await cni('ADD', pod)).code).toBe(0);
    await writeFile(path.join(paths().cniDir, pod.cid), '{"kind":"netplumbCacheV1","attachm');
    expect((await cni('DEL', pod)).code).toBe(0);
    await removeNetns(pod);
    await expectClean('corrupt cache', [`${pod.cid}.corrupt`]);
    await rm(path.join(paths().cniDir, `${pod.cid}.corrupt`));
  });

  it('a repeated ADD: refused, the first attachment intact, DEL cleans up', async () => {
    const pod = await newPod('macvlan-conf');
    expect((await cni('ADD', pod)).code).toBe(0);
    const again = await cni('ADD', pod);
    expect(again.code).toBe(1);
    expect(msgOf(again).msg).toMatch(/already attached/);
    const { stdout } = await run(['ip', '-n', pod.ns, '-j', 'link', 'show']);
    expect((JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname).sort()).toEqual([
      'eth0',
      'lo',
      'net1',
    ]);
    expect((await cni('DEL', pod)).code).toBe(0);
    await removeNetns(pod);
    await expectClean('repeated ADD');
  });

  it('an IPAM failure in the sriov delegate: the VF goes back to the host as it was', async () => {
    const before = await run(['ip', '-j', 'link', 'show', vfVeth.name]);
    const pod = await newPod(JSON.stringify([{ name: 'sriov-bad-ipam', deviceID: vfPci }]));
    const add = await cni('ADD', pod);
    expect(add.code).toBe(1);
    expect(msgOf(add).msg).toMatch(/sriov-bad-ipam/);
    const after = await run(['ip', '-j', 'link', 'show', vfVeth.name]);
    const mac = (s: string) => (JSON.parse(s) as { address: string }[])[0]?.address;
    expect(mac(after.stdout)).toBe(mac(before.stdout));
    expect((await cni('DEL', pod)).code).toBe(0);
    await removeNetns(pod);
    await expectClean('IPAM failure in sriov');
  });

  it(
    `${SOAK_WORKERS} concurrent pods ADD/DEL for ${SOAK_SECONDS} s: nothing leaks, the daemon stays up`,
    async () => {
      const deadline = Date.now() + SOAK_SECONDS * 1000;
      let adds = 0;
      let failedAdds = 0;
      const ms: number[] = [];
      const worker = async (): Promise<void> => {
        while (Date.now() < deadline) {
          const pod = await newPod('macvlan-conf');
          const t1 = performance.now();
          const add = await cni('ADD', pod);
          const t2 = performance.now();
          ms.push(t2 - t1);
          if (add.code === 0) adds++;
          else failedAdds++;
          const del = await cni('DEL', pod);
          expect(del.code, del.stdout).toBe(0);
          await removeNetns(pod);
          api.removePod('default', pod.name);
        }
      };
      await Promise.all(Array.from({ length: SOAK_WORKERS }, worker));
      expect(adds).toBeGreaterThan(0);
      ms.sort((a, b) => a - b);
      const p50 = Math.round(ms[Math.floor(ms.length / 2)] ?? 0);
      summary.push(`soak ${adds} ADD ok / ${failedAdds} ADD failed, ADD p50 ${p50} ms (informational)`);
      await expectClean(`${SOAK_WORKERS} pods x ${SOAK_SECONDS} s`);
    },
    (SOAK_SECONDS + 240) * 1000,
  );

  it('API down during ADD (code 11, nothing left) and during DEL (cleans up from the cache)', async () => {
    const withApi = await newPod('macvlan-conf');
    expect((await cni('ADD', withApi)).code).toBe(0);
    const pod = await newPod('macvlan-conf');
    await api.stop();
    const add = await cni('ADD', pod);
    expect(add.code).toBe(1);
    expect(msgOf(add).code).toBe(11);
    expect((await cni('DEL', pod)).code).toBe(0);
    expect((await cni('DEL', withApi)).code).toBe(0);
    await removeNetns(pod);
    await removeNetns(withApi);
    await expectClean('API down during ADD and DEL');
    expect(await readFile(path.join(dir, 'kubeconfig'), 'utf8')).toContain('127.0.0.1');
  }, 60_000);
});
