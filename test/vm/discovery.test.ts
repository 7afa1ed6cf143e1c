// Node discovery (sriov/discover.ts) on the guest's real kernel: a real PCI SR-IOV tree (the
// emulated NVMe PF behind a NUMA-bound bridge, with an IOMMU), real VF state from iproute2 on a
// netdevsim PF, and real VLAN sub-interfaces as NICs.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverNode } from '../../sriov/discover.js';
import type { Pf } from '../../sriov/model.js';
import { iproute2VfState, readIpLinkTable } from '../../sriov/vf-state.js';
import { PCI_DEVICES, findSriovPf, linkTarget, readSysfs, run, uniqueName } from './support/guest.js';
import { createNetdevsimPf } from './support/netdevsim.js';
import type { NetdevsimPf } from './support/netdevsim.js';
import { kernelSnapshot } from './support/snapshot.js';
import type { KernelSnapshot } from './support/snapshot.js';

async function discoverPf(address: string): Promise<Pf> {
  const model = await discoverNode({ sysfsRoot: '/sys', vfState: iproute2VfState(), all: true });
  const pf = model.pfs.find((p) => p.pciAddress === address);
  if (pf === undefined) throw new Error(`discovery did not report PF ${address}`);
  return pf;
}

describe('discovery of a real PCI SR-IOV PF (emulated NVMe)', () => {
  let pfAddr: string;
  let pfDir: string;
  let before: KernelSnapshot;

  beforeAll(async () => {
    before = await kernelSnapshot();
    pfAddr = await findSriovPf();
    pfDir = path.join(PCI_DEVICES, pfAddr);
    // VFs come up without a driver (the nvme driver would only fail to probe them).
    await writeFile(path.join(pfDir, 'sriov_drivers_autoprobe'), '0');
    await writeFile(path.join(pfDir, 'sriov_numvfs'), '2');
  });
  afterAll(async () => {
    await writeFile(path.join(pfDir, 'sriov_numvfs'), '0');
    await writeFile(path.join(pfDir, 'sriov_drivers_autoprobe'), '1');
    expect(await kernelSnapshot()).toEqual(before);
  });

  it('reports the PF with its VFs in index order, each pointing back at the PF', async () => {
    const pf = await discoverPf(pfAddr);
    expect(pf).toMatchObject({ kind: 'pf', totalVfs: 4, numVfs: 2, driver: 'nvme', vendor: '1b36' });
    expect(pf.vfs.map((v) => v.index)).toEqual([0, 1]);
    for (const vf of pf.vfs) {
      expect(vf.pfPciAddress).toBe(pfAddr);
      expect(await linkTarget(path.join(pfDir, `virtfn${vf.index}`))).toBe(vf.pciAddress);
      expect(await linkTarget(path.join(PCI_DEVICES, vf.pciAddress, 'physfn'))).toBe(pfAddr);
    }
  });

  it('reads NUMA node 1 from the pxb-pcie bridge and one IOMMU group per VF', async () => {
    const pf = await discoverPf(pfAddr);
    expect(pf.numaNode).toBe(1);
    const groups = pf.vfs.map((v) => v.iommuGroup);
    for (const [i, vf] of pf.vfs.entries()) {
      expect(vf.numaNode).toBe(1);
      expect(vf.iommuNoiommu).toBe(false);
      expect(String(groups[i])).toBe(await linkTarget(path.join(PCI_DEVICES, vf.pciAddress, 'iommu_group')));
    }
    expect(new Set(groups).size).toBe(2);
    expect(groups).not.toContain(pf.iommuGroup);
  });

  it('sees a VF move to vfio-pci and back to no driver', async () => {
    const vf = (await discoverPf(pfAddr)).vfs[1]!;
    expect(vf).toMatchObject({ driver: null, dpdk: false });
    const dev = path.join(PCI_DEVICES, vf.pciAddress);
    await writeFile(path.join(dev, 'driver_override'), 'vfio-pci');
    await writeFile('/sys/bus/pci/drivers_probe', vf.pciAddress);
    const bound = (await discoverPf(pfAddr)).vfs[1]!;
    expect(bound).toMatchObject({ driver: 'vfio-pci', dpdk: true, netdevs: [] });
    expect(existsSync(`/dev/vfio/${bound.iommuGroup}`)).toBe(true);
    await writeFile(path.join(dev, 'driver', 'unbind'), vf.pciAddress);
    await writeFile(path.join(dev, 'driver_override'), '\n');
    expect((await discoverPf(pfAddr)).vfs[1]).toMatchObject({ driver: null, dpdk: false });
    expect(await readSysfs(path.join(dev, 'driver_override'))).toBe('(null)');
  });
});

