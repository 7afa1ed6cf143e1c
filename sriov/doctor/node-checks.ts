// Node-wide readiness checks for SR-IOV and DPDK: IOMMU, vfio/uio, hugepages, NUMA. Pure
// functions over KernelFacts and the PFs (see facts.ts for how they are read).
import type { KernelFacts } from '../node-info.js';
import { cmdlineParam, formatCpuList } from '../node-info.js';
import type { HugepagePool } from '../node-info.js';
import type { Pf } from '../model.js';
import { fail, pass, warn } from './check.js';
import type { Check } from './check.js';

export function pfLabel(pf: Pick<Pf, 'netdev' | 'pciAddress'>): string {
  return pf.netdev === null ? pf.pciAddress : `${pf.netdev} (${pf.pciAddress})`;
}

/** `2048kB 1024 total / 1000 free` per pool; `none` when there is none. */
export function formatPools(pools: readonly HugepagePool[]): string {
  const used = pools.filter((p) => p.total > 0);
  if (used.length === 0) return 'none';
  return used.map((p) => `${sizeName(p.sizeKiB)} ${p.total} total / ${p.free} free`).join(', ');
}

function sizeName(kib: number): string {
  if (kib % (1024 * 1024) === 0) return `${kib / (1024 * 1024)}G`;
  if (kib % 1024 === 0) return `${kib / 1024}M`;
  return `${kib}kB`;
}

export function sriovPfsCheck(pfs: readonly Pf[]): Check {
  if (pfs.length > 0)
    return pass('sriov-pfs', null, `${pfs.length} SR-IOV PF(s): ${pfs.map(pfLabel).join(', ')}`);
  return fail(
    'sriov-pfs',
    null,
    'no SR-IOV capable network PF: no network device under /sys/bus/pci/devices has sriov_totalvfs',
    'use a NIC that supports SR-IOV and enable SR-IOV (and VT-d/AMD-Vi) in the firmware setup; `netplumb inspect --all` lists every SR-IOV capable device',
  );
}

const IOMMU_ON_FIX =
  'enable VT-d (Intel) or AMD-Vi (AMD) in the firmware setup and boot with intel_iommu=on iommu=pt (Intel) or amd_iommu=on iommu=pt (AMD)';

export function iommuCheck(k: KernelFacts): Check {
  if (k.iommuGroups > 0)
    return pass('iommu', null, `${k.iommuGroups} IOMMU groups under /sys/kernel/iommu_groups`);
  if (k.vfioNoiommu === true) {
    return warn(
      'iommu',
      null,
      'no IOMMU groups; vfio runs in unsafe no-IOMMU mode (no DMA isolation between VFs and the host)',
      `acceptable only in a VM without a vIOMMU; on bare metal ${IOMMU_ON_FIX}`,
    );
  }
  return fail(
    'iommu',
    null,
    'no IOMMU groups under /sys/kernel/iommu_groups: the IOMMU is off, so vfio-pci cannot hand VFs to DPDK',
    IOMMU_ON_FIX,
  );
}

/** The kernel command line against the IOMMU state: on, and in passthrough mode for the host. */
export function iommuCmdlineCheck(k: KernelFacts): Check {
  const id = 'iommu-cmdline';
  if (k.cmdline === null)
    return warn(
      id,
      null,
      'cannot read /proc/cmdline',
      "run doctor where /proc is the host's (hostPID or a /proc mount)",
    );
  const intel = cmdlineParam(k.cmdline, 'intel_iommu');
  const amd = cmdlineParam(k.cmdline, 'amd_iommu');
  const pt = cmdlineParam(k.cmdline, 'iommu') === 'pt';
  const seen = [intel === null ? null : `intel_iommu=${intel}`, amd === null ? null : `amd_iommu=${amd}`]
    .filter((s) => s !== null)
    .join(' ');
  const on = intel === 'on' || amd === 'on' || amd === 'force_isolation';
  if (k.iommuGroups === 0) {
    const fact = on
      ? `the command line has ${seen} but the kernel made no IOMMU groups: the IOMMU is disabled in the firmware`
      : `the command line has ${seen === '' ? 'neither intel_iommu=on nor amd_iommu=on' : seen}`;
    return fail(id, null, fact, IOMMU_ON_FIX);
  }
  if (!pt) {
    return warn(
      id,
      null,
      `IOMMU on${seen === '' ? '' : ` (${seen})`} but iommu=pt is not on the command line: host DMA is translated too`,
      'add iommu=pt to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, update-grub, reboot)',
    );
  }
  return pass(id, null, `command line has ${seen === '' ? '' : `${seen} `}iommu=pt`);
}

