import { mkdtemp, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../test/support/bin.js';
import { discoverNode, readVf, VF_LOOKUP_ERROR } from './discover.js';
import type { NodeModel, Pf, Vf } from './model.js';
import { generatedNode } from '../sim/simulated-node-presets.js';
import { pciDeviceDir, removeVf, setLinkState, simulatedNode } from '../sim/simulated-node.js';
import { resolveSysfsRoot } from './sysfs.js';
import { fileVfState } from './vf-state.js';

const FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures', 'nodes');

function fixture(name: string): { sysfsRoot: string; linksFile: string } {
  return { sysfsRoot: path.join(FIXTURES, name, 'sys'), linksFile: path.join(FIXTURES, name, 'links.json') };
}

async function discoverFixture(name: string): Promise<NodeModel> {
  const f = fixture(name);
  return discoverNode({ sysfsRoot: f.sysfsRoot, vfState: fileVfState(f.linksFile) });
}

function pf(model: NodeModel, netdev: string): Pf {
  const found = model.pfs.find((p) => p.netdev === netdev);
  if (!found) throw new Error(`no PF ${netdev}`);
  return found;
}

function vf(model: NodeModel, pciAddress: string): Vf {
  const found = model.pfs.flatMap((p) => p.vfs).find((v) => v.pciAddress === pciAddress);
  if (!found) throw new Error(`no VF ${pciAddress}`);
  return found;
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'np-node-disc-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('discoverNode on the Intel X710 fixture', () => {
  let model: NodeModel;
  beforeAll(async () => {
    model = await discoverFixture('intel-x710');
  });

  it('reads a clean tree without warnings', () => {
    expect(model.warnings).toEqual([]);
  });

  it('finds the four PFs in PCI order with totalvfs/numvfs', () => {
    expect(model.pfs.map((p) => [p.pciAddress, p.netdev, p.totalVfs, p.numVfs])).toEqual([
      ['0000:3b:00.0', 'ens785f0', 64, 8],
      ['0000:3b:00.1', 'ens785f1', 64, 4],
      ['0000:af:00.0', 'ens801f0', 64, 8],
      ['0000:af:00.1', 'ens801f1', 64, 0],
    ]);
  });

  it('reports PF vendor, device, class, driver, NUMA node, link type and link state', () => {
    const p = pf(model, 'ens801f0');
    expect(p).toMatchObject({
      kind: 'pf',
      vendor: '8086',
      device: '1572',
      classCode: '020000',
      driver: 'i40e',
      numaNode: 1,
      linkType: 'ether',
      operstate: 'up',
      carrier: true,
    });
    expect(pf(model, 'ens785f0').numaNode).toBe(0);
  });

  it('lists VFs in index order with their PF, placed where the kernel puts them', () => {
    const p = pf(model, 'ens785f1');
    expect(p.vfs.map((v) => [v.index, v.pciAddress, v.pfPciAddress, v.pfNetdev])).toEqual([
      [0, '0000:3b:0a.0', '0000:3b:00.1', 'ens785f1'],
      [1, '0000:3b:0a.1', '0000:3b:00.1', 'ens785f1'],
      [2, '0000:3b:0a.2', '0000:3b:00.1', 'ens785f1'],
      [3, '0000:3b:0a.3', '0000:3b:00.1', 'ens785f1'],
    ]);
  });

  it('reports a kernel-bound VF with its netdev, driver, IOMMU group and NUMA node', () => {
    expect(vf(model, '0000:3b:02.0')).toMatchObject({
      kind: 'vf',
      vendor: '8086',
      device: '154c',
      driver: 'iavf',
      netdev: 'ens785f0v0',
      netdevs: ['ens785f0v0'],
      dpdk: false,
      numaNode: 0,
      iommuGroup: 12,
      iommuNoiommu: false,
      uioDevice: null,
      linkType: 'ether',
      operstate: 'up',
      carrier: true,
    });
  });

  it('marks vfio-pci VFs as DPDK, without a netdev but with an IOMMU group and the PF link type', () => {
    const v = vf(model, '0000:af:02.4');
    expect(v).toMatchObject({ driver: 'vfio-pci', dpdk: true, netdev: null, netdevs: [], numaNode: 1 });
    expect(v.iommuGroup).toBeTypeOf('number');
    expect(v.linkType).toBe('ether');
    expect(v.operstate).toBeNull();
  });

  it('reports the uio device of a uio-bound VF', () => {
    expect(vf(model, '0000:3b:0a.2')).toMatchObject({
      driver: 'uio_pci_generic',
      dpdk: true,
      uioDevice: 'uio0',
    });
  });

  it('reports a VF whose link is down', () => {
    expect(vf(model, '0000:3b:02.5')).toMatchObject({ operstate: 'down', carrier: false });
  });

  it('reads PF-held VF settings from the vlan_list form', () => {
    expect(vf(model, '0000:3b:02.3').settings).toEqual({
      mac: '02:00:00:3b:00:03',
      vlan: 100,
      qos: 3,
      vlanProto: '802.1Q',
      spoofchk: true,
      trust: false,
      linkState: 'auto',
      minTxRate: 0,
      maxTxRate: 0,
    });
    expect(vf(model, '0000:3b:02.4').settings).toMatchObject({ trust: true, spoofchk: false });
    expect(vf(model, '0000:3b:02.5').settings).toMatchObject({ minTxRate: 100, maxTxRate: 1000 });
    expect(vf(model, '0000:af:02.0').settings).toMatchObject({ vlan: 400, vlanProto: '802.1ad' });
  });

  it('reads PF-held VF settings from the older flat vlan/qos form', () => {
    expect(vf(model, '0000:3b:0a.1').settings).toMatchObject({ vlan: 300, qos: 1, vlanProto: null });
    expect(vf(model, '0000:3b:0a.3').settings).toMatchObject({ vlan: 0, linkState: 'disable' });
  });

  it('lists plain network devices with their acpi_index', () => {
    const plain = model.devices.filter((d) => d.kind === 'pci');
    expect(plain.map((d) => [d.pciAddress, d.driver, d.netdev, d.acpiIndex])).toEqual([
      ['0000:01:00.0', 'igb', 'eno1', '1'],
      ['0000:5e:00.0', 'ixgbe', 'ens2f0', null],
    ]);
  });

  it('keeps every device once in devices, sorted by PCI address', () => {
    const addresses = model.devices.map((d) => d.pciAddress);
    expect(addresses).toEqual([...addresses].sort());
    expect(new Set(addresses).size).toBe(addresses.length);
    expect(addresses).toHaveLength(4 + 20 + 2);
  });

  it('lists NICs: physical ones and VLAN sub-interfaces with parent and VLAN ID, not VF netdevs', () => {
    expect(model.nics.map((n) => n.name)).toEqual([
      'eno1',
      'ens2f0',
      'ens2f0.210',
      'ens2f0.211',
      'ens785f0',
      'ens785f1',
      'ens801f0',
      'ens801f1',
    ]);
    expect(model.nics.find((n) => n.name === 'ens2f0.210')).toEqual({
      name: 'ens2f0.210',
      parent: 'ens2f0',
      vlanId: 210,
      mac: '3c:fd:fe:5e:00:00',
      mtu: 1500,
      operstate: 'up',
      speed: 10000,
      virtual: true,
      kind: 'vlan',
      pciAddress: null,
    });
    expect(model.nics.find((n) => n.name === 'ens2f0.211')).toMatchObject({
      mtu: 9000,
      operstate: 'down',
      speed: null,
    });
    expect(model.nics.find((n) => n.name === 'eno1')).toMatchObject({
      virtual: false,
      kind: null,
      pciAddress: '0000:01:00.0',
      speed: 1000,
    });
  });

  it('finds VLAN parent and ID from sysfs alone when iproute2 data is absent', async () => {
    const m = await discoverNode({ sysfsRoot: fixture('intel-x710').sysfsRoot, vfState: null });
    expect(m.nics.find((n) => n.name === 'ens2f0.211')).toMatchObject({
      parent: 'ens2f0',
      vlanId: 211,
      kind: 'vlan',
    });
    expect(m.pfs[0]?.vfs[0]?.settings).toBeNull();
  });
});

