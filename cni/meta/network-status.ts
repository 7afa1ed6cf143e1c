// `k8s.v1.cni.cncf.io/network-status`: built from each attachment's result (NADC
// CreateNetworkStatuses rules) and written to pods/status with retry on conflict.
import type { Logger } from 'pino';
import type { JsonObject } from '../../lib/json.js';
import type { CniDns, CniResult } from '../result.js';
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
  ifname: string,
  result: CniResult,
  isDefault: boolean,
  deviceInfo: JsonObject | undefined,
): NetworkStatus[] {
  const gateways = result.routes
    .filter((r) => isDefaultDst(r.dst) && r.gw !== undefined)
    .map((r) => r.gw ?? '');
  const common = {
    name,
    dns: result.dns,
    ...(deviceInfo !== undefined && { 'device-info': deviceInfo }),
    ...(gateways.length > 0 && { gateway: gateways }),
  };
  const sandboxed = result.interfaces
    .map((iface, index) => ({ iface, index }))
    .filter((x) => (x.iface.sandbox ?? '') !== '');
  if (result.interfaces.length <= 1 || sandboxed.length <= 1) {
    const iface = sandboxed[0]?.iface ?? result.interfaces[0];
    return [
      {
        ...common,
        interface: iface?.name ?? ifname,
        ips: result.ips.map((i) => bare(i.address)),
        ...(iface?.mac !== undefined && { mac: iface.mac }),
        ...(iface?.mtu !== undefined && { mtu: iface.mtu }),
        ...(isDefault && { default: true }),
      },
    ];
  }
  const last = sandboxed.at(-1)?.index;
  return sandboxed.map(({ iface, index }, n) => ({
    ...common,
    interface: iface.name,
    ips: result.ips
      .filter((i) => i.interface === index || (i.interface === undefined && index === last))
      .map((i) => bare(i.address)),
    ...(iface.mac !== undefined && { mac: iface.mac }),
    ...(iface.mtu !== undefined && { mtu: iface.mtu }),
    ...(isDefault && n === 0 && { default: true }),
  }));
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
