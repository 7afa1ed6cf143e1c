// One PCI device as sysfs shows it under bus/pci/devices/<bdf> (a symlink into devices/pci…).
// Reads only what the device's directory listing says exists, so a normal device costs no
// failed lookups, and a broken one yields warnings naming the path.
import path from 'node:path';
import { parseIntStrict } from './sysfs.js';
import type { SysfsReader } from './sysfs.js';

export const BDF_PATTERN = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;

/** IDs from `modalias` (what ghw/SRIOV-DP read) with the separate files as a fallback. */
export interface PciIds {
  readonly vendor: string;
  readonly device: string;
  readonly classCode: string;
}

/** `pci:v00008086d0000154Csv…sd…bc02sc00i00` → vendor 8086, device 154c, class 020000. */
export function parseModalias(modalias: string): PciIds | null {
  const m =
    /^pci:v0000([0-9A-Fa-f]{4})d0000([0-9A-Fa-f]{4})sv[0-9A-Fa-f]{8}sd[0-9A-Fa-f]{8}bc([0-9A-Fa-f]{2})sc([0-9A-Fa-f]{2})i([0-9A-Fa-f]{2})$/.exec(
      modalias.trim(),
    );
  if (!m) return null;
  const [, vendor = '', device = '', bc = '', sc = '', pi = ''] = m;
  return {
    vendor: vendor.toLowerCase(),
    device: device.toLowerCase(),
    classCode: `${bc}${sc}${pi}`.toLowerCase(),
  };
}

/** `0x8086` → `8086`; null unless it is hex of the expected width. */
export function parseHexId(raw: string | null, digits: number): string | null {
  if (raw === null) return null;
  const m = /^(?:0x)?([0-9a-fA-F]+)$/.exec(raw.trim());
  if (!m?.[1] || m[1].length > digits) return null;
  return m[1].toLowerCase().padStart(digits, '0');
}

/** Everything read from one device directory; assembled into the model by discover.ts. */
export interface RawPciDevice {
  readonly pciAddress: string;
  readonly dir: string;
  readonly vendor: string | null;
  readonly device: string | null;
  readonly classCode: string | null;
  readonly driver: string | null;
  readonly numaNode: number;
  readonly iommuGroup: number | null;
  readonly iommuNoiommu: boolean;
  readonly acpiIndex: string | null;
  readonly uioDevice: string | null;
  readonly rdmaDevices: readonly string[];
  /** Present for an SR-IOV PF. */
  readonly sriov: {
    readonly totalVfs: number;
    readonly numVfs: number;
    readonly virtfns: readonly VirtfnLink[];
  } | null;
  /** The device has a `physfn` link (it is a VF). */
  readonly hasPhysfn: boolean;
  /** Netdev names under the device's own `net/` (used when class/net did not name any). */
  readonly netDirEntries: readonly string[] | null;
}

export interface VirtfnLink {
  readonly index: number;
  readonly pciAddress: string;
}

export function isNetworkClass(classCode: string | null): boolean {
  return classCode?.startsWith('02') === true;
}

/** Reads the listing and the IDs: enough to decide whether the device is of interest. */
export function readPciHead(
  fs: SysfsReader,
  pciAddress: string,
): { dir: string; entries: ReadonlySet<string>; ids: Partial<PciIds> } | null {
  const dir = fs.path('bus', 'pci', 'devices', pciAddress);
  const list = fs.expectDir(dir, 'PCI device');
  if (list === null) return null;
  const entries = new Set(list);
  let ids: Partial<PciIds> | null = null;
  if (entries.has('modalias')) {
    const raw = fs.text(path.join(dir, 'modalias'));
    ids = raw === null ? null : parseModalias(raw);
    if (ids === null)
      fs.warn(
        `${path.join(dir, 'modalias')}: not a PCI modalias ("${(raw ?? '').slice(0, 60)}"); using vendor/device/class`,
      );
  }
  if (ids === null) {
    const vendor = hexFile(fs, dir, entries, 'vendor', 4);
    const device = hexFile(fs, dir, entries, 'device', 4);
    const classCode = hexFile(fs, dir, entries, 'class', 6);
    ids = {
      ...(vendor !== null ? { vendor } : {}),
      ...(device !== null ? { device } : {}),
      ...(classCode !== null ? { classCode } : {}),
    };
  }
  return { dir, entries, ids };
}

