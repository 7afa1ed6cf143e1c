// VLAN-configured NICs for real: a dummy NIC with two 802.1Q sub-interfaces on the guest's kernel,
// advertised by the `netplumb device-plugin` process as two `nic` pools with slots to the fake
// kubelet, which admits two pods (Allocate) and serves their slots over PodResources; the
// meta-plugin executable (netplumb-cni) maps each slot to a real Debian macvlan / ipvlan delegate
// on that VLAN interface in real pod netns. The pods ping each other over both, network-status
// lands on the pod (fake API server), and DEL leaves nothing behind.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApiServer } from '../../sim/apiserver.js';
import type { FakeApiServer } from '../../sim/apiserver.js';
import { startFakeKubelet } from '../../sim/kubelet.js';
import type { FakeKubelet } from '../../sim/kubelet.js';
import { execCni, expectSuccess } from './support/cni.js';
import { startDevicePlugin } from './support/device-plugin.js';
import type { RunningDevicePlugin } from './support/device-plugin.js';
import { ipJson, linkNames, netnsNames, run, uniqueName, writeGuestExecutable } from './support/guest.js';
import { kernelSnapshot } from './support/snapshot.js';
import type { KernelSnapshot } from './support/snapshot.js';

const NETWORK_STATUS = 'k8s.v1.cni.cncf.io/network-status';
const R210 = 'intel.com/vlan210';
const R211 = 'intel.com/vlan211';
// Under TCG a process start takes seconds, and more on a busy host.
const SLOW = 240_000;

interface Pod {
  readonly name: string;
  readonly netns: string;
  readonly containerId: string;
}

interface AddrJson {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
  linkinfo?: { info_kind: string };
}

