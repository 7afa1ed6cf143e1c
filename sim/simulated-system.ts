// The node-wide part of a simulated node, what `netplumb doctor` and the `inspect` node header
// read besides the PCI devices: NUMA nodes with CPUs, memory and hugepages
// (`sys/devices/system/node`), CPU topology and isolated CPUs (`sys/devices/system/cpu`), the
// node-wide hugepage pools (`sys/kernel/mm/hugepages`), kernel modules (`sys/module`), the kernel
// command line (`proc/cmdline`) and the host description systeminformation gives on a real node
// (`host.json`). The defaults describe a node ready for DPDK; each option breaks one part of it.

import { formatCpuList } from '../sriov/node-info.js';

export interface HugepageOptions {
  readonly total: number;
  /** Default: all free. */
  readonly free?: number;
}

export interface NumaNodeOptions {
  /** Logical CPUs on the node (numbered after the previous node's); default 8. */
  readonly cpus?: number;
  /** Default 16384. */
  readonly memMiB?: number;
  /** Pages per size in kB, e.g. `{ 2048: { total: 1024 }, 1048576: { total: 4 } }`; default 1024 × 2M. */
  readonly hugepages?: Readonly<Record<number, HugepageOptions>>;
}

export interface SimulatedHost {
  readonly os: string;
  readonly kernel: string;
  readonly cpuModel: string;
  readonly sockets: number;
  readonly cores: number;
  readonly threads: number;
  readonly memTotalBytes: number;
}

export interface SystemOptions {
  /** NUMA nodes by id; default: node 0 and every node a device sits on, each with the defaults. */
  readonly numaNodes?: Readonly<Record<number, NumaNodeOptions>>;
  /** `proc/cmdline` verbatim; default boots with the IOMMU on in passthrough and the isolated CPUs. */
  readonly cmdline?: string;
  /** `sys/module/<name>`; default vfio, vfio_pci, vfio_iommu_type1, plus uio ones when a VF uses them. */
  readonly modules?: readonly string[];
  /** isolcpus CPU list (`2-7,10-15`); default every CPU but the first of each node; `''` = none. */
  readonly isolatedCpus?: string;
  /** nohz_full CPU list; default the isolated CPUs. */
  readonly nohzFull?: string;
  /** vfio `enable_unsafe_noiommu_mode`; default false. */
  readonly vfioNoiommu?: boolean;
  readonly host?: Partial<SimulatedHost>;
}

/** What the builder knows that the system part depends on. */
export interface SystemContext {
  /** NUMA nodes devices sit on (-1 ignored). */
  readonly deviceNumaNodes: readonly number[];
  /** The builder gives devices IOMMU groups. */
  readonly iommu: boolean;
  /** Drivers bound by any device. */
  readonly drivers: readonly string[];
}

export interface SystemPlan {
  /** Relative to `<dir>/sys`. */
  readonly sysFiles: ReadonlyMap<string, string>;
  /** Relative to `<dir>`. */
  readonly topFiles: ReadonlyMap<string, string>;
}

interface PlannedNode {
  readonly id: number;
  readonly cpus: readonly number[];
  readonly memMiB: number;
  readonly hugepages: ReadonlyMap<number, { total: number; free: number }>;
}

const DEFAULT_HUGEPAGES: Readonly<Record<number, HugepageOptions>> = { 2048: { total: 1024 } };

function planNodes(o: SystemOptions, ctx: SystemContext): PlannedNode[] {
  const given = o.numaNodes ?? {};
  const ids = new Set<number>([0, ...ctx.deviceNumaNodes.filter((n) => n >= 0)]);
  if (o.numaNodes !== undefined) {
    ids.clear();
    for (const k of Object.keys(given)) ids.add(Number(k));
  }
  let next = 0;
  return [...ids]
    .sort((a, b) => a - b)
    .map((id) => {
      const n = given[id] ?? {};
      const count = n.cpus ?? 8;
      const cpus = Array.from({ length: count }, (_, i) => next + i);
      next += count;
      const pools = new Map<number, { total: number; free: number }>();
      for (const [size, p] of Object.entries(n.hugepages ?? DEFAULT_HUGEPAGES))
        pools.set(Number(size), { total: p.total, free: p.free ?? p.total });
      return { id, cpus, memMiB: n.memMiB ?? 16384, hugepages: pools };
    });
}

function defaultIsolated(nodes: readonly PlannedNode[]): number[] {
  return nodes.flatMap((n) => n.cpus.slice(1));
}

function defaultModules(ctx: SystemContext): string[] {
  const mods = ['vfio', 'vfio_pci', 'vfio_iommu_type1'];
  if (ctx.drivers.includes('uio_pci_generic')) mods.push('uio', 'uio_pci_generic');
  if (ctx.drivers.includes('igb_uio')) mods.push('uio', 'igb_uio');
  return [...new Set(mods)];
}

