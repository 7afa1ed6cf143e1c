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

/** The simulated tree the adapter changes: its sysfs root and the links.json beside it. */
interface Tree {
  readonly sysfsRoot: string;
  readonly linksFile: string;
}

async function realDir(t: Tree, pci: string): Promise<string> {
  const link = deviceDir(t.sysfsRoot, pci);
  return path.resolve(path.dirname(link), await readlink(link));
}

async function removeAll(t: Tree, pf: string): Promise<void> {
  const state = await readPf(t.sysfsRoot, pf);
  const pfDir = await realDir(t, pf);
  const [vf0, vf1] = state.vfs;
  if (vf0 !== undefined && (await readText(path.join(pfDir, 'sriov_offset'))) === null) {
    await writeFile(path.join(pfDir, 'sriov_offset'), `${routing(vf0.pciAddress) - routing(pf)}\n`);
    const stride =
      vf1 === undefined ? 1 : (routing(vf1.pciAddress) - routing(vf0.pciAddress)) / (vf1.index - vf0.index);
    await writeFile(path.join(pfDir, 'sriov_stride'), `${stride}\n`);
  }
  const hasLinks = await exists(t.linksFile);
  for (const vf of state.vfs) {
    await removeVf(hasLinks ? t : { sysfsRoot: t.sysfsRoot }, vf.pciAddress);
  }
}

async function nextIommuGroup(t: Tree): Promise<number> {
  const groups = await readdir(path.join(t.sysfsRoot, 'kernel', 'iommu_groups')).catch(() => [] as string[]);
  return groups
    .map(Number)
    .filter(Number.isInteger)
    .reduce((a, b) => Math.max(a, b + 1), 1000);
}

/** What every new VF of a PF copies from it (bare hex, as sysfs prints them without 0x). */
interface VfTemplate {
  readonly vendor: string;
  readonly device: string;
  readonly cls: string;
  readonly numa: string;
}

async function vfTemplate(pfDir: string): Promise<VfTemplate> {
  // sysfs prints vendor/device/class with 0x, sriov_vf_device without: normalise to bare hex.
  const hex = (v: string | null, width: number): string =>
    (v ?? '').replace(/^0x/i, '').toLowerCase().padStart(width, '0');
  const device =
    (await readText(path.join(pfDir, 'sriov_vf_device'))) ?? (await readText(path.join(pfDir, 'device')));
  return {
    vendor: hex(await readText(path.join(pfDir, 'vendor')), 4),
    device: hex(device, 4),
    cls: hex(await readText(path.join(pfDir, 'class')), 6),
    numa: (await readText(path.join(pfDir, 'numa_node'))) ?? '-1',
  };
}

function vfFiles(v: VfTemplate): Record<string, string> {
  const up = (x: string, w: number): string => x.toUpperCase().padStart(w, '0');
  const { vendor, device, cls } = v;
  return {
    vendor: `0x${vendor}`,
    device: `0x${device}`,
    subsystem_vendor: `0x${vendor}`,
    subsystem_device: '0x0000',
    class: `0x${cls}`,
    numa_node: v.numa,
    driver_override: '(null)',
    modalias: `pci:v${up(vendor, 8)}d${up(device, 8)}sv${up(vendor, 8)}sd00000000bc${up(cls.slice(0, 2), 2)}sc${up(cls.slice(2, 4), 2)}i${up(cls.slice(4, 6), 2)}`,
  };
}

/** Writes VF `index` of the PF at `pfDir` as device `pci`, in IOMMU group `group`. */
async function createVfDevice(
  t: Tree,
  vf: { readonly index: number; readonly pci: string; readonly group: number },
  pfDir: string,
  files: Record<string, string>,
): Promise<void> {
  const [domain, bus] = vf.pci.split(':');
  const dir = path.join(t.sysfsRoot, 'devices', `pci${domain ?? '0000'}:${bus ?? '00'}`, vf.pci);
  await mkdir(dir, { recursive: true });
  for (const [k, v] of Object.entries(files)) await writeFile(path.join(dir, k), `${v}\n`);
  await relink(dir, deviceDir(t.sysfsRoot, vf.pci));
  await relink(path.join(t.sysfsRoot, 'bus', 'pci'), path.join(dir, 'subsystem'));
  await relink(pfDir, path.join(dir, 'physfn'));
  await relink(dir, path.join(pfDir, `virtfn${vf.index}`));
  const g = path.join(t.sysfsRoot, 'kernel', 'iommu_groups', String(vf.group));
  await relink(g, path.join(dir, 'iommu_group'));
  await relink(dir, path.join(g, 'devices', vf.pci));
}

