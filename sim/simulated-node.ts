// Builds a simulated node: a sysfs subset laid out the way the kernel does it (device folders
// under devices/pci0000:xx, everything else reached through relative symlinks) plus the matching
// `ip -json -details link show` output (links.json). Discovery reads it like the real /sys, so
// tests, the demo and the benchmarks exercise the production code paths on real files.
import { NetplumbError } from '../lib/errors.js';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DPDK_DRIVERS } from '../sriov/model.js';
import type { LinkState } from '../sriov/model.js';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { planSystem } from './simulated-system.js';
import type { SystemOptions } from './simulated-system.js';

export const SIMULATED_NODE_ERROR = 'ERR_SIMULATED_NODE' as const;

export class SimulatedNodeError extends NetplumbError {
  constructor(message: string, options?: ErrorOptions) {
    super(SIMULATED_NODE_ERROR, message, options);
    this.name = 'SimulatedNodeError';
  }
}

/** Per-netdev link attributes (sysfs `net/<if>/*` and the links.json entry). */
export interface NetdevOptions {
  readonly mac?: string;
  readonly mtu?: number;
  /** Kernel operstate: `up`, `down`, `lowerlayerdown`, `unknown`, … */
  readonly operstate?: string;
  readonly carrier?: boolean;
  /** Mb/s; -1 = unknown (what the kernel reports for a link without carrier). */
  readonly speed?: number;
}

export interface PfOptions extends NetdevOptions {
  /** PF netdev name; omit for a PF bound to a userspace driver. */
  readonly netdev?: string;
  /** 4 hex digits, e.g. `8086`. */
  readonly vendor: string;
  readonly device: string;
  readonly driver?: string | null;
  readonly numa?: number;
  readonly totalVfs?: number;
  readonly linkType?: 'ether' | 'infiniband';
  readonly acpiIndex?: number;
  /** RDMA device name under `infiniband/` (e.g. `mlx5_0`). */
  readonly rdma?: string;
  readonly subsystemVendor?: string;
  readonly subsystemDevice?: string;
  /** PCI address of VF 0; default: the kernel-style routing offset after earlier PFs of the slot. */
  readonly firstVf?: string;
  /** How links.json prints VF VLANs: `vlan_list` (iproute2 ≥ 4.14) or the older flat `vlan`/`qos`. */
  readonly vfinfoForm?: 'vlan_list' | 'flat';
  readonly iommuGroup?: number;
  /** PCI class of the PF and its VFs, default `020000` (`020700` for infiniband); `120000` for an accelerator. */
  readonly classCode?: string;
}

/** PF-side settings of one VF (IFLA_VF_INFO) as links.json reports them. */
export interface VfSettingsOptions {
  /** Admin MAC set on the PF (`ip link set <pf> vf N mac`); default 00:00:00:00:00:00. */
  readonly adminMac?: string;
  readonly vlan?: number;
  readonly qos?: number;
  readonly vlanProto?: '802.1Q' | '802.1ad';
  readonly spoofchk?: boolean;
  readonly trust?: boolean;
  readonly linkState?: LinkState;
  readonly minTxRate?: number;
  readonly maxTxRate?: number;
}

export interface VfOptions extends NetdevOptions, VfSettingsOptions {
  readonly driver?: string | null;
  readonly vendor?: string;
  readonly device?: string;
  /** Netdev name; default `<pfNetdev>v<index>`; ignored (none) for vfio/uio drivers. */
  readonly netdev?: string;
  /** Give the VF an RDMA device (`infiniband/mlx5_<n>`). */
  readonly rdma?: boolean;
  /** The VF's IOMMU group is a vfio no-IOMMU group. */
  readonly noiommu?: boolean;
}

export interface VfsOptions extends VfOptions {
  /** Per-VF overrides by VF index, e.g. `{ 3: { driver: 'vfio-pci' }, 4: { vlan: 100 } }`. */
  readonly overrides?: Readonly<Record<number, VfOptions>>;
}

export interface NicOptions extends NetdevOptions {
  readonly netdev: string;
  readonly vendor: string;
  readonly device: string;
  readonly driver?: string | null;
  readonly numa?: number;
  readonly linkType?: 'ether' | 'infiniband';
  readonly acpiIndex?: number;
  /** PCI class, default `020000` (Ethernet). */
  readonly classCode?: string;
}

export interface VlanOptions extends NetdevOptions {
  readonly parent: string;
  readonly id: number;
  readonly protocol?: '802.1Q' | '802.1ad';
}

export interface SimulatedNodeOptions {
  /** Give devices IOMMU groups (default true). */
  readonly iommu?: boolean;
}

