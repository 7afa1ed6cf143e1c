// Simulated nodes of other vendors, for the device plugin's SRIOV-DP comparisons (issue 13):
// a Broadcom BCM57414 PF, an Intel E810, a Mellanox ConnectX-6 with RDMA, an Intel ACC100 FEC
// accelerator (PCI class 0x12, SR-IOV), and an onboard uplink eno1 that carries the node's
// default routes (IPv4 and IPv6), written to routes.json as `ip -json route show default` prints
// them. IDs are the PCI IDs these cards report.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { simulatedNode } from './simulated-node.js';
import type { WrittenNode } from './simulated-node.js';

const UP = { operstate: 'up', carrier: true } as const;

export const VENDOR_NODE = {
  broadcomPf: '0000:18:00.0',
  e810Pf: '0000:3b:00.0',
  cx6Pf: '0000:5e:00.0',
  acc100Pf: '0000:86:00.0',
  uplink: '0000:01:00.0',
  uplinkNetdev: 'eno1',
} as const;

/** The default routes of the node: IPv4 via eno1, IPv6 via eno1 too (as `ip -json [-6] route`). */
export const VENDOR_NODE_ROUTES = [
  { dst: 'default', gateway: '192.0.2.1', dev: 'eno1', protocol: 'dhcp', metric: 100, flags: [] },
  {
    dst: 'default',
    gateway: 'fe80::1',
    dev: 'eno1',
    protocol: 'ra',
    metric: 1024,
    flags: [],
    pref: 'medium',
  },
] as const;

export function vendorsNode() {
  return (
    simulatedNode()
      // Onboard Intel I350 uplink (no SR-IOV configured): the node's own interface.
      .nic(VENDOR_NODE.uplink, {
        netdev: VENDOR_NODE.uplinkNetdev,
        vendor: '8086',
        device: '1521',
        driver: 'igb',
        numa: 0,
        ...UP,
      })
      // Broadcom BCM57414 NetXtreme-E (14e4:16d7, bnxt_en); VFs 14e4:16dc.
      .pf(VENDOR_NODE.broadcomPf, {
        netdev: 'ens1f0np0',
        vendor: '14e4',
        device: '16d7',
        driver: 'bnxt_en',
        numa: 0,
        totalVfs: 16,
        ...UP,
      })
      .vfs(2, { driver: 'bnxt_en', device: '16dc', ...UP })
      // Intel E810-XXV (8086:159b, ice); VFs 8086:1889 on iavf, VF 3 on vfio-pci.
      .pf(VENDOR_NODE.e810Pf, {
        netdev: 'ens2f0',
        vendor: '8086',
        device: '159b',
        driver: 'ice',
        numa: 0,
        totalVfs: 64,
        ...UP,
      })
      .vfs(8, { driver: 'iavf', device: '1889', ...UP, overrides: { 3: { driver: 'vfio-pci' } } })
      // Mellanox ConnectX-6 (15b3:101b, mlx5_core, RDMA mlx5_0); VFs 15b3:101c.
      .pf(VENDOR_NODE.cx6Pf, {
        netdev: 'ens3f0np0',
        vendor: '15b3',
        device: '101b',
        driver: 'mlx5_core',
        numa: 1,
        totalVfs: 8,
        rdma: 'mlx5_0',
        ...UP,
      })
      .vfs(2, { driver: 'mlx5_core', device: '101c', ...UP })
      // Intel ACC100 FEC (8086:0d5c PF on pci-pf-stub, class 0x12); VFs 8086:0d5d on vfio-pci.
      .pf(VENDOR_NODE.acc100Pf, {
        vendor: '8086',
        device: '0d5c',
        driver: 'pci-pf-stub',
        numa: 1,
        totalVfs: 16,
        classCode: '120000',
      })
      .vfs(4, { driver: 'vfio-pci', device: '0d5d' })
  );
}

/** Writes the node and its routes.json (the default routes through eno1). */
export async function writeVendorsNode(dir: string): Promise<WrittenNode> {
  const node = await vendorsNode().write(dir);
  await writeFile(path.join(node.dir, 'routes.json'), `${JSON.stringify(VENDOR_NODE_ROUTES)}\n`);
  return node;
}
