// The device plugin against the fake kubelet (real gRPC on unix sockets) and simulated nodes
// (sysfs trees on disk): registration, kubelet restarts, health, reload, Allocate.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../device-plugin/metrics-prom.js';
import { sysfsRdmaCharDevices } from '../device-plugin/rdma.js';
import { createDevicePlugin } from '../device-plugin/plugin.js';
import type { DevicePlugin } from '../device-plugin/plugin.js';
import { PodResourcesListerClient } from '../proto/gen/podresources/v1/api.js';
import type {
  AllocatableResourcesResponse,
  GetPodResourcesResponse,
  ListPodResourcesResponse,
} from '../proto/gen/podresources/v1/api.js';
import { discoverNode } from '../sriov/discover.js';
import { removeVf, setLinkState, simulatedNode } from '../sim/simulated-node.js';
import type { WrittenNode } from '../sim/simulated-node.js';
import { fileVfState } from '../sriov/vf-state.js';
import { startFakeKubelet } from '../sim/kubelet.js';
import type { FakeKubelet, FakeKubeletMode } from '../sim/kubelet.js';

const UP = { operstate: 'up', carrier: true } as const;
const PF0 = '0000:3b:00.0';
const PF1 = '0000:af:00.0';

// Two X710-like PFs on NUMA 0 and 1; VF 3 of each on vfio-pci; VFs 4-5 of PF0 on VLAN 210.
async function writeNode(dir: string): Promise<WrittenNode> {
  return simulatedNode()
    .pf(PF0, {
      netdev: 'ens1f0',
      vendor: '8086',
      device: '1572',
      driver: 'i40e',
      numa: 0,
      totalVfs: 8,
      ...UP,
    })
    .vfs(6, {
      driver: 'iavf',
      device: '154c',
      ...UP,
      overrides: { 3: { driver: 'vfio-pci' }, 4: { vlan: 210 }, 5: { vlan: 210 } },
    })
    .pf(PF1, {
      netdev: 'ens2f0',
      vendor: '8086',
      device: '1572',
      driver: 'i40e',
      numa: 1,
      totalVfs: 8,
      ...UP,
    })
    .vfs(4, { driver: 'iavf', device: '154c', ...UP, overrides: { 3: { driver: 'vfio-pci' } } })
    .nic('0000:5e:00.0', { netdev: 'eno1', vendor: '8086', device: '1521', driver: 'igb', numa: 1, ...UP })
    .vlan('eno1.300', { parent: 'eno1', id: 300, ...UP })
    .write(dir);
}

const CONFIG = {
  resourceList: [
    { resourceName: 'vlan210', selectors: [{ vendors: ['8086'], drivers: ['iavf'], vlans: [210] }] },
    { resourceName: 'netdev', selectors: [{ vendors: ['8086'], drivers: ['iavf'] }] },
    {
      resourceName: 'dpdk',
      resourcePrefix: 'example.com',
      selectors: [{ drivers: ['vfio-pci'] }],
      additionalInfo: { '*': { token: 'a&b' } },
    },
    {
      resourceName: 'vlan300',
      deviceType: 'nic',
      slots: 3,
      selectors: [{ parents: ['eno1'], vlans: [300] }],
    },
  ],
};

interface Env {
  dir: string;
  node: WrittenNode;
  kubelet: FakeKubelet;
  plugin: DevicePlugin;
  configFile: string;
  devinfoDir: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  o: { mode?: FakeKubeletMode; config?: unknown; rescanIntervalMs?: number } = {},
): Promise<Env> {
  const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const node = await writeNode(path.join(dir, 'node'));
  const kubelet = await startFakeKubelet({ root: path.join(dir, 'kubelet'), mode: o.mode ?? 'legacy' });
  cleanups.push(() => kubelet.stop());
  const configFile = path.join(dir, 'pcidp', 'config.json');
  await mkdir(path.dirname(configFile));
  await writeFile(configFile, JSON.stringify(o.config ?? CONFIG));
  const devinfoDir = path.join(dir, 'devinfo', 'dp');
  const plugin = createDevicePlugin({
    configFile,
    resourcePrefix: 'intel.com',
    discover: () => discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) }),
    kubeletRoot: kubelet.root,
    registration: 'auto',
    devinfoDir,
    cdiDir: null,
    host: { vhostNet: false },
    log: pino({ level: 'silent' }),
    metrics: createMetrics(),
    rescanIntervalMs: o.rescanIntervalMs ?? 0,
  });
  await plugin.start();
  cleanups.push(() => plugin.stop());
  return { dir, node, kubelet, plugin, configFile, devinfoDir };
}

