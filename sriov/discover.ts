// Node discovery: the PCI network devices of a sysfs root, SR-IOV PFs with their VFs in index
// order, the host NICs, and the PF-held VF settings from iproute2. PF↔VF mapping costs one
// readlink per `virtfnN` link (SRIOV-DP globs the PF's links again for every VF).
import { NetplumbError } from '../lib/errors.js';
import type { NetplumbErrorOptions } from '../lib/errors.js';
import path from 'node:path';
import type { Logger } from 'pino';
import { DPDK_DRIVERS } from './model.js';
import type {
  DiscoveredDevice,
  Nic,
  NodeModel,
  Pf,
  PciDevice,
  PlainPciDevice,
  Vf,
  VfSettings,
} from './model.js';
import { readLinkState, readLinkType, readNic, scanClassNet } from './nics.js';
import type { NetdevEntry } from './nics.js';
import { BDF_PATTERN, basenameOf, isAcceleratorClass, isNetworkClass, readPciDevice } from './pci.js';
import type { RawPciDevice } from './pci.js';
import { parseIntStrict, SysfsReader, yieldEvery } from './sysfs.js';
import { readIpLinkTable } from './vf-state.js';
import type { IpLink, IpLinkTable, VfStateSource } from './vf-state.js';

export interface DiscoverOptions {
  readonly sysfsRoot: string;
  /** Source of PF-held VF settings; null skips them (settings stay null). */
  readonly vfState: VfStateSource | null;
  /** Also every SR-IOV capable PCI device that is not a network device (and its VFs). */
  readonly all?: boolean;
  /**
   * Also class-0x12 accelerators, SR-IOV or not, with their VFs (what the device plugin's
   * `deviceType: accelerator` pools select, as SRIOV-DP).
   */
  readonly accelerators?: boolean;
  readonly log?: Pick<Logger, 'debug'>;
}

const DPDK: readonly string[] = DPDK_DRIVERS;

export function isDpdkDriver(driver: string | null): boolean {
  return driver !== null && DPDK.includes(driver);
}

/** Discovers the node. Never throws for a broken tree: problems land in `warnings`. */
export async function discoverNode(options: DiscoverOptions): Promise<NodeModel> {
  const started = performance.now();
  const fs = new SysfsReader(options.sysfsRoot);
  // The iproute2 child process runs while sysfs is read.
  const ipTable: Promise<IpLinkTable> =
    options.vfState === null
      ? Promise.resolve({ links: new Map(), warnings: [] })
      : readIpLinkTable(options.vfState);

  const netdevs = scanClassNet(fs);
  const netdevsByPci = new Map<string, string[]>();
  for (const n of netdevs.values()) {
    if (n.pciAddress === null) continue;
    const list = netdevsByPci.get(n.pciAddress);
    if (list) list.push(n.name);
    else netdevsByPci.set(n.pciAddress, [n.name]);
  }

  const raws = new Map<string, RawPciDevice>();
  const busDir = fs.path('bus', 'pci', 'devices');
  const addresses = (fs.expectDir(busDir, 'PCI device list') ?? []).filter((a) => {
    if (BDF_PATTERN.test(a)) return true;
    fs.warn(`${path.join(busDir, a)}: not a PCI address; ignored`);
    return false;
  });
  const rdmaByPci = scanClassDevices(fs, 'infiniband');
  const pause = yieldEvery(128);
  // A VF's routing ID is its PF's plus a positive offset, so in address order every PF comes
  // before its VFs: by the time a VF is reached, its PF's virtfnN links have named it.
  addresses.sort();
  const knownVfs = new Map<string, string>();
  for (const address of addresses) {
    const vfDir = knownVfs.get(address);
    const raw = readPciDevice(fs, address, {
      all: options.all === true,
      accelerators: options.accelerators === true,
      rdmaByPci,
      ...(vfDir === undefined ? {} : { knownVfDir: vfDir }),
    });
    if (raw !== null) {
      raws.set(address, raw);
      for (const v of raw.sriov?.virtfns ?? []) knownVfs.set(v.pciAddress, v.dir);
    }
    await pause();
  }

  const table = await ipTable;
  fs.warnings.push(...table.warnings);
  const model = assemble(fs, raws, netdevs, netdevsByPci, table.links);
  options.log?.debug(
    {
      sysfsRoot: options.sysfsRoot,
      pfs: model.pfs.length,
      devices: model.devices.length,
      ms: Math.round(performance.now() - started),
    },
    'node discovered',
  );
  return model;
}