function nodeFiles(files: Map<string, string>, nodes: readonly PlannedNode[]): void {
  const ids = formatCpuList(nodes.map((n) => n.id));
  for (const f of ['online', 'possible', 'has_cpu', 'has_memory', 'has_normal_memory'])
    files.set(`devices/system/node/${f}`, `${ids}\n`);
  for (const n of nodes) {
    const d = `devices/system/node/node${n.id}`;
    files.set(`${d}/cpulist`, `${formatCpuList(n.cpus)}\n`);
    const kib = n.memMiB * 1024;
    files.set(
      `${d}/meminfo`,
      `Node ${n.id} MemTotal:       ${kib} kB\nNode ${n.id} MemFree:        ${kib} kB\n`,
    );
    for (const [size, p] of n.hugepages) {
      const h = `${d}/hugepages/hugepages-${size}kB`;
      files.set(`${h}/nr_hugepages`, `${p.total}\n`);
      files.set(`${h}/free_hugepages`, `${p.free}\n`);
      files.set(`${h}/surplus_hugepages`, '0\n');
    }
    for (const c of n.cpus) {
      files.set(`devices/system/cpu/cpu${c}/topology/physical_package_id`, `${n.id}\n`);
      files.set(`devices/system/cpu/cpu${c}/topology/core_id`, `${c - (n.cpus[0] ?? 0)}\n`);
    }
  }
  const sizes = new Map<number, { total: number; free: number }>();
  for (const n of nodes) {
    for (const [size, p] of n.hugepages) {
      const s = sizes.get(size) ?? { total: 0, free: 0 };
      sizes.set(size, { total: s.total + p.total, free: s.free + p.free });
    }
  }
  for (const [size, p] of sizes) {
    files.set(`kernel/mm/hugepages/hugepages-${size}kB/nr_hugepages`, `${p.total}\n`);
    files.set(`kernel/mm/hugepages/hugepages-${size}kB/free_hugepages`, `${p.free}\n`);
  }
}

/** The files of the system part, for `o` on a node the builder describes as `ctx`. */
export function planSystem(o: SystemOptions, ctx: SystemContext): SystemPlan {
  const nodes = planNodes(o, ctx);
  const sys = new Map<string, string>();
  nodeFiles(sys, nodes);
  const all = nodes.flatMap((n) => n.cpus);
  const allList = formatCpuList(all);
  for (const f of ['online', 'possible', 'present']) sys.set(`devices/system/cpu/${f}`, `${allList}\n`);
  const isolated = o.isolatedCpus ?? formatCpuList(defaultIsolated(nodes));
  const nohz = o.nohzFull ?? isolated;
  sys.set('devices/system/cpu/isolated', `${isolated}\n`);
  sys.set('devices/system/cpu/nohz_full', `${nohz}\n`);
  const modules = o.modules ?? defaultModules(ctx);
  for (const m of modules) sys.set(`module/${m}/initstate`, 'live\n');
  if (modules.includes('vfio'))
    sys.set('module/vfio/parameters/enable_unsafe_noiommu_mode', o.vfioNoiommu === true ? 'Y\n' : 'N\n');
  // A loaded PCI driver module registers its driver, which makes bus/pci/drivers/<name>.
  if (modules.includes('vfio_pci')) sys.set('bus/pci/drivers/vfio-pci/new_id', '');
  if (modules.includes('uio_pci_generic')) sys.set('bus/pci/drivers/uio_pci_generic/new_id', '');
  if (modules.includes('igb_uio')) sys.set('bus/pci/drivers/igb_uio/new_id', '');
  const boot = ['BOOT_IMAGE=/boot/vmlinuz-6.1.0-sim', 'root=/dev/sda1', 'ro'];
  if (ctx.iommu) boot.push('intel_iommu=on', 'iommu=pt');
  if (isolated !== '') boot.push(`isolcpus=${isolated}`);
  if (nohz !== '') boot.push(`nohz_full=${nohz}`);
  const host: SimulatedHost = {
    os: 'Simulated Linux (netplumb simulated node)',
    kernel: '6.1.0-sim',
    cpuModel: 'Simulated CPU',
    sockets: nodes.length,
    cores: all.length,
    threads: all.length,
    memTotalBytes: nodes.reduce((n, x) => n + x.memMiB, 0) * 2 ** 20,
    ...o.host,
  };
  const top = new Map<string, string>([
    ['proc/cmdline', `${o.cmdline ?? boot.join(' ')}\n`],
    ['host.json', `${JSON.stringify(host, null, 1)}\n`],
  ]);
  return { sysFiles: sys, topFiles: top };
}
