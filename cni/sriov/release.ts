// Undoing an attachment from its record: the one path behind DEL, the rollback of a failed ADD
// and the recovery of a VF whose pod netns died without a DEL (sriov-cni #349, #126). It is
// idempotent and looks for the netdev wherever a crash may have left it.
import type { Logger } from 'pino';
import { CniError, CniErrorCode } from '../errors.js';
import { LinkError, LinkErrorCode } from '../../sriov/link/link-ops.js';
import type { Netns } from '../../sriov/link/link-ops.js';
import { VlanProto } from '../../sriov/link/vf-settings.js';
import type { VfChange } from '../../sriov/link/vf-settings.js';
import type { SriovDeps } from './deps.js';
import type { CniEnvMap } from './ipam.js';
import { Phase } from '../../sriov/records/state.js';
import type { Attachment } from '../../sriov/records/state.js';

const ORDER: readonly string[] = [
  Phase.STARTED,
  Phase.PF_CONFIGURED,
  Phase.NETDEV_MOVING,
  Phase.IPAM,
  Phase.DONE,
];

/** True when `record` got at least as far as `phase`. */
export function reached(record: Attachment, phase: Phase): boolean {
  return ORDER.indexOf(record.phase) >= ORDER.indexOf(phase);
}

/**
 * The PF-side changes that put a VF back as it was, in reverse order of how ADD applied them.
 * Only what ADD configured is restored, except the admin MAC, which is always put back (a MAC
 * left on a VF makes the next pod inherit it: SRIOV-DP #685, sriov-cni PR #397).
 */
export function restoreChanges(record: Attachment): VfChange[] {
  const o = record.origSettings;
  const c = record.configured;
  const out: VfChange[] = [];
  if (c.linkState && o.linkState !== null) out.push({ kind: 'state', state: o.linkState });
  if (c.trust && o.trust !== null) out.push({ kind: 'trust', on: o.trust });
  if (c.spoofchk && o.spoofchk !== null) out.push({ kind: 'spoofchk', on: o.spoofchk });
  if (c.rate) out.push({ kind: 'rate', minTxRate: o.minTxRate ?? 0, maxTxRate: o.maxTxRate ?? 0 });
  if (o.mac !== null) out.push({ kind: 'mac', mac: o.mac });
  if (c.vlan) {
    out.push({
      kind: 'vlan',
      vlan: o.vlan ?? 0,
      qos: o.qos ?? 0,
      proto: o.vlanProto?.toLowerCase() === '802.1ad' ? VlanProto.AD : VlanProto.Q,
    });
  }
  return out;
}

export interface ReleaseContext {
  readonly deps: SriovDeps;
  readonly log: Logger;
  /** Environment for the IPAM DEL (CNI_CONTAINERID/IFNAME/NETNS of the record, CNI_PATH). */
  readonly ipamEnv: CniEnvMap;
  /** Skip IPAM (it was never called, or the caller handles it). */
  readonly skipIpam?: boolean;
}

/**
 * The VF is back on the host (PF side and netdev restored) but the IPAM plugin's DEL failed. The
 * caller drops the record and the allocation anyway (the VF is free) and reports this error.
 */
export class IpamReleaseError extends CniError {
  constructor(record: Attachment, ipamType: string, cause: unknown) {
    const inner = CniError.from(cause);
    super(
      inner.code,
      `VF ${record.deviceID} returned to the host, but IPAM "${ipamType}" DEL failed: ${inner.message} (its address may still be reserved: release it in the IPAM plugin)`,
      { cause, details: inner.details },
    );
  }
}

function ipamTypeOf(record: Attachment): string | undefined {
  const ipam = record.config.ipam;
  const type = typeof ipam === 'object' && ipam !== null ? (ipam as Record<string, unknown>).type : undefined;
  return typeof type === 'string' && type !== '' ? type : undefined;
}

/** IPAM DEL; returns its error instead of throwing (the VF is restored whatever IPAM says). */
async function releaseIpam(record: Attachment, ctx: ReleaseContext): Promise<IpamReleaseError | undefined> {
  const ipamType = ipamTypeOf(record);
  if (ctx.skipIpam === true || !reached(record, Phase.IPAM) || ipamType === undefined) return undefined;
  try {
    await ctx.deps.ipam.del(ipamType, JSON.stringify(record.config), ctx.ipamEnv);
    return undefined;
  } catch (error) {
    // A plugin that refuses the config's version refused the ADD too: it holds nothing.
    if (error instanceof CniError && error.code === CniErrorCode.IncompatibleVersion) {
      ctx.log.warn({ err: error, ipam: ipamType }, 'IPAM refused the config version; nothing to release');
      return undefined;
    }
    ctx.log.warn({ err: error, ipam: ipamType }, 'IPAM DEL failed; restoring the VF anyway');
    return new IpamReleaseError(record, ipamType, error);
  }
}

/**
 * Restores the VF from its record. PF-side or netdev failures throw (the caller keeps the record so
 * DEL can be retried); an IPAM failure alone throws IpamReleaseError after the VF is back.
 */