function vfioPciAvailable(k: KernelFacts): boolean {
  return k.pciDrivers.includes('vfio-pci') || k.modules.includes('vfio_pci');
}

export function vfioPciCheck(k: KernelFacts, havePfs: boolean): Check {
  if (vfioPciAvailable(k)) {
    const where = k.pciDrivers.includes('vfio-pci')
      ? '/sys/bus/pci/drivers/vfio-pci'
      : '/sys/module/vfio_pci';
    return pass('vfio-pci', null, `vfio-pci is loaded (${where})`);
  }
  const fact = 'vfio-pci is not loaded: no /sys/bus/pci/drivers/vfio-pci, so no VF can be bound for DPDK';
  const fix = 'modprobe vfio-pci, and list vfio-pci in /etc/modules-load.d/vfio-pci.conf so it loads at boot';
  return havePfs ? fail('vfio-pci', null, fact, fix) : warn('vfio-pci', null, fact, fix);
}

export function vfioNoiommuCheck(k: KernelFacts): Check | null {
  if (k.vfioNoiommu === null) return null;
  if (!k.vfioNoiommu) return pass('vfio-noiommu', null, 'vfio enable_unsafe_noiommu_mode is N');
  return warn(
    'vfio-noiommu',
    null,
    'vfio enable_unsafe_noiommu_mode is Y: DPDK VFs get no DMA isolation from the host',
    'use no-IOMMU mode only in VMs without a vIOMMU; elsewhere enable the IOMMU and load vfio with enable_unsafe_noiommu_mode=0',
  );
}

export function uioCheck(k: KernelFacts): Check {
  const uio = k.modules.filter((m) => m === 'uio' || m === 'uio_pci_generic' || m === 'igb_uio');
  if (uio.length > 0) return pass('uio', null, `uio modules loaded: ${uio.join(', ')}`);
  if (vfioPciAvailable(k)) return pass('uio', null, 'no uio modules loaded (not needed: vfio-pci is there)');
  return warn(
    'uio',
    null,
    'neither vfio-pci nor a uio driver (uio_pci_generic, igb_uio) is loaded',
    'modprobe vfio-pci (preferred); uio_pci_generic only where there is no IOMMU',
  );
}

export function hugepagesCheck(k: KernelFacts, havePfs: boolean): Check {
  const pools = formatPools(k.hugepages);
  const total = k.hugepages.reduce((n, p) => n + p.total, 0);
  const free = k.hugepages.reduce((n, p) => n + p.free, 0);
  if (total === 0) {
    const fact = 'no hugepages reserved (every /sys/kernel/mm/hugepages/*/nr_hugepages is 0)';
    const fix =
      'reserve them at boot (default_hugepagesz=1G hugepagesz=1G hugepages=N) or now: echo N > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';
    return havePfs ? fail('hugepages', null, fact, fix) : warn('hugepages', null, fact, fix);
  }
  if (free === 0)
    return warn(
      'hugepages',
      null,
      `hugepages ${pools}: none free`,
      'reserve more hugepages or stop what holds them',
    );
  return pass('hugepages', null, `hugepages ${pools}`);
}

/** CPUs and hugepages per NUMA node, and the isolated CPUs: the facts the per-PF checks compare. */
export function numaCheck(k: KernelFacts): Check {
  if (k.numaNodes.length === 0)
    return warn(
      'numa',
      null,
      'no /sys/devices/system/node: NUMA placement of PFs, CPUs and hugepages is unknown',
      'use a kernel built with CONFIG_NUMA',
    );
  const nodes = k.numaNodes.map(
    (n) => `node${n.id}: CPUs ${formatCpuList(n.cpus)}, hugepages ${formatPools(n.hugepages)}`,
  );
  const iso = isolated(k);
  return pass(
    'numa',
    null,
    `${nodes.join('; ')}; isolated CPUs ${iso.length > 0 ? formatCpuList(iso) : 'none'}`,
  );
}

/** CPUs taken from the scheduler's general use: `isolcpus=` ∪ `nohz_full=`. */
export function isolated(k: KernelFacts): number[] {
  return [...new Set([...k.isolatedCpus, ...k.nohzFullCpus])].sort((a, b) => a - b);
}
