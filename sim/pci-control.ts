// The simulated PciControl: writes the same files as the kernel adapter into a simulated node and
// makes the tree change the kernel would make (VF entries appear and disappear, driver and netdev
// links move), because no kernel is there to.
import { mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { exists } from '../lib/fs.js';
import { DPDK_DRIVERS } from '../sriov/model.js';
import type { PciControl } from '../sriov/provision/pci-control.js';
import { deviceDir, driverOf, ProvisionError, readPf } from '../sriov/provision/pf-tree.js';
import { removeVf } from './simulated-node.js';

const isDpdk = (driver: string | null): boolean =>
  driver !== null && (DPDK_DRIVERS as readonly string[]).includes(driver);

function routing(bdf: string): number {
  const [, bus = '0', devfn = '0.0'] = bdf.split(':');
  const [dev = '0', fn = '0'] = devfn.split('.');
  return (parseInt(bus, 16) << 8) | (parseInt(dev, 16) << 3) | parseInt(fn, 16);
}

function bdf(domain: string, rid: number): string {
  const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  return `${domain}:${hex((rid >> 8) & 0xff, 2)}:${hex((rid >> 3) & 0x1f, 2)}.${rid & 7}`;
}

async function readText(file: string): Promise<string | null> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return null;
  }
}

async function relink(target: string, linkPath: string): Promise<void> {
  await rm(linkPath, { force: true });
  await mkdir(path.dirname(linkPath), { recursive: true });
  await symlink(path.relative(path.dirname(linkPath), target), linkPath);
}

/**
 * A simulated node (see ./simulated-node.ts). The tree changes it makes:
 * - count to 0: every VF is removed with the builder's `removeVf`; the PF keeps `sriov_offset` /
 *   `sriov_stride` (as the kernel exposes them) so VFs come back at the same addresses;
 * - count from 0 to N: N VF devices (vendor, device from `sriov_vf_device`, class, NUMA node,
 *   a new IOMMU group, `physfn`/`virtfnN` links) appear unbound, as with autoprobe off;
 * - bind: driver links move; a VF leaving a kernel driver has its `net/` entry set aside and gets
 *   it back when bound to a kernel driver again (the simulated netdev "reappears"); a VF that
 *   never had one gets `net/<pf netdev>v<index>` (sysfs only: no such link exists in the kernel).
 * links.json (when present next to the tree) gains/loses the VF table entries.
 */