function hexFile(
  fs: SysfsReader,
  dir: string,
  entries: ReadonlySet<string>,
  name: string,
  digits: number,
): string | null {
  const file = path.join(dir, name);
  if (!entries.has(name)) {
    fs.warn(`${file}: missing`);
    return null;
  }
  const raw = fs.expectText(file);
  const value = parseHexId(raw, digits);
  if (raw !== null && value === null) fs.warn(`${file}: expected a hex ID, found "${raw.slice(0, 40)}"`);
  return value;
}

/** Reads the rest of a device whose head said it is of interest. */
export function readPciDevice(
  fs: SysfsReader,
  pciAddress: string,
  head: { dir: string; entries: ReadonlySet<string>; ids: Partial<PciIds> },
): RawPciDevice {
  const { dir, entries } = head;
  const at = (name: string) => path.join(dir, name);
  const driver = entries.has('driver') ? basenameOf(fs.expectLink(at('driver'))) : null;

  let iommuGroup: number | null = null;
  let iommuNoiommu = false;
  if (entries.has('iommu_group')) {
    const target = fs.expectLink(at('iommu_group'));
    const base = basenameOf(target);
    const n = base === null ? null : parseIntStrict(base);
    if (target !== null && (n === null || n < 0))
      fs.warn(`${at('iommu_group')}: target "${target}" is not an IOMMU group`);
    iommuGroup = n !== null && n >= 0 ? n : null;
    // Only vfio users care whether the group is a no-IOMMU one; skip the read for others.
    if (iommuGroup !== null && driver === 'vfio-pci') {
      iommuNoiommu = fs.text(path.join(at('iommu_group'), 'name')) === 'vfio-noiommu';
    }
  }

  let sriov: RawPciDevice['sriov'] = null;
  if (entries.has('sriov_totalvfs')) {
    const virtfns: VirtfnLink[] = [];
    for (const e of entries) {
      if (!e.startsWith('virtfn')) continue;
      const index = parseIntStrict(e.slice(6));
      if (index === null || index < 0) continue;
      const target = basenameOf(fs.expectLink(at(e)));
      if (target === null) continue;
      if (!BDF_PATTERN.test(target)) {
        fs.warn(`${at(e)}: target "${target}" is not a PCI address`);
        continue;
      }
      virtfns.push({ index, pciAddress: target });
    }
    virtfns.sort((a, b) => a.index - b.index);
    sriov = {
      totalVfs: fs.int(at('sriov_totalvfs'), 0, { required: true }),
      numVfs: entries.has('sriov_numvfs')
        ? fs.int(at('sriov_numvfs'), virtfns.length, { required: true })
        : virtfns.length,
      virtfns,
    };
  }

  return {
    pciAddress,
    dir,
    vendor: head.ids.vendor ?? null,
    device: head.ids.device ?? null,
    classCode: head.ids.classCode ?? null,
    driver,
    numaNode: entries.has('numa_node') ? fs.int(at('numa_node'), -1) : -1,
    iommuGroup,
    iommuNoiommu,
    acpiIndex: entries.has('acpi_index') ? fs.text(at('acpi_index')) : null,
    uioDevice: entries.has('uio') ? (fs.dir(at('uio'))?.sort()[0] ?? null) : null,
    rdmaDevices: entries.has('infiniband') ? (fs.dir(at('infiniband'))?.sort() ?? []) : [],
    sriov,
    hasPhysfn: entries.has('physfn'),
    netDirEntries: entries.has('net') ? (fs.dir(at('net'))?.sort() ?? null) : null,
  };
}

export function basenameOf(target: string | null): string | null {
  if (target === null) return null;
  const base = path.basename(target);
  return base === '' ? null : base;
}