export interface WrittenNode {
  /** The folder given to write(). */
  readonly dir: string;
  /** `<dir>/sys`: pass as sysfsRoot. */
  readonly sysfsRoot: string;
  /** `<dir>/links.json`: pass as the links file. */
  readonly linksFile: string;
  readonly pfAddresses: readonly string[];
  readonly vfAddresses: readonly string[];
}

interface PlannedNetdev extends NetdevOptions {
  readonly name: string;
  readonly ifindex: number;
  readonly linkType: 'ether' | 'infiniband';
  readonly mac: string;
  /** Device folder the netdev hangs off (relative to the sysfs root), null for a virtual link. */
  readonly deviceDir: string | null;
  readonly vlan?: { readonly parent: string; readonly id: number; readonly protocol: string };
  readonly vfinfo?: { readonly form: 'vlan_list' | 'flat'; readonly vfs: readonly PlannedVf[] };
  readonly pciAddress: string | null;
}

interface PlannedDevice {
  readonly pciAddress: string;
  readonly vendor: string;
  readonly device: string;
  readonly subsystemVendor: string;
  readonly subsystemDevice: string;
  readonly classCode: string;
  readonly driver: string | null;
  readonly numa: number;
  readonly iommuGroup: number | null;
  readonly noiommu: boolean;
  readonly acpiIndex: number | null;
  /** RDMA device name; `auto` = the next free `mlx5_N` once every explicit name is known. */
  readonly rdma: string | null;
  readonly uio: string | null;
  readonly netdev: string | null;
}

interface PlannedPf extends PlannedDevice {
  readonly totalVfs: number;
  readonly vfs: PlannedVf[];
}

interface PlannedVf extends PlannedDevice {
  readonly index: number;
  readonly pf: string;
  readonly settings: Required<VfSettingsOptions>;
}

const BDF = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/;
const HEX4 = /^[0-9a-f]{4}$/;
const UIO_DRIVERS: readonly string[] = ['uio_pci_generic', 'igb_uio'];
const USERSPACE_DRIVERS: readonly string[] = DPDK_DRIVERS;
const ARPHRD = { ether: 1, infiniband: 32 } as const;
const AUTO_RDMA = 'auto';

function assertBdf(value: string, what: string): void {
  if (!BDF.test(value)) {
    throw new SimulatedNodeError(
      `${what}: "${value}" is not a PCI address; use the full lower-case form 0000:3b:00.0`,
    );
  }
}

function assertHex4(value: string, what: string): void {
  if (!HEX4.test(value)) {
    throw new SimulatedNodeError(`${what}: "${value}" must be 4 lower-case hex digits without 0x, e.g. 8086`);
  }
}

function routingId(bdf: string): number {
  const [, , bus = '', dev = '', fn = ''] = BDF.exec(bdf) ?? [];
  if (bus === '') throw new SimulatedNodeError(`"${bdf}" is not a PCI address`);
  return (parseInt(bus, 16) << 8) | (parseInt(dev, 16) << 3) | parseInt(fn, 16);
}

function bdfFromRouting(domain: string, rid: number): string {
  const bus = (rid >> 8) & 0xff;
  const dev = (rid >> 3) & 0x1f;
  const fn = rid & 0x7;
  return `${domain}:${bus.toString(16).padStart(2, '0')}:${dev.toString(16).padStart(2, '0')}.${fn}`;
}

/** Folder of a PCI device relative to the sysfs root: `devices/pci0000:3b/0000:3b:02.0`. */
export function pciDeviceDir(bdf: string): string {
  const [domain, bus] = bdf.split(':');
  return `devices/pci${domain ?? '0000'}:${bus ?? '00'}/${bdf}`;
}

