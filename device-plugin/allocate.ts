// Allocate, byte-compatible with SRIOV-DP: `PCIDEVICE_<PREFIX>_<NAME>` env with the IDs, the `_INFO`
// JSON (Go's encoding of map[string]map[string]map[string]string: sorted keys, HTML-escaped), the
// device nodes for vfio/uio/vhost, and the Device Information Spec 1.1.0 document. Pure.
import { NetplumbError } from '../lib/errors.js';
import type { ContainerAllocateResponse, DeviceSpec } from '../proto/gen/deviceplugin/v1beta1/api.js';
import type { PoolConfig } from './config.js';
import type { PciPoolDevice, PoolDevice } from './pools.js';

export const ALLOCATE_ERROR = {
  unknownDevice: 'ERR_DP_UNKNOWN_DEVICE',
  duplicateDevice: 'ERR_DP_DUPLICATE_DEVICE',
  goneDevice: 'ERR_DP_DEVICE_GONE',
} as const;
export type AllocateErrorCode = (typeof ALLOCATE_ERROR)[keyof typeof ALLOCATE_ERROR];

export class AllocateError extends NetplumbError {
  declare readonly code: AllocateErrorCode;
  constructor(message: string, code: AllocateErrorCode = ALLOCATE_ERROR.unknownDevice) {
    super(code, message);
    this.name = 'AllocateError';
  }
}

/** RDMA character devices of one device (host paths, also used in the container). */
export interface RdmaCharDevices {
  readonly uverbs: string | null;
  readonly umad: string | null;
  readonly issm: string | null;
  readonly rdmaCm: string | null;
}

/** What the host offers, checked by the caller (I/O stays outside). */
export interface HostDevices {
  /** `/dev/vhost-net` and `/dev/net/tun` both exist. */
  readonly vhostNet: boolean;
  /** RDMA char devices by device ID, for devices of `isRdma` selectors. */
  readonly rdma?: ReadonlyMap<string, RdmaCharDevices>;
}

function rdmaPaths(r: RdmaCharDevices | undefined): string[] {
  if (r === undefined) return [];
  return [r.uverbs, r.umad, r.issm, r.rdmaCm].filter((p): p is string => p !== null);
}

export const DEVICE_INFO_VERSION = '1.1.0';
const VFIO_CONTAINER = '/dev/vfio/vfio';
const VHOST_NET = '/dev/vhost-net';
const TUN = '/dev/net/tun';

/** `PCIDEVICE_` + prefix + `_` + name, dots to `_`, upper case (hyphens kept, as SRIOV-DP). */
export function envName(config: Pick<PoolConfig, 'resourcePrefix' | 'resourceName'>): string {
  return `PCIDEVICE_${config.resourcePrefix}_${config.resourceName}`.replaceAll('.', '_').toUpperCase();
}

/** Env with the interface names of NIC-pool devices (netplumb addition). */
export function nicEnvName(config: Pick<PoolConfig, 'resourcePrefix' | 'resourceName'>): string {
  return `NICDEVICE_${config.resourcePrefix}_${config.resourceName}`.replaceAll('.', '_').toUpperCase();
}

// Go's json.Marshal: map keys sorted, <, >, & and U+2028/9 escaped.
export function goJson(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  };
  return JSON.stringify(sortKeys(value))
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}

interface VfioNode {
  readonly host: string;
  readonly container: string;
}

function vfioNode(d: PciPoolDevice): VfioNode | null {
  const dev = d.device;
  if (dev.driver !== 'vfio-pci' || dev.iommuGroup === null) return null;
  const g = String(dev.iommuGroup);
  return {
    host: dev.iommuNoiommu ? `/dev/vfio/noiommu-${g}` : `/dev/vfio/${g}`,
    container: `/dev/vfio/${g}`,
  };
}

function uioNode(d: PciPoolDevice): string | null {
  const u = d.device.uioDevice;
  return u === null ? null : `/dev/${u}`;
}

