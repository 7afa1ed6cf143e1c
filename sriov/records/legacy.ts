// Reading sriov-cni's own cache (`/var/lib/cni/sriov/<containerID>-<ifname>`), so a node switched
// from sriov-cni to netplumb releases the VFs of pods created before the switch instead of failing
// their DEL forever. The shape (Go field names, VlanProto/LinkState as numbers) is sriov-cni's.
import { z } from 'zod';
import type { Attachment } from './state.js';

const legacySchema = z.looseObject({
  deviceID: z.string(),
  Master: z.string(),
  VFID: z.number().int(),
  MAC: z.string().optional().default(''),
  OrigVfState: z.looseObject({
    HostIFName: z.string().optional().default(''),
    SpoofChk: z.boolean().optional(),
    Trust: z.boolean().optional(),
    AdminMAC: z.string().optional(),
    EffectiveMAC: z.string().optional(),
    Vlan: z.number().optional(),
    VlanQoS: z.number().optional(),
    VlanProto: z.number().optional(),
    MinTxRate: z.number().optional(),
    MaxTxRate: z.number().optional(),
    LinkState: z.number().optional(),
    MTU: z.number().optional(),
  }),
  MTU: z.number().nullable().optional(),
  vlan: z.number().nullable().optional(),
  min_tx_rate: z.number().nullable().optional(),
  max_tx_rate: z.number().nullable().optional(),
  spoofchk: z.string().optional(),
  trust: z.string().optional(),
  link_state: z.string().optional(),
});

/** True when `raw` looks like an sriov-cni cache entry rather than one of ours. */
export function isLegacyRecord(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && 'OrigVfState' in raw && !('kind' in raw);
}

const LINK_STATES = ['auto', 'enable', 'disable'] as const;

/** Converts an sriov-cni cache entry; null when it does not parse. */
export function fromLegacyRecord(
  raw: unknown,
  containerId: string,
  ifname: string,
  netns: string,
): Attachment | null {
  const parsed = legacySchema.safeParse(raw);
  if (!parsed.success) return null;
  const c = parsed.data;
  const o = c.OrigVfState;
  const mac = (m: string | undefined): string | null =>
    m === undefined || m === '' ? null : m.toLowerCase();
  const set = (v: string | undefined): boolean => v !== undefined && v !== '';
  // sriov-cni does not cache DPDK mode (PR #346); only netdev VFs get a HostIFName.
  const dpdk = o.HostIFName === '';
  return {
    kind: 'netplumb-sriov/v1',
    containerId,
    ifname,
    netns,
    deviceID: c.deviceID.toLowerCase(),
    pfNetdev: c.Master,
    vfIndex: c.VFID,
    dpdk,
    phase: 'done',
    origSettings: {
      mac: mac(o.AdminMAC),
      vlan: o.Vlan ?? 0,
      qos: o.VlanQoS ?? 0,
      vlanProto: o.VlanProto === 0x88a8 ? '802.1ad' : '802.1Q',
      spoofchk: o.SpoofChk ?? null,
      trust: o.Trust ?? null,
      linkState: LINK_STATES[o.LinkState ?? 0] ?? null,
      minTxRate: o.MinTxRate ?? 0,
      maxTxRate: o.MaxTxRate ?? 0,
    },
    configured: {
      vlan: c.vlan !== null && c.vlan !== undefined,
      mac: c.MAC !== '',
      rate: (c.min_tx_rate ?? null) !== null || (c.max_tx_rate ?? null) !== null,
      spoofchk: set(c.spoofchk),
      trust: set(c.trust),
      linkState: set(c.link_state),
    },
    origNetdev: dpdk
      ? null
      : { name: o.HostIFName, mac: mac(o.EffectiveMAC), mtu: o.MTU ?? c.MTU ?? 1500, altnames: [] },
    tempName: null,
    podMac: dpdk ? null : (mac(c.MAC) ?? mac(o.EffectiveMAC)),
    config: c,
    result: null,
  };
}

/**
 * The record as sriov-cni's DEL reads its cache (`types.NetConf`: the network config merged with
 * `Master`, `VFID`, `MAC`, `OrigVfState`), so a node rolled back to sriov-cni still releases the
 * VFs netplumb attached. Written alongside our own fields in the same file.
 */
export function toLegacyView(record: Attachment): Record<string, unknown> {
  const o = record.origSettings;
  const linkState = o.linkState === null ? 0 : LINK_STATES.indexOf(o.linkState);
  return {
    ...record.config,
    deviceID: record.deviceID,
    Master: record.pfNetdev,
    VFID: record.vfIndex,
    MAC: record.configured.mac ? (record.podMac ?? '') : '',
    OrigVfState: {
      HostIFName: record.origNetdev?.name ?? '',
      SpoofChk: o.spoofchk ?? false,
      Trust: o.trust ?? false,
      AdminMAC: o.mac ?? '',
      EffectiveMAC: record.origNetdev?.mac ?? '',
      Vlan: o.vlan ?? 0,
      VlanQoS: o.qos ?? 0,
      VlanProto: o.vlanProto?.toLowerCase() === '802.1ad' ? 0x88a8 : 0x8100,
      MinTxRate: o.minTxRate ?? 0,
      MaxTxRate: o.maxTxRate ?? 0,
      LinkState: linkState < 0 ? 0 : linkState,
      ...(record.origNetdev === null ? {} : { MTU: record.origNetdev.mtu }),
    },
  };
}
