// RDMA character devices of a PCI device, read from sysfs the way rdmamap finds them:
// `<bdf>/infiniband_verbs/uverbsN`, `<bdf>/infiniband_mad/{umadN,issmN}`, plus the global
// `/dev/infiniband/rdma_cm` when the kernel has the rdma_cm misc device.
import { access, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { RdmaCharDevices } from './allocate.js';

const first = (names: readonly string[], prefix: string): string | null =>
  names.filter((n) => n.startsWith(prefix)).sort()[0] ?? null;

export function sysfsRdmaCharDevices(sysfsRoot: string): (pciAddress: string) => Promise<RdmaCharDevices> {
  return async (pciAddress) => {
    const dev = path.join(sysfsRoot, 'bus', 'pci', 'devices', pciAddress);
    const verbs = await readdir(path.join(dev, 'infiniband_verbs')).catch(() => [] as string[]);
    const mad = await readdir(path.join(dev, 'infiniband_mad')).catch(() => [] as string[]);
    const cm = await access(path.join(sysfsRoot, 'class', 'misc', 'rdma_cm')).then(
      () => true,
      () => false,
    );
    const dev_ = (n: string | null) => (n === null ? null : `/dev/infiniband/${n}`);
    return {
      uverbs: dev_(first(verbs, 'uverbs')),
      umad: dev_(first(mad, 'umad')),
      issm: dev_(first(mad, 'issm')),
      rdmaCm: cm ? '/dev/infiniband/rdma_cm' : null,
    };
  };
}
