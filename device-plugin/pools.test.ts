import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverNode } from '../sriov/discover.js';
import type { NodeModel } from '../sriov/model.js';
import { simulatedNode } from '../sim/simulated-node.js';
import { fileVfState } from '../sriov/vf-state.js';
import { parseConfig } from './config.js';
import type { PoolConfig } from './config.js';
import { pciDeviceHealth } from './health.js';
import { buildPools } from './pools.js';
import { matchesPciSelector } from './selectors.js';

const UP = { operstate: 'up', carrier: true } as const;
let dir = '';
let model: NodeModel;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-dp-pools-'));
  const node = await simulatedNode()
    // A PF with VFs (never offered itself), VFs on iavf / vfio-pci / unbound, VLANs 100 and 210.
    .pf('0000:3b:00.0', {
      netdev: 'ens1f0',
      vendor: '8086',
      device: '1572',
      driver: 'i40e',
      numa: 0,
      totalVfs: 8,
      ...UP,
    })
    .vfs(6, {
      driver: 'iavf',
      device: '154c',
      ...UP,
      overrides: { 1: { vlan: 100 }, 2: { vlan: 210 }, 3: { driver: 'vfio-pci' }, 5: { driver: null } },
    })
    // A PF without VFs is offered like a plain NIC.
    .pf('0000:af:00.0', {
      netdev: 'ens2f0',
      vendor: '8086',
      device: '1572',
      driver: 'i40e',
      numa: 1,
      totalVfs: 8,
      ...UP,
    })
    .nic('0000:5e:00.0', { netdev: 'eno1', vendor: '8086', device: '1521', driver: 'igb', numa: 1, ...UP })
    .vlan('eno1.300', { parent: 'eno1', id: 300, ...UP })
    .write(path.join(dir, 'node'));
  model = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const pools = (resourceList: unknown[]): PoolConfig[] => [
  ...parseConfig(JSON.stringify({ resourceList }), { resourcePrefix: 'intel.com' }).pools,
];
const idsOf = (p: { devices: readonly { id: string }[] } | undefined) => p?.devices.map((d) => d.id) ?? [];

describe('buildPools', () => {
  it('offers bound VFs and PFs without VFs, never a PF with VFs or an unbound device', () => {
    const [all] = buildPools(pools([{ resourceName: 'all' }]), model);
    expect(idsOf(all)).toEqual([
      '0000:3b:02.0',
      '0000:3b:02.1',
      '0000:3b:02.2',
      '0000:3b:02.3',
      '0000:3b:02.4',
      '0000:5e:00.0',
      '0000:af:00.0',
    ]);
  });

  it('gives a device to the first pool (and first selector) that matches it', () => {
    const built = buildPools(
      pools([
        { resourceName: 'vlans', selectors: [{ vlans: [210] }, { vlans: [100] }] },
        { resourceName: 'vfs', selectors: [{ rootDevices: ['0000:3b:00.0#0-4'] }] },
      ]),
      model,
    );
    expect(idsOf(built[0])).toEqual(['0000:3b:02.2', '0000:3b:02.1']);
    expect(idsOf(built[1])).toEqual(['0000:3b:02.0', '0000:3b:02.3', '0000:3b:02.4']);
  });

  it('keeps first-match-wins for any selection of pools (property)', () => {
    const selectorArb = fc.record(
      {
        drivers: fc.subarray(['iavf', 'vfio-pci', 'i40e', 'igb']),
        vlans: fc.subarray([0, 100, 210]),
        pfNames: fc.subarray(['ens1f0#0-2', 'ens1f0#3-5', 'ENS1F0']),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(selectorArb, { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 4 }),
        (list) => {
          const configs = pools(list.map((selectors, i) => ({ resourceName: `p${i}`, selectors })));
          const built = buildPools(configs, model);
          const seen = new Set<string>();
          built.forEach((pool, k) => {
            for (const d of pool.devices) {
              expect(seen.has(d.id)).toBe(false);
              seen.add(d.id);
              if (d.kind !== 'pci') continue;
              expect(matchesPciSelector(d.selector, d.device)).toBe(true);
              for (const earlier of built.slice(0, k)) {
                const cfg = earlier.config;
                if (cfg.deviceType === 'nic') continue;
                expect(cfg.selectors.some((s) => matchesPciSelector(s, d.device))).toBe(false);
              }
            }
          });
        },
      ),
    );
  });

  it('advertises each selected interface of a nic pool as N slots on its parent NIC’s NUMA node', () => {
    const [nic] = buildPools(
      pools([{ resourceName: 'v300', deviceType: 'nic', slots: 2, selectors: { vlans: [300] } }]),
      model,
    );
    expect(nic?.devices.map((d) => [d.id, d.numaNode, d.group])).toEqual([
      ['eno1.300#0', 1, 'eno1.300'],
      ['eno1.300#1', 1, 'eno1.300'],
    ]);
  });

  it('selects accelerators by PCI class 0x12 only', () => {
    const [acc] = buildPools(pools([{ resourceName: 'acc', deviceType: 'accelerator' }]), model);
    expect(idsOf(acc)).toEqual([]);
  });
});

describe('pciDeviceHealth', () => {
  it('is Unhealthy when the PF disabled the VF (link_state disable)', () => {
    const vf = model.pfs[0]!.vfs[0]!;
    expect(pciDeviceHealth(vf, model.pfs[0]!)).toBe('Healthy');
    expect(
      pciDeviceHealth({ ...vf, settings: { ...vf.settings!, linkState: 'disable' } }, model.pfs[0]!),
    ).toBe('Unhealthy');
  });
});
