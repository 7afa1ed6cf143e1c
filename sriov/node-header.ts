// The node header of `netplumb inspect`: the host (OS, kernel, CPU model, sockets/cores/threads,
// memory; from a HostSource) and the NUMA nodes with their CPUs and hugepages (from sysfs).
import { formatCpuList, readNumaNodesAt, UNKNOWN_HOST } from './node-info.js';
import type { HostInfo, HostSource, HugepagePool } from './node-info.js';

export interface NodeHeaderNuma {
  readonly id: number;
  /** CPU list as the kernel prints it: `0-7,16-23`. */
  readonly cpus: string;
  readonly memTotalKiB: number | null;
  readonly hugepages: readonly HugepagePool[];
}

export interface NodeHeader extends HostInfo {
  /** Where the host facts come from: `systeminformation` or `simulated node <dir>`. */
  readonly origin: string;
  readonly numaNodes: readonly NodeHeaderNuma[];
}

/** Reads the header; a HostSource that fails leaves the host facts null, never the command. */
export async function readNodeHeader(host: HostSource, sysfsRoot: string): Promise<NodeHeader> {
  const info = await host.info().catch((): HostInfo => UNKNOWN_HOST);
  const numaNodes = readNumaNodesAt(sysfsRoot).map((n) => ({
    id: n.id,
    cpus: formatCpuList(n.cpus),
    memTotalKiB: n.memTotalKiB,
    hugepages: n.hugepages,
  }));
  return { ...info, origin: host.origin, numaNodes };
}

const q = (v: string | number | null): string => (v === null ? '?' : String(v));

function pagesText(pools: readonly HugepagePool[]): string {
  const used = pools.filter((p) => p.total > 0);
  if (used.length === 0) return 'no hugepages';
  return used.map((p) => `${p.sizeKiB}kB ${p.free}/${p.total} free`).join(', ');
}

/** A few lines above the PF table. */
export function renderNodeHeader(h: NodeHeader): string {
  const mem = h.memTotalBytes === null ? '?' : `${(h.memTotalBytes / 2 ** 30).toFixed(1)} GiB`;
  const lines = [
    `Node  ${q(h.os)}, kernel ${q(h.kernel)}  (${h.origin})`,
    `CPU   ${q(h.cpuModel)}: ${q(h.sockets)} sockets, ${q(h.cores)} cores, ${q(h.threads)} threads; memory ${mem}`,
  ];
  if (h.numaNodes.length === 0) lines.push('NUMA  no NUMA information in sysfs');
  for (const n of h.numaNodes) {
    const mem = n.memTotalKiB === null ? '' : `, ${(n.memTotalKiB / 2 ** 20).toFixed(1)} GiB`;
    lines.push(`NUMA  node${n.id}: CPUs ${n.cpus === '' ? 'none' : n.cpus}${mem}, ${pagesText(n.hugepages)}`);
  }
  return `${lines.join('\n')}\n\n`;
}