describe('discoverNode on the Mellanox ConnectX-5 fixture', () => {
  let model: NodeModel;
  beforeAll(async () => {
    model = await discoverFixture('mellanox-cx5');
  });

  it('reports mlx5 PFs and VFs with RDMA devices', () => {
    expect(model.warnings).toEqual([]);
    const eth = pf(model, 'ens1f0');
    expect(eth).toMatchObject({
      vendor: '15b3',
      device: '1017',
      driver: 'mlx5_core',
      numaNode: 1,
      rdmaDevices: ['mlx5_0'],
    });
    expect(eth.vfs[0]).toMatchObject({
      device: '1018',
      driver: 'mlx5_core',
      rdmaDevices: ['mlx5_2'],
      netdev: 'ens1f0v0',
    });
    expect(eth.vfs[7]).toMatchObject({ driver: 'vfio-pci', dpdk: true, rdmaDevices: [] });
  });

  it('reports the InfiniBand link type for the IB port and its VFs', () => {
    const ib = pf(model, 'ibp94s0f1');
    expect(ib.linkType).toBe('infiniband');
    expect(ib.classCode).toBe('020700');
    expect(ib.vfs.map((v) => v.linkType)).toEqual(['infiniband', 'infiniband', 'infiniband', 'infiniband']);
  });
});