const ids = (list: readonly { ID: string }[]) => list.map((d) => d.ID).sort();

describe('registration', () => {
  it('registers every non-empty pool with kubelet.sock (legacy) and serves its devices', async () => {
    const { kubelet } = await setup();
    const net = await kubelet.waitForPlugin('intel.com/netdev');
    await kubelet.waitForPlugin('intel.com/vlan210');
    await kubelet.waitForPlugin('example.com/dpdk');
    await kubelet.waitForPlugin('intel.com/vlan300');
    const reg = kubelet.registrations.find((r) => r.request.resourceName === 'intel.com/netdev');
    expect(reg?.request).toEqual({
      version: 'v1beta1',
      endpoint: 'intel.com_netdev.sock',
      resourceName: 'intel.com/netdev',
      options: { preStartRequired: false, getPreferredAllocationAvailable: true },
    });
    expect(net.options.getPreferredAllocationAvailable).toBe(true);
    // First match wins: VFs 4-5 of PF0 went to vlan210, which comes first in the config.
    expect(ids(net.latest())).toEqual([
      '0000:3b:02.0',
      '0000:3b:02.1',
      '0000:3b:02.2',
      '0000:af:02.0',
      '0000:af:02.1',
      '0000:af:02.2',
    ]);
    expect(ids(kubelet.plugins.get('intel.com/vlan210')!.latest())).toEqual(['0000:3b:02.4', '0000:3b:02.5']);
    expect(net.latest().find((d) => d.ID === '0000:af:02.0')).toEqual({
      ID: '0000:af:02.0',
      health: 'Healthy',
      topology: { nodes: [{ ID: 1 }] },
    });
    expect(ids(kubelet.plugins.get('intel.com/vlan300')!.latest())).toEqual([
      'eno1.300#0',
      'eno1.300#1',
      'eno1.300#2',
    ]);
  });

  it('registers through the plugin watcher when plugins_registry/ exists', async () => {
    const { kubelet } = await setup({ mode: 'watcher' });
    const net = await kubelet.waitForPlugin('intel.com/netdev');
    const reg = kubelet.registrations.find((r) => r.request.resourceName === 'intel.com/netdev');
    expect(reg?.via).toBe('watcher');
    expect(reg?.request.endpoint).toBe(path.join(kubelet.pluginsRegistryDir, 'intel.com_netdev.sock'));
    expect(reg?.request.version).toBe('v1beta1');
    expect(net.latest()).toHaveLength(6);
  });

  it('registers again after each of 5 kubelet restarts, with the same devices', async () => {
    const { kubelet } = await setup();
    const first = ids((await kubelet.waitForPlugin('intel.com/netdev')).latest());
    for (let i = 1; i <= 5; i++) {
      const before = kubelet.registrations.filter(
        (r) => r.request.resourceName === 'intel.com/netdev',
      ).length;
      await kubelet.restart();
      await kubelet.waitFor(
        () =>
          kubelet.registrations.filter((r) => r.request.resourceName === 'intel.com/netdev').length > before,
        `re-registration after restart ${i}`,
        5_000,
      );
      const conn = await kubelet.waitForPlugin('intel.com/netdev', 5_000);
      expect(ids(conn.latest())).toEqual(first);
      const res = await kubelet.allocate('intel.com/netdev', ['0000:3b:02.0']);
      expect(res.containerResponses[0]?.envs.PCIDEVICE_INTEL_COM_NETDEV).toBe('0000:3b:02.0');
    }
  });

  it('recreates its socket in plugins_registry/ when it is removed (watcher mode)', async () => {
    const { kubelet } = await setup({ mode: 'watcher' });
    await kubelet.waitForPlugin('intel.com/netdev');
    const sock = path.join(kubelet.pluginsRegistryDir, 'intel.com_netdev.sock');
    const count = () =>
      kubelet.registrations.filter((r) => r.request.resourceName === 'intel.com/netdev').length;
    const before = count();
    await rm(sock);
    await kubelet.waitFor(
      () => count() > before && kubelet.plugins.get('intel.com/netdev')?.open === true,
      'the watcher to see the recreated socket',
      2_000,
    );
    expect((await stat(sock)).isSocket()).toBe(true);
  });
});

