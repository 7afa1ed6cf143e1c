// The test node's "hardware": a simulated SR-IOV node (hack/mknode, preset intel-x710) written where
// the test overlay mounts it into the DaemonSet pods, and one real veth per VF netdev in the host
// network namespace, named as the simulated VF netdev (the SR-IOV CNI moves it into the pod).
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { onNode, ROOT, waitFor } from './cluster.js';

/** Where test/cluster/overlays/netplumb mounts the simulated node (hostPath). */
export const SIMULATED_NODE_DIR = '/var/lib/netplumb-test-node';

export interface SimulatedVf {
  readonly address: string;
  readonly netdev: string;
  readonly driver: string;
  readonly vendor: string;
  readonly device: string;
  /** sysfs operstate of its netdev ('' without one). */
  readonly operstate: string;
  /** The PF's IFLA_VF_LINK_STATE for it (links.json), e.g. auto or disable. */
  readonly linkState: string;
}

/** A VF the device plugin should report Healthy: netdev link up and not disabled on the PF. */
export function isHealthy(vf: SimulatedVf): boolean {
  return vf.netdev === '' ? true : vf.operstate === 'up' && vf.linkState !== 'disable';
}

export interface TestNode {
  readonly dir: string;
  readonly vfs: readonly SimulatedVf[];
  /** VFs with a netdev, each backed by a host veth of the same name. */
  readonly netdevVfs: readonly SimulatedVf[];
  remove(): Promise<void>;
}

function read(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

/** VF PCI address -> link_state, from the PFs' vfinfo_list in links.json and their virtfnN links. */
function linkStates(dir: string): Map<string, string> {
  const links = JSON.parse(read(path.join(dir, 'links.json'))) as {
    ifname: string;
    vfinfo_list?: { vf: number; link_state?: string }[];
  }[];
  const out = new Map<string, string>();
  for (const pf of links) {
    for (const info of pf.vfinfo_list ?? []) {
      const virtfn = path.join(dir, 'sys', 'class', 'net', pf.ifname, 'device', `virtfn${String(info.vf)}`);
      if (existsSync(virtfn)) out.set(path.basename(readlinkSync(virtfn)), info.link_state ?? 'auto');
    }
  }
  return out;
}

/** Every VF of the written tree (PCI functions with a physfn link), read back from its sysfs files. */
function listVfs(dir: string): SimulatedVf[] {
  const pci = path.join(dir, 'sys', 'bus', 'pci', 'devices');
  const states = linkStates(dir);
  const vfs: SimulatedVf[] = [];
  for (const address of readdirSync(pci).sort()) {
    const dev = path.join(pci, address);
    if (!existsSync(path.join(dev, 'physfn'))) continue;
    const net = path.join(dev, 'net');
    const netdev = existsSync(net) ? (readdirSync(net)[0] ?? '') : '';
    const driverLink = path.join(dev, 'driver');
    const driver = existsSync(driverLink) ? path.basename(readlinkSync(driverLink)) : '';
    vfs.push({
      address,
      netdev,
      driver,
      vendor: read(path.join(dev, 'vendor')).replace(/^0x/, ''),
      device: read(path.join(dev, 'device')).replace(/^0x/, ''),
      operstate: netdev === '' ? '' : read(path.join(net, netdev, 'operstate')),
      linkState: states.get(address) ?? 'auto',
    });
  }
  return vfs;
}

async function deleteLink(name: string): Promise<void> {
  await onNode('ip', ['link', 'delete', name]).catch(() => undefined);
}

/** Writes the simulated node and its veths; `remove()` deletes both (also what a pod left behind). */
export async function createTestNode(): Promise<TestNode> {
  await onNode(path.join(ROOT, 'hack', 'mknode'), [
    '--preset',
    'intel-x710',
    '--out',
    SIMULATED_NODE_DIR,
    '--force',
  ]);
  const vfs = listVfs(SIMULATED_NODE_DIR);
  const netdevVfs = vfs.filter((v) => v.netdev !== '');
  for (const [i, vf] of netdevVfs.entries()) {
    await deleteLink(vf.netdev);
    await onNode('ip', ['link', 'add', vf.netdev, 'type', 'veth', 'peer', 'name', `npvfpeer${String(i)}`]);
  }
  return {
    dir: SIMULATED_NODE_DIR,
    vfs,
    netdevVfs,
    async remove() {
      for (const vf of netdevVfs) await deleteLink(vf.netdev);
      for (const i of netdevVfs.keys()) await deleteLink(`npvfpeer${String(i)}`);
      await rm(SIMULATED_NODE_DIR, { recursive: true, force: true });
    },
  };
}

/** Names of the links in the host network namespace. */
export async function hostLinks(): Promise<string[]> {
  const { stdout } = await onNode('ip', ['-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname);
}

/** Network namespaces the runtime made for pods (/run/netns/cni-*). */
export function podNetnsNames(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith('cni-')) : [];
}

/** Files below `dir` (recursive, relative names), [] when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** The CNI state dirs of the suite's networks (other host-local users on the host are not ours). */
const OUR_CNI_FILES =
  /^(netplumb|sriov|results)\/|^networks\/(netplumb-test-pod-net|sriov-vlan210|macvlan-net|static-net)\//;

/** What a pod may leave on the node: pod netns (cni-*), VF netdevs away from the host, CNI files. */
export interface NodeState {
  readonly netns: string[];
  readonly vfsOnHost: string[];
  readonly files: string[];
}

export async function nodeState(node: TestNode): Promise<NodeState> {
  const files = filesUnder('/var/lib/cni').filter(
    (f) => OUR_CNI_FILES.test(f) && !/(^|\/)(last_reserved_ip\.\d+|lock)$/.test(f),
  );
  const host = new Set(await hostLinks());
  const vfsOnHost = node.netdevVfs.map((v) => v.netdev).filter((n) => host.has(n));
  return { netns: podNetnsNames().sort(), vfsOnHost, files };
}

/** What pods left behind: netns and files that `before` did not have, VFs not back on the host. */
export function leftovers(before: NodeState, now: NodeState): string[] {
  const had = new Set([...before.netns, ...before.files]);
  const added = [...now.netns, ...now.files].filter((e) => !had.has(e));
  const missing = before.vfsOnHost
    .filter((n) => !now.vfsOnHost.includes(n))
    .map((n) => `VF netdev ${n} not on the host`);
  return [...added, ...missing];
}

/**
 * Waits until the node has nothing that `before` did not have and every VF netdev of `before` is
 * back on the host. Other pods may remove entries meanwhile.
 */
export async function waitNodeState(node: TestNode, what: string, before: NodeState): Promise<void> {
  let left: string[] = [];
  await waitFor(
    what,
    async () => {
      left = leftovers(before, await nodeState(node));
      return left.length === 0;
    },
    { timeoutMs: 120_000 },
  ).catch((err: unknown) => {
    expect(left, 'left on the node').toEqual([]);
    throw err;
  });
}