function assemble(
  fs: SysfsReader,
  raws: ReadonlyMap<string, RawPciDevice>,
  netdevs: ReadonlyMap<string, NetdevEntry>,
  netdevsByPci: ReadonlyMap<string, readonly string[]>,
  ip: ReadonlyMap<string, IpLink>,
): NodeModel {
  const vfOwner = new Map<string, { pf: RawPciDevice; index: number }>();
  for (const raw of raws.values()) {
    for (const v of raw.sriov?.virtfns ?? []) {
      if (!raws.has(v.pciAddress)) {
        fs.warn(
          `${path.join(raw.dir, `virtfn${v.index}`)}: VF ${v.pciAddress} is not a readable PCI device; VF skipped`,
        );
        continue;
      }
      vfOwner.set(v.pciAddress, { pf: raw, index: v.index });
    }
  }

  const common = (raw: RawPciDevice, inheritedLinkType: string | null, inheritedNuma = -1): PciDevice => {
    let names = netdevsByPci.get(raw.pciAddress) ?? raw.netDirEntries ?? [];
    names = [...names].sort();
    const first = names[0] ?? null;
    const entry = first === null ? undefined : netdevs.get(first);
    const ipLink = first === null ? undefined : ip.get(first);
    const linkType =
      ipLink?.linkType ??
      (entry && inheritedLinkType === null ? readLinkType(fs, entry) : null) ??
      inheritedLinkType;
    return {
      pciAddress: raw.pciAddress,
      vendor: raw.vendor,
      device: raw.device,
      classCode: raw.classCode,
      driver: raw.driver,
      numaNode: raw.numaNode ?? inheritedNuma,
      iommuGroup: raw.iommuGroup,
      iommuNoiommu: raw.iommuNoiommu,
      netdevs: names,
      netdev: first,
      uioDevice: raw.uioDevice,
      rdmaDevices: raw.rdmaDevices,
      acpiIndex: raw.acpiIndex,
      linkType,
      ...(entry ? readLinkState(fs, entry) : { operstate: null, carrier: null }),
    };
  };

  const pfs: Pf[] = [];
  const devices: DiscoveredDevice[] = [];
  const vfNetdevs = new Set<string>();
  for (const raw of raws.values()) {
    if (vfOwner.has(raw.pciAddress)) continue;
    if (raw.sriov === null) {
      if (raw.hasPhysfn) {
        fs.warn(
          `${path.join(raw.dir, 'physfn')}: no PF lists ${raw.pciAddress} in its virtfnN links; shown as a plain device`,
        );
      }
      if (!isNetworkClass(raw.classCode) && !isAcceleratorClass(raw.classCode)) continue;
      const plain: PlainPciDevice = { kind: 'pci', ...common(raw, null) };
      devices.push(plain);
      continue;
    }
    const base = common(raw, null);
    const pfLink = base.netdev === null ? undefined : ip.get(base.netdev);
    const vfs: Vf[] = [];
    for (const link of raw.sriov.virtfns) {
      const vfRaw = raws.get(link.pciAddress);
      if (vfRaw === undefined) continue;
      const vfBase = common(vfRaw, base.linkType, base.numaNode);
      for (const n of vfBase.netdevs) vfNetdevs.add(n);
      const vf: Vf = {
        kind: 'vf',
        ...vfBase,
        index: link.index,
        pfPciAddress: raw.pciAddress,
        pfNetdev: base.netdev,
        dpdk: isDpdkDriver(vfRaw.driver),
        settings: vfSettingsFor(pfLink, link.index),
      };
      vfs.push(vf);
      devices.push(vf);
    }
    const pf: Pf = { kind: 'pf', ...base, totalVfs: raw.sriov.totalVfs, numVfs: raw.sriov.numVfs, vfs };
    pfs.push(pf);
    devices.push(pf);
  }
  pfs.sort((a, b) => a.pciAddress.localeCompare(b.pciAddress));
  devices.sort((a, b) => a.pciAddress.localeCompare(b.pciAddress));

  const nics: Nic[] = [];
  for (const entry of netdevs.values()) {
    if (vfNetdevs.has(entry.name)) continue;
    const ipLink = ip.get(entry.name);
    if (ipLink?.linkType === 'loopback' || (ipLink === undefined && entry.name === 'lo')) continue;
    nics.push(readNic(fs, entry, ipLink));
  }
  nics.sort((a, b) => a.name.localeCompare(b.name));

  return { pfs, devices, nics, warnings: fs.warnings };
}

/** class/<name>/<dev> links → the PCI device each sits under (RDMA devices, uio devices). */
function scanClassDevices(fs: SysfsReader, className: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const classDir = fs.path('class', className);
  for (const name of fs.dir(classDir) ?? []) {
    const target = fs.link(path.join(classDir, name));
    const pci = target
      ?.split('/')
      .reverse()
      .find((seg) => BDF_PATTERN.test(seg));
    if (pci === undefined) continue;
    const list = out.get(pci);
    if (list) list.push(name);
    else out.set(pci, [name]);
  }
  for (const list of out.values()) list.sort();
  return out;
}

function vfSettingsFor(pfLink: IpLink | undefined, index: number): VfSettings | null {
  return pfLink?.vfs.get(index) ?? null;
}

export const VF_LOOKUP_ERROR = {
  notFound: 'ERR_PCI_DEVICE_NOT_FOUND',
  notVf: 'ERR_NOT_A_VF',
} as const;

export class VfLookupError extends NetplumbError {
  declare readonly code: (typeof VF_LOOKUP_ERROR)[keyof typeof VF_LOOKUP_ERROR];
  constructor(
    message: string,
    code: (typeof VF_LOOKUP_ERROR)[keyof typeof VF_LOOKUP_ERROR],
    options?: NetplumbErrorOptions,
  ) {
    super(code, message, options);
    this.name = 'VfLookupError';
  }
}

