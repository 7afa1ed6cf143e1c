// What a node offers SR-IOV and DPDK workloads beyond its PCI devices: NUMA nodes with their CPUs
// and hugepages, IOMMU groups, the vfio/uio modules, isolated CPUs and the kernel command line.
// These come from a sysfs root and a proc root (real or simulated: a simulated node's `sys/` and
// `proc/`). The host itself (OS, kernel, CPU model, sockets/cores/threads, memory, NIC speed and
// duplex) comes from a HostSource: systeminformation on a real host, which cannot be pointed at a
// simulated tree, or the simulated node's own description.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseIntStrict, SysfsReader } from './sysfs.js';

export interface HugepagePool {
  readonly sizeKiB: number;
  readonly total: number;
  readonly free: number;
}

export interface NumaNode {
  readonly id: number;
  readonly cpus: readonly number[];
  readonly memTotalKiB: number | null;
  readonly hugepages: readonly HugepagePool[];
}

/** Kernel modules and PCI drivers that DPDK binding needs. */
export const USERSPACE_MODULES = [
  'vfio',
  'vfio_pci',
  'vfio_iommu_type1',
  'uio',
  'uio_pci_generic',
  'igb_uio',
] as const;
export type UserspaceModule = (typeof USERSPACE_MODULES)[number];

export interface KernelFacts {
  /** Empty when the kernel exposes no `devices/system/node` (non-NUMA build). */
  readonly numaNodes: readonly NumaNode[];
  /** Node-wide pools (`kernel/mm/hugepages`). */
  readonly hugepages: readonly HugepagePool[];
  /** Entries under `kernel/iommu_groups`. */
  readonly iommuGroups: number;
  /** Of USERSPACE_MODULES, those with a `module/<name>` folder (loaded, or built in with parameters). */
  readonly modules: readonly UserspaceModule[];
  /** Registered PCI drivers among vfio-pci, uio_pci_generic, igb_uio (`bus/pci/drivers/<name>`). */
  readonly pciDrivers: readonly string[];
  /** vfio `enable_unsafe_noiommu_mode`; null when vfio is not loaded. */
  readonly vfioNoiommu: boolean | null;
  /** `<proc>/cmdline`, null when unreadable. */
  readonly cmdline: string | null;
  /** `isolcpus=` CPUs (sysfs `devices/system/cpu/isolated`, else the command line). */
  readonly isolatedCpus: readonly number[];
  /** `nohz_full=` CPUs (sysfs `devices/system/cpu/nohz_full`, else the command line). */
  readonly nohzFullCpus: readonly number[];
  /** Problems met while reading; never fatal. */
  readonly warnings: readonly string[];
}

const DPDK_PCI_DRIVERS = ['vfio-pci', 'uio_pci_generic', 'igb_uio'] as const;

/** `0-3,8,10-11` → [0,1,2,3,8,10,11]; null for anything else. Ranges are capped at 65536 CPUs. */
export function parseCpuList(raw: string): number[] | null {
  const s = raw.trim();
  if (s === '') return [];
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m === null) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 65535) return null;
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

/** [0,1,2,3,8] → `0-3,8`. */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Value of `key=` on a kernel command line (last one wins, as the kernel parses it). */
export function cmdlineParam(cmdline: string, key: string): string | null {
  let found: string | null = null;
  for (const word of cmdline.split(/\s+/)) {
    if (word === '--') break;
    if (word.startsWith(`${key}=`)) found = word.slice(key.length + 1);
  }
  return found;
}

/** CPUs of `isolcpus=[flags,]list`: flags such as `domain`, `managed_irq`, `nohz` come first. */
function isolcpusFromCmdline(value: string): number[] {
  const parts = value.split(',');
  const firstCpu = parts.findIndex((p) => /^\d/.test(p));
  return firstCpu < 0 ? [] : (parseCpuList(parts.slice(firstCpu).join(',')) ?? []);
}

function readPools(fs: SysfsReader, dir: string): HugepagePool[] {
  const pools: HugepagePool[] = [];
  for (const entry of fs.dir(dir) ?? []) {
    const m = /^hugepages-(\d+)kB$/.exec(entry);
    if (m === null) continue;
    pools.push({
      sizeKiB: Number(m[1]),
      total: fs.int(path.join(dir, entry, 'nr_hugepages'), 0, { required: true }),
      free: fs.int(path.join(dir, entry, 'free_hugepages'), 0, { required: true }),
    });
  }
  return pools.sort((a, b) => a.sizeKiB - b.sizeKiB);
}

