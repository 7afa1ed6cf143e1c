// Ready-made simulated nodes: the fixtures under test/fixtures/nodes/ (written by hack/mknode),
// the demo node, and a generated node of any size for tests and benchmarks.
import { simulatedNode, SimulatedNodeError } from './simulated-node.js';
import type { SimulatedNodeBuilder } from './simulated-node.js';

/**
 * Two Intel X710 dual-port cards (8086:1572, i40e; VFs 8086:154c) on NUMA 0 and 1: iavf and
 * vfio-pci VFs, one uio VF, admin VLANs/QoS, trust/spoofchk/rate/link-state variety, one VF whose
 * link is down, a PF without VFs, the PF1 VF table in the older flat `vlan` form; plus an X550
 * NIC ens2f0 with VLAN sub-interfaces ens2f0.210/.211 and an onboard eno1 (acpi_index 1).
 */
export function intelX710Node(): SimulatedNodeBuilder {
  const x710 = { vendor: '8086', device: '1572', driver: 'i40e', totalVfs: 64 } as const;
  const iavf = { driver: 'iavf', device: '154c' } as const;
  return simulatedNode()
    .nic('0000:01:00.0', {
      netdev: 'eno1',
      vendor: '8086',
      device: '1521',
      driver: 'igb',
      numa: 0,
      acpiIndex: 1,
      speed: 1000,
      mac: '3c:fd:fe:00:01:00',
    })
    .pf('0000:3b:00.0', { ...x710, netdev: 'ens785f0', numa: 0, mac: '3c:fd:fe:3b:00:00' })
    .vfs(8, {
      ...iavf,
      overrides: {
        2: { vlan: 100 },
        3: { vlan: 100, qos: 3, adminMac: '02:00:00:3b:00:03' },
        4: { trust: true, spoofchk: false },
        5: { maxTxRate: 1000, minTxRate: 100, operstate: 'down', carrier: false },
        6: { driver: 'vfio-pci' },
        7: { driver: 'vfio-pci', vlan: 200 },
      },
    })
    .pf('0000:3b:00.1', {
      ...x710,
      netdev: 'ens785f1',
      numa: 0,
      mac: '3c:fd:fe:3b:00:01',
      vfinfoForm: 'flat',
    })
    .vfs(4, {
      ...iavf,
      overrides: { 1: { vlan: 300, qos: 1 }, 2: { driver: 'uio_pci_generic' }, 3: { linkState: 'disable' } },
    })
    .pf('0000:af:00.0', { ...x710, netdev: 'ens801f0', numa: 1, mac: '3c:fd:fe:af:00:00' })
    .vfs(8, {
      ...iavf,
      overrides: {
        0: { vlan: 400, vlanProto: '802.1ad' },
        4: { driver: 'vfio-pci' },
        5: { driver: 'vfio-pci' },
        6: { driver: 'vfio-pci' },
        7: { driver: 'vfio-pci' },
      },
    })
    .pf('0000:af:00.1', { ...x710, netdev: 'ens801f1', numa: 1, mac: '3c:fd:fe:af:00:01' })
    .nic('0000:5e:00.0', {
      netdev: 'ens2f0',
      vendor: '8086',
      device: '1563',
      driver: 'ixgbe',
      numa: 0,
      speed: 10000,
      mac: '3c:fd:fe:5e:00:00',
    })
    .vlan('ens2f0.210', { parent: 'ens2f0', id: 210 })
    .vlan('ens2f0.211', { parent: 'ens2f0', id: 211, mtu: 9000, operstate: 'down', carrier: false });
}

/**
 * A Mellanox ConnectX-5 (15b3:1017, mlx5_core; VFs 15b3:1018 with RDMA devices): Ethernet port
 * ens1f0 with 8 VFs (one vfio-pci), InfiniBand port ibp94s0f1 with 4 VFs, NUMA 1.
 */
export function mellanoxCx5Node(): SimulatedNodeBuilder {
  const cx5 = { vendor: '15b3', device: '1017', driver: 'mlx5_core', numa: 1, totalVfs: 16 } as const;
  const vf = { driver: 'mlx5_core', device: '1018', rdma: true } as const;
  return simulatedNode()
    .pf('0000:5e:00.0', { ...cx5, netdev: 'ens1f0', rdma: 'mlx5_0', speed: 100000, mac: 'b8:ce:f6:5e:00:00' })
    .vfs(8, { ...vf, overrides: { 1: { vlan: 10 }, 7: { driver: 'vfio-pci', rdma: false } } })
    .pf('0000:5e:00.1', {
      ...cx5,
      netdev: 'ibp94s0f1',
      rdma: 'mlx5_1',
      linkType: 'infiniband',
      speed: 100000,
      mac: '00:00:10:87:fe:80:00:00:00:00:00:00:b8:ce:f6:03:00:5e:00:01',
    })
    .vfs(4, vf);
}

export interface GeneratedNodeOptions {
  readonly pfs: number;
  readonly vfs: number;
}

/**
 * `pfs` X710-like PFs (one per PCI bus, NUMA alternating) with `vfs` VFs each: every 4th VF on
 * vfio-pci, every 8th with an admin VLAN. Used by `hack/mknode --pfs N --vfs M` and the benchmarks.
 */
export function generatedNode(o: GeneratedNodeOptions): SimulatedNodeBuilder {
  if (!Number.isInteger(o.pfs) || o.pfs < 1 || o.pfs > 0xef) {
    throw new SimulatedNodeError(`--pfs ${o.pfs}: use an integer in 1..239 (one PCI bus per PF)`);
  }
  if (!Number.isInteger(o.vfs) || o.vfs < 0 || o.vfs > 240) {
    throw new SimulatedNodeError(`--vfs ${o.vfs}: use an integer in 0..240 (VFs share the PF's bus)`);
  }
  let b = simulatedNode();
  for (let i = 0; i < o.pfs; i++) {
    const bus = (0x10 + i).toString(16).padStart(2, '0');
    const overrides: Record<number, { driver?: string; vlan?: number }> = {};
    for (let j = 0; j < o.vfs; j++) {
      if (j % 4 === 3) overrides[j] = { driver: 'vfio-pci' };
      else if (j % 8 === 1) overrides[j] = { vlan: 100 + (j % 3000) };
    }
    b = b
      .pf(`0000:${bus}:00.0`, {
        netdev: `ens${i + 1}f0`,
        vendor: '8086',
        device: '1572',
        driver: 'i40e',
        numa: i % 2,
        totalVfs: Math.max(o.vfs, 1),
      })
      .vfs(o.vfs, { driver: 'iavf', device: '154c', overrides });
  }
  return b;
}

/** Named presets, as `hack/mknode --preset NAME` knows them. */
export const NODE_PRESETS = {
  'intel-x710': intelX710Node,
  'mellanox-cx5': mellanoxCx5Node,
} as const satisfies Record<string, () => SimulatedNodeBuilder>;

export type NodePresetName = keyof typeof NODE_PRESETS;

export function isNodePresetName(name: string): name is NodePresetName {
  return Object.hasOwn(NODE_PRESETS, name);
}
