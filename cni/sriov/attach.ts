// ADD: put a VF into a pod. Every side effect is preceded by a record of it on disk, so a crash
// at any point leaves enough for DEL (or the next ADD of the VF) to put everything back.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { CniError, CniErrorCode } from '../errors.js';
import type { CniInterface, CniResult } from '../result.js';
import { ipFamily } from '../result.js';
import { LinkError, LinkErrorCode } from '../../sriov/link/link-ops.js';
import type { LinkStep } from '../../sriov/link/link-ops.js';
import type { VfChange } from '../../sriov/link/vf-settings.js';
import type { VfSettings } from '../../sriov/model.js';
import type { SriovConfig } from './config.js';
import type { SriovDeps, VfLocation } from './deps.js';
import { NotAVfError } from './deps.js';
import type { CniEnvMap } from './ipam.js';
import { acquireLock } from '../../sriov/link/lock.js';
import { releaseVf, setMacWithRetry } from './release.js';
import { Phase } from '../../sriov/records/state.js';
import type { Attachment } from '../../sriov/records/state.js';

export interface AddRequest {
  readonly config: SriovConfig;
  /** The MAC after precedence (config < CNI_ARGS < runtimeConfig). */
  readonly mac: string | null;
  readonly containerId: string;
  readonly ifname: string;
  readonly netns: string;
  readonly cniVersion: string;
  readonly stdin: string;
  readonly env: CniEnvMap;
}

/** A name unique to the VF, used while the netdev crosses netns (max 15 chars). */
export function tempNameFor(pci: string): string {
  return `npv${createHash('sha256').update(pci).digest('hex').slice(0, 10)}`;
}

/** The PF-side changes for a config, in sriov-cni's order: vlan/qos/proto → MAC → rates → spoofchk → trust → link_state. */
export function pfChanges(config: SriovConfig, mac: string | null, orig: VfSettings): VfChange[] {
  const out: VfChange[] = [];
  if (config.vlan !== null) {
    out.push({
      kind: 'vlan',
      vlan: config.vlan,
      qos: config.vlanQoS ?? 0,
      proto: config.vlanProto ?? '802.1Q',
    });
  }
  if (mac !== null) out.push({ kind: 'mac', mac });
  if (config.minTxRate !== null || config.maxTxRate !== null) {
    out.push({
      kind: 'rate',
      minTxRate: config.minTxRate ?? orig.minTxRate ?? 0,
      maxTxRate: config.maxTxRate ?? orig.maxTxRate ?? 0,
    });
  }
  if (config.spoofchk !== null) out.push({ kind: 'spoofchk', on: config.spoofchk });
  if (config.trust !== null) out.push({ kind: 'trust', on: config.trust });
  if (config.linkState !== null) out.push({ kind: 'state', state: config.linkState });
  return out;
}

export async function locate(
  deps: SriovDeps,
  config: SriovConfig,
): Promise<VfLocation & { pfNetdev: string }> {
  let vf: VfLocation;
  try {
    vf = await deps.locateVf(config.deviceID);
  } catch (error) {
    if (error instanceof NotAVfError) {
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `deviceID: ${config.deviceID} is not an SR-IOV VF on this node (${error.message}); use the PCI address of a VF`,
        { cause: error },
      );
    }
    throw error;
  }
  if (vf.pfNetdev === null) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `deviceID: the PF ${vf.pfPciAddress} of VF ${config.deviceID} has no netdev, so its VF settings cannot be changed`,
    );
  }
  if (!vf.dpdk && vf.netdev === null) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `deviceID: VF ${config.deviceID} has neither a netdev in the host netns nor a DPDK driver (driver: ${vf.driver ?? 'none'}); bind it to its kernel driver or to vfio-pci`,
    );
  }
  return { ...vf, pfNetdev: vf.pfNetdev };
}

