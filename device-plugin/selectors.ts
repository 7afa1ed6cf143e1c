// Selector matching, as pure functions over the node model. AND across keys, OR within a key's
// list, an empty list does not filter (SRIOV-DP semantics, plus the `vlans` key).
import type { Nic, Pf, PlainPciDevice, Vf } from '../sriov/model.js';
import type { NicSelector, PciSelector } from './config.js';
import { matchesVfRef } from './vf-range.js';
import type { VfRef } from './vf-range.js';

/** A PCI device a pool may advertise: a VF, a PF without VFs, or a plain device. */
export type PciCandidate = Vf | Pf | PlainPciDevice;

const anyOf = <T>(list: readonly T[], value: T | null): boolean =>
  list.length === 0 || (value !== null && list.includes(value));

/** SRIOV-DP reads one `pfNames` entry per PF, the first: later entries naming the same PF are ignored. */
function firstPfNameEntry(refs: readonly VfRef[], pf: string): VfRef | undefined {
  return refs.find((r) => r.name.toLowerCase() === pf.toLowerCase());
}

/** `pfNames` entries ignored because an earlier entry names the same PF, as index into the list. */
export function ignoredPfNameEntries(refs: readonly VfRef[]): number[] {
  const out: number[] = [];
  refs.forEach((r, i) => {
    if (firstPfNameEntry(refs, r.name) !== r) out.push(i);
  });
  return out;
}

/** True when `d` passes every key of `s`, in SRIOV-DP's filter order. */
export function matchesPciSelector(s: PciSelector, d: PciCandidate): boolean {
  if (!anyOf(s.vendors, d.vendor)) return false;
  if (!anyOf(s.devices, d.device)) return false;
  if (!anyOf(s.drivers, d.driver)) return false;
  if (!anyOf(s.pciAddresses, d.pciAddress)) return false;
  if (!anyOf(s.acpiIndexes, d.acpiIndex)) return false;
  // pfNames/rootDevices only ever select VFs (devices with a PF).
  if (s.pfNames.length > 0) {
    if (d.kind !== 'vf' || d.pfNetdev === null) return false;
    const ref = firstPfNameEntry(s.pfNames, d.pfNetdev);
    if (ref === undefined || !matchesVfRef(ref, d.pfNetdev, d.index)) return false;
  }
  if (s.rootDevices.length > 0) {
    if (d.kind !== 'vf') return false;
    if (!s.rootDevices.some((r) => matchesVfRef(r, d.pfPciAddress, d.index))) return false;
  }
  if (!anyOf(s.linkTypes, d.linkType)) return false;
  if (s.isRdma && d.rdmaDevices.length === 0) return false;
  if (s.vlans.length > 0) {
    if (d.kind !== 'vf' || d.settings === null || d.settings.vlan === null) return false;
    if (!s.vlans.includes(d.settings.vlan)) return false;
  }
  return true;
}

export function matchesNicSelector(s: NicSelector, n: Nic): boolean {
  return anyOf(s.names, n.name) && anyOf(s.parents, n.parent) && anyOf(s.vlans, n.vlanId);
}
