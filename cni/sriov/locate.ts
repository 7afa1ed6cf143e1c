// LocateVf over sysfs discovery (sriov/discover.ts readVf): works on /sys and on a simulated node.
import { readVf, VfLookupError } from '../../sriov/discover.js';
import { NotAVfError } from './deps.js';
import type { LocateVf } from './deps.js';

export function createSysfsLocateVf(sysfsRoot: string): LocateVf {
  return async (pci) => {
    try {
      const vf = await readVf(sysfsRoot, pci);
      return {
        pciAddress: vf.pciAddress,
        pfPciAddress: vf.pfPciAddress,
        pfNetdev: vf.pfNetdev,
        index: vf.index,
        netdev: vf.dpdk ? null : vf.netdev,
        driver: vf.driver,
        dpdk: vf.dpdk,
      };
    } catch (error) {
      if (error instanceof VfLookupError) {
        throw new NotAVfError(error.message, { cause: error });
      }
      throw error;
    }
  };
}
