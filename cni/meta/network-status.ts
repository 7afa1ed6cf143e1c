// `k8s.v1.cni.cncf.io/network-status`: built from each attachment's result (NADC
// CreateNetworkStatuses rules) and written to pods/status with retry on conflict.
import type { Logger } from 'pino';
import type { JsonObject } from '../../lib/json.js';
import type { CniDns, CniInterface, CniResult } from '../result.js';
import { NETWORK_STATUS_ANNOTATION } from './annotations.js';
import { KubeApiError, KubeErrorCode, isKubeError, retryTransient } from './kube.js';
import type { Clock } from '../../lib/clock.js';
import type { KubeClient, PodInfo } from './kube.js';

export interface NetworkStatus {
  readonly name: string;
  readonly interface?: string;
  readonly ips?: readonly string[];
  readonly mac?: string;
  readonly mtu?: number;
  readonly default?: boolean;
  readonly dns: CniDns;
  readonly 'device-info'?: JsonObject;
  readonly gateway?: readonly string[];
}

const isDefaultDst = (dst: string) => dst === '0.0.0.0/0' || dst === '::/0';
const bare = (cidr: string) => cidr.split('/')[0] ?? cidr;

/**
 * One attachment's entries. One interface (or none) → one entry with every IP; several → one
 * entry per sandbox interface with the IPs pointing at it (unindexed IPs go to the last entry),
 * `default` on the first of them. Pure.
 */
export function networkStatuses(
  name: string,
  // The runtime's ifname is not reported when the result names no interface (as Multus).
  _ifname: string,
  result: CniResult,
  isDefault: boolean,
  deviceInfo: JsonObject | undefined,
): NetworkStatus[] {
  const gateways = result.routes
    .filter((r) => isDefaultDst(r.dst) && r.gw !== undefined)
    .map((r) => r.gw ?? '');
  const entry = (iface: CniInterface | undefined, ips: readonly string[], first: boolean) =>
    ordered({ name, iface, ips, isDefault: isDefault && first, dns: result.dns, deviceInfo, gateways });
  const sandboxed = result.interfaces
    .map((iface, index) => ({ iface, index }))
    .filter((x) => (x.iface.sandbox ?? '') !== '');
  if (result.interfaces.length <= 1 || sandboxed.length <= 1) {
    const iface = sandboxed[0]?.iface ?? result.interfaces[0];
    return [
      entry(
        iface,
        result.ips.map((i) => bare(i.address)),
        true,
      ),
    ];
  }
  const last = sandboxed.at(-1)?.index;
  return sandboxed.map(({ iface, index }, n) =>
    entry(
      iface,
      result.ips
        .filter((i) => i.interface === index || (i.interface === undefined && index === last))
        .map((i) => bare(i.address)),
      n === 0,
    ),
  );
}

/** One entry with its keys in NADC's struct order, empty optional fields left out (omitempty). */
function ordered(o: {
  name: string;
  iface: CniInterface | undefined;
  ips: readonly string[];
  isDefault: boolean;
  dns: CniDns;
  deviceInfo: JsonObject | undefined;
  gateways: readonly string[];
}): NetworkStatus {
  return {
    name: o.name,
    ...(o.iface?.name !== undefined && o.iface.name !== '' && { interface: o.iface.name }),
    ...(o.ips.length > 0 && { ips: o.ips }),
    ...(o.iface?.mac !== undefined && o.iface.mac !== '' && { mac: o.iface.mac }),
    ...(o.iface?.mtu !== undefined && o.iface.mtu !== 0 && { mtu: o.iface.mtu }),
    ...(o.isDefault && { default: true }),
    dns: o.dns,
    ...(o.deviceInfo !== undefined && { 'device-info': o.deviceInfo }),
    ...(o.gateways.length > 0 && { gateway: o.gateways }),
  };
}

/** The annotation text, formatted like NADC (each entry indented, joined by ","). */
export function formatNetworkStatus(statuses: readonly NetworkStatus[]): string {
  return `[${statuses.map((s) => JSON.stringify(s, null, 4)).join(',')}]`;
}

export const STATUS_RETRY = { attempts: 5, intervalMs: 10 } as const;

/**
 * Sets the annotation and PUTs pods/status at the resourceVersion of `pod` (as read at the start of
 * ADD); on 409 re-reads the pod live and tries again (5 attempts). A pod that is gone, or was
 * replaced by one with another UID, is not an error (logged).
 */
export async function writeNetworkStatus(
  deps: { kube: KubeClient; clock: Clock; logger: Logger },
  pod: PodInfo,
  value: string,
): Promise<void> {
  let current: PodInfo = pod;
  for (let attempt = 1; ; attempt++) {
    try {
      if (attempt > 1) {
        current = await retryTransient(deps.clock, () => deps.kube.getPod(pod.namespace, pod.name), {
          intervalMs: 250,
          budgetMs: 2_500,
          retryable: (err) => isKubeError(err, KubeErrorCode.Unavailable),
        });
        if (pod.uid !== '' && current.uid !== pod.uid) {
          deps.logger.warn(
            { expected: pod.uid, found: current.uid },
            'pod was replaced; not writing network-status',
          );
          return;
        }
      }
      await deps.kube.updatePodStatusAnnotations(current, { [NETWORK_STATUS_ANNOTATION]: value });
      return;
    } catch (err) {
      if (isKubeError(err, KubeErrorCode.NotFound)) {
        deps.logger.warn(
          { pod: `${pod.namespace}/${pod.name}` },
          'pod not found; network-status not written',
        );
        return;
      }
      const retry = isKubeError(err, KubeErrorCode.Conflict) || isKubeError(err, KubeErrorCode.Unavailable);
      if (retry && attempt < STATUS_RETRY.attempts) {
        await deps.clock.sleep(STATUS_RETRY.intervalMs);
        continue;
      }
      throw err instanceof KubeApiError
        ? err
        : new KubeApiError(KubeErrorCode.Failed, String(err), { cause: err });
    }
  }
}