/** Deterministic locally administered MAC from a seed. */
function macFor(seed: number): string {
  const bytes = [0x02, 0x4e, (seed >> 24) & 0xff, (seed >> 16) & 0xff, (seed >> 8) & 0xff, seed & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function modalias(d: PlannedDevice): string {
  const h8 = (s: string) => s.toUpperCase().padStart(8, '0');
  const cls = d.classCode.toUpperCase();
  return `pci:v${h8(d.vendor)}d${h8(d.device)}sv${h8(d.subsystemVendor)}sd${h8(d.subsystemDevice)}bc${cls.slice(0, 2)}sc${cls.slice(2, 4)}i${cls.slice(4, 6)}`;
}

export class SimulatedNodeBuilder {
  private readonly pfs: PlannedPf[] = [];
  private readonly plain: PlannedDevice[] = [];
  private readonly netdevs: PlannedNetdev[] = [];
  private readonly used = new Set<string>();
  private readonly nextVfRouting = new Map<string, number>();
  private nextIfindex = 2;
  private nextIommuGroup = 10;
  private nextUio = 0;
  private readonly iommu: boolean;

  private systemOptions: SystemOptions = {};

  constructor(options: SimulatedNodeOptions = {}) {
    this.iommu = options.iommu ?? true;
  }

  /**
   * Node-wide facts (NUMA nodes, hugepages, isolated CPUs, modules, kernel command line, host);
   * see sim/simulated-system.ts. Without it the node is written with the DPDK-ready defaults.
   */
  system(o: SystemOptions): this {
    this.systemOptions = { ...this.systemOptions, ...o };
    return this;
  }

  /** Adds an SR-IOV physical function; following `.vfs()` calls attach VFs to it. */
  pf(pciAddress: string, o: PfOptions): this {
    assertBdf(pciAddress, 'pf');
    assertHex4(o.vendor, `pf ${pciAddress} vendor`);
    assertHex4(o.device, `pf ${pciAddress} device`);
    this.claim(pciAddress);
    const driver = o.driver === undefined ? null : o.driver;
    const netdev = o.netdev !== undefined && !this.isUserspace(driver) ? o.netdev : null;
    const linkType = o.linkType ?? 'ether';
    const pf: PlannedPf = {
      pciAddress,
      vendor: o.vendor,
      device: o.device,
      subsystemVendor: o.subsystemVendor ?? o.vendor,
      subsystemDevice: o.subsystemDevice ?? '0000',
      classCode: o.classCode ?? (linkType === 'infiniband' ? '020700' : '020000'),
      driver,
      numa: o.numa ?? -1,
      iommuGroup: this.iommu ? (o.iommuGroup ?? this.nextIommuGroup++) : null,
      noiommu: false,
      acpiIndex: o.acpiIndex ?? null,
      rdma: o.rdma ?? null,
      uio: null,
      netdev,
      totalVfs: o.totalVfs ?? 64,
      vfs: [],
    };
    if (o.firstVf !== undefined) {
      assertBdf(o.firstVf, `pf ${pciAddress} firstVf`);
      this.nextVfRouting.set(pciAddress, routingId(o.firstVf));
    }
    this.pfs.push(pf);
    if (netdev !== null) {
      this.addNetdev(netdev, pciAddress, linkType, o, {
        vfinfo: { form: o.vfinfoForm ?? 'vlan_list', vfs: pf.vfs },
      });
    }
    return this;
  }

  /** Adds `count` VFs to the last PF (kernel VF numbering continues after existing ones). */
  vfs(count: number, o: VfsOptions = {}): this {
    const pf = this.pfs.at(-1);
    if (!pf) throw new SimulatedNodeError('vfs() needs a pf() before it');
    if (!Number.isInteger(count) || count < 0) {
      throw new SimulatedNodeError(`vfs(): count ${count} must be a non-negative integer`);
    }
    if (pf.vfs.length + count > pf.totalVfs) {
      throw new SimulatedNodeError(
        `vfs(): PF ${pf.pciAddress} has totalVfs ${pf.totalVfs}; raise totalVfs to add ${count} more VFs`,
      );
    }
    const pfNetdev = pf.netdev;
    let rid = this.firstVfRouting(pf);
    rid += pf.vfs.length;
    const domain = pf.pciAddress.slice(0, 4);
    for (let n = 0; n < count; n++) {
      const index = pf.vfs.length;
      const v: VfOptions = { ...o, ...(o.overrides?.[index] ?? {}) };
      if (rid + n > 0xffff)
        throw new SimulatedNodeError(`vfs(): VF ${index} of ${pf.pciAddress} overflows the PCI bus range`);
      const bdf = bdfFromRouting(domain, rid + n);
      this.claim(bdf);
      const driver = v.driver === undefined ? null : v.driver;
      const userspace = this.isUserspace(driver);
      const netdev =
        userspace || driver === null
          ? null
          : (v.netdev ?? `${pfNetdev ?? `vf${bdf.replace(/[:.]/g, '')}`}v${index}`);
      const vendor = v.vendor ?? pf.vendor;
      const device = v.device ?? pf.device;
      assertHex4(vendor, `vf ${index} of ${pf.pciAddress} vendor`);
      assertHex4(device, `vf ${index} of ${pf.pciAddress} device`);
      const vf: PlannedVf = {
        pciAddress: bdf,
        vendor,
        device,
        subsystemVendor: vendor,
        subsystemDevice: '0000',
        classCode: pf.classCode,
        driver,
        numa: pf.numa,
        iommuGroup: this.iommu ? this.nextIommuGroup++ : null,
        noiommu: v.noiommu ?? false,
        acpiIndex: null,
        rdma: v.rdma === true ? AUTO_RDMA : null,
        uio: driver !== null && UIO_DRIVERS.includes(driver) ? `uio${String(this.nextUio++)}` : null,
        netdev,
        index,
        pf: pf.pciAddress,
        settings: {
          adminMac: v.adminMac ?? '00:00:00:00:00:00',
          vlan: v.vlan ?? 0,
          qos: v.qos ?? 0,
          vlanProto: v.vlanProto ?? '802.1Q',
          spoofchk: v.spoofchk ?? true,
          trust: v.trust ?? false,
          linkState: v.linkState ?? 'auto',
          minTxRate: v.minTxRate ?? 0,
          maxTxRate: v.maxTxRate ?? 0,
        },
      };
      pf.vfs.push(vf);
      if (netdev !== null) {
        const pfLink = this.netdevs.find((d) => d.name === pfNetdev);
        this.addNetdev(netdev, bdf, pfLink?.linkType ?? 'ether', { speed: 10000, ...v });
      }
    }
    return this;
  }

  /** Adds a PCI network device without SR-IOV (a plain NIC). */
  nic(pciAddress: string, o: NicOptions): this {
    assertBdf(pciAddress, 'nic');
    assertHex4(o.vendor, `nic ${pciAddress} vendor`);
    assertHex4(o.device, `nic ${pciAddress} device`);
    this.claim(pciAddress);
    const driver = o.driver === undefined ? null : o.driver;
    this.plain.push({
      pciAddress,
      vendor: o.vendor,
      device: o.device,
      subsystemVendor: o.vendor,
      subsystemDevice: '0000',
      classCode: o.classCode ?? '020000',
      driver,
      numa: o.numa ?? -1,
      iommuGroup: this.iommu ? this.nextIommuGroup++ : null,
      noiommu: false,
      acpiIndex: o.acpiIndex ?? null,
      rdma: null,
      uio: null,
      netdev: o.netdev,
    });
    this.addNetdev(o.netdev, pciAddress, o.linkType ?? 'ether', o);
    return this;
  }

  /** Adds a VLAN sub-interface (`devices/virtual/net/<name>` with a `lower_<parent>` link). */
  vlan(name: string, o: VlanOptions): this {
    const parent = this.netdevs.find((d) => d.name === o.parent);
    if (!parent)
      throw new SimulatedNodeError(`vlan ${name}: parent "${o.parent}" is not a netdev added before it`);
    if (!Number.isInteger(o.id) || o.id < 1 || o.id > 4094) {
      throw new SimulatedNodeError(`vlan ${name}: id ${o.id} must be an integer in 1..4094`);
    }
    this.addNetdev(
      name,
      null,
      parent.linkType,
      { mac: parent.mac, mtu: parent.mtu ?? 1500, speed: parent.speed ?? -1, ...o },
      {
        vlan: { parent: o.parent, id: o.id, protocol: o.protocol ?? '802.1Q' },
      },
    );
    return this;
  }

  /** Writes `<dir>/sys` and `<dir>/links.json`; `dir` must be empty or absent. */
  async write(dir: string): Promise<WrittenNode> {
    const sys = path.join(dir, 'sys');
    const plan = this.plan();
    const dirs = [
      ...new Set([...plan.dirs, ...[...plan.files.keys(), ...plan.links.keys()].map((p) => path.dirname(p))]),
    ];
    dirs.sort();
    // Tens of thousands of tiny entries: sync calls are several times faster than a promise each,
    // and a node is written once, before anything reads it.
    for (const d of dirs) mkdirSync(path.join(sys, d), { recursive: true });
    for (const [p, content] of plan.files) writeFileSync(path.join(sys, p), content);
    for (const [p, target] of plan.links) symlinkSync(target, path.join(sys, p));
    const linksFile = path.join(dir, 'links.json');
    await writeFile(linksFile, `${JSON.stringify(this.ipLinks(), null, 1)}\n`);
    await this.writeSystem(dir);
    return {
      dir,
      sysfsRoot: sys,
      linksFile,
      pfAddresses: this.pfs.map((p) => p.pciAddress),
      vfAddresses: this.pfs.flatMap((p) => p.vfs.map((v) => v.pciAddress)),
    };
  }

  private async writeSystem(dir: string): Promise<void> {
    const devices: PlannedDevice[] = [...this.pfs.flatMap((p) => [p, ...p.vfs]), ...this.plain];
    const plan = planSystem(this.systemOptions, {
      deviceNumaNodes: [...new Set(devices.map((d) => d.numa))],
      iommu: this.iommu,
      drivers: [...new Set(devices.flatMap((d) => (d.driver === null ? [] : [d.driver])))],
    });
    const files = [
      ...[...plan.sysFiles].map(([p, c]) => [path.join(dir, 'sys', p), c] as const),
      ...[...plan.topFiles].map(([p, c]) => [path.join(dir, p), c] as const),
    ];
    for (const [p, content] of files) {
      mkdirSync(path.dirname(p), { recursive: true });
      await writeFile(p, content);
    }
  }

  private isUserspace(driver: string | null): boolean {
    return driver !== null && USERSPACE_DRIVERS.includes(driver);
  }

  private claim(bdf: string): void {
    if (this.used.has(bdf)) throw new SimulatedNodeError(`PCI address ${bdf} is used twice`);
    this.used.add(bdf);
  }

  // Kernel-style VF placement: VF 0 sits at the PF's slot + offset 16, after the VF ranges of
  // earlier PFs in the same slot (an X710 port 1 continues where port 0's totalvfs end).
  private firstVfRouting(pf: PlannedPf): number {
    const known = this.nextVfRouting.get(pf.pciAddress);
    if (known !== undefined) return known;
    const slotBase = routingId(pf.pciAddress) & ~0x7;
    const slotKey = `slot:${pf.pciAddress.slice(0, -2)}`;
    const start = this.nextVfRouting.get(slotKey) ?? slotBase + 16;
    this.nextVfRouting.set(slotKey, start + pf.totalVfs);
    this.nextVfRouting.set(pf.pciAddress, start);
    return start;
  }

  private addNetdev(
    name: string,
    pciAddress: string | null,
    linkType: 'ether' | 'infiniband',
    o: NetdevOptions,
    extra: Pick<PlannedNetdev, 'vlan' | 'vfinfo'> = {},
  ): void {
    if (name.length === 0 || name.length > 15 || /[\s/:]/.test(name)) {
      throw new SimulatedNodeError(`netdev "${name}": names are 1..15 characters without spaces, "/" or ":"`);
    }
    if (this.netdevs.some((d) => d.name === name))
      throw new SimulatedNodeError(`netdev "${name}" is used twice`);
    const ifindex = this.nextIfindex++;
    this.netdevs.push({
      speed: 25000,
      operstate: 'up',
      carrier: true,
      mtu: 1500,
      ...o,
      name,
      ifindex,
      linkType,
      mac: o.mac ?? macFor(ifindex),
      deviceDir: pciAddress === null ? null : pciDeviceDir(pciAddress),
      pciAddress,
      ...extra,
    });
  }

  private plan(): { dirs: string[]; files: Map<string, string>; links: Map<string, string> } {
    const dirs: string[] = ['bus/pci/devices', 'class/net', 'kernel/iommu_groups', 'devices/virtual/net'];
    const files = new Map<string, string>();
    const links = new Map<string, string>();
    const devices: PlannedDevice[] = [...this.pfs.flatMap((p) => [p, ...p.vfs]), ...this.plain];
    const rdmaNames = new Set<string>();
    for (const d of devices) {
      if (d.rdma === null || d.rdma === AUTO_RDMA) continue;
      if (rdmaNames.has(d.rdma)) throw new SimulatedNodeError(`RDMA device name ${d.rdma} is used twice`);
      rdmaNames.add(d.rdma);
    }
    let nextRdma = 0;
    const autoRdma = (): string => {
      while (rdmaNames.has(`mlx5_${nextRdma}`)) nextRdma++;
      const name = `mlx5_${nextRdma}`;
      rdmaNames.add(name);
      return name;
    };
    for (const d of devices) {
      const dd = pciDeviceDir(d.pciAddress);
      const rdma = d.rdma === AUTO_RDMA ? autoRdma() : d.rdma;
      files.set(`${dd}/vendor`, `0x${d.vendor}\n`);
      files.set(`${dd}/device`, `0x${d.device}\n`);
      files.set(`${dd}/subsystem_vendor`, `0x${d.subsystemVendor}\n`);
      files.set(`${dd}/subsystem_device`, `0x${d.subsystemDevice}\n`);
      files.set(`${dd}/class`, `0x${d.classCode}\n`);
      files.set(`${dd}/modalias`, `${modalias(d)}\n`);
      files.set(`${dd}/numa_node`, `${d.numa}\n`);
      files.set(
        `${dd}/uevent`,
        `${d.driver === null ? '' : `DRIVER=${d.driver}\n`}PCI_CLASS=${d.classCode.replace(/^0/, '')}\nPCI_ID=${d.vendor.toUpperCase()}:${d.device.toUpperCase()}\nPCI_SLOT_NAME=${d.pciAddress}\nMODALIAS=${modalias(d)}\n`,
      );
      links.set(`bus/pci/devices/${d.pciAddress}`, `../../../${dd}`);
      links.set(`${dd}/subsystem`, '../../../bus/pci');
      if (d.driver !== null) {
        links.set(`${dd}/driver`, `../../../bus/pci/drivers/${d.driver}`);
        links.set(`bus/pci/drivers/${d.driver}/${d.pciAddress}`, `../../../../${dd}`);
      }
      if (d.iommuGroup !== null) {
        const g = `kernel/iommu_groups/${d.iommuGroup}`;
        links.set(`${dd}/iommu_group`, `../../../${g}`);
        links.set(`${g}/devices/${d.pciAddress}`, `../../../../${dd}`);
        if (d.noiommu) files.set(`${g}/name`, 'vfio-noiommu\n');
        if (d.driver === 'vfio-pci')
          files.set(
            `devices/virtual/vfio/${d.noiommu ? 'noiommu-' : ''}${d.iommuGroup}/dev`,
            `243:${d.iommuGroup}\n`,
          );
      }
      if (d.acpiIndex !== null) files.set(`${dd}/acpi_index`, `${d.acpiIndex}\n`);
      if (rdma !== null) {
        files.set(`${dd}/infiniband/${rdma}/node_type`, '1: CA\n');
        files.set(`${dd}/infiniband/${rdma}/fw_ver`, '16.35.2000\n');
        links.set(`class/infiniband/${rdma}`, `../../${dd}/infiniband/${rdma}`);
      }
      if (d.uio !== null) {
        files.set(`${dd}/uio/${d.uio}/name`, `${d.driver ?? 'uio'}\n`);
        files.set(`${dd}/uio/${d.uio}/dev`, `240:${d.uio.slice(3)}\n`);
        links.set(`class/uio/${d.uio}`, `../../${dd}/uio/${d.uio}`);
      }
    }
    for (const pf of this.pfs) {
      const dd = pciDeviceDir(pf.pciAddress);
      files.set(`${dd}/sriov_totalvfs`, `${pf.totalVfs}\n`);
      files.set(`${dd}/sriov_numvfs`, `${pf.vfs.length}\n`);
      files.set(`${dd}/sriov_drivers_autoprobe`, '1\n');
      const first = pf.vfs[0];
      files.set(
        `${dd}/sriov_offset`,
        `${first ? routingId(first.pciAddress) - routingId(pf.pciAddress) : 16}\n`,
      );
      files.set(`${dd}/sriov_stride`, '1\n');
      files.set(`${dd}/sriov_vf_device`, `${first?.device ?? pf.device}\n`);
      for (const vf of pf.vfs) {
        links.set(`${dd}/virtfn${vf.index}`, `../${vf.pciAddress}`);
        links.set(`${pciDeviceDir(vf.pciAddress)}/physfn`, `../${pf.pciAddress}`);
      }
    }
    for (const n of this.netdevs) {
      const nd = n.deviceDir === null ? `devices/virtual/net/${n.name}` : `${n.deviceDir}/net/${n.name}`;
      for (const [k, v] of Object.entries(netdevFiles(n))) files.set(`${nd}/${k}`, `${v}\n`);
      links.set(`class/net/${n.name}`, `../../${nd}`);
      if (n.deviceDir !== null) {
        links.set(`${nd}/device`, `../../../${n.deviceDir.split('/').at(-1) ?? ''}`);
      }
      if (n.vlan) {
        const parent = this.netdevs.find((p) => p.name === n.vlan?.parent);
        if (parent) {
          const pd =
            parent.deviceDir === null
              ? `devices/virtual/net/${parent.name}`
              : `${parent.deviceDir}/net/${parent.name}`;
          links.set(`${nd}/lower_${parent.name}`, path.posix.relative(nd, pd));
          links.set(`${pd}/upper_${n.name}`, path.posix.relative(pd, nd));
        }
      }
    }
    return { dirs, files, links };
  }

  private ipLinks(): unknown[] {
    const lo = {
      ifindex: 1,
      ifname: 'lo',
      flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
      mtu: 65536,
      qdisc: 'noqueue',
      operstate: 'UNKNOWN',
      linkmode: 'DEFAULT',
      group: 'default',
      txqlen: 1000,
      link_type: 'loopback',
      address: '00:00:00:00:00:00',
      broadcast: '00:00:00:00:00:00',
    };
    return [lo, ...this.netdevs.map((n) => ipLink(n))];
  }
}

/** Starts a simulated node: `simulatedNode().pf(...).vfs(...).nic(...).vlan(...).write(dir)`. */
export function simulatedNode(options?: SimulatedNodeOptions): SimulatedNodeBuilder {
  return new SimulatedNodeBuilder(options);
}

function netdevFiles(n: PlannedNetdev): Record<string, string | number> {
  const up = n.operstate === 'up';
  return {
    ifindex: n.ifindex,
    iflink: n.ifindex,
    address: n.mac,
    broadcast:
      n.linkType === 'ether'
        ? 'ff:ff:ff:ff:ff:ff'
        : '00:ff:ff:ff:ff:12:40:1b:ff:ff:00:00:00:00:00:00:ff:ff:ff:ff',
    mtu: n.mtu ?? 1500,
    type: ARPHRD[n.linkType],
    operstate: n.operstate ?? 'down',
    carrier: n.carrier === true ? 1 : 0,
    speed: up && n.carrier === true ? (n.speed ?? -1) : -1,
    duplex: up && n.carrier === true ? 'full' : 'unknown',
    dev_port: 0,
    tx_queue_len: 1000,
  };
}

function ipLink(n: PlannedNetdev): Record<string, unknown> {
  const up = n.operstate === 'up';
  const flags = [
    'BROADCAST',
    'MULTICAST',
    ...(up ? ['UP'] : []),
    ...(up && n.carrier === true ? ['LOWER_UP'] : []),
  ];
  const entry: Record<string, unknown> = {
    ifindex: n.ifindex,
    ifname: n.name,
    ...(n.vlan ? { link: n.vlan.parent } : {}),
    flags,
    mtu: n.mtu ?? 1500,
    qdisc: up ? 'mq' : 'noop',
    operstate: (n.operstate ?? 'down').toUpperCase(),
    linkmode: 'DEFAULT',
    group: 'default',
    txqlen: 1000,
    link_type: n.linkType,
    address: n.mac,
    broadcast:
      n.linkType === 'ether'
        ? 'ff:ff:ff:ff:ff:ff'
        : '00:ff:ff:ff:ff:12:40:1b:ff:ff:00:00:00:00:00:00:ff:ff:ff:ff',
    promiscuity: 0,
    min_mtu: 68,
    max_mtu: 9702,
  };
  if (n.vlan) {
    entry.linkinfo = {
      info_kind: 'vlan',
      info_data: { protocol: n.vlan.protocol, id: n.vlan.id, flags: ['REORDER_HDR'] },
    };
  }
  entry.num_tx_queues = 1;
  entry.num_rx_queues = 1;
  if (n.pciAddress !== null) {
    entry.parentbus = 'pci';
    entry.parentdev = n.pciAddress;
  }
  if (n.vfinfo && n.vfinfo.vfs.length > 0) {
    entry.num_vf = n.vfinfo.vfs.length;
    entry.vfinfo_list = n.vfinfo.vfs.map((vf) => vfInfo(vf, n.linkType, n.vfinfo?.form ?? 'vlan_list'));
  }
  return entry;
}

// Mirrors iproute2's print_vfinfo: zero vlan/qos are omitted, protocol only when not 802.1Q.
function vfInfo(vf: PlannedVf, linkType: string, form: 'vlan_list' | 'flat'): Record<string, unknown> {
  const s = vf.settings;
  const out: Record<string, unknown> = {
    vf: vf.index,
    link_type: linkType,
    address: s.adminMac,
    broadcast: 'ff:ff:ff:ff:ff:ff',
  };
  const vlan: Record<string, unknown> = {};
  if (s.vlan !== 0) vlan.vlan = s.vlan;
  if (s.qos !== 0) vlan.qos = s.qos;
  if (form === 'vlan_list') {
    if (s.vlanProto !== '802.1Q') vlan.protocol = s.vlanProto;
    out.vlan_list = [vlan];
  } else {
    Object.assign(out, vlan);
  }
  out.rate = { max_tx: s.maxTxRate, min_tx: s.minTxRate };
  out.spoofchk = s.spoofchk;
  out.link_state = s.linkState;
  out.trust = s.trust;
  out.query_rss_en = false;
  return out;
}

// ---- Mutations on a written node (for tests that change the hardware under a running process) ----

interface LinksJsonEntry {
  ifname?: unknown;
  operstate?: unknown;
  flags?: unknown;
  vfinfo_list?: unknown;
  parentdev?: unknown;
}

async function readLinks(linksFile: string): Promise<LinksJsonEntry[]> {
  const parsed: unknown = JSON.parse(await readFile(linksFile, 'utf8'));
  if (!Array.isArray(parsed)) throw new SimulatedNodeError(`${linksFile}: expected a JSON array`);
  return parsed as LinksJsonEntry[];
}

function writeLinksAtomically(linksFile: string, links: readonly unknown[]): Promise<void> {
  return writeFileAtomic(linksFile, `${JSON.stringify(links, null, 1)}\n`);
}

/**
 * Flips a netdev's link on a written node: sysfs `operstate`/`carrier` (what discovery and health
 * checks read) and, when given, the links.json entry.
 */
export async function setLinkState(
  node: Pick<WrittenNode, 'sysfsRoot'> & { readonly linksFile?: string },
  ifname: string,
  state: { readonly operstate: string; readonly carrier: boolean },
): Promise<void> {
  const netDir = path.join(node.sysfsRoot, 'class', 'net', ifname);
  await writeFile(path.join(netDir, 'operstate'), `${state.operstate}\n`).catch((cause: unknown) => {
    throw new SimulatedNodeError(`setLinkState: no netdev ${ifname} under ${netDir}`, { cause });
  });
  await writeFile(path.join(netDir, 'carrier'), `${state.carrier ? 1 : 0}\n`);
  if (node.linksFile === undefined) return;
  const links = await readLinks(node.linksFile);
  for (const l of links) {
    if (l.ifname !== ifname) continue;
    l.operstate = state.operstate.toUpperCase();
    const flags = Array.isArray(l.flags) ? l.flags.filter((f) => f !== 'UP' && f !== 'LOWER_UP') : [];
    if (state.operstate === 'up') flags.push('UP');
    if (state.operstate === 'up' && state.carrier) flags.push('LOWER_UP');
    l.flags = flags;
  }
  await writeLinksAtomically(node.linksFile, links);
}

/**
 * Removes a VF from a written node as a hot-unplug would: its device folder, every link to it
 * (bus/pci/devices, the PF's virtfnN, driver, IOMMU group, class/net) and its links.json entries.
 * `sriov_numvfs` is left as it was, so the tree reads as partially torn down.
 */
export async function removeVf(
  node: Pick<WrittenNode, 'sysfsRoot'> & { readonly linksFile?: string },
  pciAddress: string,
): Promise<void> {
  assertBdf(pciAddress, 'removeVf');
  const root = node.sysfsRoot;
  const devLink = path.join(root, 'bus', 'pci', 'devices', pciAddress);
  let devDir: string;
  try {
    devDir = path.resolve(path.dirname(devLink), await readlink(devLink));
  } catch (cause) {
    throw new SimulatedNodeError(`removeVf: ${pciAddress} is not a device under ${root}`, { cause });
  }
  const physfn = await readlink(path.join(devDir, 'physfn')).catch(() => null);
  if (physfn === null)
    throw new SimulatedNodeError(`removeVf: ${pciAddress} has no physfn link; it is not a VF`);
  const pfDir = path.resolve(devDir, physfn);
  const pfAddress = path.basename(pfDir);
  let vfIndex: number | null = null;
  for (const e of await readdir(pfDir)) {
    if (!e.startsWith('virtfn')) continue;
    const t = await readlink(path.join(pfDir, e)).catch(() => '');
    if (path.basename(t) === pciAddress) {
      vfIndex = Number(e.slice('virtfn'.length));
      await rm(path.join(pfDir, e));
    }
  }
  const netdevs = await readdir(path.join(devDir, 'net')).catch(() => [] as string[]);
  const driver = await readlink(path.join(devDir, 'driver')).catch(() => null);
  const group = await readlink(path.join(devDir, 'iommu_group')).catch(() => null);
  if (driver !== null) await rm(path.join(devDir, driver, pciAddress), { force: true });
  if (group !== null) await rm(path.join(devDir, group), { recursive: true, force: true });
  for (const n of netdevs) await rm(path.join(root, 'class', 'net', n), { force: true });
  await rm(devLink, { force: true });
  await rm(devDir, { recursive: true, force: true });
  if (node.linksFile === undefined) return;
  const links = (await readLinks(node.linksFile)).filter((l) => !netdevs.includes(String(l.ifname)));
  for (const l of links) {
    if (l.parentdev !== pfAddress || !Array.isArray(l.vfinfo_list)) continue;
    l.vfinfo_list = (l.vfinfo_list as { vf?: unknown }[]).filter((v) => v.vf !== vfIndex);
  }
  await writeLinksAtomically(node.linksFile, links);
}