describe('VLAN NIC pools through the device plugin and the meta-plugin to real macvlan and ipvlan pods', () => {
  let before: KernelSnapshot;
  let dir: string;
  let nic: string;
  let api: FakeApiServer | undefined;
  let kubelet: FakeKubelet | undefined;
  let dp: RunningDevicePlugin | undefined;
  let plugin: string;
  let metaConfig: Record<string, unknown>;
  const pods: Pod[] = [];

  const cniArgs = (p: Pod): string =>
    `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${p.name};K8S_POD_INFRA_CONTAINER_ID=${p.containerId};K8S_POD_UID=uid-${p.name}`;
  const call = (command: 'ADD' | 'DEL', p: Pod) =>
    execCni(
      plugin,
      {
        command,
        containerId: p.containerId,
        netns: `/run/netns/${p.netns}`,
        ifname: 'eth0',
        args: cniArgs(p),
      },
      metaConfig,
    );
  const addrsIn = async (p: Pod, ifname: string): Promise<AddrJson> =>
    ((await ipJson(['-n', p.netns, '-details', 'addr', 'show', 'dev', ifname])) as AddrJson[])[0]!;
  const ipv4 = (a: AddrJson): string => a.addr_info.find((x) => x.family === 'inet')!.local;

  beforeAll(async () => {
    before = await kernelSnapshot();
    dir = await mkdtemp(path.join(os.tmpdir(), 'np-vm-vlan-'));
    nic = uniqueName('npn');
    await run('ip', ['link', 'add', nic, 'type', 'dummy']);
    await run('ip', ['link', 'set', nic, 'up']);
    for (const id of ['210', '211']) {
      await run('ip', ['link', 'add', 'link', nic, 'name', `${nic}.${id}`, 'type', 'vlan', 'id', id]);
      await run('ip', ['link', 'set', `${nic}.${id}`, 'up']);
    }

    const config = path.join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        resourceList: [
          {
            resourceName: 'vlan210',
            deviceType: 'nic',
            slots: 2,
            selectors: { parents: [nic], vlans: [210] },
          },
          { resourceName: 'vlan211', deviceType: 'nic', slots: 2, selectors: { names: [`${nic}.211`] } },
        ],
      }),
    );
    const kubeletRoot = path.join(dir, 'kubelet');
    await mkdir(kubeletRoot);
    kubelet = await startFakeKubelet({ root: kubeletRoot });
    dp = await startDevicePlugin([
      '--config',
      config,
      '--kubelet-root',
      kubeletRoot,
      '--registration',
      'legacy',
      '--devinfo-dir',
      path.join(dir, 'devinfo', 'dp'),
    ]);

    api = await startFakeApiServer();
    const ipam = (subnet: string) => ({
      type: 'host-local',
      ranges: [[{ subnet }]],
      dataDir: path.join(dir, 'ipam'),
    });
    api.addNad(
      'default',
      'macvlan-210',
      {
        cniVersion: '1.0.0',
        name: 'macvlan-210',
        type: 'macvlan',
        mode: 'bridge',
        ipam: ipam('10.210.0.0/24'),
      },
      { 'k8s.v1.cni.cncf.io/resourceName': R210 },
    );
    api.addNad(
      'default',
      'ipvlan-211',
      { cniVersion: '1.0.0', name: 'ipvlan-211', type: 'ipvlan', mode: 'l2', ipam: ipam('10.211.0.0/24') },
      { 'k8s.v1.cni.cncf.io/resourceName': R211 },
    );
    metaConfig = {
      cniVersion: '1.0.0',
      name: 'netplumb',
      type: 'netplumb',
      kubeconfig: await api.writeKubeconfig(path.join(dir, 'kubeconfig')),
      cniDir: path.join(dir, 'cache'),
      confDir: path.join(dir, 'net.d'),
      binDir: '/usr/lib/cni',
      podResourcesSocket: kubelet.podResourcesSocket,
      devinfoDir: path.join(dir, 'devinfo'),
      delegates: [{ cniVersion: '1.0.0', name: 'cluster', type: 'loopback' }],
    };
    plugin = await writeGuestExecutable(dir, 'netplumb-cni', 'netplumb-cni');
  });

  afterAll(async () => {
    for (const p of pods) await run('ip', ['netns', 'del', p.netns]).catch(() => undefined);
    const dpExit = await dp?.stop();
    await kubelet?.stop();
    await api?.stop();
    await run('ip', ['link', 'del', nic]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    expect(dpExit).toBe(0);
    expect(await kernelSnapshot()).toEqual(before);
  });

  it('advertises each VLAN interface as healthy slots', async () => {
    for (const [resource, vlan] of [
      [R210, '210'],
      [R211, '211'],
    ] as const) {
      const conn = await kubelet!.waitForPlugin(resource, SLOW);
      expect(conn.latest().map((d) => [d.ID, d.health])).toEqual([
        [`${nic}.${vlan}#0`, 'Healthy'],
        [`${nic}.${vlan}#1`, 'Healthy'],
      ]);
    }
  });

  it('ADD plumbs a macvlan and an ipvlan on the allocated VLAN interfaces; the pods reach each other', async () => {
    for (const name of ['pod-a', 'pod-b']) {
      const p: Pod = { name, netns: uniqueName('np-vm-n'), containerId: uniqueName('cid') };
      pods.push(p);
      await run('ip', ['netns', 'add', p.netns]);
      const admitted = await kubelet!.admitPod({
        namespace: 'default',
        name,
        uid: `uid-${name}`,
        containers: [{ name: 'app', requests: { [R210]: 1, [R211]: 1 } }],
      });
      expect(admitted.containers[0]?.responses[R210]?.envs).toMatchObject({
        NICDEVICE_INTEL_COM_VLAN210: `${nic}.210`,
      });
      api!.addPod({
        namespace: 'default',
        name,
        annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-210,ipvlan-211' },
      });
      expectSuccess(await call('ADD', p), `ADD ${name}`);
    }
    for (const p of pods) {
      const net1 = await addrsIn(p, 'net1');
      const net2 = await addrsIn(p, 'net2');
      expect(net1.linkinfo?.info_kind).toBe('macvlan');
      expect(net2.linkinfo?.info_kind).toBe('ipvlan');
      expect(ipv4(net1)).toMatch(/^10\.210\.0\./);
      expect(ipv4(net2)).toMatch(/^10\.211\.0\./);
    }
    const [a, b] = pods as [Pod, Pod];
    for (const target of [ipv4(await addrsIn(b, 'net1')), ipv4(await addrsIn(b, 'net2'))]) {
      await run('ip', ['netns', 'exec', a.netns, 'busybox', 'ping', '-c', '1', '-W', '5', target]);
    }
  });

  it('writes each pod’s network-status naming the VLAN interface each attachment got', async () => {
    for (const p of pods) {
      const raw = api!.pod('default', p.name)?.metadata.annotations?.[NETWORK_STATUS];
      const status = JSON.parse(raw ?? '[]') as Record<string, unknown>[];
      expect(status.map((s) => s.name)).toEqual(['cluster', 'default/macvlan-210', 'default/ipvlan-211']);
      for (const [i, ifname, vlan] of [
        [1, 'net1', 210],
        [2, 'net2', 211],
      ] as const) {
        expect(status[i]).toMatchObject({
          interface: ifname,
          ips: [ipv4(await addrsIn(p, ifname))],
          'device-info': { 'netplumb.io/interface': { name: `${nic}.${vlan}`, parent: nic, vlan } },
        });
      }
    }
  });

  it('DEL removes every interface, IP reservation, cache entry and device-info copy', async () => {
    for (const p of pods) {
      expectSuccess(await call('DEL', p), `DEL ${p.name}`);
      expect(await linkNames(p.netns)).toEqual(['lo']);
    }
    const reserved = await readdir(path.join(dir, 'ipam'), { recursive: true }).catch(() => []);
    expect(reserved.filter((f) => /\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
    expect(await readdir(path.join(dir, 'cache'), { recursive: true }).catch(() => [])).toEqual([]);
    expect(await readdir(path.join(dir, 'devinfo', 'cni')).catch(() => [])).toEqual([]);
    for (const p of pods.splice(0)) {
      await run('ip', ['netns', 'del', p.netns]);
      expect(await netnsNames()).not.toContain(p.netns);
    }
    expect((await linkNames()).filter((l) => l.startsWith(nic)).sort()).toEqual([
      nic,
      `${nic}.210`,
      `${nic}.211`,
    ]);
  });
});