export function ipamEnvFor(
  record: Pick<Attachment, 'containerId' | 'ifname' | 'netns'>,
  env: CniEnvMap,
): CniEnvMap {
  return { ...env, CNI_CONTAINERID: record.containerId, CNI_IFNAME: record.ifname, CNI_NETNS: record.netns };
}

/**
 * Releases every record of `pci` whose pod netns is gone (#349: a VF orphaned when DEL never ran),
 * then clears the allocation. Called under the VF lock.
 */
export async function recoverVf(deps: SriovDeps, log: Logger, pci: string, env: CniEnvMap): Promise<void> {
  for (const rec of await deps.state.all()) {
    if (rec.deviceID !== pci || (await deps.netnsAlive(rec.netns))) continue;
    log.warn(
      { containerId: rec.containerId, ifname: rec.ifname, netns: rec.netns },
      'recovering VF left by a dead netns',
    );
    const ipamError = await releaseVf(rec, { deps, log, ipamEnv: ipamEnvFor(rec, env) });
    if (ipamError !== undefined) log.warn({ err: ipamError }, 'recovered VF: IPAM release failed');
    await deps.state.remove(rec.containerId, rec.ifname);
  }
  await deps.state.clearOwner(pci);
}

function configuredFlags(config: SriovConfig, mac: string | null): Attachment['configured'] {
  return {
    vlan: config.vlan !== null,
    mac: mac !== null,
    rate: config.minTxRate !== null || config.maxTxRate !== null,
    spoofchk: config.spoofchk !== null,
    trust: config.trust !== null,
    linkState: config.linkState !== null,
  };
}

async function verifyAdminMac(deps: SriovDeps, pf: string, vf: number, mac: string): Promise<void> {
  const tries = deps.macRetries ?? 20;
  for (let i = 0; i < tries; i++) {
    if ((await deps.pf.read(pf, vf)).mac === mac) return;
    await deps.clock.sleep(deps.macRetryDelayMs ?? 100);
  }
  throw new LinkError(
    LinkErrorCode.FAILED,
    `PF ${pf} does not report MAC ${mac} on VF ${vf} after ${tries} checks`,
  );
}

