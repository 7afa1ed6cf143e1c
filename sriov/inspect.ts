// What `netplumb inspect` shows: the `--json` document (the issue's schema, absent values null)
// and the human table (PFs with their VFs nested, DPDK-bound VFs marked, then the NICs).
import { NetplumbError } from '../lib/errors.js';
import type { NetplumbErrorOptions } from '../lib/errors.js';
import type { Nic, NodeModel, Pf, Vf } from './model.js';

export interface InspectVf {
  readonly index: number;
  readonly pciAddress: string;
  readonly vendor: string | null;
  readonly device: string | null;
  readonly driver: string | null;
  readonly netdev: string | null;
  readonly iommuGroup: number | null;
  readonly numaNode: number;
  readonly mac: string | null;
  readonly vlan: number | null;
  readonly qos: number | null;
  readonly spoofchk: boolean | null;
  readonly trust: boolean | null;
  readonly linkState: string | null;
  readonly minTxRate: number | null;
  readonly maxTxRate: number | null;
}

export interface InspectPf {
  readonly pciAddress: string;
  readonly netdev: string | null;
  readonly vendor: string | null;
  readonly device: string | null;
  readonly driver: string | null;
  readonly numaNode: number;
  readonly linkType: string | null;
  readonly totalVfs: number;
  readonly numVfs: number;
  readonly vfs: readonly InspectVf[];
}

export interface InspectDocument {
  readonly pfs: readonly InspectPf[];
  readonly nics: readonly Nic[];
}

export const INSPECT_ERROR = 'ERR_INSPECT_PF_NOT_FOUND' as const;

export class InspectError extends NetplumbError {
  constructor(message: string, options?: NetplumbErrorOptions) {
    super(INSPECT_ERROR, message, options);
  }
}

/**
 * Narrows the model to one PF, by netdev name or PCI address; the NICs kept are that PF's netdev
 * and links on top of it (its VLANs). Throws an InspectError listing the PFs when none matches.
 */
export function selectPf(model: NodeModel, selector: string): NodeModel {
  const s = selector.toLowerCase();
  const pf = model.pfs.find((p) => p.pciAddress === s || p.netdevs.includes(selector));
  if (!pf) {
    const known = model.pfs.map((p) => (p.netdev === null ? p.pciAddress : `${p.netdev} (${p.pciAddress})`));
    throw new InspectError(
      `--pf ${selector}: no SR-IOV PF with that netdev name or PCI address; PFs on this node: ${known.length > 0 ? known.join(', ') : 'none'}`,
    );
  }
  const names = new Set(pf.netdevs);
  return {
    ...model,
    pfs: [pf],
    devices: model.devices.filter((d) => d === pf || (d.kind === 'vf' && d.pfPciAddress === pf.pciAddress)),
    nics: model.nics.filter((n) => names.has(n.name) || (n.parent !== null && names.has(n.parent))),
  };
}

function vfJson(vf: Vf): InspectVf {
  const s = vf.settings;
  return {
    index: vf.index,
    pciAddress: vf.pciAddress,
    vendor: vf.vendor,
    device: vf.device,
    driver: vf.driver,
    netdev: vf.netdev,
    iommuGroup: vf.iommuGroup,
    numaNode: vf.numaNode,
    mac: s?.mac ?? null,
    vlan: s?.vlan ?? null,
    qos: s?.qos ?? null,
    spoofchk: s?.spoofchk ?? null,
    trust: s?.trust ?? null,
    linkState: s?.linkState ?? null,
    minTxRate: s?.minTxRate ?? null,
    maxTxRate: s?.maxTxRate ?? null,
  };
}

function pfJson(pf: Pf): InspectPf {
  return {
    pciAddress: pf.pciAddress,
    netdev: pf.netdev,
    vendor: pf.vendor,
    device: pf.device,
    driver: pf.driver,
    numaNode: pf.numaNode,
    linkType: pf.linkType,
    totalVfs: pf.totalVfs,
    numVfs: pf.numVfs,
    vfs: pf.vfs.map(vfJson),
  };
}

export function inspectDocument(model: NodeModel): InspectDocument {
  return {
    pfs: model.pfs.map(pfJson),
    nics: model.nics.map((n) => ({
      name: n.name,
      parent: n.parent,
      vlanId: n.vlanId,
      mac: n.mac,
      mtu: n.mtu,
      operstate: n.operstate,
      speed: n.speed,
      virtual: n.virtual,
      kind: n.kind,
      pciAddress: n.pciAddress,
    })),
  };
}

