// From resolved networks and the pod's selections to the list of attachments to run: interface
// names (`net<idx>` as Multus numbers them, explicit requests win), runtime config from the
// annotation, `cni-args` merged into `args.cni`, CNI_ARGS for the delegates. Pure.
import { CniError, CniErrorCode } from '../errors.js';
import { cniArg } from '../env.js';
import type { CniArg } from '../env.js';
import { isJsonObject } from '../../lib/json.js';
import type { JsonObject } from '../../lib/json.js';
import type { NetworkConfigList } from '../network-config.js';
import { ipFamily } from '../result.js';
import type { NetworkSelection } from './annotations.js';
import type { CachedAttachment } from './cache.js';
import { cniDeviceInfoPath } from './devinfo.js';
import { injectDevice } from './devices.js';
import type { ResolvedNetwork } from './nad.js';

/** The pod named by the runtime's CNI_ARGS (K8S_POD_*). */
export interface PodArgs {
  readonly namespace: string;
  readonly name: string;
  readonly infraContainerId: string;
  readonly uid: string;
}

export function podArgs(args: readonly CniArg[]): PodArgs {
  return {
    namespace: cniArg(args, 'K8S_POD_NAMESPACE') ?? '',
    name: cniArg(args, 'K8S_POD_NAME') ?? '',
    infraContainerId: cniArg(args, 'K8S_POD_INFRA_CONTAINER_ID') ?? '',
    uid: cniArg(args, 'K8S_POD_UID') ?? '',
  };
}

const OWN_ARGS = [
  'IgnoreUnknown',
  'K8S_POD_NAMESPACE',
  'K8S_POD_NAME',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
];

/** CNI_ARGS for every delegate: Multus's five, then the runtime's other args. */
export function delegateArgs(pod: PodArgs, incoming: readonly CniArg[]): CniArg[] {
  return [
    ['IgnoreUnknown', 'true'],
    ['K8S_POD_NAMESPACE', pod.namespace],
    ['K8S_POD_NAME', pod.name],
    ['K8S_POD_INFRA_CONTAINER_ID', pod.infraContainerId],
    ['K8S_POD_UID', pod.uid],
    ...incoming.filter(([k]) => !OWN_ARGS.includes(k)),
  ];
}

export interface AttachmentPlan {
  readonly name: string;
  readonly ifname: string;
  readonly isDefault: boolean;
  readonly list: NetworkConfigList;
  readonly capabilityArgs: JsonObject;
  readonly cniArgs: readonly CniArg[];
  readonly resourceName: string | undefined;
  readonly selection: NetworkSelection | undefined;
}

export interface PlanInput {
  readonly cluster: ResolvedNetwork;
  /** defaultNetworks / extra delegates (no selection) then annotation networks (with one). */
  readonly extras: readonly { readonly network: ResolvedNetwork; readonly selection?: NetworkSelection }[];
  readonly runtimeIfname: string;
  /** The runtime's runtimeConfig: capability args of the cluster network. */
  readonly runtimeConfig: JsonObject;
  /** CNI_ARGS for every delegate (IgnoreUnknown, K8S_*, the runtime's other args). */
  readonly baseArgs: readonly CniArg[];
}

/** Replaces the plugins of a network, keeping the raw document in step. */
export function withPlugins(list: NetworkConfigList, plugins: readonly JsonObject[]): NetworkConfigList {
  const raw = list.isList ? { ...list.raw, plugins: [...plugins] } : (plugins[0] ?? list.raw);
  return { ...list, plugins, raw };
}

/** `cni-args` from the pod into `args.cni` of every plugin (the pod wins over the NAD). */
export function mergeCniArgs(list: NetworkConfigList, cniArgs: JsonObject): NetworkConfigList {
  return withPlugins(
    list,
    list.plugins.map((p) => {
      const args = isJsonObject(p['args']) ? p['args'] : {};
      const cni = isJsonObject(args['cni']) ? args['cni'] : {};
      return { ...p, args: { ...args, cni: { ...cni, ...cniArgs } } };
    }),
  );
}

function selectionCapabilities(sel: NetworkSelection): JsonObject {
  const out: JsonObject = {};
  if (sel.ips !== undefined) out['ips'] = [...sel.ips];
  if (sel.mac !== undefined) out['mac'] = sel.mac;
  if (sel.portMappings !== undefined) out['portMappings'] = [...sel.portMappings];
  if (sel.bandwidth !== undefined) out['bandwidth'] = sel.bandwidth;
  if (sel.infinibandGuid !== undefined) out['infinibandGUID'] = sel.infinibandGuid;
  return out;
}