export async function addVf(deps: SriovDeps, log: Logger, req: AddRequest): Promise<CniResult> {
  const { config } = req;
  if (!(await deps.netnsAlive(req.netns))) {
    throw new CniError(
      CniErrorCode.InvalidNetNs,
      `CNI_NETNS ${req.netns} does not exist or cannot be opened`,
    );
  }
  const vf = await locate(deps, config);
  const lock = await acquireLock(deps.state.lockDir, config.deviceID, {
    clock: deps.clock,
    ...(deps.lockTimeoutMs === undefined ? {} : { timeoutMs: deps.lockTimeoutMs }),
  }).catch((error: unknown) => {
    throw new CniError(
      CniErrorCode.TryAgainLater,
      `deviceID: VF ${config.deviceID} is busy: ${String(error)}`,
      {
        cause: error,
      },
    );
  });
  try {
    const stale = await deps.state.load(req.containerId, req.ifname);
    if (stale !== null) {
      // A previous ADD of this attachment failed without DEL: undo it before starting over (its
      // allocation names this pod's netns, which would otherwise read as "in use").
      const ipamError = await releaseVf(stale, { deps, log, ipamEnv: ipamEnvFor(stale, req.env) });
      if (ipamError !== undefined) log.warn({ err: ipamError }, 'earlier ADD undone: IPAM release failed');
      await deps.state.remove(stale.containerId, stale.ifname);
      if ((await deps.state.owner(stale.deviceID)) === stale.netns)
        await deps.state.clearOwner(stale.deviceID);
    }
    const owner = await deps.state.owner(config.deviceID);
    if (owner !== null) {
      if (await deps.netnsAlive(owner)) {
        throw new CniError(
          CniErrorCode.TryAgainLater,
          `deviceID: VF ${config.deviceID} is already allocated to netns ${owner}; it becomes free when that pod's DEL runs`,
        );
      }
      await recoverVf(deps, log, config.deviceID, req.env);
    }

    // Re-read after recovery: a recovered netdev is back under its host name.
    const current = vf.dpdk ? vf : await locate(deps, config);
    if (!current.dpdk) {
      if ((await deps.links.get(req.netns, req.ifname)) !== null) {
        throw new CniError(
          CniErrorCode.InvalidNetworkConfig,
          `CNI_IFNAME ${req.ifname} already exists in ${req.netns}; pick another interface name`,
        );
      }
    }
    const origSettings = await deps.pf.read(vf.pfNetdev, vf.index);
    let origNetdev: Attachment['origNetdev'] = null;
    if (!current.dpdk && current.netdev !== null) {
      const link = await deps.links.get(null, current.netdev);
      if (link === null) {
        throw new CniError(
          CniErrorCode.Internal,
          `deviceID: VF ${config.deviceID} netdev ${current.netdev} is not in the host netns; is it used outside Kubernetes?`,
        );
      }
      origNetdev = { name: link.name, mac: link.mac, mtu: link.mtu, altnames: [...link.altnames] };
    }
    const record: Attachment = {
      kind: 'netplumb-sriov/v1',
      containerId: req.containerId,
      ifname: req.ifname,
      netns: req.netns,
      deviceID: config.deviceID,
      pfNetdev: vf.pfNetdev,
      vfIndex: vf.index,
      dpdk: current.dpdk,
      phase: Phase.STARTED,
      origSettings,
      configured: configuredFlags(config, req.mac),
      origNetdev,
      tempName: current.dpdk ? null : tempNameFor(config.deviceID),
      podMac: current.dpdk ? null : (req.mac ?? origNetdev?.mac ?? null),
      config: config.raw,
      result: null,
    };
    await deps.state.save(record);
    await deps.state.setOwner(config.deviceID, req.netns);
    const progress = async (phase: Phase): Promise<void> => {
      Object.assign(record, { phase });
      await deps.state.save(record);
    };

    try {
      return await plumb(deps, log, req, record, origSettings, progress);
    } catch (error) {
      throw await rollback(deps, log, req, record, error);
    }
  } finally {
    await lock.release();
  }
}

/** Undoes a failed ADD; returns the error to report (the ADD's, with what the rollback could not do). */
async function rollback(
  deps: SriovDeps,
  log: Logger,
  req: AddRequest,
  record: Attachment,
  error: unknown,
): Promise<unknown> {
  let ipamError;
  try {
    ipamError = await releaseVf(record, { deps, log, ipamEnv: ipamEnvFor(record, req.env) });
    await deps.state.remove(record.containerId, record.ifname);
    await deps.state.clearOwner(record.deviceID);
  } catch (rollbackError) {
    log.error({ err: rollbackError }, 'rollback of failed ADD incomplete; DEL will finish it');
    return CniError.from(error, `ADD failed and rollback is incomplete (${String(rollbackError)})`);
  }
  if (ipamError === undefined) return error;
  const original = CniError.from(error);
  return new CniError(original.code, `${original.message}; rollback: ${ipamError.message}`, {
    cause: error,
    details: original.details,
  });
}