describe('discoverNode on a generated 8 × 128 node', () => {
  let model: NodeModel;
  beforeAll(async () => {
    const node = await generatedNode({ pfs: 8, vfs: 128 }).write(path.join(tmp, 'big'));
    model = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) });
  }, 120_000);

  it('maps all 1,024 VFs to their PFs in index order', () => {
    expect(model.warnings).toEqual([]);
    expect(model.pfs).toHaveLength(8);
    for (const p of model.pfs) {
      expect(p.vfs.map((v) => v.index)).toEqual(Array.from({ length: 128 }, (_, i) => i));
      expect(new Set(p.vfs.map((v) => v.pfPciAddress))).toEqual(new Set([p.pciAddress]));
    }
    expect(model.devices).toHaveLength(8 + 1024);
  });

  it('keeps per-VF driver, NUMA and settings straight at scale', () => {
    const p = model.pfs[5]!;
    expect(p.numaNode).toBe(1);
    expect(p.vfs[3]).toMatchObject({ driver: 'vfio-pci', dpdk: true, netdev: null, numaNode: 1 });
    expect(p.vfs[9]).toMatchObject({ driver: 'iavf', netdev: 'ens6f0v9', settings: { vlan: 109 } });
    expect(p.vfs[127]).toMatchObject({ index: 127, driver: 'vfio-pci' });
  });
});