function selectionArgs(sel: NetworkSelection): CniArg[] {
  const out: CniArg[] = [];
  if (sel.mac !== undefined) out.push(['MAC', sel.mac]);
  if (sel.ips !== undefined && sel.ips.length > 0) out.push(['IP', sel.ips.join(',')]);
  return out;
}

/**
 * The plan of one CNI call (ADD, and DEL re-planning a lost cache): the runtime's ifname and
 * runtimeConfig, and CNI_ARGS from the pod's args plus the call's. One derivation, so DEL plans
 * exactly what ADD did.
 */
export function planCall(
  call: { readonly ifname: string; readonly args: readonly CniArg[] },
  pod: PodArgs,
  runtimeConfig: JsonObject,
  networks: Pick<PlanInput, 'cluster' | 'extras'>,
): AttachmentPlan[] {
  return planAttachments({
    ...networks,
    runtimeIfname: call.ifname,
    runtimeConfig,
    baseArgs: delegateArgs(pod, call.args),
  });
}

export function planAttachments(input: PlanInput): AttachmentPlan[] {
  const plans: AttachmentPlan[] = [
    {
      name: input.cluster.displayName,
      ifname: input.runtimeIfname,
      isDefault: true,
      list: input.cluster.list,
      capabilityArgs: input.runtimeConfig,
      cniArgs: input.baseArgs,
      resourceName: input.cluster.resourceName,
      selection: undefined,
    },
  ];
  input.extras.forEach(({ network, selection }, i) => {
    const ifname = selection?.interface ?? `net${i + 1}`;
    const list =
      selection?.cniArgs !== undefined ? mergeCniArgs(network.list, selection.cniArgs) : network.list;
    plans.push({
      name: network.displayName,
      ifname,
      isDefault: false,
      list,
      capabilityArgs: selection === undefined ? {} : selectionCapabilities(selection),
      cniArgs: selection === undefined ? input.baseArgs : [...input.baseArgs, ...selectionArgs(selection)],
      resourceName: network.resourceName,
      selection,
    });
  });
  const seen = new Map<string, string>();
  for (const p of plans) {
    if (p.ifname === 'lo') {
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `interface name "lo" (network "${p.name}") is the pod's loopback, which the kernel owns: request another "interface"`,
      );
    }
    const other = seen.get(p.ifname);
    if (other !== undefined) {
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `interface name "${p.ifname}" is requested by both "${other}" and "${p.name}": give each attachment a unique "interface"`,
      );
    }
    seen.set(p.ifname, p.name);
  }
  const gateways = plans.flatMap((p) => p.selection?.defaultRoute ?? []);
  for (const fam of [4, 6] as const) {
    if (gateways.filter((g) => ipFamily(g) === fam).length > 1) {
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `more than one IPv${fam} "default-route" requested across the pod's networks: ECMP default routes are not supported, keep one`,
      );
    }
  }
  return plans;
}

/** What the effects side found for one attachment's device (kubelet allocation, its netdev). */
export interface DeviceFor {
  readonly deviceId: string | undefined;
  /** The device's netdev, for macvlan/ipvlan masters. */
  readonly netdev: string | undefined;
}

/** The cache entries to run: each plan with its device injected and its device-info path. Pure. */
export function attachmentsWithDevices(
  plans: readonly AttachmentPlan[],
  devices: readonly DeviceFor[],
  opts: { readonly devinfoDir: string; readonly containerId: string },
): CachedAttachment[] {
  return plans.map((p, i) => {
    const { deviceId, netdev } = devices[i] ?? { deviceId: undefined, netdev: undefined };
    let list = p.list;
    const capabilityArgs: JsonObject = { ...p.capabilityArgs };
    let devinfoFile: string | undefined;
    if (deviceId !== undefined) {
      list = withPlugins(list, injectDevice(list.plugins, deviceId, netdev));
      capabilityArgs['deviceID'] = deviceId;
      devinfoFile = cniDeviceInfoPath(opts.devinfoDir, p.name, opts.containerId, p.ifname);
      capabilityArgs['CNIDeviceInfoFile'] = devinfoFile;
    }
    return {
      name: p.name,
      ifname: p.ifname,
      isDefault: p.isDefault,
      config: list.raw,
      capabilityArgs,
      cniArgs: p.cniArgs,
      ...(p.resourceName !== undefined && { resourceName: p.resourceName }),
      ...(deviceId !== undefined && { deviceId }),
      ...(devinfoFile !== undefined && { devinfoFile }),
    };
  });
}
