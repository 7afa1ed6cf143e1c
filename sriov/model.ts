// The node's hardware model: what discovery produces and what the device plugin and the CNI
// plugins consume. Plain readonly data; absent values are null so `--json` output is total.

/** Drivers that take a VF away from the kernel network stack (userspace / DPDK). */
export const DPDK_DRIVERS = ['vfio-pci', 'uio_pci_generic', 'igb_uio'] as const;

export type LinkState = 'auto' | 'enable' | 'disable';

/** Per-VF settings held by the PF (IFLA_VF_INFO), read with `ip -json -details link show dev <pf>`. */
export interface VfSettings {
  readonly mac: string | null;
  /** Admin VLAN; 0 = untagged; null = unknown. */
  readonly vlan: number | null;
  readonly qos: number | null;
  /** "802.1Q" or "802.1ad" as iproute2 prints it; null when not reported. */
  readonly vlanProto: string | null;
  readonly spoofchk: boolean | null;
  readonly trust: boolean | null;
  readonly linkState: LinkState | null;
  /** Mbps; 0 = unlimited. */
  readonly minTxRate: number | null;
  readonly maxTxRate: number | null;
}

/** What every discovered PCI device carries, PF, VF or plain. */
export interface PciDevice {
  /** Full BDF, lower case: `0000:3b:02.1`. */
  readonly pciAddress: string;
  /** 4 lower-case hex digits, no `0x` (as SRIOV-DP selectors expect). */
  readonly vendor: string | null;
  readonly device: string | null;
  /** 6 hex digits, e.g. `020000`. */
  readonly classCode: string | null;
  /** Bound driver name, null when unbound. */
  readonly driver: string | null;
  /** -1 when the platform reports none or the value is unreadable. */
  readonly numaNode: number;
  readonly iommuGroup: number | null;
  /** The IOMMU group is a vfio no-IOMMU group (`/dev/vfio/noiommu-N`). */
  readonly iommuNoiommu: boolean;
  /** Netdev names under the device's `net/`, sorted; empty for vfio/uio-bound devices. */
  readonly netdevs: readonly string[];
  /** First netdev, or null. */
  readonly netdev: string | null;
  /** `uioN` when bound to a uio driver. */
  readonly uioDevice: string | null;
  /** Has an `infiniband/` directory (RDMA capable). */
  readonly rdmaDevices: readonly string[];
  readonly acpiIndex: string | null;
  /** iproute2 link type of the netdev (`ether`, `infiniband`, …); for a VF without a netdev, its PF's. */
  readonly linkType: string | null;
  /** `operstate` of the netdev (`up`, `down`, `unknown`, …), null when there is no netdev. */
  readonly operstate: string | null;
  /** `carrier` of the netdev (true = link), null when unreadable or no netdev. */
  readonly carrier: boolean | null;
}

export interface Vf extends PciDevice {
  readonly kind: 'vf';
  /** N of the PF's `virtfnN` link. */
  readonly index: number;
  readonly pfPciAddress: string;
  readonly pfNetdev: string | null;
  /** Bound to a userspace driver (DPDK_DRIVERS). */
  readonly dpdk: boolean;
  /** PF-side settings for this VF; null when the PF netdev is unknown or `ip` reported none. */
  readonly settings: VfSettings | null;
}

export interface Pf extends PciDevice {
  readonly kind: 'pf';
  readonly totalVfs: number;
  readonly numVfs: number;
  /** In VF index order. */
  readonly vfs: readonly Vf[];
}

/** A PCI device that is neither a PF nor a VF (e.g. a NIC without SR-IOV). */
export interface PlainPciDevice extends PciDevice {
  readonly kind: 'pci';
}

export type DiscoveredDevice = Pf | Vf | PlainPciDevice;

/** A host network interface: physical NIC, VLAN sub-interface, bond, … (for `nic` pools). */
export interface Nic {
  readonly name: string;
  /** Lower device (`ens2f0` for `ens2f0.210`), null for a physical NIC. */
  readonly parent: string | null;
  readonly vlanId: number | null;
  readonly mac: string | null;
  readonly mtu: number | null;
  readonly operstate: string | null;
  /** Mb/s, null when unknown (virtual links, link down). */
  readonly speed: number | null;
  /** Not backed by a device (no `device` link in sysfs). */
  readonly virtual: boolean;
  /** iproute2 `linkinfo.info_kind` (`vlan`, `bond`, `macvlan`, …) or null for a plain device. */
  readonly kind: string | null;
  readonly pciAddress: string | null;
}

export interface NodeModel {
  readonly pfs: readonly Pf[];
  /** Every discovered device (PFs, their VFs, and plain PCI devices), sorted by PCI address. */
  readonly devices: readonly DiscoveredDevice[];
  readonly nics: readonly Nic[];
  /** Problems met while reading the tree: each names the path; never fatal. */
  readonly warnings: readonly string[];
}
