// Per-PF readiness checks: VFs created, link, driver and firmware, and the PF's NUMA node against
// the node's hugepages and isolated CPUs. Pure functions over a PfFacts and KernelFacts.
import type { Pf } from '../model.js';
import type { KernelFacts, LinkSpeed, NumaNode } from '../node-info.js';
import { formatCpuList } from '../node-info.js';
import { fail, pass, warn } from './check.js';
import type { Check } from './check.js';
import { formatPools, isolated, pfLabel } from './node-checks.js';

export interface PfFacts {
  readonly pf: Pf;
  /** Speed and duplex of the PF netdev; null when it has none or the source did not know it. */
  readonly link: LinkSpeed | null;
  /** `/sys/module/<driver>/version` (out-of-tree and some in-tree drivers publish one). */
  readonly driverVersion: string | null;
  /** Firmware version where sysfs has one (`infiniband/<dev>/fw_ver`). */
  readonly firmware: string | null;
}

export function pfVfsCheck(f: PfFacts): Check {
  const { pf } = f;
  const at = pf.pciAddress;
  if (pf.numVfs === 0) {
    return fail(
      'pf-vfs',
      at,
      `${pfLabel(pf)}: sriov_numvfs is 0 of sriov_totalvfs ${pf.totalVfs}: no VFs created`,
      `netplumb vf set-count ${pf.netdev ?? at} N (N up to ${pf.totalVfs}), or a netplumb vf apply policy`,
    );
  }
  if (pf.vfs.length !== pf.numVfs) {
    return warn(
      'pf-vfs',
      at,
      `${pfLabel(pf)}: sriov_numvfs is ${pf.numVfs} but ${pf.vfs.length} VFs are present (virtfnN links)`,
      `recreate the VFs: netplumb vf set-count ${pf.netdev ?? at} ${pf.numVfs}`,
    );
  }
  return pass('pf-vfs', at, `${pfLabel(pf)}: ${pf.numVfs} of ${pf.totalVfs} VFs created`);
}

function speedText(link: LinkSpeed | null): string {
  if (link === null || link.speedMbps === null) return 'speed unknown';
  const duplex = link.duplex === null ? '' : ` ${link.duplex} duplex`;
  return `${link.speedMbps} Mb/s${duplex}`;
}

export function pfLinkCheck(f: PfFacts): Check {
  const { pf } = f;
  if (pf.netdev === null) {
    return warn(
      'pf-link',
      pf.pciAddress,
      `${pf.pciAddress}: the PF has no netdev (driver ${pf.driver ?? 'none'}), so its link state is unknown`,
      'bind the PF to its kernel network driver; VF settings (VLAN, MAC, trust) are set through the PF netdev',
    );
  }
  if (pf.operstate === 'up' && pf.carrier !== false)
    return pass('pf-link', pf.pciAddress, `${pf.netdev} is up, ${speedText(f.link)}`);
  return warn(
    'pf-link',
    pf.pciAddress,
    `${pf.netdev} is ${pf.operstate ?? 'in an unknown state'}${pf.carrier === false ? ', no carrier' : ''}: its VFs have no link`,
    `ip link set ${pf.netdev} up; if it stays down, check the cable and the switch port`,
  );
}

export function pfDriverCheck(f: PfFacts): Check {
  const { pf } = f;
  if (pf.driver === null) {
    return fail(
      'pf-driver',
      pf.pciAddress,
      `${pf.pciAddress}: the PF is bound to no driver`,
      'load the NIC driver (e.g. modprobe i40e, ice, mlx5_core) so it binds the PF',
    );
  }
  const version = f.driverVersion === null ? '' : ` ${f.driverVersion}`;
  const firmware = f.firmware === null ? 'firmware version not in sysfs' : `firmware ${f.firmware}`;
  return pass('pf-driver', pf.pciAddress, `${pfLabel(pf)}: driver ${pf.driver}${version}, ${firmware}`);
}