describe('discovery of VF state and VLAN NICs through iproute2', () => {
  let nsim: NetdevsimPf;
  let before: KernelSnapshot;

  beforeAll(async () => {
    before = await kernelSnapshot();
    nsim = await createNetdevsimPf(4);
  });
  afterAll(async () => {
    await nsim.remove();
    expect(await kernelSnapshot()).toEqual(before);
  });

  it('reads each VF’s PF-held settings from vfinfo_list', async () => {
    await run('ip', [
      'link',
      'set',
      nsim.pf,
      'vf',
      '1',
      'vlan',
      '210',
      'qos',
      '2',
      'mac',
      '02:00:00:00:02:10',
    ]);
    await run('ip', ['link', 'set', nsim.pf, 'vf', '2', 'vlan', '300', 'proto', '802.1ad', 'trust', 'on']);
    await run('ip', [
      'link',
      'set',
      nsim.pf,
      'vf',
      '3',
      'max_tx_rate',
      '100',
      'min_tx_rate',
      '10',
      'state',
      'disable',
    ]);
    const table = await readIpLinkTable(iproute2VfState());
    expect(table.warnings).toEqual([]);
    const vfs = table.links.get(nsim.pf)?.vfs;
    expect([...(vfs?.keys() ?? [])]).toEqual([0, 1, 2, 3]);
    expect(vfs?.get(0)).toMatchObject({ vlan: 0, qos: 0, vlanProto: '802.1Q', mac: '00:00:00:00:00:00' });
    expect(vfs?.get(1)).toMatchObject({ vlan: 210, qos: 2, mac: '02:00:00:00:02:10' });
    expect(vfs?.get(2)).toMatchObject({ vlan: 300, vlanProto: '802.1ad', trust: true });
    expect(vfs?.get(3)).toMatchObject({ minTxRate: 10, maxTxRate: 100, linkState: 'disable' });
  });

  it('lists VLAN sub-interfaces as NICs with their parent and VLAN id', async () => {
    const parent = uniqueName('npvn');
    try {
      await run('ip', ['link', 'add', parent, 'type', 'dummy']);
      await run('ip', ['link', 'add', 'link', parent, 'name', `${parent}.210`, 'type', 'vlan', 'id', '210']);
      await run('ip', [
        'link',
        'add',
        'link',
        nsim.pf,
        'name',
        `${nsim.pf}.300`,
        'type',
        'vlan',
        'id',
        '300',
      ]);
      const model = await discoverNode({ sysfsRoot: '/sys', vfState: iproute2VfState() });
      const byName = new Map(model.nics.map((n) => [n.name, n]));
      expect(byName.get(parent)).toMatchObject({ kind: 'dummy', parent: null, vlanId: null, virtual: true });
      expect(byName.get(`${parent}.210`)).toMatchObject({ kind: 'vlan', parent, vlanId: 210 });
      expect(byName.get(`${nsim.pf}.300`)).toMatchObject({ kind: 'vlan', parent: nsim.pf, vlanId: 300 });
      expect(byName.get(nsim.pf)).toMatchObject({ kind: null, parent: null, pciAddress: null });
    } finally {
      await run('ip', ['link', 'del', parent]).catch(() => undefined);
      await run('ip', ['link', 'del', `${nsim.pf}.300`]).catch(() => undefined);
    }
  });
});