describe('discoverNode on random simulated nodes', () => {
  const vfArb = fc.record({
    driver: fc.constantFrom('iavf', 'vfio-pci', 'uio_pci_generic', 'mlx5_core'),
    vlan: fc.integer({ min: 0, max: 4094 }),
    qos: fc.integer({ min: 0, max: 7 }),
    trust: fc.boolean(),
  });
  const pfArb = fc.record({
    numa: fc.integer({ min: -1, max: 3 }),
    flat: fc.boolean(),
    vfs: fc.array(vfArb, { maxLength: 6 }),
  });

  it('reports every VF with the PF, index, driver, DPDK flag, NUMA node and settings it was built with', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(pfArb, { minLength: 1, maxLength: 3 }), async (pfs) => {
        let b = simulatedNode();
        pfs.forEach((p, i) => {
          const overrides = Object.fromEntries(p.vfs.map((v, j) => [j, v]));
          b = b
            .pf(`0000:${(0x20 + i).toString(16)}:00.0`, {
              netdev: `p${i}`,
              vendor: '8086',
              device: '1572',
              driver: 'i40e',
              numa: p.numa,
              totalVfs: 8,
              vfinfoForm: p.flat ? 'flat' : 'vlan_list',
            })
            .vfs(p.vfs.length, { device: '154c', overrides });
        });
        const node = await b.write(path.join(tmp, `random-${run++}`));
        const m = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) });
        expect(m.warnings).toEqual([]);
        expect(m.pfs.map((p) => p.netdev)).toEqual(pfs.map((_, i) => `p${i}`));
        m.pfs.forEach((p, i) => {
          const spec = pfs[i]!;
          expect(p.numVfs).toBe(spec.vfs.length);
          p.vfs.forEach((v, j) => {
            const want = spec.vfs[j]!;
            const dpdk = want.driver === 'vfio-pci' || want.driver === 'uio_pci_generic';
            expect(v).toMatchObject({
              index: j,
              pfNetdev: `p${i}`,
              driver: want.driver,
              dpdk,
              numaNode: spec.numa,
              netdev: dpdk ? null : `p${i}v${j}`,
              uioDevice:
                want.driver === 'uio_pci_generic' ? (expect.stringMatching(/^uio\d+$/) as unknown) : null,
              settings: {
                vlan: want.vlan,
                qos: want.qos,
                trust: want.trust,
                vlanProto: spec.flat ? null : '802.1Q',
              },
            });
          });
        });
      }),
      { numRuns: 15 },
    );
  }, 120_000);
});

