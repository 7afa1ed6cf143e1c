// netplumb on a real single-node cluster (hack/cluster: upstream v1.20.2 apiserver, scheduler,
// controller-manager and kubelet, containerd + runc), installed with `kubectl apply -k` from the
// image, on a simulated SR-IOV node. Every claim is checked with kubectl; leftovers on the node are
// checked on the node itself. The tests run in order: each builds on the state the previous left.
// The webhook's checks (webhook.ts) run on this install too, before the examples are applied, so
// that the suite installs and uninstalls netplumb once.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterCtl, clusterEnv, kubectl, kubectlJson, waitFor } from './support/cluster.js';
import type { ClusterEnv } from './support/cluster.js';
import {
  CNI_DAEMON,
  deleteWorkloadPods,
  DEVICE_PLUGIN,
  EXAMPLES,
  IMAGE,
  NS,
  OVERLAY,
  rollout,
  waitNamespaceGone,
} from './support/install.js';
import {
  allocatable,
  getPod,
  networkStatus,
  podAddrs,
  podEnv,
  podEvents,
  waitPodReady,
} from './support/k8s.js';
import type { Pod } from './support/k8s.js';
import {
  createTestNode,
  filesUnder,
  hostLinks,
  isHealthy,
  nodeState,
  podNetnsNames,
  waitNodeState,
} from './support/node.js';
import type { TestNode } from './support/node.js';
import { describeWebhook } from './webhook.js';

const SRIOV = 'intel.com/intel_sriov_netdevice';
const DPDK = 'intel.com/intel_sriov_dpdk';
const PCI_ENV = 'PCIDEVICE_INTEL_COM_INTEL_SRIOV_NETDEVICE';
const CACHE_DIR = '/var/lib/cni/netplumb';
const DEVINFO_DIR = '/var/run/k8s.cni.cncf.io/devinfo';
/** Example pods and the attachments (interface names) each must have besides eth0. */
const EXAMPLE_PODS: Readonly<Record<string, readonly string[]>> = {
  'macvlan-pod': ['net1'],
  'static-pod': ['net1'],
  'sriov-pod': ['fast0'],
  'two-attachments-pod': ['net1', 'net2'],
};

let env: ClusterEnv;
let node: TestNode;
let netnsBefore: string[];

/**
 * Healthy VFs the ConfigMap's selectors pick from the simulated node (vendor 8086, devices
 * 154c/10ed/1889, by driver): allocatable counts healthy devices only.
 */
function expectedCount(driver: string): number {
  return node.vfs.filter(
    (v) =>
      v.vendor === '8086' &&
      ['154c', '10ed', '1889'].includes(v.device) &&
      v.driver === driver &&
      isHealthy(v),
  ).length;
}

async function dsPod(ds: string): Promise<Pod> {
  const list = await kubectlJson<{ items: Pod[] }>([
    '-n',
    NS,
    'get',
    'pods',
    '-l',
    `app.kubernetes.io/name=${ds}`,
  ]);
  const p = list.items[0];
  if (p === undefined) throw new Error(`no pod of ${ds}`);
  return p;
}

async function waitAllocatable(resource: string, n: number): Promise<void> {
  await waitFor(
    `node allocatable ${resource}=${String(n)}`,
    async () => (await allocatable(env.node))[resource] === String(n),
    {
      timeoutMs: 120_000,
    },
  );
}

/** A pod like the sriov example's, named `name` (the NAD sriov-vlan210 is from the examples). */
function sriovPodManifest(name: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      annotations: { 'k8s.v1.cni.cncf.io/networks': '[{"name":"sriov-vlan210","interface":"fast0"}]' },
    },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image: IMAGE,
          command: ['sleep', 'infinity'],
          resources: { requests: { [SRIOV]: '1' }, limits: { [SRIOV]: '1' } },
        },
      ],
    },
  });
}

/** The interfaces and the VF of a running pod, to compare before and after a restart. */
async function podSnapshot(name: string): Promise<{ ifs: string[]; pci: string | undefined }> {
  const addrs = await podAddrs('default', name);
  const ifs = addrs.map((a) => `${a.ifname}=${a.addr_info.map((i) => i.local).join(',')}`).sort();
  return { ifs, pci: (await podEnv('default', name)).get(PCI_ENV) };
}

async function snapshots(): Promise<Map<string, Awaited<ReturnType<typeof podSnapshot>>>> {
  const m = new Map<string, Awaited<ReturnType<typeof podSnapshot>>>();
  for (const name of Object.keys(EXAMPLE_PODS)) m.set(name, await podSnapshot(name));
  return m;
}

