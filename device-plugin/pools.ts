// Pools built from the config and the node model. First match wins: a device taken by an earlier
// resource (config order) or an earlier selector is not offered again. Pure.
import type { Nic, NodeModel, Pf } from '../sriov/model.js';
import type { NicPoolConfig, PciPoolConfig, PciSelector, PoolConfig } from './config.js';
import { nicHealth, pciDeviceHealth } from './health.js';
import type { Health } from './health.js';
import { matchesNicSelector, matchesPciSelector } from './selectors.js';
import type { PciCandidate } from './selectors.js';

interface PoolDeviceBase {
  /** Device ID as the kubelet sees it. */
  readonly id: string;
  /** NUMA node, or -1 when unknown. */
  readonly numaNode: number;
  /** Devices sharing a physical port (VFs of one PF; slots of one NIC) for pack/spread. */
  readonly group: string;
  readonly health: Health;
}

export interface PciPoolDevice extends PoolDeviceBase {
  readonly kind: 'pci';
  readonly device: PciCandidate;
  /** The selector that matched it (carries needVhostNet / isRdma). */
  readonly selector: PciSelector;
}

export interface NicPoolDevice extends PoolDeviceBase {
  readonly kind: 'nic';
  readonly nic: Nic;
  readonly slot: number;
}

export type PoolDevice = PciPoolDevice | NicPoolDevice;

export interface Pool {
  readonly config: PoolConfig;
  /** In discovery order (PCI address, VF index; NIC name, slot). */
  readonly devices: readonly PoolDevice[];
}

/**
 * SRIOV-DP's candidates: bound devices of the pool's PCI class; PFs with VFs are never offered, nor
 * a device whose netdev carries a default route (the node's own uplink).
 */
function isCandidate(
  type: PciPoolConfig['deviceType'],
  d: PciCandidate,
  uplinks: ReadonlySet<string>,
): boolean {
  const cls = type === 'netDevice' ? '02' : '12';
  if (d.classCode?.startsWith(cls) !== true || d.driver === null) return false;
  if (d.netdevs.some((n) => uplinks.has(n))) return false;
  return !(d.kind === 'pf' && d.numVfs > 0);
}

/** Devices and interfaces no pool may offer because they carry a default route. */
export function uplinkExclusions(
  model: NodeModel,
  uplinks: ReadonlySet<string>,
): { readonly netdev: string; readonly pciAddress: string | null }[] {
  const out: { netdev: string; pciAddress: string | null }[] = [];
  for (const d of model.devices)
    for (const n of d.netdevs) if (uplinks.has(n)) out.push({ netdev: n, pciAddress: d.pciAddress });
  for (const nic of model.nics)
    if (uplinks.has(nic.name) && !out.some((o) => o.netdev === nic.name))
      out.push({ netdev: nic.name, pciAddress: nic.pciAddress });
  return out;
}

function nicNuma(model: NodeModel, nic: Nic, byPci: ReadonlyMap<string, PciCandidate>): number {
  const seen = new Set<string>();
  let cur: Nic | undefined = nic;
  while (cur !== undefined && !seen.has(cur.name)) {
    seen.add(cur.name);
    if (cur.pciAddress !== null) return byPci.get(cur.pciAddress)?.numaNode ?? -1;
    const parent: string | null = cur.parent;
    cur = parent === null ? undefined : model.nics.find((n) => n.name === parent);
  }
  return -1;
}

/**
 * Builds every pool of `pools` from `model`; pools keep config order. `uplinks`: netdevs carrying a
 * default route, never offered.
 */
export function buildPools(
  pools: readonly PoolConfig[],
  model: NodeModel,
  uplinks: ReadonlySet<string> = new Set(),
): Pool[] {
  const taken = new Set<string>();
  const pfByAddr = new Map<string, Pf>(model.pfs.map((p) => [p.pciAddress, p]));
  const byPci = new Map<string, PciCandidate>();
  for (const d of model.devices) byPci.set(d.pciAddress, d);
  const takenNics = new Set<string>();
  return pools.map((config) =>
    config.deviceType === 'nic'
      ? buildNicPool(config, model, takenNics, byPci, uplinks)
      : buildPciPool(config, model, taken, pfByAddr, uplinks),
  );
}

function buildPciPool(
  config: PciPoolConfig,
  model: NodeModel,
  taken: Set<string>,
  pfByAddr: ReadonlyMap<string, Pf>,
  uplinks: ReadonlySet<string>,
): Pool {
  const devices: PciPoolDevice[] = [];
  for (const selector of config.selectors) {
    for (const d of model.devices) {
      if (taken.has(d.pciAddress) || !isCandidate(config.deviceType, d, uplinks)) continue;
      if (!matchesPciSelector(selector, d)) continue;
      taken.add(d.pciAddress);
      const pf = d.kind === 'vf' ? (pfByAddr.get(d.pfPciAddress) ?? null) : null;
      devices.push({
        kind: 'pci',
        id: d.pciAddress,
        numaNode: d.numaNode,
        group: d.kind === 'vf' ? d.pfPciAddress : d.pciAddress,
        health: pciDeviceHealth(d, pf),
        device: d,
        selector,
      });
    }
  }
  return { config, devices };
}

function buildNicPool(
  config: NicPoolConfig,
  model: NodeModel,
  taken: Set<string>,
  byPci: ReadonlyMap<string, PciCandidate>,
  uplinks: ReadonlySet<string>,
): Pool {
  const devices: NicPoolDevice[] = [];
  for (const selector of config.selectors) {
    for (const nic of model.nics) {
      if (taken.has(nic.name) || uplinks.has(nic.name) || !matchesNicSelector(selector, nic)) continue;
      taken.add(nic.name);
      const numaNode = nicNuma(model, nic, byPci);
      const health = nicHealth(nic);
      for (let slot = 0; slot < config.slots; slot++) {
        devices.push({
          kind: 'nic',
          id: `${nic.name}#${slot}`,
          numaNode,
          group: nic.name,
          health,
          nic,
          slot,
        });
      }
    }
  }
  return { config, devices };
}
