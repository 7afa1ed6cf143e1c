// What a test may leave behind on the guest's kernel, captured before and compared after: host
// links, network namespaces, host addresses, and the VF count of every SR-IOV PF.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PCI_DEVICES, ipJson, netnsNames } from './guest.js';

export interface KernelSnapshot {
  readonly links: readonly string[];
  readonly netns: readonly string[];
  readonly addresses: readonly string[];
  readonly numVfs: Readonly<Record<string, number>>;
}

async function hostAddresses(): Promise<string[]> {
  const links = (await ipJson(['addr', 'show'])) as {
    ifname: string;
    addr_info: { local: string; prefixlen: number }[];
  }[];
  return links.flatMap((l) => l.addr_info.map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`)).sort();
}

async function pfVfCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const addr of await readdir(PCI_DEVICES)) {
    try {
      counts[addr] = Number((await readFile(path.join(PCI_DEVICES, addr, 'sriov_numvfs'), 'utf8')).trim());
    } catch {
      // not a PF
    }
  }
  return counts;
}

export async function kernelSnapshot(): Promise<KernelSnapshot> {
  const links = ((await ipJson(['link', 'show'])) as { ifname: string }[]).map((l) => l.ifname).sort();
  return {
    links,
    netns: (await netnsNames()).sort(),
    addresses: await hostAddresses(),
    numVfs: await pfVfCounts(),
  };
}
