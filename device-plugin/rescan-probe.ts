// The rescan timer's cheap first look: a fingerprint of everything a rebuild reads that can change
// at run time without the PCI device itself being replaced. When it equals the fingerprint taken
// before the last rebuild, the tick skips rediscovery (discoverNode reads ~15 attributes per
// device, validates the iproute2 table and rebuilds every pool). Covered, so health and pool
// membership change within one interval as before: the PCI device list (VFs created, removed) and
// which devices each driver holds (bind/unbind), the netdev list with each netdev's operstate and
// carrier (read as discovery reads them), RDMA devices, the PF-held VF settings (link_state, VLAN, MAC: the whole
// iproute2 table) and the default routes (uplink exclusion). Anything else a rebuild reads is
// refreshed by the full rescan every FULL_RESCAN_EVERY ticks.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readDefaultRouteDevices } from '../sriov/link/default-route.js';
import type { DefaultRouteSource } from '../sriov/link/default-route.js';
import { readLinkState } from '../sriov/nics.js';
import { SysfsReader, yieldEvery } from '../sriov/sysfs.js';
import type { VfStateSource } from '../sriov/vf-state.js';

/** Every Nth rescan tick rebuilds even when the fingerprint is unchanged. */
export const FULL_RESCAN_EVERY = 6;

/** Returns the fingerprint; equal values mean "nothing the probe covers has changed". */
export type RescanProbe = () => Promise<string>;

/**
 * The sysfs part: the PCI device list, each driver's bound devices (bus/pci/drivers/<driver>/ lists
 * them: one readdir per driver, not one readlink per device), every netdev's operstate (and
 * carrier when not "up", as discovery reads it) and the RDMA devices. Yields every 128 netdevs, as
 * discovery does, so an Allocate is not held behind the whole scan.
 */
export async function sysfsFingerprint(sysfsRoot: string): Promise<string> {
  const fs = new SysfsReader(sysfsRoot);
  const pause = yieldEvery(128);
  const parts: string[] = [(fs.dir(fs.path('bus', 'pci', 'devices')) ?? []).join(' ')];
  const drivers = fs.path('bus', 'pci', 'drivers');
  for (const driver of fs.dir(drivers) ?? []) {
    parts.push(`${driver}: ${(fs.dir(path.join(drivers, driver)) ?? []).join(' ')}`);
  }
  const classNet = fs.path('class', 'net');
  for (const name of fs.dir(classNet) ?? []) {
    await pause();
    const s = readLinkState(fs, { dir: path.join(classNet, name) });
    parts.push(`${name} ${s.operstate ?? '-'} ${String(s.carrier)}`);
  }
  const ib = fs.path('class', 'infiniband');
  for (const name of fs.dir(ib) ?? []) parts.push(`${name} ${fs.link(path.join(ib, name)) ?? '-'}`);
  return parts.join('\n');
}

export interface ProbeSources {
  readonly sysfsRoot: string;
  readonly vfState: VfStateSource;
  readonly defaultRoutes?: DefaultRouteSource;
}

/** sysfs + the iproute2 table + the default routes, as one digest. */
export function nodeRescanProbe(o: ProbeSources): RescanProbe {
  return async () => {
    // Every read here precedes the rebuild's (which starts after the probe): a change the probe
    // missed is seen by the next tick's probe.
    const sysfs = await sysfsFingerprint(o.sysfsRoot);
    const [links, routes] = await Promise.all([
      // A failing source is part of the fingerprint too (its recovery must trigger a rebuild).
      o.vfState.readLinks().then(
        (v) => JSON.stringify(v),
        (err: unknown) => `links: ${err instanceof Error ? err.message : String(err)}`,
      ),
      o.defaultRoutes === undefined
        ? null
        : readDefaultRouteDevices(o.defaultRoutes).then(
            (r) => `${[...r.devices].sort().join(' ')} ${r.warning ?? ''}`,
          ),
    ]);
    // A digest: the plugin keeps the last one, and the text is 0.5 MiB for 1,024 VFs.
    return createHash('sha256')
      .update(sysfs)
      .update('\n--\n')
      .update(links)
      .update('\n--\n')
      .update(routes ?? '')
      .digest('base64');
  };
}