describe('registration timing', () => {
  it('registers once the kubelet comes up after the plugin (no polling: the directory is watched)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-late-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const node = await writeNode(path.join(dir, 'node'));
    const configFile = path.join(dir, 'config.json');
    await writeFile(configFile, JSON.stringify(CONFIG));
    const root = path.join(dir, 'kubelet');
    const plugin = createDevicePlugin({
      configFile,
      resourcePrefix: 'intel.com',
      discover: () => discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) }),
      kubeletRoot: root,
      registration: 'legacy',
      devinfoDir: path.join(dir, 'devinfo'),
      cdiDir: path.join(dir, 'cdi'),
      host: { vhostNet: false },
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      rescanIntervalMs: 0,
    });
    await plugin.start();
    cleanups.push(() => plugin.stop());
    expect(plugin.status().registered).toBe(false);
    const kubelet = await startFakeKubelet({ root });
    cleanups.push(() => kubelet.stop());
    await kubelet.waitForPlugin('intel.com/netdev');
    await kubelet.waitForPlugin('example.com/dpdk');
    await expect.poll(() => plugin.status().registered).toBe(true);
    // --cdi: a spec per PCI pool, one CDI device per device that needs device nodes.
    const spec: unknown = JSON.parse(
      await readFile(path.join(dir, 'cdi', 'sriov-dp-example.com_dpdk.json'), 'utf8'),
    );
    expect(spec).toMatchObject({
      cdiVersion: '0.6.0',
      kind: 'example.com/net-pci',
      devices: [
        { name: '0000:3b:02.3', containerEdits: { deviceNodes: [{ path: '/dev/vfio/vfio' }, {}] } },
        { name: '0000:af:02.3' },
      ],
    });
    // A pool of kernel netdevs needs no device nodes, hence no CDI spec.
    await expect(stat(path.join(dir, 'cdi', 'sriov-dp-intel.com_netdev.json'))).rejects.toThrow();
    const res = await kubelet.allocate('example.com/dpdk', ['0000:3b:02.3']);
    expect(res.containerResponses[0]?.cdiDevices).toEqual([{ name: 'example.com/net-pci=0000:3b:02.3' }]);
    // Device specs always: a kubelet without CDI support ignores the CDI fields (issue 13 item 10).
    expect(res.containerResponses[0]?.devices.map((d) => d.containerPath)).toEqual([
      '/dev/vfio/vfio',
      expect.stringMatching(/^\/dev\/vfio\/\d+$/),
    ]);
    expect(res.containerResponses[0]?.annotations).toEqual({
      'cdi.k8s.io/example.com_net-pci': 'example.com/net-pci=0000:3b:02.3',
    });
    await plugin.stop();
    await expect(stat(path.join(dir, 'cdi', 'sriov-dp-example.com_dpdk.json'))).rejects.toThrow();
    expect(await readdir(path.join(dir, 'devinfo')).catch(() => [])).toEqual([]);
  });

  it('is registered again by the plugin watcher after a kubelet restart (watcher mode)', async () => {
    const { kubelet } = await setup({ mode: 'watcher' });
    await kubelet.waitForPlugin('intel.com/netdev');
    const count = () =>
      kubelet.registrations.filter((r) => r.request.resourceName === 'intel.com/netdev').length;
    await kubelet.restart();
    await kubelet.waitFor(() => count() === 2, 're-registration');
    expect((await kubelet.waitForPlugin('intel.com/netdev')).latest()).toHaveLength(6);
  });
});

