// The PF VF-settings port: per-VF settings a PF holds for its VFs (IFLA_VF_INFO), changed with
// `ip link set dev <pf> vf N …`. Adapters: iproute2 (production, proven on netdevsim/a VM) and the
// recorder (./vf-settings-recorder.ts) for kernels without SR-IOV.
import { z } from 'zod';
import type { LinkState, VfSettings } from '../model.js';

export const VlanProto = { Q: '802.1Q', AD: '802.1ad' } as const;
export type VlanProto = (typeof VlanProto)[keyof typeof VlanProto];

/** One change to one VF's settings on its PF; the unit both adapters speak and tests assert. */
export type VfChange =
  | { readonly kind: 'vlan'; readonly vlan: number; readonly qos: number; readonly proto: VlanProto }
  | { readonly kind: 'mac'; readonly mac: string }
  | { readonly kind: 'rate'; readonly minTxRate: number; readonly maxTxRate: number }
  | { readonly kind: 'spoofchk'; readonly on: boolean }
  | { readonly kind: 'trust'; readonly on: boolean }
  | { readonly kind: 'state'; readonly state: LinkState };

export interface PfVfSettings {
  /** The PF's current settings for VF `vf`; fails with a LinkError when the PF or VF is unknown. */
  read(pf: string, vf: number): Promise<VfSettings>;
  /** Applies one change; fails with a LinkError naming the PF, VF and change. */
  set(pf: string, vf: number, change: VfChange): Promise<void>;
}

/**
 * The `ip link set dev <pf>` arguments for a change, e.g. `vf 3 vlan 100 qos 0`. The 802.1Q proto
 * is left out on purpose: it makes iproute2 send IFLA_VF_VLAN instead of IFLA_VF_VLAN_LIST, which
 * drivers without 802.1ad support reject (sriov-cni #303, SRIOV-DP #523); the kernel defaults to
 * 802.1Q.
 */
export function vfChangeArgs(vf: number, change: VfChange): string[] {
  const head = ['vf', String(vf)];
  switch (change.kind) {
    case 'vlan':
      return [
        ...head,
        'vlan',
        String(change.vlan),
        'qos',
        String(change.qos),
        ...(change.proto === VlanProto.AD ? ['proto', '802.1ad'] : []),
      ];
    case 'mac':
      return [...head, 'mac', change.mac];
    case 'rate':
      return [...head, 'min_tx_rate', String(change.minTxRate), 'max_tx_rate', String(change.maxTxRate)];
    case 'spoofchk':
      return [...head, 'spoofchk', change.on ? 'on' : 'off'];
    case 'trust':
      return [...head, 'trust', change.on ? 'on' : 'off'];
    case 'state':
      return [...head, 'state', change.state];
  }
}

/** Parses `vf 3 vlan 100 qos 0 [proto 802.1ad]` (the output of vfChangeArgs) back into a change. */
export function parseVfChangeArgs(args: readonly string[]): { vf: number; change: VfChange } {
  const bad = (): Error => new Error(`not a VF change: ${args.join(' ')}`);
  if (args[0] !== 'vf') throw bad();
  const vf = Number(args[1]);
  if (!Number.isInteger(vf)) throw bad();
  const rest = args.slice(2);
  const kv = new Map<string, string>();
  for (let i = 0; i + 1 < rest.length; i += 2) kv.set(rest[i] ?? '', rest[i + 1] ?? '');
  const num = (k: string): number => {
    const v = Number(kv.get(k));
    if (!Number.isInteger(v)) throw bad();
    return v;
  };
  const key = rest[0] ?? '';
  switch (key) {
    case 'vlan':
      return {
        vf,
        change: {
          kind: 'vlan',
          vlan: num('vlan'),
          qos: num('qos'),
          proto: kv.get('proto')?.toLowerCase() === '802.1ad' ? VlanProto.AD : VlanProto.Q,
        },
      };
    case 'mac':
      return { vf, change: { kind: 'mac', mac: kv.get('mac') ?? '' } };
    case 'min_tx_rate':
      return { vf, change: { kind: 'rate', minTxRate: num('min_tx_rate'), maxTxRate: num('max_tx_rate') } };
    case 'spoofchk':
      return { vf, change: { kind: 'spoofchk', on: kv.get('spoofchk') === 'on' } };
    case 'trust':
      return { vf, change: { kind: 'trust', on: kv.get('trust') === 'on' } };
    case 'state': {
      const state = kv.get('state');
      if (state !== 'auto' && state !== 'enable' && state !== 'disable') throw bad();
      return { vf, change: { kind: 'state', state } };
    }
    default:
      throw bad();
  }
}

