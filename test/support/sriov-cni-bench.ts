// A test bench for the SR-IOV CNI plugin on this kernel: a simulated node whose VF netdevs are
// real veths in the host netns, real pod netns, the PF VF-settings recorder, real IPAM binaries
// from /usr/lib/cni, and state in a temp dir.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { CniPluginFn, CniResponse } from '../../cni/skel.js';
import { createIproute2LinkOps } from '../../sriov/link/iproute2.js';
import type { LinkOps } from '../../sriov/link/link-ops.js';
import { createTestNetns, createTestVeth } from './netns.js';
import type { TestNetns, TestVeth } from './netns.js';
import { createVfSettingsRecorder } from '../../sim/vf-settings-recorder.js';
import type { VfSettingsRecorder } from '../../sim/vf-settings-recorder.js';
import { simulatedNode } from '../../sim/simulated-node.js';
import type { WrittenNode } from '../../sim/simulated-node.js';
import type { SriovDeps } from '../../cni/sriov/deps.js';
import { createSriovPlugin } from '../../cni/sriov/plugin.js';
import { createSriovDeps } from '../../cni/sriov/wiring.js';

export const CNI_BIN_DIR = '/usr/lib/cni';
export const PF_NETDEV = 'npscpf0';
export const PF_PCI = '0000:3b:00.0';

export interface Bench {
  readonly dir: string;
  readonly node: WrittenNode;
  /** VF PCI addresses by index: 0 and 1 carry veths, 2 is vfio-pci (DPDK). */
  readonly vf: readonly string[];
  /** Host veth ends standing for VF 0 and VF 1 netdevs. */
  readonly veths: readonly TestVeth[];
  readonly stateDir: string;
  readonly recorderDir: string;
  readonly recorder: VfSettingsRecorder;
  readonly links: LinkOps;
  readonly deps: SriovDeps;
  readonly plugin: CniPluginFn;
  newNetns(): Promise<TestNetns>;
  /** Runs one CNI verb in-process. */
  call(command: string, config: object, opts: CallOptions): Promise<CniResponse>;
  cleanup(): Promise<void>;
}

export interface CallOptions {
  readonly containerId: string;
  readonly ifname?: string;
  readonly netns?: string;
  readonly args?: string;
}

export function cniEnv(command: string, opts: CallOptions): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: opts.containerId,
    CNI_IFNAME: opts.ifname ?? 'net1',
    CNI_PATH: CNI_BIN_DIR,
    ...(opts.netns === undefined ? {} : { CNI_NETNS: opts.netns }),
    ...(opts.args === undefined ? {} : { CNI_ARGS: opts.args }),
  };
}

export async function createBench(prefix = 'np-sc'): Promise<Bench> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'np-sriovcni-'));
  const veths = [await createTestVeth(prefix), await createTestVeth(prefix)];
  const [v0, v1] = veths as [TestVeth, TestVeth];
  const node = await simulatedNode()
    .pf(PF_PCI, { netdev: PF_NETDEV, vendor: '8086', device: '158b', driver: 'i40e', totalVfs: 8 })
    .vfs(4, {
      driver: 'iavf',
      device: '154c',
      overrides: { 0: { netdev: v0.name }, 1: { netdev: v1.name }, 2: { driver: 'vfio-pci' } },
    })
    .write(path.join(dir, 'node'));
  const stateDir = path.join(dir, 'state');
  // Where a simulated node keeps its recorded PF calls (NETPLUMB_SIMULATED_NODE=<node.dir> uses the same).
  const recorderDir = path.join(node.dir, 'pf-calls');
  const namespaces: TestNetns[] = [];
  const deps: SriovDeps = {
    ...createSriovDeps({
      sysfsRoot: node.sysfsRoot,
      stateDir,
      pf: createVfSettingsRecorder({ dir: recorderDir, linksFile: node.linksFile }),
      logDestination: pino.destination({ dest: path.join(dir, 'plugin.log'), sync: true }),
    }),
    macRetryDelayMs: 1,
    lockTimeoutMs: 10_000,
  };
  const plugin = createSriovPlugin(deps);
  return {
    dir,
    node,
    vf: node.vfAddresses,
    veths,
    stateDir,
    recorderDir,
    recorder: createVfSettingsRecorder({ dir: recorderDir, linksFile: node.linksFile }),
    links: createIproute2LinkOps(),
    deps,
    plugin,
    async newNetns() {
      const ns = await createTestNetns(prefix);
      namespaces.push(ns);
      return ns;
    },
    call(command, config, opts) {
      return plugin({ env: cniEnv(command, opts), stdin: JSON.stringify(config) });
    },
    async cleanup() {
      for (const ns of namespaces) await ns.remove();
      for (const v of veths) await v.remove();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