/** The PF and its VFs sit in IOMMU groups, each VF in its own (vfio hands out whole groups). */
export function pfIommuCheck(f: PfFacts): Check {
  const { pf } = f;
  if (pf.iommuGroup === null) {
    return fail(
      'pf-iommu',
      pf.pciAddress,
      `${pfLabel(pf)}: no IOMMU group (no iommu_group link), so vfio-pci cannot take its VFs`,
      'turn the IOMMU on (see the iommu check)',
    );
  }
  const groups = new Map<number, number>();
  for (const vf of pf.vfs)
    if (vf.iommuGroup !== null) groups.set(vf.iommuGroup, (groups.get(vf.iommuGroup) ?? 0) + 1);
  const shared = [...groups].filter(([g, n]) => n > 1 || g === pf.iommuGroup).map(([g]) => g);
  const vfs = pf.vfs.length === 0 ? '' : `, its ${pf.vfs.length} VFs in ${groups.size} groups of their own`;
  if (shared.length > 0) {
    return warn(
      'pf-iommu',
      pf.pciAddress,
      `${pfLabel(pf)}: IOMMU group ${pf.iommuGroup}; VFs share groups ${shared.join(', ')}: vfio hands a group to one pod as a whole`,
      'enable ACS on the PCIe path (firmware setting), or give each pod every VF of a shared group',
    );
  }
  return pass('pf-iommu', pf.pciAddress, `${pfLabel(pf)}: IOMMU group ${pf.iommuGroup}${vfs}`);
}

function numaNodeOf(pf: Pf, k: KernelFacts): NumaNode | null {
  return k.numaNodes.find((n) => n.id === pf.numaNode) ?? null;
}

/** The PF's NUMA node has hugepages (DPDK allocates its mbufs on the NIC's node). */
export function pfHugepagesCheck(f: PfFacts, k: KernelFacts): Check | null {
  const { pf } = f;
  const node = numaNodeOf(pf, k);
  if (pf.numaNode < 0 || node === null) return null;
  const total = node.hugepages.reduce((n, p) => n + p.total, 0);
  const free = node.hugepages.reduce((n, p) => n + p.free, 0);
  const fact = `${pfLabel(pf)} is on NUMA node ${node.id}; node${node.id} hugepages ${formatPools(node.hugepages)}`;
  if (total === 0) {
    const size = node.hugepages.find((p) => p.sizeKiB === 1048576) ?? node.hugepages[0];
    const dir = `/sys/devices/system/node/node${node.id}/hugepages/hugepages-${size?.sizeKiB ?? 2048}kB`;
    return fail(
      'pf-hugepages',
      pf.pciAddress,
      fact,
      `reserve hugepages on node ${node.id}: echo N > ${dir}/nr_hugepages (a boot-time hugepages=N spreads them over every node)`,
    );
  }
  if (free === 0)
    return warn(
      'pf-hugepages',
      pf.pciAddress,
      `${fact}: none free`,
      `reserve more hugepages on node ${node.id}`,
    );
  return pass('pf-hugepages', pf.pciAddress, fact);
}

/** Isolated CPUs exist on the PF's NUMA node (PMD threads next to their NIC). */
export function pfCpusCheck(f: PfFacts, k: KernelFacts): Check | null {
  const { pf } = f;
  const node = numaNodeOf(pf, k);
  if (pf.numaNode < 0 || node === null) return null;
  const iso = isolated(k);
  const local = node.cpus.filter((c) => iso.includes(c));
  const cpus = formatCpuList(node.cpus);
  const fact = `${pfLabel(pf)} is on NUMA node ${node.id} (CPUs ${cpus})`;
  // Keep the node's first CPU for the kernel when suggesting a set.
  const suggest = formatCpuList(node.cpus.slice(1));
  const fixCpus = `isolcpus=${suggest} nohz_full=${suggest} rcu_nocbs=${suggest}`;
  if (iso.length === 0) {
    return warn(
      'pf-cpus',
      pf.pciAddress,
      `${fact}; no CPUs are isolated (no isolcpus= or nohz_full=): DPDK poll-mode threads share CPUs with everything else`,
      `isolate CPUs of node ${node.id} on the kernel command line: ${fixCpus}`,
    );
  }
  if (local.length === 0) {
    return fail(
      'pf-cpus',
      pf.pciAddress,
      `${fact}; the isolated CPUs ${formatCpuList(iso)} are all on other NUMA nodes: poll-mode threads would reach the NIC across sockets`,
      `isolate CPUs of node ${node.id} instead (or as well): ${fixCpus}`,
    );
  }
  return pass('pf-cpus', pf.pciAddress, `${fact}; isolated here: ${formatCpuList(local)}`);
}

/** Every per-PF check for one PF. */
export function pfChecks(f: PfFacts, k: KernelFacts): Check[] {
  const out = [
    pfVfsCheck(f),
    pfLinkCheck(f),
    pfDriverCheck(f),
    k.vfioNoiommu === true ? null : pfIommuCheck(f),
    pfHugepagesCheck(f, k),
    pfCpusCheck(f, k),
  ];
  return out.filter((c): c is Check => c !== null);
}