const dash = '-';

function table(rows: readonly (readonly string[])[], indent: string): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    `${indent}${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}`.trimEnd(),
  );
}

const onOff = (b: boolean | null) => (b === null ? dash : b ? 'on' : 'off');
const str = (v: string | number | null) => (v === null ? dash : String(v));
const ids = (vendor: string | null, device: string | null) => `${vendor ?? '?'}:${device ?? '?'}`;

function vlanCell(vf: Vf): string {
  const s = vf.settings;
  if (s?.vlan == null) return dash;
  if (s.vlan === 0) return '0';
  const proto = s.vlanProto !== null && s.vlanProto !== '802.1Q' ? ` ${s.vlanProto}` : '';
  return `${s.vlan}${s.qos ? `/q${s.qos}` : ''}${proto}`;
}

function rateCell(vf: Vf): string {
  const s = vf.settings;
  if (!s || (s.minTxRate === null && s.maxTxRate === null)) return dash;
  if (!s.minTxRate && !s.maxTxRate) return '0';
  return `${s.minTxRate ?? 0}-${s.maxTxRate ?? 0}`;
}

/** The human table; `DPDK` marks VFs bound to vfio-pci/uio (no netdev). */
export function renderInspect(model: NodeModel): string {
  const out: string[] = [];
  if (model.pfs.length === 0) out.push('No SR-IOV physical functions found.');
  for (const pf of model.pfs) {
    const dpdk = pf.vfs.filter((v) => v.dpdk).length;
    out.push(
      `PF ${pf.pciAddress}  ${pf.netdev ?? '(no netdev)'}  ${ids(pf.vendor, pf.device)}  driver ${str(pf.driver)}  ` +
        `numa ${pf.numaNode}  ${str(pf.linkType)}  ${str(pf.operstate)}  VFs ${pf.numVfs}/${pf.totalVfs}` +
        (dpdk > 0 ? `  (${dpdk} DPDK)` : ''),
    );
    if (pf.vfs.length === 0) continue;
    const rows: string[][] = [
      [
        'VF',
        'PCI',
        'ID',
        'DRIVER',
        'NETDEV',
        'STATE',
        'IOMMU',
        'NUMA',
        'MAC',
        'VLAN',
        'SPOOF',
        'TRUST',
        'LINK',
        'RATE',
      ],
    ];
    for (const vf of pf.vfs) {
      rows.push([
        String(vf.index),
        vf.pciAddress,
        ids(vf.vendor, vf.device),
        str(vf.driver),
        vf.dpdk ? `DPDK${vf.uioDevice ? ` ${vf.uioDevice}` : ''}` : str(vf.netdev),
        str(vf.operstate),
        vf.iommuGroup === null ? dash : `${vf.iommuNoiommu ? 'noiommu-' : ''}${vf.iommuGroup}`,
        String(vf.numaNode),
        str(vf.settings?.mac ?? null),
        vlanCell(vf),
        onOff(vf.settings?.spoofchk ?? null),
        onOff(vf.settings?.trust ?? null),
        str(vf.settings?.linkState ?? null),
        rateCell(vf),
      ]);
    }
    out.push(...table(rows, '  '));
  }
  const plain = model.devices.filter((d) => d.kind === 'pci');
  if (plain.length > 0) {
    out.push('', 'Other network PCI devices');
    const rows = [['PCI', 'ID', 'DRIVER', 'NETDEV', 'NUMA']];
    for (const d of plain)
      rows.push([d.pciAddress, ids(d.vendor, d.device), str(d.driver), str(d.netdev), String(d.numaNode)]);
    out.push(...table(rows, '  '));
  }
  out.push('', 'NICs');
  if (model.nics.length === 0) out.push('  none');
  else {
    const rows = [['NAME', 'KIND', 'PARENT', 'VLAN', 'MAC', 'MTU', 'STATE', 'SPEED', 'PCI']];
    for (const n of model.nics) {
      rows.push([
        n.name,
        n.kind ?? (n.virtual ? 'virtual' : 'device'),
        str(n.parent),
        str(n.vlanId),
        str(n.mac),
        str(n.mtu),
        str(n.operstate),
        n.speed === null ? dash : `${n.speed}Mb/s`,
        str(n.pciAddress),
      ]);
    }
    out.push(...table(rows, '  '));
  }
  return `${out.join('\n')}\n`;
}
