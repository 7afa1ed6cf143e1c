// netplumb doctor on a real kernel: the guest's emulated NVMe PF (SR-IOV, behind a pxb-pcie bridge
// on NUMA node 1, with an emulated Intel IOMMU and vfio-pci loaded by the guest's init).
import { release } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Check } from '../../sriov/doctor/check.js';
import type { DoctorDocument } from '../../sriov/doctor/render.js';
import { netplumb } from './support/cli.js';
import { findSriovPf, linkTarget, PCI_DEVICES } from './support/guest.js';

describe('netplumb doctor on the real kernel', () => {
  let pfAddr: string;
  let doc: DoctorDocument;
  let code: number;
  const check = (id: string, pf: string | null = null): Check => {
    const c = doc.checks.find((x) => x.id === id && x.pf === pf);
    if (c === undefined)
      throw new Error(`no ${id} check for ${pf ?? 'the node'}: ${JSON.stringify(doc.checks)}`);
    return c;
  };

  beforeAll(async () => {
    pfAddr = await findSriovPf();
    const r = await netplumb(['doctor', '--all', '--json', '--pf', pfAddr]);
    doc = JSON.parse(r.stdout) as DoctorDocument;
    code = r.code;
  });

  it('answers with the exit code of its worst check and the host systeminformation sees', () => {
    expect(code).toBe(doc.exitCode);
    expect(doc.host).toMatchObject({ origin: 'systeminformation', kernel: release(), threads: 2 });
  });

  it('sees the NVMe PF and its IOMMU group', async () => {
    expect(check('sriov-pfs')).toMatchObject({
      status: 'pass',
      fact: expect.stringContaining(pfAddr) as unknown,
    });
    expect(check('iommu')).toMatchObject({
      status: 'pass',
      fact: expect.stringMatching(/^\d+ IOMMU groups/) as unknown,
    });
    const group = await linkTarget(path.join(PCI_DEVICES, pfAddr, 'iommu_group'));
    expect(check('pf-iommu', pfAddr).fact).toContain(`${pfAddr}: IOMMU group ${group}`);
    expect(check('pf-driver', pfAddr).fact).toContain('driver nvme');
  });

  it('sees vfio-pci loaded and the intel_iommu=on boot option', () => {
    expect(check('vfio-pci').status).toBe('pass');
    expect(check('iommu-cmdline').fact).toContain('intel_iommu=on');
  });

  it('places the PF on NUMA node 1 and compares that node’s hugepages and CPUs', () => {
    expect(check('numa').fact).toMatch(/node0: CPUs 0, .*node1: CPUs 1,/);
    expect(check('pf-hugepages', pfAddr).fact).toContain('is on NUMA node 1');
    expect(check('pf-cpus', pfAddr).fact).toContain('is on NUMA node 1 (CPUs 1)');
  });
});