function readCpuList(fs: SysfsReader, file: string): number[] | null {
  const raw = fs.text(file);
  if (raw === null) return null;
  const cpus = parseCpuList(raw);
  if (cpus === null) fs.warn(`${file}: expected a CPU list such as 0-3,8, found "${raw.slice(0, 40)}"`);
  return cpus;
}

function readMemTotal(fs: SysfsReader, file: string): number | null {
  const m = /MemTotal:\s+(\d+)\s*kB/.exec(fs.text(file) ?? '');
  return m === null ? null : Number(m[1]);
}

/** NUMA nodes with their CPUs, memory and hugepages (`devices/system/node`); empty when absent. */
export function readNumaNodesAt(sysfsRoot: string): NumaNode[] {
  return readNumaNodes(new SysfsReader(sysfsRoot));
}

function readNumaNodes(fs: SysfsReader): NumaNode[] {
  const base = fs.path('devices', 'system', 'node');
  const nodes: NumaNode[] = [];
  for (const entry of fs.dir(base) ?? []) {
    const m = /^node(\d+)$/.exec(entry);
    if (m === null) continue;
    const dir = path.join(base, entry);
    nodes.push({
      id: Number(m[1]),
      cpus: readCpuList(fs, path.join(dir, 'cpulist')) ?? [],
      memTotalKiB: readMemTotal(fs, path.join(dir, 'meminfo')),
      hugepages: readPools(fs, path.join(dir, 'hugepages')),
    });
  }
  return nodes.sort((a, b) => a.id - b.id);
}

function readNoiommu(fs: SysfsReader): boolean | null {
  const raw = fs.text(fs.path('module', 'vfio', 'parameters', 'enable_unsafe_noiommu_mode'));
  if (raw === null) return null;
  return raw === 'Y' || raw === '1';
}

export interface KernelFactsOptions {
  readonly sysfsRoot: string;
  /** `/proc` on a real node; a simulated node's `proc/`. */
  readonly procRoot: string;
}

/** Reads the kernel facts. Never throws: what is missing is empty or null, with a warning. */
export async function readKernelFacts(options: KernelFactsOptions): Promise<KernelFacts> {
  const fs = new SysfsReader(options.sysfsRoot);
  const cmdlineFile = path.join(options.procRoot, 'cmdline');
  const cmdline = await readFile(cmdlineFile, 'latin1').then(
    (s) => s.replace(/\0/g, ' ').trim(),
    () => {
      fs.warn(`${cmdlineFile}: unreadable; IOMMU and isolated-CPU boot options are unknown`);
      return null;
    },
  );
  const cpuDir = fs.path('devices', 'system', 'cpu');
  const fromCmdline = (key: string, parse: (v: string) => number[]): number[] => {
    const v = cmdline === null ? null : cmdlineParam(cmdline, key);
    return v === null ? [] : parse(v);
  };
  const isolated = readCpuList(fs, path.join(cpuDir, 'isolated'));
  const nohz = readCpuList(fs, path.join(cpuDir, 'nohz_full'));
  return {
    numaNodes: readNumaNodes(fs),
    hugepages: readPools(fs, fs.path('kernel', 'mm', 'hugepages')),
    iommuGroups: (fs.dir(fs.path('kernel', 'iommu_groups')) ?? []).length,
    modules: USERSPACE_MODULES.filter((m) => fs.dir(fs.path('module', m)) !== null),
    pciDrivers: DPDK_PCI_DRIVERS.filter((d) => fs.dir(fs.path('bus', 'pci', 'drivers', d)) !== null),
    vfioNoiommu: readNoiommu(fs),
    cmdline,
    isolatedCpus:
      isolated !== null && isolated.length > 0 ? isolated : fromCmdline('isolcpus', isolcpusFromCmdline),
    nohzFullCpus:
      nohz !== null && nohz.length > 0 ? nohz : fromCmdline('nohz_full', (v) => parseCpuList(v) ?? []),
    warnings: fs.warnings,
  };
}

// ---- the host: systeminformation on a real node, the simulated node's description otherwise ----

