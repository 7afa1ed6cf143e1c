import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Nic, Vf } from '../sriov/model.js';
import { EMPTY_PCI_SELECTOR, type NicSelector, type PciSelector } from './config.js';
import { matchesNicSelector, matchesPciSelector } from './selectors.js';

const EMPTY: PciSelector = EMPTY_PCI_SELECTOR;

const vfArb = fc
  .record({
    index: fc.nat(15),
    vendor: fc.constantFrom('8086', '15b3'),
    device: fc.constantFrom('154c', '1018'),
    driver: fc.constantFrom('iavf', 'mlx5_core', 'vfio-pci'),
    pf: fc.constantFrom('ens1f0', 'ens2f0'),
    vlan: fc.constantFrom(0, 100, 210),
    rdma: fc.boolean(),
    linkType: fc.constantFrom('ether', 'infiniband'),
  })
  .map((o): Vf => ({
    kind: 'vf',
    pciAddress: `0000:3b:0${(o.index >> 3) + 2}.${o.index & 7}`,
    vendor: o.vendor,
    device: o.device,
    classCode: '020000',
    driver: o.driver,
    numaNode: 0,
    iommuGroup: 1,
    iommuNoiommu: false,
    netdevs: [],
    netdev: null,
    uioDevice: null,
    rdmaDevices: o.rdma ? ['mlx5_0'] : [],
    acpiIndex: null,
    linkType: o.linkType,
    operstate: null,
    carrier: null,
    index: o.index,
    pfPciAddress: o.pf === 'ens1f0' ? '0000:3b:00.0' : '0000:af:00.0',
    pfNetdev: o.pf,
    dpdk: o.driver === 'vfio-pci',
    settings: {
      mac: null,
      vlan: o.vlan,
      qos: 0,
      vlanProto: null,
      spoofchk: true,
      trust: false,
      linkState: 'auto',
      minTxRate: 0,
      maxTxRate: 0,
    },
  }));

const selectorArb = fc
  .record({
    vendors: fc.subarray(['8086', '15b3']),
    devices: fc.subarray(['154c', '1018']),
    drivers: fc.subarray(['iavf', 'mlx5_core', 'vfio-pci']),
    pfNames: fc
      .subarray(['ens1f0', 'ENS2F0'])
      .map((l) => l.map((name) => ({ name, ranges: [{ from: 0, to: 7 }] }))),
    linkTypes: fc.subarray(['ether', 'infiniband']),
    vlans: fc.subarray([0, 100, 210]),
    isRdma: fc.boolean(),
  })
  .map((s): PciSelector => ({ ...EMPTY, ...s }));

describe('matchesPciSelector', () => {
  it('an empty selector matches every device', () => {
    fc.assert(
      fc.property(vfArb, (vf) => {
        expect(matchesPciSelector(EMPTY, vf)).toBe(true);
      }),
    );
  });

  it('is the AND of each key on its own (each key ORs its list)', () => {
    fc.assert(
      fc.property(selectorArb, vfArb, (s, vf) => {
        const keys = ['vendors', 'devices', 'drivers', 'pfNames', 'linkTypes', 'vlans', 'isRdma'] as const;
        const each = keys.map((k) => matchesPciSelector({ ...EMPTY, [k]: s[k] }, vf));
        expect(matchesPciSelector(s, vf)).toBe(each.every(Boolean));
      }),
    );
  });

  it('adding a value to a key list never removes a match (monotone OR)', () => {
    fc.assert(
      fc.property(selectorArb, vfArb, (s, vf) => {
        if (!matchesPciSelector(s, vf) || s.drivers.length === 0) return;
        expect(matchesPciSelector({ ...s, drivers: [...s.drivers, 'igb_uio'] }, vf)).toBe(true);
      }),
    );
  });

  it('matches pfNames case-insensitively with VF ranges, and vlans by the PF-side admin VLAN', () => {
    const vf = fc.sample(vfArb, { numRuns: 1, seed: 1 })[0]!;
    const v: Vf = { ...vf, pfNetdev: 'ens1f0', index: 5, settings: { ...vf.settings!, vlan: 210 } };
    expect(
      matchesPciSelector({ ...EMPTY, pfNames: [{ name: 'ENS1F0', ranges: [{ from: 4, to: 6 }] }] }, v),
    ).toBe(true);
    expect(
      matchesPciSelector({ ...EMPTY, pfNames: [{ name: 'ens1f0', ranges: [{ from: 0, to: 3 }] }] }, v),
    ).toBe(false);
    expect(matchesPciSelector({ ...EMPTY, vlans: [210] }, v)).toBe(true);
    expect(matchesPciSelector({ ...EMPTY, vlans: [100] }, v)).toBe(false);
    expect(matchesPciSelector({ ...EMPTY, vlans: [210] }, { ...v, settings: null })).toBe(false);
  });
});

describe('matchesNicSelector', () => {
  const nic: Nic = {
    name: 'ens2f0.210',
    parent: 'ens2f0',
    vlanId: 210,
    mac: null,
    mtu: 1500,
    operstate: 'up',
    speed: null,
    virtual: true,
    kind: 'vlan',
    pciAddress: null,
  };
  const none: NicSelector = { names: [], parents: [], vlans: [] };
  it('selects by name, parent and VLAN ID', () => {
    expect(matchesNicSelector(none, nic)).toBe(true);
    expect(matchesNicSelector({ ...none, parents: ['ens2f0'], vlans: [210] }, nic)).toBe(true);
    expect(matchesNicSelector({ ...none, vlans: [211] }, nic)).toBe(false);
    expect(matchesNicSelector({ ...none, names: ['ens2f0'] }, nic)).toBe(false);
    expect(matchesNicSelector({ ...none, vlans: [210] }, { ...nic, vlanId: null })).toBe(false);
  });
});