/** Starts a pod like the SR-IOV example; returns its VF's PCI address (from network-status). */
async function startSriovPod(name: string): Promise<string> {
  await kubectl(['-n', 'default', 'apply', '-f', '-'], { input: sriovPodManifest(name) });
  const pod = await waitPodReady('default', name);
  const pci = networkStatus(pod).find((s) => s.interface === 'fast0')?.['device-info']?.pci?.['pci-address'];
  expect(pci).toMatch(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);
  expect((await podEnv('default', name)).get(PCI_ENV)).toBe(pci);
  return pci ?? '';
}

/** A new SR-IOV pod starts with a VF; deleting it leaves the node as it was (VF back, no netns, no files). */
async function newSriovPodWorks(name: string): Promise<void> {
  const before = await nodeState(node);
  await startSriovPod(name);
  await kubectl(['-n', 'default', 'delete', 'pod', name, '--wait=true', '--timeout=120s'], {
    timeoutMs: 130_000,
  });
  await waitNodeState(node, `node as before ${name}`, before);
}

beforeAll(async () => {
  env = clusterEnv();
  netnsBefore = podNetnsNames();
  node = await createTestNode();
}, 120_000);

afterAll(async () => {
  await kubectl(['delete', '-k', EXAMPLES, '--ignore-not-found', '--wait=true', '--timeout=120s'], {
    timeoutMs: 130_000,
  }).catch(() => undefined);
  await kubectl(['delete', '-k', OVERLAY, '--ignore-not-found', '--wait=true', '--timeout=180s'], {
    timeoutMs: 190_000,
  }).catch(() => undefined);
  await node.remove();
}, 400_000);

describe('netplumb on a real cluster: the install', () => {
  it('kubectl apply -k rolls both DaemonSets out Ready from the image', async () => {
    await kubectl(['apply', '-k', OVERLAY]);
    await rollout('daemonset', DEVICE_PLUGIN);
    await rollout('daemonset', CNI_DAEMON);
    for (const ds of [DEVICE_PLUGIN, CNI_DAEMON]) {
      const p = await dsPod(ds);
      expect(p.spec.nodeName).toBe(env.node);
      expect(p.status.containerStatuses?.every((c) => c.ready && c.image.endsWith(IMAGE))).toBe(true);
    }
  }, 300_000);

  it("the Node's allocatable shows each pool's count", async () => {
    const sriov = expectedCount('iavf');
    const dpdk = expectedCount('vfio-pci');
    expect(sriov).toBeGreaterThan(0);
    expect(dpdk).toBeGreaterThan(0);
    await waitAllocatable(SRIOV, sriov);
    await waitAllocatable(DPDK, dpdk);
  }, 150_000);
});

describeWebhook(() => node);

