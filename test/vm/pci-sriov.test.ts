// PCI SR-IOV for real: the emulated NVMe PF (behind a pxb-pcie bridge on NUMA node 1, with an
// emulated Intel IOMMU) provisioned with `netplumb vf`, read back by discovery, a VF bound to
// vfio-pci, and the device plugin's Allocate answer for it pointing at device nodes that exist.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerAllocation } from '../../device-plugin/allocate.js';
import { parseConfig } from '../../device-plugin/config.js';
import type { PciPoolDevice } from '../../device-plugin/pools.js';
import { discoverNode } from '../../sriov/discover.js';
import type { Pf } from '../../sriov/model.js';
import { iproute2VfState } from '../../sriov/vf-state.js';
import { netplumbOk } from './support/cli.js';
import { PCI_DEVICES, findSriovPf, linkTarget, readSysfs } from './support/guest.js';
import { kernelSnapshot } from './support/snapshot.js';
import type { KernelSnapshot } from './support/snapshot.js';

async function discoverPf(address: string): Promise<Pf> {
  const model = await discoverNode({ sysfsRoot: '/sys', vfState: iproute2VfState(), all: true });
  const pf = model.pfs.find((p) => p.pciAddress === address);
  if (pf === undefined) throw new Error(`discovery did not report PF ${address}`);
  return pf;
}

describe('PCI SR-IOV on the emulated NVMe PF', () => {
  let pfAddr: string;
  let pfDir: string;
  let before: KernelSnapshot;

  beforeAll(async () => {
    before = await kernelSnapshot();
    pfAddr = await findSriovPf();
    pfDir = path.join(PCI_DEVICES, pfAddr);
    // New VFs stay unbound (as on a node that hands VFs to vfio-pci): the nvme driver would only
    // fail to bring them up, and unbind itself at an unpredictable moment.
    await writeFile(path.join(pfDir, 'sriov_drivers_autoprobe'), '0');
  });
  afterAll(async () => {
    await netplumbOk(['vf', 'set-count', pfAddr, '0']);
    await writeFile(path.join(pfDir, 'sriov_drivers_autoprobe'), '1');
    expect(await kernelSnapshot()).toEqual(before);
  });

  it('netplumb vf set-count creates VFs, and changes a non-zero count through 0', async () => {
    await netplumbOk(['vf', 'set-count', pfAddr, '3']);
    expect(await readSysfs(path.join(pfDir, 'sriov_numvfs'))).toBe('3');
    // The kernel refuses 3 -> 2 directly (EBUSY); the command goes through 0.
    await netplumbOk(['vf', 'set-count', pfAddr, '2']);
    expect(await readSysfs(path.join(pfDir, 'sriov_numvfs'))).toBe('2');
    expect(existsSync(path.join(pfDir, 'virtfn1'))).toBe(true);
    expect(existsSync(path.join(pfDir, 'virtfn2'))).toBe(false);
  });

  it('discovery reports the VFs in index order, linked both ways to their PF', async () => {
    const pf = await discoverPf(pfAddr);
    expect(pf).toMatchObject({ kind: 'pf', totalVfs: 4, numVfs: 2, driver: 'nvme', vendor: '1b36' });
    expect(pf.vfs.map((v) => v.index)).toEqual([0, 1]);
    for (const vf of pf.vfs) {
      expect(vf).toMatchObject({ pfPciAddress: pfAddr, driver: null, dpdk: false });
      expect(await linkTarget(path.join(pfDir, `virtfn${vf.index}`))).toBe(vf.pciAddress);
      expect(await linkTarget(path.join(PCI_DEVICES, vf.pciAddress, 'physfn'))).toBe(pfAddr);
    }
  });

  it('discovery reads NUMA node 1 from the pxb-pcie bridge and one IOMMU group per VF', async () => {
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

  it('netplumb vf bind --driver vfio-pci binds a VF; its Allocate answer names device nodes that exist', async () => {
    const vfAddr = (await discoverPf(pfAddr)).vfs[1]!.pciAddress;
    await netplumbOk(['vf', 'bind', vfAddr, '--driver', 'vfio-pci']);
    expect(await linkTarget(path.join(PCI_DEVICES, vfAddr, 'driver'))).toBe('vfio-pci');
    const vf = (await discoverPf(pfAddr)).vfs[1]!;
    expect(vf).toMatchObject({ driver: 'vfio-pci', dpdk: true, netdevs: [] });

    // Pools take accelerators by PCI class 0x12 (as SRIOV-DP); the NVMe VF is class 0x0108, so the
    // pool device is built here from an accelerator pool's own parsed selector.
    const config = parseConfig(
      JSON.stringify({
        resourceList: [
          { resourceName: 'nvme_vfs', deviceType: 'accelerator', selectors: { pciAddresses: [vfAddr] } },
        ],
      }),
      { resourcePrefix: 'intel.com' },
    ).pools[0]!;
    const device: PciPoolDevice = {
      kind: 'pci',
      id: vf.pciAddress,
      numaNode: vf.numaNode,
      group: pfAddr,
      health: 'Healthy',
      device: vf,
      selector: config.selectors[0]! as PciPoolDevice['selector'],
    };
    const { response } = containerAllocation(
      config,
      new Map([[vf.pciAddress, device]]),
      [vf.pciAddress],
      { vhostNet: false },
      false,
    );
    expect(response.envs).toMatchObject({ PCIDEVICE_INTEL_COM_NVME_VFS: vf.pciAddress });
    expect(response.devices.map((d) => d.hostPath)).toEqual(['/dev/vfio/vfio', `/dev/vfio/${vf.iommuGroup}`]);
    for (const d of response.devices) expect(existsSync(d.hostPath)).toBe(true);
  });

  it('netplumb inspect --all --json shows the PF, its VFs, drivers, NUMA node and IOMMU groups', async () => {
    const pf = await discoverPf(pfAddr);
    const doc = JSON.parse(await netplumbOk(['inspect', '--all', '--pf', pfAddr, '--json'])) as {
      pfs: { pciAddress: string; numaNode: number; numVfs: number; vfs: Record<string, unknown>[] }[];
    };
    expect(doc.pfs).toHaveLength(1);
    expect(doc.pfs[0]).toMatchObject({ pciAddress: pfAddr, numaNode: 1, numVfs: 2 });
    expect(doc.pfs[0]?.vfs.map((v) => [v.index, v.pciAddress, v.driver, v.numaNode, v.iommuGroup])).toEqual(
      pf.vfs.map((vf) => [vf.index, vf.pciAddress, vf.driver, 1, vf.iommuGroup]),
    );
    expect(doc.pfs[0]?.vfs[1]).toMatchObject({ driver: 'vfio-pci' });
  });
});
