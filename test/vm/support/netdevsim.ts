// A netdevsim PF (built by hack/vm/setup.sh from Debian's linux-source): a real PF netdev whose VF
// table answers `ip link set <pf> vf N …` and `ip -json link show` vfinfo_list. Not a PCI device.
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { linkNames, run } from './guest.js';

const BUS = '/sys/bus/netdevsim';

export interface NetdevsimPf {
  readonly id: number;
  /** The PF netdev (`ethN`: the guest has no udev renaming). */
  readonly pf: string;
  readonly sysfsDir: string;
  /** Deletes the device and checks that its netdev is gone. */
  remove(): Promise<void>;
}

export async function createNetdevsimPf(numVfs: number): Promise<NetdevsimPf> {
  if (!existsSync(BUS)) await run('modprobe', ['netdevsim']);
  const id = randomInt(100, 10_000);
  await writeFile(`${BUS}/new_device`, `${id} 1`);
  const sysfsDir = `${BUS}/devices/netdevsim${id}`;
  const [pf] = await readdir(`${sysfsDir}/net`);
  if (pf === undefined) throw new Error(`netdevsim${id} has no netdev`);
  await writeFile(`${sysfsDir}/sriov_numvfs`, String(numVfs));
  await run('ip', ['link', 'set', pf, 'up']);
  return {
    id,
    pf,
    sysfsDir,
    async remove() {
      await writeFile(`${sysfsDir}/sriov_numvfs`, '0').catch(() => undefined);
      await writeFile(`${BUS}/del_device`, String(id));
      if ((await linkNames()).includes(pf))
        throw new Error(`netdevsim${id} removed but ${pf} is still there`);
    },
  };
}
