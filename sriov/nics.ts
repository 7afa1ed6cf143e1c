// Netdevs as sysfs lists them under class/net (each a symlink into the device tree, or into
// devices/virtual/net for software links), and the host NICs built from them.
import path from 'node:path';
import type { Nic } from './model.js';
import { BDF_PATTERN } from './pci.js';
import { parseIntStrict } from './sysfs.js';
import type { SysfsReader } from './sysfs.js';
import type { IpLink } from './vf-state.js';

export interface NetdevEntry {
  readonly name: string;
  /** The netdev's folder: where `<root>/class/net/<name>` points. */
  readonly dir: string;
  /** Nearest PCI device above the netdev (`…/0000:00:03.0/virtio2/net/eth0` → 0000:00:03.0). */
  readonly pciAddress: string | null;
  readonly virtual: boolean;
}

/** One readlink per netdev: name → where it hangs in the device tree. */
export function scanClassNet(fs: SysfsReader): Map<string, NetdevEntry> {
  const classNet = fs.path('class', 'net');
  const out = new Map<string, NetdevEntry>();
  const names = fs.expectDir(classNet, 'netdev list');
  if (names === null) return out;
  for (const name of names) {
    const file = path.join(classNet, name);
    const target = fs.link(file);
    // Old kernels had real directories here; treat them as virtual, unowned netdevs.
    const segments = target === null ? [] : target.split('/');
    const netAt = segments.lastIndexOf('net');
    const above = netAt > 0 ? segments.slice(0, netAt) : segments;
    const pciAddress = [...above].reverse().find((s) => BDF_PATTERN.test(s)) ?? null;
    // Reads go to the link's target directly (one symlink resolution per netdev, not per file).
    const dir = target === null ? file : path.resolve(classNet, target);
    out.set(name, {
      name,
      dir,
      pciAddress,
      virtual: segments.includes('virtual') || pciAddress === null,
    });
  }
  return out;
}

/** Kernel operstate string, null if unreadable. */
export function readOperstate(fs: SysfsReader, entry: Pick<NetdevEntry, 'dir'>): string | null {
  return fs.text(`${entry.dir}/operstate`);
}

/** Link state as the model carries it; operstate "up" implies carrier, so that read is skipped. */
export function readLinkState(
  fs: SysfsReader,
  entry: Pick<NetdevEntry, 'dir'>,
): { operstate: string | null; carrier: boolean | null } {
  const operstate = readOperstate(fs, entry);
  return { operstate, carrier: operstate === 'up' ? true : readCarrier(fs, entry) };
}

/** `carrier`; the kernel refuses to read it (EINVAL) on an admin-down link, which is "unknown". */
export function readCarrier(fs: SysfsReader, entry: Pick<NetdevEntry, 'dir'>): boolean | null {
  const raw = fs.text(`${entry.dir}/carrier`);
  if (raw === '1') return true;
  if (raw === '0') return false;
  if (raw !== null)
    fs.warn(`${path.join(entry.dir, 'carrier')}: expected 0 or 1, found "${raw.slice(0, 20)}"`);
  return null;
}

// ARPHRD_* numbers in `type` → the names iproute2 prints as link_type.
const ARPHRD_NAMES: Readonly<Record<number, string>> = {
  1: 'ether',
  24: 'ieee1394',
  32: 'infiniband',
  512: 'ppp',
  768: 'ipip',
  769: 'tunnel6',
  772: 'loopback',
  776: 'sit',
  778: 'gre',
  823: 'ip6gre',
  65534: 'none',
};

export function readLinkType(fs: SysfsReader, entry: Pick<NetdevEntry, 'dir'>): string | null {
  const file = path.join(entry.dir, 'type');
  const raw = fs.text(file);
  if (raw === null) return null;
  const n = parseIntStrict(raw);
  if (n === null) {
    fs.warn(`${file}: expected an ARPHRD number, found "${raw.slice(0, 20)}"`);
    return null;
  }
  return ARPHRD_NAMES[n] ?? `arphrd-${n}`;
}

/** A host NIC (plain, PF or software link) from sysfs, refined by iproute2 when available. */
export function readNic(fs: SysfsReader, entry: NetdevEntry, ip: IpLink | undefined): Nic {
  const at = (name: string) => path.join(entry.dir, name);
  const mtuRaw = fs.text(at('mtu'));
  const speedRaw = fs.text(at('speed'));
  const speed = speedRaw === null ? null : parseIntStrict(speedRaw);
  let parent = ip?.parent ?? null;
  let kind = ip?.kind ?? null;
  let vlanId = ip?.vlanId ?? null;
  if (entry.virtual && ip === undefined) {
    // Without iproute2, a VLAN shows as one lower_<parent> link and the `<parent>.<id>` name.
    const lower = fs.dir(entry.dir)?.find((e) => e.startsWith('lower_'));
    if (lower !== undefined) {
      parent = lower.slice('lower_'.length);
      const suffix = entry.name.startsWith(`${parent}.`)
        ? parseIntStrict(entry.name.slice(parent.length + 1))
        : null;
      if (suffix !== null) {
        kind = 'vlan';
        vlanId = suffix;
      }
    }
  }
  return {
    name: entry.name,
    parent,
    vlanId,
    mac: fs.text(at('address')) ?? ip?.mac ?? null,
    mtu: (mtuRaw === null ? null : parseIntStrict(mtuRaw)) ?? ip?.mtu ?? null,
    operstate: readOperstate(fs, entry) ?? ip?.operstate ?? null,
    speed: speed !== null && speed > 0 ? speed : null,
    virtual: entry.virtual,
    kind,
    pciAddress: entry.pciAddress,
  };
}