describe('ListAndWatch health', () => {
  it('sends Unhealthy when a VF link goes down and Healthy when it comes back', async () => {
    const { kubelet, node } = await setup({ rescanIntervalMs: 50 });
    await kubelet.waitForPlugin('intel.com/netdev');
    const health = (list: readonly { ID: string; health: string }[], id: string) =>
      list.find((d) => d.ID === id)?.health;
    await setLinkState(node, 'ens1f0v1', { operstate: 'down', carrier: false });
    await kubelet.waitForDevices(
      'intel.com/netdev',
      (l) => health(l, '0000:3b:02.1') === 'Unhealthy',
      'VF 1 Unhealthy',
    );
    await setLinkState(node, 'ens1f0v1', UP);
    const back = await kubelet.waitForDevices(
      'intel.com/netdev',
      (l) => health(l, '0000:3b:02.1') === 'Healthy',
      'VF 1 Healthy again',
    );
    expect(back.every((d) => d.health === 'Healthy')).toBe(true);
    const updates = kubelet.plugins.get('intel.com/netdev')!.updates;
    expect(updates.map((u) => health(u, '0000:3b:02.1'))).toEqual(['Healthy', 'Unhealthy', 'Healthy']);
  });

  it('marks every VF of a PF Unhealthy when the PF loses carrier, including vfio VFs', async () => {
    const { kubelet, node, plugin } = await setup();
    await kubelet.waitForPlugin('example.com/dpdk');
    await setLinkState(node, 'ens2f0', { operstate: 'down', carrier: false });
    await plugin.rescan();
    const dpdk = await kubelet.waitForDevices(
      'example.com/dpdk',
      (l) => l.some((d) => d.health === 'Unhealthy'),
      'a vfio VF of PF1 Unhealthy',
    );
    expect(dpdk.find((d) => d.ID === '0000:af:02.3')?.health).toBe('Unhealthy');
    expect(dpdk.find((d) => d.ID === '0000:3b:02.3')?.health).toBe('Healthy');
  });

  it('keeps a VF that disappears from sysfs listed as Unhealthy', async () => {
    const { kubelet, node, plugin } = await setup();
    await kubelet.waitForPlugin('intel.com/netdev');
    await removeVf(node, '0000:3b:02.2');
    await plugin.rescan();
    const list = await kubelet.waitForDevices(
      'intel.com/netdev',
      (l) => l.find((d) => d.ID === '0000:3b:02.2')?.health === 'Unhealthy',
      'removed VF Unhealthy',
    );
    expect(list).toHaveLength(6);
  });

  it('marks NIC slots Unhealthy when the VLAN interface goes down', async () => {
    const { kubelet, node, plugin } = await setup();
    await kubelet.waitForPlugin('intel.com/vlan300');
    await setLinkState(node, 'eno1.300', { operstate: 'down', carrier: false });
    await plugin.rescan();
    await kubelet.waitForDevices(
      'intel.com/vlan300',
      (l) => l.every((d) => d.health === 'Unhealthy'),
      'all slots down',
    );
  });
});

describe('rediscovery', () => {
  it('moves a VF into the VLAN pool when its PF-side VLAN changes, keeping it Unhealthy in the old pool', async () => {
    const { kubelet, node, plugin } = await setup();
    await kubelet.waitForPlugin('intel.com/vlan210');
    // `ip link set ens1f0 vf 0 vlan 210`, as the links file (ip -json -details link show) reports it.
    const links = JSON.parse(await readFile(node.linksFile, 'utf8')) as {
      ifname: string;
      vfinfo_list?: { vf: number; vlan_list?: { vlan?: number }[] }[];
    }[];
    const vf0 = links.find((l) => l.ifname === 'ens1f0')?.vfinfo_list?.find((v) => v.vf === 0);
    expect(vf0).toBeDefined();
    vf0!.vlan_list = [{ vlan: 210 }];
    await writeFile(node.linksFile, JSON.stringify(links));
    await plugin.rescan();
    const vlan = await kubelet.waitForDevices('intel.com/vlan210', (l) => l.length === 3, 'VF 0 added');
    expect(vlan.map((d) => [d.ID, d.health])).toContainEqual(['0000:3b:02.0', 'Healthy']);
    const net = kubelet.plugins.get('intel.com/netdev')!.latest();
    expect(net.find((d) => d.ID === '0000:3b:02.0')?.health).toBe('Unhealthy');
  });
});

