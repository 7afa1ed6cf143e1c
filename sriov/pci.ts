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
  /** null on the VF fast path: a VF sits on its PF's bus, so the kernel gives it the PF's node. */
  readonly numaNode: number | null;
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
  /** The VF's device folder, resolved from the link. */
  readonly dir: string;
}

export function isNetworkClass(classCode: string | null): boolean {
  return classCode?.startsWith('02') === true;
}

/** PCI class 0x12, processing accelerators (FEC, crypto cards such as ACC100), SRIOV-DP's accelerator class. */
export function isAcceleratorClass(classCode: string | null): boolean {
  return classCode?.startsWith('12') === true;
}

/** Whether a device of this class is read: always, only when SR-IOV capable (`all`), or not at all. */
function classInterest(classCode: string | null, options: ReadPciOptions): 'always' | 'sriov-only' | 'none' {
  if (isNetworkClass(classCode)) return 'always';
  if (options.accelerators === true && isAcceleratorClass(classCode)) return 'always';
  return options.all ? 'sriov-only' : 'none';
}

export interface ReadPciOptions {
  /** Also SR-IOV PFs (and their VFs) that are not network devices. */
  readonly all: boolean;
  /** Also class-0x12 accelerators (SR-IOV or not), as the device plugin's accelerator pools select. */
  readonly accelerators?: boolean;
  /** A PF read earlier names this device in a virtfnN link (here resolved): take the VF fast path. */
  readonly knownVfDir?: string;
  /** RDMA devices by PCI address from class/infiniband; undefined: look in the device folder. */
  readonly rdmaByPci?: ReadonlyMap<string, readonly string[]>;
}

/** One device folder being read: its path, its listing (null on the VF fast path) and lookups on it. */
interface DeviceView {
  readonly fs: SysfsReader;
  readonly dir: string;
  /** A VF its PF already named: fixed reads, no listing. */
  readonly fast: boolean;
  readonly entries: ReadonlySet<string> | null;
  at(name: string): string;
  has(name: string): boolean;
}

/**
 * Reads one device, or returns null when it is not of interest (or unreadable: then with a
 * warning). A VF its PF already named (`knownVfDir`) takes a fast path of fixed reads, since large
 * nodes are mostly VFs; other devices are listed once and only the files that exist are read.
 */
export function readPciDevice(
  fs: SysfsReader,
  pciAddress: string,
  options: ReadPciOptions,
): RawPciDevice | null {
  const busPath = `${fs.root}/bus/pci/devices/${pciAddress}`;
  // Follow the bus link once: every later open then walks a plain path instead of re-resolving
  // the symlink, which is most of the cost of a sysfs read.
  const target = options.knownVfDir === undefined ? fs.link(busPath) : null;
  const dir = options.knownVfDir ?? (target === null ? busPath : path.resolve(path.dirname(busPath), target));
  let entries: ReadonlySet<string> | null | undefined;
  const listing = (): ReadonlySet<string> | null => {
    if (entries === undefined) {
      const list = fs.expectDir(busPath, 'PCI device');
      entries = list === null ? null : new Set(list);
    }
    return entries;
  };

  const ids = readIds(fs, dir, listing);
  if (ids === null) return null;
  const interest = classInterest(ids.classCode ?? null, options);
  if (interest === 'none') return null;

  const fast = options.knownVfDir !== undefined;
  const e = fast ? null : listing();
  if (!fast && e === null) return null;
  const isVf = fast || e?.has('physfn') === true;
  if (interest === 'sriov-only' && !isVf && e?.has('sriov_totalvfs') !== true) return null;
  const view: DeviceView = {
    fs,
    dir,
    fast,
    entries: e,
    at: (name) => `${dir}/${name}`,
    has: (name) => e?.has(name) ?? false,
  };
  const driver = readDriver(view);
  const uio =
    (driver !== null && UIO_DRIVERS.includes(driver)) || view.has('uio') ? fs.dir(view.at('uio')) : null;
  return {
    pciAddress,
    dir,
    vendor: ids.vendor ?? null,
    device: ids.device ?? null,
    classCode: ids.classCode ?? null,
    driver,
    numaNode: fast ? null : view.has('numa_node') ? fs.int(view.at('numa_node'), -1) : -1,
    ...readIommu(view, driver),
    // ACPI names onboard functions only; VFs never have an acpi_index.
    acpiIndex: view.has('acpi_index') ? fs.text(view.at('acpi_index')) : null,
    uioDevice: uio?.sort()[0] ?? null,
    rdmaDevices: readRdma(view, pciAddress, options),
    sriov: view.has('sriov_totalvfs') ? readSriov(view) : null,
    hasPhysfn: isVf,
    netDirEntries: view.has('net') ? (fs.dir(view.at('net'))?.sort() ?? null) : null,
  };
}