export interface HostInfo {
  /** e.g. `Debian GNU/Linux 12 (bookworm)`. */
  readonly os: string | null;
  readonly kernel: string | null;
  readonly cpuModel: string | null;
  readonly sockets: number | null;
  /** Physical cores in all sockets. */
  readonly cores: number | null;
  /** Logical CPUs (hardware threads). */
  readonly threads: number | null;
  readonly memTotalBytes: number | null;
}

export interface LinkSpeed {
  /** Mb/s; null when unknown (link down, virtual). */
  readonly speedMbps: number | null;
  /** `full`, `half`, or null when unknown. */
  readonly duplex: string | null;
}

/** Where host facts come from: a port with a real adapter (systeminformation) and a simulated one. */
export interface HostSource {
  /** What the answers describe: `systeminformation` or `simulated node <dir>`. */
  readonly origin: string;
  info(): Promise<HostInfo>;
  /** Speed and duplex of the named netdevs (absent names are unknown). */
  linkSpeeds(names: readonly string[]): Promise<ReadonlyMap<string, LinkSpeed>>;
}

export const UNKNOWN_HOST: HostInfo = {
  os: null,
  kernel: null,
  cpuModel: null,
  sockets: null,
  cores: null,
  threads: null,
  memTotalBytes: null,
};

function positive(n: unknown): number | null {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : null;
}

function text(s: unknown): string | null {
  return typeof s === 'string' && s.trim() !== '' ? s.trim() : null;
}

/** systeminformation (loaded on first use: it is only needed by doctor and inspect). */
export function systeminformationHost(): HostSource {
  return {
    origin: 'systeminformation',
    async info() {
      const si = (await import('systeminformation')).default;
      const [os, cpu, mem] = await Promise.all([si.osInfo(), si.cpu(), si.mem()]);
      const release = [text(os.release), text(os.codename) === null ? null : `(${os.codename})`];
      return {
        os: text([os.distro, ...release].filter((p) => p !== null).join(' ')),
        kernel: text(os.kernel),
        cpuModel: text(`${cpu.manufacturer} ${cpu.brand}`),
        sockets: positive(cpu.processors),
        cores: positive(cpu.physicalCores),
        threads: positive(cpu.cores),
        memTotalBytes: positive(mem.total),
      };
    },
    async linkSpeeds(names) {
      const si = (await import('systeminformation')).default;
      const wanted = new Set(names);
      const all = await si.networkInterfaces();
      const list = Array.isArray(all) ? all : [all];
      const out = new Map<string, LinkSpeed>();
      for (const i of list) {
        if (!wanted.has(i.iface)) continue;
        out.set(i.iface, { speedMbps: positive(i.speed), duplex: text(i.duplex) });
      }
      return out;
    },
  };
}

function hostInfoFrom(json: unknown): HostInfo {
  if (typeof json !== 'object' || json === null) return UNKNOWN_HOST;
  const o = json as Record<string, unknown>;
  return {
    os: text(o.os),
    kernel: text(o.kernel),
    cpuModel: text(o.cpuModel),
    sockets: positive(o.sockets),
    cores: positive(o.cores),
    threads: positive(o.threads),
    memTotalBytes: positive(o.memTotalBytes),
  };
}

/** Speed and duplex from sysfs `class/net/<if>/speed|duplex` (cheap: two reads per netdev). */
export function sysfsLinkSpeeds(sysfsRoot: string): HostSource['linkSpeeds'] {
  const fs = new SysfsReader(sysfsRoot);
  return (names) => {
    const out = new Map<string, LinkSpeed>();
    for (const n of names) {
      const speed = parseIntStrict(fs.text(fs.path('class', 'net', n, 'speed')) ?? '');
      out.set(n, {
        speedMbps: positive(speed),
        duplex: text(fs.text(fs.path('class', 'net', n, 'duplex'))),
      });
    }
    return Promise.resolve(out);
  };
}

/**
 * A simulated node's host: `<dir>/host.json` (written by the simulator) for the host facts, and
 * the simulated sysfs for links.
 */
export function simulatedHost(dir: string): HostSource {
  return {
    origin: `simulated node ${dir}`,
    async info() {
      const raw = await readFile(path.join(dir, 'host.json'), 'utf8').catch(() => null);
      if (raw === null) return UNKNOWN_HOST;
      try {
        return hostInfoFrom(JSON.parse(raw));
      } catch {
        return UNKNOWN_HOST;
      }
    },
    linkSpeeds: sysfsLinkSpeeds(path.join(dir, 'sys')),
  };
}
