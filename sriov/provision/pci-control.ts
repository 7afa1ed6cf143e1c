// The port through which provisioning changes PCI state: the VF count of a PF and the driver of
// a VF. The kernel adapter (here) writes sysfs files and the kernel does the rest; the simulated
// adapter (sim/pci-control.ts) makes the tree change the kernel would make.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exists } from '../../lib/fs.js';
import { deviceDir, driverOf, ProvisionError } from './pf-tree.js';

export interface PciControl {
  /** One write of `sriov_numvfs` (callers go through 0 when changing a non-zero count). */
  writeNumVfs(pf: string, n: number): Promise<void>;
  /** driver_override + unbind + probe; resolves once the VF is bound to `driver` or throws. */
  bindDriver(vf: string, driver: string): Promise<void>;
}

/** One sysfs write; a failure names the file, the value and what it was for. */
export async function writeSysfs(file: string, value: string, what: string): Promise<void> {
  try {
    await writeFile(file, value);
  } catch (error) {
    throw new ProvisionError(
      'SYSFS_WRITE_FAILED',
      `${what}: writing "${value.trim()}" to ${file} failed: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** The real kernel: plain sysfs writes. */
export function createKernelPciControl(sysfsRoot: string): PciControl {
  return {
    async writeNumVfs(pf, n) {
      await writeSysfs(
        path.join(deviceDir(sysfsRoot, pf), 'sriov_numvfs'),
        `${n}\n`,
        `set VF count of ${pf}`,
      );
    },
    async bindDriver(vf, driver) {
      const drivers = path.join(sysfsRoot, 'bus', 'pci', 'drivers');
      if (!(await exists(path.join(drivers, driver)))) {
        throw new ProvisionError(
          'DRIVER_NOT_LOADED',
          `driver ${driver} is not loaded; run \`modprobe ${driver}\` first`,
        );
      }
      const dir = deviceDir(sysfsRoot, vf);
      await writeSysfs(path.join(dir, 'driver_override'), `${driver}\n`, `bind ${vf}`);
      if ((await driverOf(sysfsRoot, vf)) !== null) {
        await writeSysfs(path.join(dir, 'driver', 'unbind'), vf, `unbind ${vf}`);
      }
      await writeSysfs(path.join(sysfsRoot, 'bus', 'pci', 'drivers_probe'), vf, `probe ${vf}`);
      const now = await driverOf(sysfsRoot, vf);
      if (now !== driver) {
        throw new ProvisionError(
          'BIND_FAILED',
          `${vf} is bound to ${now ?? 'no driver'} after probing ${driver}; see dmesg`,
        );
      }
    },
  };
}