describe('netplumb on a real cluster', () => {
  it('every example pod runs with its interfaces, network-status and, for the VF, PCIDEVICE_* env and device-info', async () => {
    await kubectl(['apply', '-k', EXAMPLES]);
    for (const [name, attachments] of Object.entries(EXAMPLE_PODS)) {
      const pod = await waitPodReady('default', name);
      const addrs = await podAddrs('default', name);
      const status = networkStatus(pod);
      expect(status[0]?.default).toBe(true);
      expect(status[0]?.interface).toBe('eth0');
      for (const ifname of ['eth0', ...attachments]) {
        const link = addrs.find((a) => a.ifname === ifname);
        const st = status.find((s) => s.interface === ifname);
        expect(link, `${name}: ${ifname} in ip -j addr`).toBeDefined();
        expect(st, `${name}: ${ifname} in network-status`).toBeDefined();
        const v4 = link?.addr_info.filter((i) => i.family === 'inet').map((i) => i.local) ?? [];
        expect(st?.ips ?? []).toEqual(v4);
      }
    }
    const staticPod = await getPod('default', 'static-pod');
    const net1 = (await podAddrs('default', 'static-pod')).find((a) => a.ifname === 'net1');
    expect(net1?.address).toBe('c2:b0:57:49:47:f1');
    expect(networkStatus(staticPod).find((s) => s.interface === 'net1')?.ips).toEqual(['10.20.0.10']);
    // The VF attachment: env from Allocate names the same VF as network-status' device-info.
    const sriovPod = await getPod('default', 'sriov-pod');
    const pci = (await podEnv('default', 'sriov-pod')).get(PCI_ENV);
    const fast0 = networkStatus(sriovPod).find((s) => s.interface === 'fast0');
    expect(pci).toMatch(/^[0-9a-f]{4}:/);
    expect(fast0?.['device-info']).toMatchObject({ type: 'pci', pci: { 'pci-address': pci } });
    const vf = node.netdevVfs.find((v) => v.address === pci);
    expect(vf, `VF ${String(pci)} is one of the simulated node's netdev VFs`).toBeDefined();
    expect(await hostLinks()).not.toContain(vf?.netdev);
  }, 400_000);

  it('each attachment of each example pod has an AddedInterface event', async () => {
    for (const [name, attachments] of Object.entries(EXAMPLE_PODS)) {
      const events = await waitFor(
        `${name}'s AddedInterface events`,
        async () => {
          const ev = await podEvents('default', name, 'AddedInterface');
          return ev.length >= attachments.length + 1 ? ev : undefined;
        },
        { timeoutMs: 30_000 },
      );
      for (const ifname of ['eth0', ...attachments]) {
        expect(
          events.some((e) => e.message.includes(ifname)),
          `${name}: AddedInterface for ${ifname}`,
        ).toBe(true);
      }
    }
  }, 200_000);

  for (const [what, restart] of [
    ['the kubelet restarted', () => clusterCtl('restart', 'kubelet')],
    ['the device-plugin pod deleted', () => deleteWorkloadPods(DEVICE_PLUGIN)],
    ['the CNI daemon pod deleted', () => deleteWorkloadPods(CNI_DAEMON)],
  ] as const) {
    it(`${what}: running pods keep their devices and interfaces, new pods still start`, async () => {
      const before = await snapshots();
      await restart();
      await rollout('daemonset', DEVICE_PLUGIN);
      await rollout('daemonset', CNI_DAEMON);
      await waitAllocatable(SRIOV, expectedCount('iavf'));
      expect(await snapshots()).toEqual(before);
      await newSriovPodWorks(`sriov-new-${(what.split(' ')[1] ?? 'x').toLowerCase()}`);
    }, 400_000);
  }

  it('the API server stopped: pod deletion (DEL) still cleans up', async () => {
    const before = await nodeState(node);
    await startSriovPod('sriov-apiserver-down');
    // `sleep` as PID 1 ignores SIGTERM: the kubelet kills it when the grace period ends, then the
    // runtime runs DEL; the API server is stopped by then.
    await kubectl([
      '-n',
      'default',
      'delete',
      'pod',
      'sriov-apiserver-down',
      '--grace-period=20',
      '--wait=false',
    ]);
    await clusterCtl('stop', 'kube-apiserver');
    try {
      await waitNodeState(node, 'node as before the pod, with the API server down', before);
    } finally {
      await clusterCtl('start', 'kube-apiserver');
    }
    await waitFor(
      'pod gone',
      async () =>
        (
          await kubectl(['-n', 'default', 'get', 'pod', 'sriov-apiserver-down', '--ignore-not-found'])
        ).stdout.trim() === '',
    );
  }, 300_000);

  it('kubectl delete -k leaves nothing of netplumb on the node', async () => {
    // The example pods first, while netplumb still serves their DEL. Once their sandboxes are gone
    // from the node (containerd removes a pod's netns only after its CNI DEL succeeded), netplumb
    // goes: the pod objects themselves linger until kubelet 1.20's container GC (once a minute) has
    // removed their dead containers, and that wait overlaps netplumb's own deletion. Both are waited
    // for before the node is checked.
    await kubectl(['delete', '-k', EXAMPLES, '--wait=false']);
    await waitFor('the example pods torn down on the node (their netns gone)', () =>
      Promise.resolve(podNetnsNames().length === netnsBefore.length),
    );
    await kubectl(['delete', '-k', OVERLAY, '--wait=true', '--timeout=180s'], { timeoutMs: 190_000 });
    await kubectl(['delete', '-k', EXAMPLES, '--ignore-not-found', '--wait=true', '--timeout=120s'], {
      timeoutMs: 130_000,
    });
    await waitNamespaceGone();
    await waitFor('nothing of netplumb left on the node', () =>
      Promise.resolve(
        [
          '/etc/cni/net.d/00-netplumb.conflist',
          '/opt/cni/bin/netplumb-shim',
          '/opt/cni/bin/netplumb-cni',
          '/opt/cni/bin/netplumb-cni-node',
          '/opt/cni/bin/netplumb-spawner',
          '/opt/cni/bin/.netplumb-install.json',
          '/run/netplumb/cni.sock',
        ].every((f) => !existsSync(f)) &&
          filesUnder('/var/lib/kubelet/device-plugins').every(
            (f) => !f.includes('netdevice') && !f.includes('dpdk'),
          ) &&
          filesUnder('/var/lib/kubelet/plugins_registry').length === 0 &&
          filesUnder(`${DEVINFO_DIR}/dp`).length === 0 &&
          filesUnder(CACHE_DIR).length === 0 &&
          podNetnsNames().length === netnsBefore.length,
      ),
    );
  }, 400_000);
});