async function create(t: Tree, pf: string, n: number): Promise<void> {
  const pfDir = await realDir(t, pf);
  const offset = Number((await readText(path.join(pfDir, 'sriov_offset'))) ?? NaN);
  const stride = Number((await readText(path.join(pfDir, 'sriov_stride'))) ?? 1);
  const step = Number.isInteger(stride) && stride > 0 ? stride : 1;
  // Without sriov_offset: VF 0 one slot-range past the PF's slot, as the builder places it.
  const first = Number.isInteger(offset) ? routing(pf) + offset : (routing(pf) & ~7) + 16;
  const files = vfFiles(await vfTemplate(pfDir));
  const group = await nextIommuGroup(t);
  for (let i = 0; i < n; i++) {
    const pci = bdf(pf.slice(0, 4), first + i * step);
    if (await exists(deviceDir(t.sysfsRoot, pci))) {
      throw new ProvisionError(
        'PCI_CLASH',
        `VF ${i} of ${pf} would be ${pci}, which already exists in the simulated tree`,
      );
    }
    await createVfDevice(t, { index: i, pci, group: group + i }, pfDir, files);
  }
  if (await exists(t.linksFile)) await addVfTable(t, pf, n);
}

async function addVfTable(t: Tree, pf: string, count: number): Promise<void> {
  const links = JSON.parse(await readFile(t.linksFile, 'utf8')) as Record<string, unknown>[];
  for (const l of links) {
    if (l.parentdev !== pf) continue;
    l.num_vf = count;
    l.vfinfo_list = Array.from({ length: count }, (_, vf) => ({
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
  await writeFileAtomic(t.linksFile, `${JSON.stringify(links, null, 1)}\n`);
}

/** The index of VF `vf` under the PF at `pfDir` (its virtfnN link), or -1. */
async function vfIndex(pfDir: string, vf: string): Promise<number> {
  for (const e of await readdir(pfDir)) {
    const m = /^virtfn(\d+)$/.exec(e);
    if (m !== null && path.basename(await readlink(path.join(pfDir, e))) === vf) return Number(m[1]);
  }
  return -1;
}

// A kernel driver probing a VF that never had a netdev creates one; name it the way the
// builder does (`<pf netdev>v<index>`), with a locally administered MAC derived from the address.
async function createNetdev(vf: string, dir: string): Promise<void> {
  const pfDir = path.resolve(dir, await readlink(path.join(dir, 'physfn')));
  const pfNet = (await readdir(path.join(pfDir, 'net')).catch(() => [] as string[])).sort()[0];
  const index = await vfIndex(pfDir, vf);
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

async function writeNumVfs(t: Tree, pf: string, n: number): Promise<void> {
  const pfDir = await realDir(t, pf);
  const state = await readPf(t.sysfsRoot, pf);
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
  if (n === 0) await removeAll(t, pf);
  else await create(t, pf, n);
  await writeFile(path.join(pfDir, 'sriov_numvfs'), `${n}\n`);
}

/** Unbinds `vf` from `old`; a kernel driver's netdev is set aside in `stash` until a kernel driver binds again. */
async function unbind(t: Tree, vf: string, dir: string, old: string, stash: string): Promise<void> {
  await rm(path.join(dir, 'driver'), { force: true });
  await rm(path.join(t.sysfsRoot, 'bus', 'pci', 'drivers', old, vf), { force: true });
  if (isDpdk(old) || !(await exists(path.join(dir, 'net')))) return;
  for (const name of await readdir(path.join(dir, 'net'))) {
    await rm(path.join(t.sysfsRoot, 'class', 'net', name), { force: true });
  }
  await rm(stash, { recursive: true, force: true });
  await rename(path.join(dir, 'net'), stash);
}

async function bindDriver(t: Tree, vf: string, driver: string): Promise<void> {
  const dir = await realDir(t, vf);
  await writeFile(path.join(dir, 'driver_override'), `${driver}\n`);
  const old = await driverOf(t.sysfsRoot, vf);
  const drivers = path.join(t.sysfsRoot, 'bus', 'pci', 'drivers');
  const stash = path.join(dir, '.netplumb-net');
  if (old !== null) await unbind(t, vf, dir, old, stash);
  await mkdir(path.join(drivers, driver), { recursive: true });
  await relink(path.join(drivers, driver), path.join(dir, 'driver'));
  await relink(dir, path.join(drivers, driver, vf));
  if (isDpdk(driver)) return;
  if (await exists(stash)) {
    await rename(stash, path.join(dir, 'net'));
  } else if (!(await exists(path.join(dir, 'net')))) {
    await createNetdev(vf, dir);
  }
  for (const name of await readdir(path.join(dir, 'net'))) {
    await relink(path.join(dir, 'net', name), path.join(t.sysfsRoot, 'class', 'net', name));
  }
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
  const t: Tree = { sysfsRoot, linksFile: path.join(path.dirname(sysfsRoot), 'links.json') };
  return {
    writeNumVfs: (pf, n) => writeNumVfs(t, pf, n),
    bindDriver: (vf, driver) => bindDriver(t, vf, driver),
  };
}
