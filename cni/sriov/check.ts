// CHECK: the VF is still in the pod under the expected name and MAC, and the PF still holds the
// VLAN and MAC the config asks for (sriov-cni's CHECK is a no-op; ours looks).
import { CniError, CniErrorCode } from '../errors.js';
import type { CniResult } from '../result.js';
import type { SriovConfig } from './config.js';
import type { SriovDeps } from './deps.js';
import type { CniEnvMap } from './ipam.js';
import { Phase } from '../../sriov/records/state.js';

export interface CheckRequest {
  readonly config: SriovConfig;
  /** stdin and environment as received, for the IPAM CHECK. */
  readonly stdin: string;
  readonly env: CniEnvMap;
  readonly mac: string | null;
  readonly containerId: string;
  readonly ifname: string;
  readonly netns: string;
  readonly prevResult: CniResult | undefined;
}

function fail(msg: string): never {
  throw new CniError(CniErrorCode.Internal, `CHECK: ${msg}`);
}

export async function checkVf(deps: SriovDeps, req: CheckRequest): Promise<void> {
  const record = await deps.state.load(req.containerId, req.ifname);
  if (record?.phase !== Phase.DONE) {
    fail(`no completed attachment of ${req.config.deviceID} for container ${req.containerId} ${req.ifname}`);
  }
  if (record.deviceID !== req.config.deviceID) {
    fail(`attachment uses VF ${record.deviceID}, config names ${req.config.deviceID}`);
  }
  const settings = await deps.pf.read(record.pfNetdev, record.vfIndex);
  if (req.config.vlan !== null && settings.vlan !== req.config.vlan) {
    fail(
      `PF ${record.pfNetdev} VF ${record.vfIndex} has VLAN ${settings.vlan ?? 'unknown'}, expected ${req.config.vlan}`,
    );
  }
  if (req.mac !== null && settings.mac !== req.mac) {
    fail(
      `PF ${record.pfNetdev} VF ${record.vfIndex} has MAC ${settings.mac ?? 'unknown'}, expected ${req.mac}`,
    );
  }
  // The spec wants CHECK passed on to delegates: the IPAM plugin checks its own allocation.
  const ipamType = req.config.ipam?.type;
  if (typeof ipamType === 'string') await deps.ipam.check(ipamType, req.stdin, req.env);
  if (record.dpdk) {
    const vf = await deps.locateVf(record.deviceID);
    if (!vf.dpdk)
      fail(`VF ${record.deviceID} is no longer bound to a DPDK driver (driver: ${vf.driver ?? 'none'})`);
    return;
  }
  if (!(await deps.netnsAlive(req.netns))) fail(`netns ${req.netns} is gone`);
  const link = await deps.links.get(req.netns, req.ifname);
  if (link === null) fail(`${req.ifname} is missing from ${req.netns}`);
  if (record.podMac !== null && link.mac !== record.podMac) {
    fail(`${req.ifname} has MAC ${link.mac ?? 'none'}, expected ${record.podMac}`);
  }
  if (req.prevResult !== undefined) {
    const have = new Set((await deps.links.addresses(req.netns, req.ifname)).map((a) => a.cidr));
    for (const ip of req.prevResult.ips) {
      if (ip.interface !== undefined && req.prevResult.interfaces[ip.interface]?.name !== req.ifname)
        continue;
      if (!have.has(ip.address)) fail(`${req.ifname} lacks address ${ip.address}`);
    }
  }
}