async function plumb(
  deps: SriovDeps,
  log: Logger,
  req: AddRequest,
  record: Attachment,
  orig: VfSettings,
  progress: (phase: Phase) => Promise<void>,
): Promise<CniResult> {
  const { config } = req;
  const links = deps.links;
  await progress(Phase.PF_CONFIGURED);
  for (const change of pfChanges(config, req.mac, orig)) {
    await deps.pf.set(record.pfNetdev, record.vfIndex, change);
    if (change.kind === 'mac') await verifyAdminMac(deps, record.pfNetdev, record.vfIndex, change.mac);
  }

  let iface: CniInterface;
  if (!record.dpdk && record.origNetdev !== null && record.tempName !== null) {
    const host = record.origNetdev.name;
    const temp = record.tempName;
    await progress(Phase.NETDEV_MOVING);
    // Host side in one round trip. Altnames travel with the link and can clash in the pod or on
    // the way back (sriov-cni #250), so they go first.
    await links.apply(null, [
      { op: 'up', name: host, up: false },
      ...record.origNetdev.altnames.map((altname) => ({ op: 'deleteAltname' as const, name: host, altname })),
      { op: 'rename', name: host, newName: temp },
      { op: 'move', name: temp, to: req.netns },
    ]);
    // Before the link comes up: announce it (gratuitous ARP / unsolicited NA) when it does.
    await links
      .setSysctls(req.netns, {
        [`net.ipv4.conf.${temp}.arp_notify`]: '1',
        [`net.ipv6.conf.${temp}.ndisc_notify`]: '1',
      })
      .catch((error: unknown) => {
        log.debug({ err: error }, 'arp_notify/ndisc_notify not applied');
      });
    await links.apply(req.netns, [
      { op: 'rename', name: temp, newName: req.ifname },
      ...(req.mac === null ? [] : [{ op: 'mac' as const, name: req.ifname, mac: req.mac }]),
      { op: 'up', name: req.ifname, up: true },
    ]);
    let link = await links.get(req.netns, req.ifname);
    if (req.mac !== null && link?.mac !== req.mac) {
      // Some VF drivers apply the MAC asynchronously (i40e/iavf, mlx5): retry until it sticks.
      await setMacWithRetry(deps, req.netns, req.ifname, req.mac);
      link = await links.get(req.netns, req.ifname);
    }
    iface = {
      name: req.ifname,
      ...(link?.mac == null ? {} : { mac: link.mac }),
      ...(link === null ? {} : { mtu: link.mtu }),
      sandbox: req.netns,
      pciID: config.deviceID,
    };
  } else {
    // DPDK: the VF stays with its userspace driver; report the MAC it will use and the PF MTU.
    const pfLink = await links.get(null, record.pfNetdev).catch(() => null);
    const adminMac = orig.mac !== null && orig.mac !== '00:00:00:00:00:00' ? orig.mac : null;
    const mac = req.mac ?? adminMac;
    iface = {
      name: req.ifname,
      ...(mac === null ? {} : { mac }),
      ...(pfLink === null ? {} : { mtu: pfLink.mtu }),
      sandbox: req.netns,
      pciID: config.deviceID,
    };
  }

  let result: CniResult = { interfaces: [iface], ips: [], routes: [], dns: {} };
  const ipamType = config.ipam?.type;
  if (typeof ipamType === 'string') {
    await progress(Phase.IPAM);
    const ipam = await deps.ipam.add(ipamType, req.stdin, req.env, req.cniVersion);
    const ips = ipam.ips.map((ip) => ({ ...ip, interface: 0 }));
    const configDns = config.raw.dns;
    result = {
      interfaces: [iface],
      ips,
      routes: ipam.routes,
      dns:
        Object.keys(ipam.dns).length > 0 || typeof configDns !== 'object' || configDns === null
          ? ipam.dns
          : configDns,
    };
    if (!record.dpdk) {
      const steps: LinkStep[] = ips.map((ip) => ({ op: 'addAddress', name: req.ifname, cidr: ip.address }));
      for (const route of ipam.routes) {
        const family = ipFamily(route.dst);
        const gw =
          route.gw ?? ips.find((ip) => ip.gateway !== undefined && ipFamily(ip.address) === family)?.gateway;
        steps.push({ op: 'addRoute', route: { dst: route.dst, gw, dev: req.ifname } });
      }
      await links.apply(req.netns, steps);
    }
  }
  Object.assign(record, { result });
  await progress(Phase.DONE);
  log.info(
    { deviceID: config.deviceID, pf: record.pfNetdev, vf: record.vfIndex, dpdk: record.dpdk },
    'VF attached',
  );
  return result;
}
