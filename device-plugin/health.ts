// Device health from the node model: a device is Unhealthy when its link (or its PF's link) is down
// or when the PF has disabled it. An interface that is merely administratively down (the kernel
// reports operstate "down" and no readable carrier) is an unused VF, not a fault.
import type { Nic, Pf } from '../sriov/model.js';
import type { PciCandidate } from './selectors.js';

export const HEALTH = { healthy: 'Healthy', unhealthy: 'Unhealthy' } as const;
export type Health = (typeof HEALTH)[keyof typeof HEALTH];

interface LinkView {
  readonly operstate: string | null;
  readonly carrier: boolean | null;
}

/** Link is known to be down: no carrier, a down lower layer, or operstate down while admin-up. */
export function linkDown(l: LinkView): boolean {
  if (l.carrier === false) return true;
  if (l.operstate === 'lowerlayerdown' || l.operstate === 'notpresent') return true;
  return l.operstate === 'down' && l.carrier !== null;
}

export function pciDeviceHealth(d: PciCandidate, pf: Pf | null): Health {
  if (d.netdev !== null && linkDown(d)) return HEALTH.unhealthy;
  if (pf !== null && pf.netdev !== null && linkDown(pf)) return HEALTH.unhealthy;
  if (d.kind === 'vf' && d.settings?.linkState === 'disable') return HEALTH.unhealthy;
  return HEALTH.healthy;
}

/** A NIC-pool interface is healthy unless down (a macvlan/ipvlan master must be up). */
export function nicHealth(n: Nic): Health {
  return n.operstate === 'down' || n.operstate === 'lowerlayerdown' || n.operstate === 'notpresent'
    ? HEALTH.unhealthy
    : HEALTH.healthy;
}