describe('discoverNode on broken trees', () => {
  async function brokenNode(name: string) {
    return simulatedNode()
      .pf('0000:3b:00.0', { netdev: 'ens1f0', vendor: '8086', device: '1572', driver: 'i40e', numa: 0 })
      .vfs(4, { driver: 'iavf', device: '154c' })
      .write(path.join(tmp, name));
  }

  it('warns about a dangling bus/pci/devices link and keeps the rest', async () => {
    const node = await brokenNode('dangling');
    await rm(path.join(node.sysfsRoot, pciDeviceDir('0000:3b:02.2')), { recursive: true });
    const m = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) });
    expect(m.pfs[0]?.vfs.map((v) => v.index)).toEqual([0, 1, 3]);
    expect(m.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/bus\/pci\/devices\/0000:3b:02\.2: PCI device unreadable \(dangling link\)/),
        expect.stringMatching(/virtfn2: VF 0000:3b:02\.2 is not a readable PCI device/),
      ]),
    );
  });

  it('warns about garbage values and falls back to defaults', async () => {
    const node = await brokenNode('garbage');
    const pfDir = path.join(node.sysfsRoot, pciDeviceDir('0000:3b:00.0'));
    const vfDir = path.join(node.sysfsRoot, pciDeviceDir('0000:3b:02.1'));
    await writeFile(path.join(pfDir, 'numa_node'), 'banana\n');
    await writeFile(path.join(pfDir, 'sriov_totalvfs'), '\n');
    await writeFile(path.join(vfDir, 'modalias'), 'garbage\n');
    await writeFile(path.join(vfDir, 'device'), '0xZZZZ\n');
    await unlink(path.join(vfDir, 'iommu_group'));
    await symlink('../../../kernel/iommu_groups/notanumber', path.join(vfDir, 'iommu_group'));
    const m = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) });
    const p = m.pfs[0]!;
    expect(p.numaNode).toBe(-1);
    expect(p.totalVfs).toBe(0);
    expect(p.vfs[1]).toMatchObject({ vendor: '8086', device: null, classCode: '020000', iommuGroup: null });
    expect(m.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/0000:3b:00\.0\/numa_node: expected an integer, found "banana"/),
        expect.stringMatching(/0000:3b:00\.0\/sriov_totalvfs: expected an integer/),
        expect.stringMatching(/0000:3b:02\.1\/modalias: not a PCI modalias/),
        expect.stringMatching(/0000:3b:02\.1\/device: expected a hex ID, found "0xZZZZ"/),
        expect.stringMatching(/0000:3b:02\.1\/iommu_group: target .* is not an IOMMU group/),
      ]),
    );
  });

  it('warns about missing files and a missing class/net', async () => {
    const node = await brokenNode('missing');
    const vfDir = path.join(node.sysfsRoot, pciDeviceDir('0000:3b:02.0'));
    await rm(path.join(vfDir, 'modalias'));
    await rm(path.join(vfDir, 'vendor'));
    await rm(path.join(node.sysfsRoot, 'class', 'net'), { recursive: true });
    const m = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) });
    expect(m.pfs[0]?.vfs).toHaveLength(4);
    // Netdev names still come from each device's own net/ folder.
    expect(m.pfs[0]?.netdev).toBe('ens1f0');
    expect(m.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/0000:3b:02\.0\/vendor: missing/),
        expect.stringMatching(/class\/net: netdev list unreadable \(ENOENT\)/),
      ]),
    );
  });

  it('warns when the links file is unreadable or not JSON, and leaves settings null', async () => {
    const node = await brokenNode('badlinks');
    await writeFile(node.linksFile, '{ not json');
    const m = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) });
    expect(m.pfs[0]?.vfs[0]?.settings).toBeNull();
    expect(m.warnings).toEqual([
      expect.stringMatching(/links file .* is not valid JSON; VF settings are unknown/),
    ]);
    const m2 = await discoverNode({
      sysfsRoot: node.sysfsRoot,
      vfState: fileVfState(path.join(tmp, 'nope.json')),
    });
    expect(m2.warnings).toEqual([expect.stringMatching(/nope\.json is unreadable/)]);
  });

  it('returns an empty model with a warning for a sysfs root that does not exist', async () => {
    const m = await discoverNode({ sysfsRoot: path.join(tmp, 'no-such-root'), vfState: null });
    expect(m.pfs).toEqual([]);
    expect(m.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/no-such-root\/bus\/pci\/devices: PCI device list unreadable/),
      ]),
    );
  });

  it('sees a VF removed and a link flipped by the simulated-node helpers', async () => {
    const node = await brokenNode('mutated');
    await setLinkState(node, 'ens1f0v1', { operstate: 'down', carrier: false });
    await removeVf(node, '0000:3b:02.3');
    const m = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) });
    expect(m.warnings).toEqual([]);
    const p = m.pfs[0]!;
    expect(p.vfs.map((v) => v.index)).toEqual([0, 1, 2]);
    expect(p.numVfs).toBe(4);
    expect(p.vfs[1]).toMatchObject({ operstate: 'down', carrier: false });
    await setLinkState(node, 'ens1f0v1', { operstate: 'up', carrier: true });
    const again = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: null });
    expect(again.pfs[0]?.vfs[1]).toMatchObject({ operstate: 'up', carrier: true });
  });
});

describe('discoverNode --all', () => {
  it('includes SR-IOV capable non-network devices (and their VFs) only with all', async () => {
    const node = await simulatedNode()
      .pf('0000:3b:00.0', { netdev: 'ens1f0', vendor: '8086', device: '1572', driver: 'i40e' })
      .vfs(1, { driver: 'iavf', device: '154c' })
      .write(path.join(tmp, 'all'));
    // Turn the PF and its VF into NVMe functions (class 010802).
    for (const bdf of ['0000:3b:00.0', '0000:3b:02.0']) {
      const dir = path.join(node.sysfsRoot, pciDeviceDir(bdf));
      await writeFile(path.join(dir, 'modalias'), 'pci:v00008086d00000A54sv00008086sd00000000bc01sc08i02\n');
    }
    const without = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: null });
    expect(without.pfs).toEqual([]);
    const withAll = await discoverNode({ sysfsRoot: node.sysfsRoot, vfState: null, all: true });
    expect(withAll.pfs.map((p) => [p.pciAddress, p.classCode, p.vfs.length])).toEqual([
      ['0000:3b:00.0', '010802', 1],
    ]);
  });
});

