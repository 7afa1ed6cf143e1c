// VLAN-configured NICs for real: a dummy NIC with two 802.1Q sub-interfaces, discovered on the
// guest's kernel into two `nic` pools with slots (device-plugin/), each slot handed to a pod by the
// kubelet's PodResources (fake) and mapped by the meta-plugin executable (netplumb-cni) to a real
// Debian macvlan and ipvlan delegate on that VLAN interface, in real pod netns; the pods ping each
// other over both, the network-status lands on the pod (fake API server), and DEL leaves nothing.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerAllocation } from '../../device-plugin/allocate.js';
import { parseConfig } from '../../device-plugin/config.js';
import { buildPools } from '../../device-plugin/pools.js';
import type { Pool } from '../../device-plugin/pools.js';
import { discoverNode } from '../../sriov/discover.js';
import { iproute2VfState } from '../../sriov/vf-state.js';
import { startFakeApiServer } from '../fakes/apiserver.js';
import type { FakeApiServer } from '../fakes/apiserver.js';
import { startFakePodResources } from '../fakes/podresources.js';
import type { FakePodResourcesServer } from '../fakes/podresources.js';
import { execCni, expectSuccess } from './support/cni.js';
import { ipJson, linkNames, netnsNames, run, uniqueName, writeGuestExecutable } from './support/guest.js';
import { kernelSnapshot } from './support/snapshot.js';
import type { KernelSnapshot } from './support/snapshot.js';

const NETWORK_STATUS = 'k8s.v1.cni.cncf.io/network-status';

interface Pod {
  readonly name: string;
  readonly netns: string;
  readonly containerId: string;
  /** Slot IDs by pool: vlan210 (macvlan), vlan211 (ipvlan). */
  readonly slots: { readonly vlan210: string; readonly vlan211: string };
}

interface AddrJson {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
  linkinfo?: { info_kind: string };
}