/** Device nodes a PCI device needs in the container (SRIOV-DP's info providers). */
export function deviceSpecs(d: PoolDevice, host: HostDevices): DeviceSpec[] {
  if (d.kind === 'nic') return [];
  const specs: DeviceSpec[] = [];
  const vfio = vfioNode(d);
  if (vfio !== null) {
    specs.push({ containerPath: VFIO_CONTAINER, hostPath: VFIO_CONTAINER, permissions: 'rw' });
    specs.push({ containerPath: vfio.container, hostPath: vfio.host, permissions: 'rw' });
  }
  const uio = uioNode(d);
  if (uio !== null) specs.push({ containerPath: uio, hostPath: uio, permissions: 'rw' });
  if (d.selector.isRdma) {
    for (const p of rdmaPaths(host.rdma?.get(d.id)))
      specs.push({ containerPath: p, hostPath: p, permissions: 'rw' });
  }
  if (d.selector.needVhostNet && host.vhostNet) {
    specs.push({ containerPath: VHOST_NET, hostPath: VHOST_NET, permissions: 'rw' });
    specs.push({ containerPath: TUN, hostPath: TUN, permissions: 'rw' });
  }
  return specs;
}

function additional(config: PoolConfig, id: string): Record<string, string> {
  return { ...(config.additionalInfo['*'] ?? {}), ...(config.additionalInfo[id] ?? {}) };
}

/** The per-device object of the `_INFO` env: provider name → key/values. */
export function deviceInfoProviders(
  config: PoolConfig,
  d: PoolDevice,
  host: HostDevices,
): Record<string, Record<string, string>> {
  const info: Record<string, Record<string, string>> = { generic: { deviceID: d.id } };
  if (d.kind === 'nic') {
    const nic: Record<string, string> = { name: d.nic.name };
    if (d.nic.parent !== null) nic.parent = d.nic.parent;
    if (d.nic.vlanId !== null) nic.vlan = String(d.nic.vlanId);
    info.nic = nic;
  } else {
    const vfio = vfioNode(d);
    if (vfio !== null) info.vfio = { mount: VFIO_CONTAINER, 'dev-mount': vfio.container };
    const uio = uioNode(d);
    if (uio !== null) info.uio = { mount: uio };
    if (d.selector.isRdma && d.device.rdmaDevices.length > 0) {
      const r = host.rdma?.get(d.id);
      const rdma: Record<string, string> = { rdma_dev: d.device.rdmaDevices.join(',') };
      if (r?.uverbs != null) rdma.uverbs = r.uverbs;
      if (r?.umad != null) rdma.umad = r.umad;
      if (r?.issm != null) rdma.issm = r.issm;
      if (r?.rdmaCm != null) rdma.rdma_cm = r.rdmaCm;
      info.rdma = rdma;
    }
    if (d.selector.needVhostNet && host.vhostNet) info.vhost = { 'net-mount': VHOST_NET, 'tun-mount': TUN };
  }
  // SRIOV-DP writes "extra":{} when the device has no additionalInfo.
  info.extra = additional(config, d.id);
  return info;
}

/** Device Information Spec 1.1.0 document for the device-info file (netDevice and nic pools). */
export function deviceInfoDocument(d: PoolDevice, pciOfNic: string | null): string | null {
  if (d.kind === 'pci') {
    const pci: Record<string, string> = { 'pci-address': d.id };
    if (d.selector.isRdma && d.device.rdmaDevices.length > 0)
      pci['rdma-device'] = d.device.rdmaDevices.join(',');
    return JSON.stringify({ type: 'pci', version: DEVICE_INFO_VERSION, pci });
  }
  // A NIC slot: the PCI device behind the interface (if any) plus the interface to use as master.
  return JSON.stringify({
    type: 'pci',
    version: DEVICE_INFO_VERSION,
    pci: { 'pci-address': pciOfNic ?? '' },
    'netplumb.io/interface': {
      name: d.nic.name,
      ...(d.nic.parent !== null ? { parent: d.nic.parent } : {}),
      ...(d.nic.vlanId !== null ? { vlan: d.nic.vlanId } : {}),
    },
  });
}