/** Applies a change to a settings record (what the PF would report afterwards). */
export function applyVfChange(settings: VfSettings, change: VfChange): VfSettings {
  switch (change.kind) {
    case 'vlan':
      return { ...settings, vlan: change.vlan, qos: change.qos, vlanProto: change.proto };
    case 'mac':
      return { ...settings, mac: change.mac.toLowerCase() };
    case 'rate':
      return { ...settings, minTxRate: change.minTxRate, maxTxRate: change.maxTxRate };
    case 'spoofchk':
      return { ...settings, spoofchk: change.on };
    case 'trust':
      return { ...settings, trust: change.on };
    case 'state':
      return { ...settings, linkState: change.state };
  }
}

/** What a freshly created VF reports on most drivers. */
export const DEFAULT_VF_SETTINGS: VfSettings = {
  mac: '00:00:00:00:00:00',
  vlan: 0,
  qos: 0,
  vlanProto: VlanProto.Q,
  spoofchk: true,
  trust: false,
  linkState: 'auto',
  minTxRate: 0,
  maxTxRate: 0,
};

const vfInfoJson = z.object({
  vf: z.number(),
  address: z.string().optional(),
  mac: z.string().optional(),
  vlan: z.number().optional(),
  qos: z.number().optional(),
  vlan_list: z
    .array(
      z.object({ vlan: z.number().optional(), qos: z.number().optional(), protocol: z.string().optional() }),
    )
    .optional(),
  rate: z.object({ max_tx: z.number().optional(), min_tx: z.number().optional() }).optional(),
  tx_rate: z.number().optional(),
  spoofchk: z.boolean().optional(),
  trust: z.boolean().optional(),
  link_state: z.string().optional(),
});
export const pfLinkJson = z.array(
  z.object({ ifname: z.string(), vfinfo_list: z.array(vfInfoJson).optional() }),
);

/**
 * One VF's entry of `ip -json link show dev <pf>` `vfinfo_list` as VfSettings. iproute2 leaves out
 * a zero VLAN/QoS and an 802.1Q protocol, so absent means 0 / 802.1Q; absent booleans stay null.
 */
export function vfSettingsFromIpJson(entry: z.infer<typeof vfInfoJson>): VfSettings {
  const v = entry.vlan_list?.[0];
  const linkState = entry.link_state;
  const proto = v?.protocol;
  return {
    mac: (entry.address ?? entry.mac)?.toLowerCase() ?? null,
    vlan: v?.vlan ?? entry.vlan ?? 0,
    qos: v?.qos ?? entry.qos ?? 0,
    vlanProto:
      proto === undefined ? VlanProto.Q : proto.toLowerCase() === '802.1ad' ? VlanProto.AD : VlanProto.Q,
    spoofchk: entry.spoofchk ?? null,
    trust: entry.trust ?? null,
    linkState: linkState === 'auto' || linkState === 'enable' || linkState === 'disable' ? linkState : null,
    minTxRate: entry.rate?.min_tx ?? 0,
    maxTxRate: entry.rate?.max_tx ?? entry.tx_rate ?? 0,
  };
}

export function describeVfChange(pf: string, vf: number, change: VfChange): string {
  return `ip link set dev ${pf} ${vfChangeArgs(vf, change).join(' ')}`;
}
