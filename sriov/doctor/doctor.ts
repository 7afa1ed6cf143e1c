// `netplumb doctor`'s hardware half: reads the node (discovery, kernel facts, the host's link
// speeds, driver and firmware versions) and runs the node-wide and per-PF checks. The device
// plugin's config and the kubelet sockets are checked on top of this by device-plugin/node-checks.
import path from 'node:path';
import { discoverNode } from '../discover.js';
import { selectPf } from '../inspect.js';
import type { NodeModel, Pf } from '../model.js';
import { readKernelFacts } from '../node-info.js';
import type { HostSource, KernelFacts, LinkSpeed } from '../node-info.js';
import { SysfsReader } from '../sysfs.js';
import type { VfStateSource } from '../vf-state.js';
import type { Check } from './check.js';
import {
  hugepagesCheck,
  iommuCheck,
  iommuCmdlineCheck,
  numaCheck,
  sriovPfsCheck,
  uioCheck,
  vfioNoiommuCheck,
  vfioPciCheck,
} from './node-checks.js';
import { pfChecks } from './pf-checks.js';
import type { PfFacts } from './pf-checks.js';

export interface DoctorOptions {
  readonly sysfsRoot: string;
  /** `/proc`, or a simulated node's `proc/`. */
  readonly procRoot: string;
  readonly vfState: VfStateSource | null;
  /** Link speed and duplex of the PF netdevs. */
  readonly host: Pick<HostSource, 'linkSpeeds'>;
  /** Only this PF (netdev name or PCI address); node-wide checks still run. */
  readonly pf?: string;
  /** Also SR-IOV capable PCI devices that are not network devices (as `inspect --all`). */
  readonly all?: boolean;
}

export interface DoctorRun {
  /** The whole node (pool checks need every device, not only the selected PF). */
  readonly model: NodeModel;
  /** The PFs checked: all, or the one `--pf` named. */
  readonly pfs: readonly Pf[];
  readonly kernel: KernelFacts;
  readonly checks: readonly Check[];
  /** Problems met while reading sysfs/proc; never fatal. */
  readonly warnings: readonly string[];
}

/** Node-wide checks, in the order a person fixes them: hardware, IOMMU, drivers, memory, CPUs. */
export function nodeChecks(k: KernelFacts, pfs: readonly Pf[]): Check[] {
  const have = pfs.length > 0;
  const checks = [
    sriovPfsCheck(pfs),
    iommuCheck(k),
    iommuCmdlineCheck(k),
    vfioPciCheck(k, have),
    vfioNoiommuCheck(k),
    uioCheck(k),
    hugepagesCheck(k, have),
    numaCheck(k),
  ];
  return checks.filter((c): c is Check => c !== null);
}

function pfFacts(fs: SysfsReader, pf: Pf, links: ReadonlyMap<string, LinkSpeed>): PfFacts {
  const rdma = pf.rdmaDevices[0];
  return {
    pf,
    link: pf.netdev === null ? null : (links.get(pf.netdev) ?? null),
    driverVersion:
      pf.driver === null ? null : fs.text(fs.path('module', pf.driver.replace(/-/g, '_'), 'version')),
    firmware: rdma === undefined ? null : fs.text(fs.path('class', 'infiniband', rdma, 'fw_ver')),
  };
}

/** Reads the node and runs every hardware check. Throws only for a `pf` that matches no PF. */
export async function runDoctor(o: DoctorOptions): Promise<DoctorRun> {
  const fs = new SysfsReader(path.resolve(o.sysfsRoot));
  // Link speeds for every netdev, asked for while discovery runs: systeminformation takes
  // hundreds of milliseconds (seconds on a busy node) to answer.
  const links = o.host
    .linkSpeeds(fs.dir(fs.path('class', 'net')) ?? [])
    .catch(() => new Map<string, LinkSpeed>());
  const [model, kernel, speeds] = await Promise.all([
    discoverNode({ sysfsRoot: o.sysfsRoot, vfState: o.vfState, all: o.all === true }),
    readKernelFacts({ sysfsRoot: o.sysfsRoot, procRoot: o.procRoot }),
    links,
  ]);
  const pfs = o.pf === undefined ? model.pfs : selectPf(model, o.pf).pfs;
  const checks = [
    ...nodeChecks(kernel, o.pf === undefined ? model.pfs : pfs),
    ...pfs.flatMap((pf) => pfChecks(pfFacts(fs, pf, speeds), kernel)),
  ];
  return { model, pfs, kernel, checks, warnings: [...model.warnings, ...kernel.warnings] };
}