/** Device-info file name: `<prefix>-<name>-<id>-device.json` (resource name `/` → `-`). */
export function deviceInfoFileName(config: Pick<PoolConfig, 'fullName'>, id: string): string {
  return `${config.fullName.replaceAll('/', '-')}-${id.replaceAll('/', '-')}-device.json`;
}

/** SRIOV-DP's CDI annotation key: `cdi.k8s.io/<prefix>_<kind name>`. */
export function cdiAnnotationKey(config: PoolConfig): string {
  return `cdi.k8s.io/${cdiKind(config).replace('/', '_')}`;
}

/** CDI kind for a pool (`<prefix>/net-pci` as SRIOV-DP). */
export function cdiKind(config: PoolConfig): string {
  return `${config.resourcePrefix}/${config.deviceType === 'accelerator' ? 'net-accel' : 'net-pci'}`;
}

export interface ContainerAllocation {
  readonly response: ContainerAllocateResponse;
  readonly devices: readonly PoolDevice[];
}

/**
 * The devices of one container request. Refuses an ID the pool never had, one given twice, and one
 * no longer in the pool (`present`: it left sysfs or stopped matching, and was reported Unhealthy).
 */
function requestedDevices(
  config: PoolConfig,
  lookup: ReadonlyMap<string, PoolDevice>,
  ids: readonly string[],
  present: ReadonlySet<string> | undefined,
): PoolDevice[] {
  const devices: PoolDevice[] = [];
  const seen = new Set<string>();
  for (const id of ids) {
    const d = lookup.get(id);
    if (d === undefined) throw new AllocateError(`unknown device ID "${id}" for resource ${config.fullName}`);
    if (seen.has(id))
      throw new AllocateError(
        `device ID "${id}" is requested twice for resource ${config.fullName}; each device can be given once`,
        ALLOCATE_ERROR.duplicateDevice,
      );
    if (present !== undefined && !present.has(id))
      throw new AllocateError(
        `device "${id}" of resource ${config.fullName} is no longer on the node or no longer matches the pool (reported Unhealthy); pick another device`,
        ALLOCATE_ERROR.goneDevice,
      );
    seen.add(id);
    devices.push(d);
  }
  return devices;
}

/**
 * The response for one container. Throws AllocateError naming the first ID the pool does not have.
 * With `cdi`, device nodes are referenced as CDI devices instead of DeviceSpecs.
 */
export function containerAllocation(
  config: PoolConfig,
  lookup: ReadonlyMap<string, PoolDevice>,
  ids: readonly string[],
  host: HostDevices,
  cdi: boolean,
  present?: ReadonlySet<string>,
): ContainerAllocation {
  const devices = requestedDevices(config, lookup, ids, present);
  const envs: Record<string, string> = { [envName(config)]: ids.join(',') };
  const info: Record<string, Record<string, Record<string, string>>> = {};
  for (const d of devices) info[d.id] = deviceInfoProviders(config, d, host);
  envs[`${envName(config)}_INFO`] = goJson(info);
  const nics = devices.flatMap((d) => (d.kind === 'nic' ? [d.nic.name] : []));
  if (nics.length > 0) envs[nicEnvName(config)] = nics.join(',');

  const specs: DeviceSpec[] = [];
  const seen = new Set<string>();
  const cdiDevices: { name: string }[] = [];
  for (const d of devices) {
    const own = deviceSpecs(d, host);
    if (cdi && own.length > 0) cdiDevices.push({ name: `${cdiKind(config)}=${d.id}` });
    for (const s of own) {
      if (seen.has(s.hostPath)) continue;
      seen.add(s.hostPath);
      specs.push(s);
    }
  }
  // Device specs always (kubelets without CDI support ignore the CDI fields); with CDI on, the CDI
  // names both as SRIOV-DP's annotation (CDI runtimes before kubelet CDI support) and as
  // cdi_devices (kubelets with the DevicePluginCDIDevices feature).
  const annotations: Record<string, string> =
    cdiDevices.length === 0 ? {} : { [cdiAnnotationKey(config)]: cdiDevices.map((c) => c.name).join(',') };
  return {
    devices,
    response: { envs, mounts: [], devices: specs, annotations, cdiDevices },
  };
}