export interface ReadVfOptions {
  /** Fill `settings` (and the VF link type) from this source. */
  readonly vfState?: VfStateSource;
}

/**
 * Looks up ONE VF without a full discovery: its PF, index, netdev, driver, IOMMU group. The index
 * comes from the PF's `sriov_offset`/`sriov_stride` (checked against `virtfnN`), so the cost does
 * not grow with the number of VFs; without those files it falls back to scanning `virtfn*`.
 * Throws a VfLookupError when the address is not a device or not a VF.
 */
export async function readVf(
  sysfsRoot: string,
  pciAddress: string,
  options: ReadVfOptions = {},
): Promise<Vf> {
  const fs = new SysfsReader(sysfsRoot);
  const address = pciAddress.toLowerCase();
  if (!BDF_PATTERN.test(address)) {
    throw new VfLookupError(
      `"${pciAddress}" is not a PCI address; use the full form 0000:3b:02.0`,
      VF_LOOKUP_ERROR.notFound,
    );
  }
  const raw = readPciDevice(fs, address, { all: true });
  if (raw === null) {
    throw new VfLookupError(
      `PCI device ${address} not found under ${fs.path('bus', 'pci', 'devices')} (${fs.warnings.join('; ')})`,
      VF_LOOKUP_ERROR.notFound,
    );
  }
  if (!raw.hasPhysfn) {
    throw new VfLookupError(`PCI device ${address} is not a VF (no physfn link)`, VF_LOOKUP_ERROR.notVf);
  }
  const pfAddress = basenameOf(fs.expectLink(path.join(raw.dir, 'physfn')));
  if (pfAddress === null || !BDF_PATTERN.test(pfAddress)) {
    throw new VfLookupError(`${path.join(raw.dir, 'physfn')} does not name a PF`, VF_LOOKUP_ERROR.notVf);
  }
  const pfDir = fs.path('bus', 'pci', 'devices', pfAddress);
  const index = vfIndex(fs, pfDir, pfAddress, address);
  if (index === null) {
    throw new VfLookupError(`PF ${pfAddress} has no virtfnN link to ${address}`, VF_LOOKUP_ERROR.notVf);
  }
  const netNames = (fs.dir(path.join(raw.dir, 'net')) ?? []).sort();
  const pfNetdev = (fs.dir(path.join(pfDir, 'net')) ?? []).sort()[0] ?? null;
  const table = options.vfState ? await readIpLinkTable(options.vfState) : null;
  const first = netNames[0] ?? null;
  const entry = first === null ? null : { dir: fs.path('class', 'net', first) };
  const pfLinkType = pfNetdev === null ? null : readLinkType(fs, { dir: fs.path('class', 'net', pfNetdev) });
  return {
    kind: 'vf',
    pciAddress: address,
    vendor: raw.vendor,
    device: raw.device,
    classCode: raw.classCode,
    driver: raw.driver,
    numaNode: raw.numaNode ?? -1,
    iommuGroup: raw.iommuGroup,
    iommuNoiommu: raw.iommuNoiommu,
    netdevs: netNames,
    netdev: first,
    uioDevice: raw.uioDevice,
    rdmaDevices: raw.rdmaDevices,
    acpiIndex: raw.acpiIndex,
    linkType: (first === null ? undefined : table?.links.get(first)?.linkType) ?? pfLinkType,
    ...(entry ? readLinkState(fs, entry) : { operstate: null, carrier: null }),
    index,
    pfPciAddress: pfAddress,
    pfNetdev,
    dpdk: isDpdkDriver(raw.driver),
    settings: pfNetdev === null ? null : (table?.links.get(pfNetdev)?.vfs.get(index) ?? null),
  };
}

function routing(bdf: string): number {
  const [, bus = '0', devfn = '0.0'] = bdf.split(':');
  const [dev = '0', fn = '0'] = devfn.split('.');
  return (parseInt(bus, 16) << 8) | (parseInt(dev, 16) << 3) | parseInt(fn, 16);
}

function vfIndex(fs: SysfsReader, pfDir: string, pfAddress: string, vfAddress: string): number | null {
  const offset = parseIntStrict(fs.text(path.join(pfDir, 'sriov_offset')) ?? '');
  const stride = parseIntStrict(fs.text(path.join(pfDir, 'sriov_stride')) ?? '');
  if (offset !== null && stride !== null && stride > 0) {
    const delta = routing(vfAddress) - routing(pfAddress) - offset;
    const guess = delta / stride;
    if (
      Number.isInteger(guess) &&
      guess >= 0 &&
      basenameOf(fs.link(path.join(pfDir, `virtfn${guess}`))) === vfAddress
    ) {
      return guess;
    }
  }
  for (const e of fs.dir(pfDir) ?? []) {
    if (!e.startsWith('virtfn')) continue;
    if (basenameOf(fs.link(path.join(pfDir, e))) === vfAddress) return parseIntStrict(e.slice(6));
  }
  return null;
}