describe('config reload', () => {
  it('keeps serving the last good config when the file turns bad, then applies the next good one', async () => {
    const { kubelet, plugin, configFile } = await setup();
    await kubelet.waitForPlugin('intel.com/netdev');
    const bad = structuredClone(CONFIG) as { resourceList: Record<string, unknown>[] };
    bad.resourceList[1] = { resourceName: 'netdev', selectors: [{ pfName: ['ens1f0'] }] };
    // Half written: nothing can be served from it (a key SRIOV-DP ignores would only be a warning).
    await writeFile(configFile, JSON.stringify(bad).slice(0, 40));
    await expect
      .poll(() => plugin.status().configError, { timeout: 20_000, interval: 20 })
      .toMatch(/^not valid JSON: /);
    expect(kubelet.plugins.get('intel.com/netdev')?.open).toBe(true);
    expect(await kubelet.allocate('intel.com/netdev', ['0000:3b:02.0'])).toBeDefined();

    const good = structuredClone(CONFIG) as { resourceList: Record<string, unknown>[] };
    good.resourceList.push({ resourceName: 'pf1only', selectors: [{ rootDevices: [`${PF1}#0-1`] }] });
    good.resourceList[1] = {
      resourceName: 'netdev',
      selectors: [{ drivers: ['iavf'], pfNames: ['ens1f0'] }],
    };
    await writeFile(configFile, JSON.stringify(good));
    await kubelet.waitForPlugin('intel.com/pf1only');
    expect(plugin.status().configError).toBeNull();
    // netdev was rebuilt in place: PF1's VFs left it (kept as Unhealthy), PF0's stayed Healthy.
    const net = await kubelet.waitForDevices(
      'intel.com/netdev',
      (l) => l.find((d) => d.ID === '0000:af:02.0')?.health === 'Unhealthy',
      'PF1 VFs Unhealthy in netdev',
    );
    expect(
      net
        .filter((d) => d.health === 'Healthy')
        .map((d) => d.ID)
        .sort(),
    ).toEqual(['0000:3b:02.0', '0000:3b:02.1', '0000:3b:02.2']);
    expect(ids(kubelet.plugins.get('intel.com/pf1only')!.latest())).toEqual(['0000:af:02.0', '0000:af:02.1']);
    // The netdev stream was never interrupted by the reload.
    expect(kubelet.registrations.filter((r) => r.request.resourceName === 'intel.com/netdev')).toHaveLength(
      1,
    );
  });

  it('reload() reports a bad file without dropping pools', async () => {
    const { kubelet, plugin, configFile } = await setup();
    await kubelet.waitForPlugin('intel.com/netdev');
    await writeFile(configFile, '{"resourceLists": [{"resourceName": "x"}]}');
    const r = await plugin.reload();
    expect(r.ok).toBe(false);
    expect(r.error).toBe(
      'resourceLists: unknown key; did you mean resourceList?\nresourceList: is required: an array of resource objects',
    );
    expect(
      plugin
        .status()
        .pools.map((p) => p.resource)
        .sort(),
    ).toEqual(['example.com/dpdk', 'intel.com/netdev', 'intel.com/vlan210', 'intel.com/vlan300']);
  });
});