describe('readVf', () => {
  const f = fixture('intel-x710');

  it('looks up one VF: PF, PF netdev, index, netdev, driver, DPDK flag, IOMMU group', async () => {
    const v = await readVf(f.sysfsRoot, '0000:3b:0a.1', { vfState: fileVfState(f.linksFile) });
    expect(v).toMatchObject({
      kind: 'vf',
      pciAddress: '0000:3b:0a.1',
      pfPciAddress: '0000:3b:00.1',
      pfNetdev: 'ens785f1',
      index: 1,
      netdev: 'ens785f1v1',
      driver: 'iavf',
      dpdk: false,
      iommuGroup: 22,
      numaNode: 0,
      settings: { vlan: 300, qos: 1 },
    });
  });

  it('agrees with full discovery for every VF of the fixtures', async () => {
    for (const name of ['intel-x710', 'mellanox-cx5']) {
      const fx = fixture(name);
      const model = await discoverNode({ sysfsRoot: fx.sysfsRoot, vfState: fileVfState(fx.linksFile) });
      for (const expected of model.pfs.flatMap((p) => p.vfs)) {
        expect(
          await readVf(fx.sysfsRoot, expected.pciAddress, { vfState: fileVfState(fx.linksFile) }),
        ).toEqual(expected);
      }
    }
  });

  it('finds the index by scanning virtfn links when sriov_offset is missing', async () => {
    const node = await simulatedNode()
      .pf('0000:3b:00.0', { netdev: 'ens1f0', vendor: '8086', device: '1572', driver: 'i40e' })
      .vfs(3, { driver: 'vfio-pci', device: '154c' })
      .write(path.join(tmp, 'nooffset'));
    await rm(path.join(node.sysfsRoot, pciDeviceDir('0000:3b:00.0'), 'sriov_offset'));
    expect(await readVf(node.sysfsRoot, '0000:3b:02.2')).toMatchObject({
      index: 2,
      dpdk: true,
      netdev: null,
    });
  });

  it('rejects a non-VF and an unknown address with stable codes', async () => {
    await expect(readVf(f.sysfsRoot, '0000:3b:00.0')).rejects.toMatchObject({ code: VF_LOOKUP_ERROR.notVf });
    await expect(readVf(f.sysfsRoot, '0000:99:00.0')).rejects.toMatchObject({
      code: VF_LOOKUP_ERROR.notFound,
    });
    await expect(readVf(f.sysfsRoot, 'eth0')).rejects.toMatchObject({
      code: VF_LOOKUP_ERROR.notFound,
      message: expect.stringMatching(/not a PCI address/) as unknown,
    });
  });
});

describe('resolveSysfsRoot', () => {
  it('prefers the flag, then NETPLUMB_SYSFS_ROOT, then /sys', () => {
    expect(resolveSysfsRoot('/x/sys', { NETPLUMB_SYSFS_ROOT: '/y/sys' })).toBe('/x/sys');
    expect(resolveSysfsRoot(undefined, { NETPLUMB_SYSFS_ROOT: '/y/sys' })).toBe('/y/sys');
    expect(resolveSysfsRoot(undefined, {})).toBe('/sys');
    expect(resolveSysfsRoot(undefined, { NETPLUMB_SYSFS_ROOT: '' })).toBe('/sys');
  });
});

describe('discoverNode on this machine', () => {
  it('reads the real /sys without crashing and lists its NICs', async () => {
    const m = await discoverNode({ sysfsRoot: '/sys', vfState: null });
    expect(m.nics.length).toBeGreaterThan(0);
    expect(m.nics.every((n) => n.name !== 'lo')).toBe(true);
  });
});