export async function releaseAttachment(record: Attachment, ctx: ReleaseContext): Promise<void> {
  const { deps, log } = ctx;

  // 1. IPAM first, as sriov-cni does; unlike sriov-cni, its failure does not stop the release.
  const ipamError = await releaseIpam(record, ctx);

  // 2. PF side before the netdev: some drivers refuse a netdev MAC change while the PF still
  //    holds an admin MAC with trust off.
  // Every change is tried even when one fails, so one refusing driver knob never leaves the
  // VLAN or MAC behind; the first failure is reported (and the record kept) afterwards.
  const failures: unknown[] = [];
  if (reached(record, Phase.PF_CONFIGURED)) {
    for (const change of restoreChanges(record)) {
      try {
        await deps.pf.set(record.pfNetdev, record.vfIndex, change);
      } catch (error) {
        if (error instanceof LinkError && error.code === LinkErrorCode.NOT_FOUND) {
          // The PF or VF is gone (VFs removed, driver unloaded): nothing left to restore.
          log.warn({ err: error, change }, 'PF-side restore skipped: PF or VF no longer exists');
          break;
        }
        failures.push(error);
      }
    }
  }

  // 3. The netdev: back to the host netns under its original name, MAC and MTU.
  if (!record.dpdk && record.origNetdev !== null && reached(record, Phase.NETDEV_MOVING)) {
    try {
      await releaseNetdev(record, ctx);
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
  if (ipamError !== undefined) throw ipamError;
}

/**
 * releaseAttachment for callers that then drop the record: an IPAM-only failure is returned (the VF
 * is back), anything else throws.
 */
export async function releaseVf(
  record: Attachment,
  ctx: ReleaseContext,
): Promise<IpamReleaseError | undefined> {
  try {
    await releaseAttachment(record, ctx);
    return undefined;
  } catch (error) {
    if (error instanceof IpamReleaseError) return error;
    throw error;
  }
}

interface Found {
  readonly ns: Netns;
  readonly name: string;
}

async function findNetdev(record: Attachment, ctx: ReleaseContext): Promise<Found | null> {
  const { deps } = ctx;
  const orig = record.origNetdev;
  if (orig === null) return null;
  const podAlive = await deps.netnsAlive(record.netns);
  if (podAlive) {
    for (const name of [record.ifname, record.tempName]) {
      if (name === null) continue;
      const link = await deps.links.get(record.netns, name);
      if (link !== null) return { ns: record.netns, name };
    }
  }
  // In the host: under the temporary name, the original one, the current sysfs name (a real VF
  // whose netns died comes back under its pod name, or `dev<N>` on a clash), or the pod name
  // when its MAC proves it is ours.
  const sysfsName = await deps
    .locateVf(record.deviceID)
    .then((vf) => vf.netdev)
    .catch(() => null);
  const candidates = [record.tempName, sysfsName, orig.name];
  for (const name of candidates) {
    if (name === null) continue;
    if ((await deps.links.get(null, name)) !== null) return { ns: null, name };
  }
  const byPodName = await deps.links.get(null, record.ifname);
  if (byPodName !== null && record.podMac !== null && byPodName.mac === record.podMac) {
    return { ns: null, name: record.ifname };
  }
  return null;
}

async function releaseNetdev(record: Attachment, ctx: ReleaseContext): Promise<void> {
  const { deps, log } = ctx;
  const orig = record.origNetdev;
  if (orig === null) return;
  const found = await findNetdev(record, ctx);
  if (found === null) {
    log.warn(
      { netdev: orig.name, netns: record.netns },
      'VF netdev not found in the pod or the host netns; nothing left to restore',
    );
    return;
  }
  const links = deps.links;
  let name = found.name;
  if (found.ns !== null) {
    // Leave the pod under the temporary name so it never clashes with a host link.
    const temp = record.tempName ?? orig.name;
    await links.apply(found.ns, [
      { op: 'up', name, up: false },
      { op: 'flushAddresses', name },
      ...(name === temp ? [] : [{ op: 'rename' as const, name, newName: temp }]),
      { op: 'move', name: temp, to: null },
    ]);
    name = temp;
  }
  await links.apply(null, [
    ...(found.ns === null ? [{ op: 'up' as const, name, up: false }] : []),
    ...(name === orig.name ? [] : [{ op: 'rename' as const, name, newName: orig.name }]),
    { op: 'mtu', name: orig.name, mtu: orig.mtu },
    ...(orig.mac === null ? [] : [{ op: 'mac' as const, name: orig.name, mac: orig.mac }]),
  ]);
  const now = await links.get(null, orig.name);
  if (now === null)
    throw new LinkError(LinkErrorCode.NOT_FOUND, `VF netdev ${orig.name} vanished during restore`);
  if (orig.mac !== null && now.mac !== orig.mac) await setMacWithRetry(deps, null, orig.name, orig.mac);
  for (const alt of orig.altnames) {
    if (now.altnames.includes(alt)) continue;
    await links.addAltname(null, orig.name, alt).catch((error: unknown) => {
      log.warn({ err: error, altname: alt }, 'could not restore altname');
    });
  }
}

/** Sets a netdev MAC and reads it back, retrying: some VF drivers apply it asynchronously. */
export async function setMacWithRetry(deps: SriovDeps, ns: Netns, name: string, mac: string): Promise<void> {
  const tries = deps.macRetries ?? 20;
  const delay = deps.macRetryDelayMs ?? 100;
  let last: unknown = null;
  for (let i = 0; i < tries; i++) {
    try {
      await deps.links.setMac(ns, name, mac);
      if ((await deps.links.get(ns, name))?.mac === mac) return;
    } catch (error) {
      last = error;
      if (error instanceof LinkError && error.code === LinkErrorCode.NOT_FOUND) throw error;
    }
    await deps.clock.sleep(delay);
  }
  throw new LinkError(LinkErrorCode.FAILED, `MAC ${mac} did not stick on ${name} after ${tries} tries`, {
    cause: last,
  });
}
