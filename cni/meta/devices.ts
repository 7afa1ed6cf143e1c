// Devices for attachments whose NAD names a `k8s.v1.cni.cncf.io/resourceName`: what the kubelet
// allocated to the pod (PodResources Get, List on older kubelets), handed out in network order,
// deterministically (containers in pod-spec order, IDs sorted within a container: Multus #1540),
// and injected into the delegate config. The hand-out and the injection are pure.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { CniError, CniErrorCode } from '../errors.js';
import type { JsonObject } from '../../lib/json.js';
import { pluginType } from '../network-config.js';
import { PodResourcesError, PodResourcesErrorCode } from './podresources-port.js';
import type { PodDevices, PodResourcesClient } from './podresources-port.js';

export const PCI_ADDRESS = /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;

/** Get for this pod; List filtered to it when the kubelet lacks Get. */
export async function fetchPodDevices(
  client: PodResourcesClient,
  namespace: string,
  name: string,
): Promise<PodDevices> {
  try {
    return await client.get(namespace, name);
  } catch (err) {
    if (!(err instanceof PodResourcesError) || err.code !== PodResourcesErrorCode.Unimplemented) throw err;
  }
  const all = await client.list();
  return all.find((p) => p.namespace === namespace && p.name === name) ?? { namespace, name, containers: [] };
}

/** resourceName → device IDs in hand-out order. Pure. */
export function deviceQueues(pod: PodDevices, containerOrder: readonly string[]): Map<string, string[]> {
  const rank = (n: string) => {
    const i = containerOrder.indexOf(n);
    return i < 0 ? containerOrder.length : i;
  };
  const containers = [...pod.containers].sort(
    (a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name),
  );
  const queues = new Map<string, string[]>();
  for (const c of containers) {
    const perResource = new Map<string, string[]>();
    for (const d of c.devices)
      perResource.set(d.resourceName, [...(perResource.get(d.resourceName) ?? []), ...d.deviceIds]);
    for (const [res, ids] of perResource) {
      queues.set(res, [...(queues.get(res) ?? []), ...[...ids].sort()]);
    }
  }
  return queues;
}

export interface DeviceRequest {
  /** `ns/name` of the NAD, for the error message. */
  readonly network: string;
  readonly resourceName: string;
}

/**
 * Gives each request the next unused device of its resource, in request order. Pure.
 * Throws a CniError naming the NAD, the resource and what the pod was allocated when one runs out.
 */
export function assignDevices(
  requests: readonly DeviceRequest[],
  queues: ReadonlyMap<string, readonly string[]>,
  pod: string,
): string[] {
  const used = new Map<string, number>();
  return requests.map((r) => {
    const ids = queues.get(r.resourceName) ?? [];
    const next = used.get(r.resourceName) ?? 0;
    const id = ids[next];
    if (id === undefined) {
      const wanted = requests.filter((x) => x.resourceName === r.resourceName).length;
      const allocated = [...queues].map(([k, v]) => `${k}: ${v.length}`).join(', ') || 'none';
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `network "${r.network}" needs a device of resource "${r.resourceName}" but pod ${pod} was allocated ${ids.length} of them for ${wanted} attachment(s) (allocated: ${allocated}); request "${r.resourceName}: ${wanted}" in the pod's container resources (network-resources-injector does this)`,
      );
    }
    used.set(r.resourceName, next + 1);
    return id;
  });
}

/**
 * The host interface a NIC-pool device ID stands for: the device plugin advertises each
 * interface as slots `<ifname>#<slot>`, so the interface is the part before the last `#`.
 */
export function nicSlotInterface(deviceId: string): string {
  const hash = deviceId.lastIndexOf('#');
  return hash < 0 ? deviceId : deviceId.slice(0, hash);
}

/** The interface a device ID stands for: a PCI device's first netdev, else the NIC-pool interface. */
export async function deviceNetdev(sysfsRoot: string, deviceId: string): Promise<string | undefined> {
  if (!PCI_ADDRESS.test(deviceId)) return nicSlotInterface(deviceId);
  try {
    const names = await readdir(path.join(sysfsRoot, 'bus', 'pci', 'devices', deviceId, 'net'));
    return names.sort()[0];
  } catch {
    return undefined;
  }
}

const MASTER_TYPES = ['macvlan', 'ipvlan'];

/**
 * Puts the device into each plugin config of the chain. Pure.
 * - macvlan/ipvlan: `master` = the device's netdev (NIC-pool devices) when known;
 * - host-device with a non-PCI ID: `device`;
 * - every other plugin (sriov, host-device, ...): `deviceID` and `pciBusID`, as Multus does.
 * `runtimeConfig.deviceID` travels as a capability arg (forwarded to plugins that declare it).
 */
export function injectDevice(
  plugins: readonly JsonObject[],
  deviceId: string,
  netdev: string | undefined,
): JsonObject[] {
  const pci = PCI_ADDRESS.test(deviceId);
  return plugins.map((p) => {
    const type = pluginType(p);
    if (MASTER_TYPES.includes(type)) return netdev === undefined ? p : { ...p, master: netdev };
    if (type === 'host-device' && !pci) return { ...p, device: nicSlotInterface(deviceId) };
    return { ...p, deviceID: deviceId, pciBusID: deviceId };
  });
}