describe('Allocate', () => {
  it('returns SRIOV-DP env and _INFO for netdev VFs, no device nodes, and writes device-info files', async () => {
    const { kubelet, devinfoDir } = await setup();
    await kubelet.waitForPlugin('intel.com/netdev');
    const res = await kubelet.allocate('intel.com/netdev', ['0000:3b:02.1', '0000:af:02.0']);
    const c = res.containerResponses[0]!;
    expect(c.envs).toEqual({
      PCIDEVICE_INTEL_COM_NETDEV: '0000:3b:02.1,0000:af:02.0',
      PCIDEVICE_INTEL_COM_NETDEV_INFO:
        '{"0000:3b:02.1":{"extra":{},"generic":{"deviceID":"0000:3b:02.1"}},"0000:af:02.0":{"extra":{},"generic":{"deviceID":"0000:af:02.0"}}}',
    });
    expect(c.devices).toEqual([]);
    expect(c.mounts).toEqual([]);
    const file = path.join(devinfoDir, 'intel.com-netdev-0000:3b:02.1-device.json');
    expect(await readFile(file, 'utf8')).toBe(
      '{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:3b:02.1"}}',
    );
    expect((await stat(file)).mode & 0o777).toBe(0o444);
  });

  it('returns /dev/vfio/vfio and the IOMMU group for vfio-pci VFs, with additionalInfo as Go encodes it', async () => {
    const { kubelet, node } = await setup();
    await kubelet.waitForPlugin('example.com/dpdk');
    const model = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: null });
    const group = (bdf: string) => model.devices.find((d) => d.pciAddress === bdf)?.iommuGroup;
    const [g0, g1] = [group('0000:3b:02.3'), group('0000:af:02.3')];
    const res = await kubelet.allocate('example.com/dpdk', ['0000:3b:02.3', '0000:af:02.3']);
    const c = res.containerResponses[0]!;
    expect(c.devices).toEqual([
      { containerPath: '/dev/vfio/vfio', hostPath: '/dev/vfio/vfio', permissions: 'rw' },
      { containerPath: `/dev/vfio/${g0}`, hostPath: `/dev/vfio/${g0}`, permissions: 'rw' },
      { containerPath: `/dev/vfio/${g1}`, hostPath: `/dev/vfio/${g1}`, permissions: 'rw' },
    ]);
    expect(c.envs.PCIDEVICE_EXAMPLE_COM_DPDK_INFO).toBe(
      `{"0000:3b:02.3":{"extra":{"token":"a\\u0026b"},"generic":{"deviceID":"0000:3b:02.3"},"vfio":{"dev-mount":"/dev/vfio/${g0}","mount":"/dev/vfio/vfio"}},` +
        `"0000:af:02.3":{"extra":{"token":"a\\u0026b"},"generic":{"deviceID":"0000:af:02.3"},"vfio":{"dev-mount":"/dev/vfio/${g1}","mount":"/dev/vfio/vfio"}}}`,
    );
  });

  it('hands out NIC slots with the interface name in env and device-info', async () => {
    const { kubelet, devinfoDir } = await setup();
    await kubelet.waitForPlugin('intel.com/vlan300');
    const pod = await kubelet.admitPod({
      namespace: 'default',
      name: 'web',
      uid: 'u1',
      containers: [{ name: 'c', requests: { 'intel.com/vlan300': 2 } }],
    });
    const c = pod.containers[0]!;
    expect(c.devices['intel.com/vlan300']).toEqual(['eno1.300#0', 'eno1.300#1']);
    const envs = c.responses['intel.com/vlan300']!.envs;
    expect(envs.NICDEVICE_INTEL_COM_VLAN300).toBe('eno1.300,eno1.300');
    expect(JSON.parse(envs.PCIDEVICE_INTEL_COM_VLAN300_INFO!)).toEqual({
      'eno1.300#0': {
        extra: {},
        generic: { deviceID: 'eno1.300#0' },
        nic: { name: 'eno1.300', parent: 'eno1', vlan: '300' },
      },
      'eno1.300#1': {
        extra: {},
        generic: { deviceID: 'eno1.300#1' },
        nic: { name: 'eno1.300', parent: 'eno1', vlan: '300' },
      },
    });
    const info: unknown = JSON.parse(
      await readFile(path.join(devinfoDir, 'intel.com-vlan300-eno1.300#0-device.json'), 'utf8'),
    );
    expect(info).toEqual({
      type: 'pci',
      version: '1.1.0',
      pci: { 'pci-address': '0000:5e:00.0' },
      'netplumb.io/interface': { name: 'eno1.300', parent: 'eno1', vlan: 300 },
    });
  });

  it('answers an unknown device ID with InvalidArgument naming it', async () => {
    const { kubelet } = await setup();
    await kubelet.waitForPlugin('intel.com/netdev');
    await expect(
      kubelet.allocate('intel.com/netdev', ['0000:3b:02.0', '0000:99:00.7']),
    ).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'unknown device ID "0000:99:00.7" for resource intel.com/netdev',
    });
  });

  it('prefers VFs of one PF on one NUMA node and serves the assignment over PodResources', async () => {
    const { kubelet } = await setup();
    await kubelet.waitForPlugin('intel.com/netdev');
    const pod = await kubelet.admitPod({
      namespace: 'ns1',
      name: 'p',
      uid: 'u2',
      containers: [{ name: 'a', requests: { 'intel.com/netdev': 3 } }],
    });
    expect(pod.containers[0]!.devices['intel.com/netdev']).toEqual([
      '0000:3b:02.0',
      '0000:3b:02.1',
      '0000:3b:02.2',
    ]);
    const client = new PodResourcesListerClient(
      `unix:${kubelet.podResourcesSocket}`,
      grpc.credentials.createInsecure(),
    );
    try {
      const list = await new Promise<ListPodResourcesResponse>((resolve, reject) => {
        client.list({}, (err, res) => {
          if (err) reject(err);
          else resolve(res);
        });
      });
      const numa0 = { nodes: [{ ID: 0 }] };
      expect(list.podResources).toEqual([
        {
          name: 'p',
          namespace: 'ns1',
          containers: [
            {
              name: 'a',
              devices: ['0000:3b:02.0', '0000:3b:02.1', '0000:3b:02.2'].map((id) => ({
                resourceName: 'intel.com/netdev',
                deviceIds: [id],
                topology: numa0,
              })),
              cpuIds: [],
              memory: [],
              dynamicResources: [],
            },
          ],
        },
      ]);
      const one = await new Promise<GetPodResourcesResponse>((resolve, reject) => {
        client.get({ podName: 'p', podNamespace: 'ns1' }, (err, res) => {
          if (err) reject(err);
          else resolve(res);
        });
      });
      expect(one.podResources?.containers[0]?.devices.flatMap((d) => d.deviceIds)).toHaveLength(3);
      const alloc = await new Promise<AllocatableResourcesResponse>((resolve, reject) => {
        client.getAllocatableResources({}, (err, res) => {
          if (err) reject(err);
          else resolve(res);
        });
      });
      expect(alloc.devices.filter((d) => d.resourceName === 'intel.com/netdev')).toHaveLength(6);
    } finally {
      client.close();
    }
  });
});