/** IDs from `modalias`, else from the vendor/device/class files; null when the folder cannot be listed. */
function readIds(
  fs: SysfsReader,
  dir: string,
  listing: () => ReadonlySet<string> | null,
): Partial<PciIds> | null {
  const file = `${dir}/modalias`;
  const raw = fs.text(file);
  const ids = raw === null ? null : parseModalias(raw);
  if (ids !== null) return ids;
  const e = listing();
  if (e === null) return null;
  if (raw !== null) fs.warn(`${file}: not a PCI modalias ("${raw.slice(0, 60)}"); using vendor/device/class`);
  return idsFromFiles(fs, dir, e);
}

function readDriver(v: DeviceView): string | null {
  if (v.fast) return basenameOf(v.fs.link(v.at('driver')));
  return v.has('driver') ? basenameOf(v.fs.expectLink(v.at('driver'))) : null;
}

function readIommu(v: DeviceView, driver: string | null): Pick<RawPciDevice, 'iommuGroup' | 'iommuNoiommu'> {
  const file = v.at('iommu_group');
  const target = v.fast ? v.fs.link(file) : v.has('iommu_group') ? v.fs.expectLink(file) : null;
  if (target === null) return { iommuGroup: null, iommuNoiommu: false };
  const base = basenameOf(target);
  const n = base === null ? null : parseIntStrict(base);
  if (n === null || n < 0) {
    v.fs.warn(`${file}: target "${target}" is not an IOMMU group`);
    return { iommuGroup: null, iommuNoiommu: false };
  }
  // Only vfio users care whether the group is a no-IOMMU one; skip the read for others.
  const noiommu = driver === 'vfio-pci' && v.fs.text(path.join(file, 'name')) === 'vfio-noiommu';
  return { iommuGroup: n, iommuNoiommu: noiommu };
}

function readRdma(v: DeviceView, pciAddress: string, options: ReadPciOptions): readonly string[] {
  if (options.rdmaByPci) return options.rdmaByPci.get(pciAddress) ?? [];
  return v.fast || v.has('infiniband') ? (v.fs.dir(v.at('infiniband'))?.sort() ?? []) : [];
}

/** An SR-IOV PF's VF counts and its virtfnN links (sorted by index; a bad link is warned and skipped). */
function readSriov(v: DeviceView): NonNullable<RawPciDevice['sriov']> {
  const virtfns: VirtfnLink[] = [];
  for (const name of v.entries ?? []) {
    if (!name.startsWith('virtfn')) continue;
    const index = parseIntStrict(name.slice(6));
    if (index === null || index < 0) continue;
    const link = v.fs.expectLink(v.at(name));
    const target = basenameOf(link);
    if (link === null || target === null) continue;
    if (!BDF_PATTERN.test(target)) {
      v.fs.warn(`${v.at(name)}: target "${target}" is not a PCI address`);
      continue;
    }
    virtfns.push({ index, pciAddress: target, dir: path.resolve(v.dir, link) });
  }
  virtfns.sort((a, b) => a.index - b.index);
  return {
    totalVfs: v.fs.int(v.at('sriov_totalvfs'), 0, { required: true }),
    numVfs: v.has('sriov_numvfs')
      ? v.fs.int(v.at('sriov_numvfs'), virtfns.length, { required: true })
      : virtfns.length,
    virtfns,
  };
}

const UIO_DRIVERS: readonly string[] = ['uio_pci_generic', 'igb_uio'];

function idsFromFiles(fs: SysfsReader, dir: string, entries: ReadonlySet<string>): Partial<PciIds> {
  const vendor = hexFile(fs, dir, entries, 'vendor', 4);
  const device = hexFile(fs, dir, entries, 'device', 4);
  const classCode = hexFile(fs, dir, entries, 'class', 6);
  return {
    ...(vendor !== null ? { vendor } : {}),
    ...(device !== null ? { device } : {}),
    ...(classCode !== null ? { classCode } : {}),
  };
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

export function basenameOf(target: string | null): string | null {
  if (target === null) return null;
  const base = path.basename(target);
  return base === '' ? null : base;
}