describe('VLAN NIC pools through the meta-plugin to real macvlan and ipvlan pods', () => {
  let before: KernelSnapshot;
  let dir: string;
  let nic: string;
  let api: FakeApiServer | undefined;
  let podResources: FakePodResourcesServer | undefined;
  let plugin: string;
  let metaConfig: Record<string, unknown>;
  let pools: Pool[];
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

    // The device plugin's view: two nic pools with 2 slots each, from the real kernel's links.
    const config = parseConfig(
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
      { resourcePrefix: 'intel.com' },
    );
    pools = buildPools(config.pools, await discoverNode({ sysfsRoot: '/sys', vfState: iproute2VfState() }));

    api = await startFakeApiServer();
    podResources = await startFakePodResources(path.join(dir, 'podresources.sock'));
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
      { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/vlan210' },
    );
    api.addNad(
      'default',
      'ipvlan-211',
      { cniVersion: '1.0.0', name: 'ipvlan-211', type: 'ipvlan', mode: 'l2', ipam: ipam('10.211.0.0/24') },
      { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/vlan211' },
    );
    metaConfig = {
      cniVersion: '1.0.0',
      name: 'netplumb',
      type: 'netplumb',
      kubeconfig: await api.writeKubeconfig(path.join(dir, 'kubeconfig')),
      cniDir: path.join(dir, 'cache'),
      confDir: path.join(dir, 'net.d'),
      binDir: '/usr/lib/cni',
      podResourcesSocket: podResources.socket,
      devinfoDir: path.join(dir, 'devinfo'),
      delegates: [{ cniVersion: '1.0.0', name: 'cluster', type: 'loopback' }],
    };
    plugin = await writeGuestExecutable(dir, 'netplumb-cni', 'netplumb-cni');
  });

  afterAll(async () => {
    for (const p of pods) await run('ip', ['netns', 'del', p.netns]).catch(() => undefined);
    await run('ip', ['link', 'del', nic]).catch(() => undefined);
    await podResources?.stop();
    await api?.stop();
    await rm(dir, { recursive: true, force: true });
    expect(await kernelSnapshot()).toEqual(before);
  });

  it('advertises each VLAN interface as slots and allocates a slot with its interface name', () => {
    const [p210, p211] = pools;
    expect(p210?.devices.map((d) => d.id)).toEqual([`${nic}.210#0`, `${nic}.210#1`]);
    expect(p211?.devices.map((d) => d.id)).toEqual([`${nic}.211#0`, `${nic}.211#1`]);
    expect(p210?.devices.every((d) => d.health === 'Healthy')).toBe(true);
    const lookup = new Map(p210!.devices.map((d) => [d.id, d]));
    const alloc = containerAllocation(p210!.config, lookup, [`${nic}.210#1`], { vhostNet: false }, false);
    expect(alloc.response.envs).toMatchObject({
      PCIDEVICE_INTEL_COM_VLAN210: `${nic}.210#1`,
      NICDEVICE_INTEL_COM_VLAN210: `${nic}.210`,
    });
    expect(alloc.response.devices).toEqual([]);
  });

  it('ADD plumbs a macvlan and an ipvlan on the allocated VLAN interfaces; the pods reach each other', async () => {
    for (const [i, name] of ['pod-a', 'pod-b'].entries()) {
      const p: Pod = {
        name,
        netns: uniqueName('np-vm-n'),
        containerId: uniqueName('cid'),
        slots: { vlan210: pools[0]!.devices[i]!.id, vlan211: pools[1]!.devices[i]!.id },
      };
      pods.push(p);
      await run('ip', ['netns', 'add', p.netns]);
      api!.addPod({
        namespace: 'default',
        name,
        annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-210,ipvlan-211' },
      });
      podResources!.setPod({
        namespace: 'default',
        name,
        containers: {
          app: { 'intel.com/vlan210': [p.slots.vlan210], 'intel.com/vlan211': [p.slots.vlan211] },
        },
      });
      expectSuccess(await call('ADD', p), `ADD ${name}`);
    }
    const [a, b] = pods as [Pod, Pod];
    for (const p of pods) {
      const net1 = await addrsIn(p, 'net1');
      const net2 = await addrsIn(p, 'net2');
      expect(net1.linkinfo?.info_kind).toBe('macvlan');
      expect(net2.linkinfo?.info_kind).toBe('ipvlan');
      expect(ipv4(net1)).toMatch(/^10\.210\.0\./);
      expect(ipv4(net2)).toMatch(/^10\.211\.0\./);
    }
    // Their lower devices are the VLAN interfaces: the host sees the macvlans' MACs on nic.210.
    for (const target of [ipv4(await addrsIn(b, 'net1')), ipv4(await addrsIn(b, 'net2'))]) {
      await run('ip', ['netns', 'exec', a.netns, 'busybox', 'ping', '-c', '1', '-W', '5', target]);
    }
  });

  it('writes each pod’s network-status with both attachments', async () => {
    for (const p of pods) {
      const raw = api!.pod('default', p.name)?.metadata.annotations?.[NETWORK_STATUS];
      const status = JSON.parse(raw ?? '[]') as {
        name: string;
        interface?: string;
        ips?: string[];
        mac?: string;
      }[];
      const net1 = await addrsIn(p, 'net1');
      expect(status.map((s) => s.name)).toEqual(['cluster', 'default/macvlan-210', 'default/ipvlan-211']);
      expect(status[1]).toMatchObject({ interface: 'net1', ips: [ipv4(net1)] });
      expect(status[2]).toMatchObject({ interface: 'net2', ips: [ipv4(await addrsIn(p, 'net2'))] });
    }
  });

  it('DEL removes every interface, IP reservation and cache entry', async () => {
    for (const p of pods) {
      expectSuccess(await call('DEL', p), `DEL ${p.name}`);
      expect(await linkNames(p.netns)).toEqual(['lo']);
    }
    const reserved = await readdir(path.join(dir, 'ipam'), { recursive: true }).catch(() => []);
    expect(reserved.filter((f) => /\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
    expect(await readdir(path.join(dir, 'cache'), { recursive: true }).catch(() => [])).toEqual([]);
    for (const p of pods.splice(0)) {
      await run('ip', ['netns', 'del', p.netns]);
      expect(await netnsNames()).not.toContain(p.netns);
    }
    expect((await linkNames()).filter((l) => l.startsWith(nic))).toEqual([nic, `${nic}.210`, `${nic}.211`]);
  });
});