describe('Allocate for RDMA', () => {
  it('adds the uverbs/umad/issm/rdma_cm char devices and the RDMA device to _INFO and device-info', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-rdma-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const node = await simulatedNode()
      .pf('0000:5e:00.0', {
        netdev: 'ens3f0',
        vendor: '15b3',
        device: '1017',
        driver: 'mlx5_core',
        numa: 0,
        rdma: 'mlx5_0',
        totalVfs: 4,
        ...UP,
      })
      .vfs(2, { driver: 'mlx5_core', device: '1018', rdma: true, ...UP })
      .write(path.join(dir, 'node'));
    const model = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: null });
    const vf = model.pfs[0]!.vfs[1]!;
    const devDir = path.join(node.sysfsRoot, 'bus', 'pci', 'devices', vf.pciAddress);
    await mkdir(path.join(devDir, 'infiniband_verbs', 'uverbs3'), { recursive: true });
    await mkdir(path.join(devDir, 'infiniband_mad', 'umad3'), { recursive: true });
    await mkdir(path.join(devDir, 'infiniband_mad', 'issm3'), { recursive: true });
    await mkdir(path.join(node.sysfsRoot, 'class', 'misc', 'rdma_cm'), { recursive: true });
    const configFile = path.join(dir, 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        resourceList: [
          {
            resourceName: 'rdma',
            resourcePrefix: 'nvidia.com',
            selectors: [{ vendors: ['15b3'], isRdma: true }],
          },
        ],
      }),
    );
    const kubelet = await startFakeKubelet({ root: path.join(dir, 'kubelet') });
    cleanups.push(() => kubelet.stop());
    const devinfoDir = path.join(dir, 'devinfo');
    const plugin = createDevicePlugin({
      configFile,
      resourcePrefix: 'intel.com',
      discover: () => discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) }),
      kubeletRoot: kubelet.root,
      registration: 'legacy',
      devinfoDir,
      cdiDir: null,
      host: { vhostNet: false },
      rdmaCharDevices: sysfsRdmaCharDevices(node.sysfsRoot),
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      rescanIntervalMs: 0,
    });
    await plugin.start();
    cleanups.push(() => plugin.stop());
    await kubelet.waitForPlugin('nvidia.com/rdma');
    const c = (await kubelet.allocate('nvidia.com/rdma', [vf.pciAddress])).containerResponses[0]!;
    expect(c.devices.map((d) => d.hostPath)).toEqual([
      '/dev/infiniband/uverbs3',
      '/dev/infiniband/umad3',
      '/dev/infiniband/issm3',
      '/dev/infiniband/rdma_cm',
    ]);
    const rdmaDev = vf.rdmaDevices.join(',');
    expect(rdmaDev).not.toBe('');
    expect(JSON.parse(c.envs.PCIDEVICE_NVIDIA_COM_RDMA_INFO!)).toEqual({
      [vf.pciAddress]: {
        extra: {},
        generic: { deviceID: vf.pciAddress },
        rdma: {
          rdma_dev: rdmaDev,
          uverbs: '/dev/infiniband/uverbs3',
          umad: '/dev/infiniband/umad3',
          issm: '/dev/infiniband/issm3',
          rdma_cm: '/dev/infiniband/rdma_cm',
        },
      },
    });
    expect(
      await readFile(path.join(devinfoDir, `nvidia.com-rdma-${vf.pciAddress}-device.json`), 'utf8'),
    ).toBe(
      `{"type":"pci","version":"1.1.0","pci":{"pci-address":"${vf.pciAddress}","rdma-device":"${rdmaDev}"}}`,
    );
  });
});