export function createSimulatedPciControl(sysfsRoot: string): PciControl {
  const linksFile = path.join(path.dirname(sysfsRoot), 'links.json');
  const realDir = async (pci: string): Promise<string> => {
    const link = deviceDir(sysfsRoot, pci);
    return path.resolve(path.dirname(link), await readlink(link));
  };

  async function removeAll(pf: string): Promise<void> {
    const state = await readPf(sysfsRoot, pf);
    const pfDir = await realDir(pf);
    const [vf0, vf1] = state.vfs;
    if (vf0 !== undefined && (await readText(path.join(pfDir, 'sriov_offset'))) === null) {
      await writeFile(path.join(pfDir, 'sriov_offset'), `${routing(vf0.pciAddress) - routing(pf)}\n`);
      const stride =
        vf1 === undefined ? 1 : (routing(vf1.pciAddress) - routing(vf0.pciAddress)) / (vf1.index - vf0.index);
      await writeFile(path.join(pfDir, 'sriov_stride'), `${stride}\n`);
    }
    const hasLinks = await exists(linksFile);
    for (const vf of state.vfs) {
      await removeVf(hasLinks ? { sysfsRoot, linksFile } : { sysfsRoot }, vf.pciAddress);
    }
  }

  async function nextIommuGroup(): Promise<number> {
    const groups = await readdir(path.join(sysfsRoot, 'kernel', 'iommu_groups')).catch(() => [] as string[]);
    return groups
      .map(Number)
      .filter(Number.isInteger)
      .reduce((a, b) => Math.max(a, b + 1), 1000);
  }

  async function create(pf: string, n: number): Promise<void> {
    const pfDir = await realDir(pf);
    const offset = Number((await readText(path.join(pfDir, 'sriov_offset'))) ?? NaN);
    const stride = Number((await readText(path.join(pfDir, 'sriov_stride'))) ?? 1);
    // Without sriov_offset: VF 0 one slot-range past the PF's slot, as the builder places it.
    const first = Number.isInteger(offset) ? routing(pf) + offset : (routing(pf) & ~7) + 16;
    // sysfs prints vendor/device/class with 0x, sriov_vf_device without: normalise to bare hex.
    const hex = (v: string | null, width: number): string =>
      (v ?? '').replace(/^0x/i, '').toLowerCase().padStart(width, '0');
    const vendor = hex(await readText(path.join(pfDir, 'vendor')), 4);
    const device = hex(
      (await readText(path.join(pfDir, 'sriov_vf_device'))) ?? (await readText(path.join(pfDir, 'device'))),
      4,
    );
    const cls = hex(await readText(path.join(pfDir, 'class')), 6);
    const numa = (await readText(path.join(pfDir, 'numa_node'))) ?? '-1';
    let group = await nextIommuGroup();
    const vfs: { index: number; pci: string }[] = [];
    for (let i = 0; i < n; i++) {
      const pci = bdf(pf.slice(0, 4), first + i * (Number.isInteger(stride) && stride > 0 ? stride : 1));
      if (await exists(deviceDir(sysfsRoot, pci))) {
        throw new ProvisionError(
          'PCI_CLASH',
          `VF ${i} of ${pf} would be ${pci}, which already exists in the simulated tree`,
        );
      }
      const [domain, bus] = pci.split(':');
      const dir = path.join(sysfsRoot, 'devices', `pci${domain ?? '0000'}:${bus ?? '00'}`, pci);
      await mkdir(dir, { recursive: true });
      const up = (v: string, w: number): string => v.toUpperCase().padStart(w, '0');
      const files: Record<string, string> = {
        vendor: `0x${vendor}`,
        device: `0x${device}`,
        subsystem_vendor: `0x${vendor}`,
        subsystem_device: '0x0000',
        class: `0x${cls}`,
        numa_node: numa,
        driver_override: '(null)',
        modalias: `pci:v${up(vendor, 8)}d${up(device, 8)}sv${up(vendor, 8)}sd00000000bc${up(cls.slice(0, 2), 2)}sc${up(cls.slice(2, 4), 2)}i${up(cls.slice(4, 6), 2)}`,
      };
      for (const [k, v] of Object.entries(files)) await writeFile(path.join(dir, k), `${v}\n`);
      await relink(dir, deviceDir(sysfsRoot, pci));
      await relink(path.join(sysfsRoot, 'bus', 'pci'), path.join(dir, 'subsystem'));
      await relink(pfDir, path.join(dir, 'physfn'));
      await relink(dir, path.join(pfDir, `virtfn${i}`));
      const g = path.join(sysfsRoot, 'kernel', 'iommu_groups', String(group));
      await relink(g, path.join(dir, 'iommu_group'));
      await relink(dir, path.join(g, 'devices', pci));
      group += 1;
      vfs.push({ index: i, pci });
    }
    if (await exists(linksFile))
      await addVfTable(
        pf,
        vfs.map((v) => v.index),
      );
  }

  async function addVfTable(pf: string, indices: number[]): Promise<void> {
    const links = JSON.parse(await readFile(linksFile, 'utf8')) as Record<string, unknown>[];
    for (const l of links) {
      if (l.parentdev !== pf) continue;
      l.num_vf = indices.length;
      l.vfinfo_list = indices.map((vf) => ({
        vf,
        link_type: 'ether',
        address: '00:00:00:00:00:00',
        broadcast: 'ff:ff:ff:ff:ff:ff',
        vlan_list: [{}],
        rate: { max_tx: 0, min_tx: 0 },
        spoofchk: true,
        link_state: 'auto',
        trust: false,
        query_rss_en: false,
      }));
    }
    await writeFileAtomic(linksFile, `${JSON.stringify(links, null, 1)}\n`);
  }

  // A kernel driver probing a VF that never had a netdev creates one; name it the way the
  // builder does (`<pf netdev>v<index>`), with a locally administered MAC derived from the address.
  async function createNetdev(vf: string, dir: string): Promise<void> {
    const pfDir = path.resolve(dir, await readlink(path.join(dir, 'physfn')));
    const pfNet = (await readdir(path.join(pfDir, 'net')).catch(() => [] as string[])).sort()[0];
    let index = -1;
    for (const e of await readdir(pfDir)) {
      const m = /^virtfn(\d+)$/.exec(e);
      if (m !== null && path.basename(await readlink(path.join(pfDir, e))) === vf) index = Number(m[1]);
    }
    const name =
      pfNet === undefined ? `vf${vf.replace(/[:.]/g, '')}`.slice(0, 15) : `${pfNet}v${index}`.slice(0, 15);
    const rid = routing(vf);
    const mac = ['02', '4f', (rid >> 8) & 0xff, rid & 0xff, 0, 1]
      .map((b) => (typeof b === 'number' ? b.toString(16).padStart(2, '0') : b))
      .join(':');
    const nd = path.join(dir, 'net', name);
    await mkdir(nd, { recursive: true });
    const files: Record<string, string | number> = {
      address: mac,
      mtu: 1500,
      operstate: 'down',
      carrier: 0,
      type: 1,
      speed: -1,
      ifindex: 10000 + rid,
      iflink: 10000 + rid,
      tx_queue_len: 1000,
    };
    for (const [k, v] of Object.entries(files)) await writeFile(path.join(nd, k), `${v}\n`);
    await relink(dir, path.join(nd, 'device'));
  }

  return {
    async writeNumVfs(pf, n) {
      const pfDir = await realDir(pf);
      const state = await readPf(sysfsRoot, pf);
      if (n > state.totalVfs) {
        throw new ProvisionError(
          'TOO_MANY_VFS',
          `write ${n} to sriov_numvfs of ${pf}: the PF supports ${state.totalVfs}`,
        );
      }
      if (n !== 0 && state.numVfs !== 0) {
        // The kernel answers EBUSY here; so does the simulation.
        throw new ProvisionError('BUSY', `write ${n} to sriov_numvfs of ${pf}: device busy (set 0 first)`);
      }
      if (n === 0) await removeAll(pf);
      else await create(pf, n);
      await writeFile(path.join(pfDir, 'sriov_numvfs'), `${n}\n`);
    },
    async bindDriver(vf, driver) {
      const dir = await realDir(vf);
      await writeFile(path.join(dir, 'driver_override'), `${driver}\n`);
      const old = await driverOf(sysfsRoot, vf);
      const drivers = path.join(sysfsRoot, 'bus', 'pci', 'drivers');
      const stash = path.join(dir, '.netplumb-net');
      if (old !== null) {
        await rm(path.join(dir, 'driver'), { force: true });
        await rm(path.join(drivers, old, vf), { force: true });
        if (!isDpdk(old) && (await exists(path.join(dir, 'net')))) {
          for (const name of await readdir(path.join(dir, 'net'))) {
            await rm(path.join(sysfsRoot, 'class', 'net', name), { force: true });
          }
          await rm(stash, { recursive: true, force: true });
          await rename(path.join(dir, 'net'), stash);
        }
      }
      await mkdir(path.join(drivers, driver), { recursive: true });
      await relink(path.join(drivers, driver), path.join(dir, 'driver'));
      await relink(dir, path.join(drivers, driver, vf));
      if (!isDpdk(driver)) {
        if (await exists(stash)) {
          await rename(stash, path.join(dir, 'net'));
        } else if (!(await exists(path.join(dir, 'net')))) {
          await createNetdev(vf, dir);
        }
        for (const name of await readdir(path.join(dir, 'net'))) {
          await relink(path.join(dir, 'net', name), path.join(sysfsRoot, 'class', 'net', name));
        }
      }
    },
  };
}
