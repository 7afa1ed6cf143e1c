// netplumb doctor's hardware checks on simulated nodes written to disk (each check once passing,
// once failing), and on this machine's real /sys and /proc.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { simulatedNode } from '../../sim/simulated-node.js';
import type { SimulatedNodeBuilder } from '../../sim/simulated-node.js';
import { simulatedHost } from '../node-info.js';
import { fileVfState } from '../vf-state.js';
import { exitCodeOf } from './check.js';
import type { Check } from './check.js';
import { runDoctor } from './doctor.js';
import type { DoctorRun } from './doctor.js';

/** expect.stringContaining, typed for object matchers. */
const containing = (s: string): unknown => expect.stringContaining(s) as unknown;

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const x710 = { vendor: '8086', device: '1572', driver: 'i40e', totalVfs: 16 } as const;
const iavf = { driver: 'iavf', device: '154c' } as const;

/** Two PFs: ens1f0 on NUMA 0, ens2f0 on NUMA 1, 4 VFs each (one vfio-pci). */
function twoSocketNode(options?: { iommu?: boolean }): SimulatedNodeBuilder {
  return simulatedNode(options)
    .pf('0000:3b:00.0', { ...x710, netdev: 'ens1f0', numa: 0 })
    .vfs(4, { ...iavf, overrides: { 3: { driver: 'vfio-pci' } } })
    .pf('0000:af:00.0', { ...x710, netdev: 'ens2f0', numa: 1 })
    .vfs(4, { ...iavf, overrides: { 3: { driver: 'vfio-pci' } } });
}

async function doctor(builder: SimulatedNodeBuilder, pf?: string): Promise<DoctorRun> {
  const dir = await mkdtemp(path.join(tmpdir(), 'np-doctor-'));
  dirs.push(dir);
  const node = await builder.write(path.join(dir, 'node'));
  return runDoctor({
    sysfsRoot: node.sysfsRoot,
    procRoot: path.join(node.dir, 'proc'),
    vfState: fileVfState(node.linksFile),
    host: simulatedHost(node.dir),
    ...(pf === undefined ? {} : { pf }),
  });
}

function check(run: DoctorRun, id: string, pf: string | null = null): Check {
  const c = run.checks.find((x) => x.id === id && x.pf === pf);
  if (c === undefined)
    throw new Error(`no check ${id} for ${pf ?? 'the node'} in ${run.checks.map((x) => x.id).join(',')}`);
  return c;
}

describe('netplumb doctor on a DPDK-ready simulated node', () => {
  it('passes every check, so the exit code is 0', async () => {
    const run = await doctor(twoSocketNode());
    expect(run.checks.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(exitCodeOf(run.checks)).toBe(0);
    expect(run.checks.map((c) => c.id)).toEqual(
      expect.arrayContaining([
        'iommu',
        'iommu-cmdline',
        'vfio-pci',
        'hugepages',
        'numa',
        'pf-vfs',
        'pf-cpus',
      ]),
    );
    expect(check(run, 'iommu').fact).toMatch(/^\d+ IOMMU groups/);
    expect(check(run, 'pf-link', '0000:3b:00.0').fact).toBe('ens1f0 is up, 25000 Mb/s full duplex');
    expect(check(run, 'pf-iommu', '0000:3b:00.0').fact).toMatch(
      /^ens1f0 \(0000:3b:00\.0\): IOMMU group \d+, its 4 VFs in 4 groups of their own$/,
    );
  });

  it('--pf narrows the per-PF checks to that PF', async () => {
    const run = await doctor(twoSocketNode(), 'ens2f0');
    expect(new Set(run.checks.flatMap((c) => (c.pf === null ? [] : [c.pf])))).toEqual(
      new Set(['0000:af:00.0']),
    );
    await expect(doctor(twoSocketNode(), 'nope0')).rejects.toThrow(/--pf nope0: no SR-IOV PF/);
  });
});

describe('netplumb doctor finds what is not ready', () => {
  it('IOMMU off: no groups and no intel_iommu=on fail, with the boot options as the fix', async () => {
    const run = await doctor(twoSocketNode({ iommu: false }).system({ cmdline: 'root=/dev/sda1 ro' }));
    expect(check(run, 'iommu')).toMatchObject({
      status: 'fail',
      fix: containing('intel_iommu=on iommu=pt'),
    });
    expect(check(run, 'iommu-cmdline')).toMatchObject({
      status: 'fail',
      fact: 'the command line has neither intel_iommu=on nor amd_iommu=on',
    });
    expect(check(run, 'pf-iommu', '0000:af:00.0').status).toBe('fail');
    expect(exitCodeOf(run.checks)).toBe(2);
  });

  it('IOMMU on without iommu=pt is a warning', async () => {
    const run = await doctor(twoSocketNode().system({ cmdline: 'root=/dev/sda1 intel_iommu=on' }));
    expect(check(run, 'iommu').status).toBe('pass');
    expect(check(run, 'iommu-cmdline')).toMatchObject({
      status: 'warn',
      fact: containing('iommu=pt is not'),
    });
  });

  it('vfio no-IOMMU mode is a warning', async () => {
    const run = await doctor(twoSocketNode().system({ vfioNoiommu: true }));
    expect(check(run, 'vfio-noiommu').status).toBe('warn');
  });

  it('vfio-pci missing fails on a node with SR-IOV PFs', async () => {
    const node = simulatedNode()
      .pf('0000:3b:00.0', { ...x710, netdev: 'ens1f0', numa: 0 })
      .vfs(2, iavf)
      .system({ modules: [] });
    const run = await doctor(node);
    expect(check(run, 'vfio-pci')).toMatchObject({
      status: 'fail',
      fix: containing('modprobe vfio-pci'),
    });
    expect(check(run, 'uio').status).toBe('warn');
  });

  it('no hugepages on the NUMA node of a PF fails for that PF only', async () => {
    const node = twoSocketNode().system({
      numaNodes: { 0: { hugepages: { 2048: { total: 512 } } }, 1: { hugepages: {} } },
    });
    const run = await doctor(node);
    expect(check(run, 'pf-hugepages', '0000:3b:00.0').status).toBe('pass');
    const bad = check(run, 'pf-hugepages', '0000:af:00.0');
    expect(bad.status).toBe('fail');
    expect(bad.fact).toContain('NUMA node 1; node1 hugepages none');
    expect(bad.fix).toContain('/sys/devices/system/node/node1/hugepages/');
    expect(check(run, 'hugepages').status).toBe('pass');
  });

  it('no hugepages at all fails node-wide', async () => {
    const run = await doctor(
      twoSocketNode().system({ numaNodes: { 0: { hugepages: {} }, 1: { hugepages: {} } } }),
    );
    expect(check(run, 'hugepages').status).toBe('fail');
  });

  it('sriov_numvfs 0 fails with the set-count command as the fix', async () => {
    const run = await doctor(simulatedNode().pf('0000:3b:00.0', { ...x710, netdev: 'ens1f0', numa: 0 }));
    expect(check(run, 'pf-vfs', '0000:3b:00.0')).toMatchObject({
      status: 'fail',
      fix: containing('netplumb vf set-count ens1f0'),
    });
  });

  it('isolated CPUs only on the other socket fail for the PF on NUMA 1', async () => {
    // node0 = CPUs 0-7, node1 = CPUs 8-15; isolate 2-7 (node 0 only).
    const run = await doctor(twoSocketNode().system({ isolatedCpus: '2-7', nohzFull: '' }));
    expect(check(run, 'pf-cpus', '0000:3b:00.0').status).toBe('pass');
    const bad = check(run, 'pf-cpus', '0000:af:00.0');
    expect(bad.status).toBe('fail');
    expect(bad.fact).toContain('isolated CPUs 2-7 are all on other NUMA nodes');
    expect(bad.fix).toContain('isolcpus=9-15');
  });

  it('no isolated CPUs at all is a warning', async () => {
    const run = await doctor(
      twoSocketNode().system({ isolatedCpus: '', cmdline: 'intel_iommu=on iommu=pt' }),
    );
    expect(check(run, 'pf-cpus', '0000:3b:00.0').status).toBe('warn');
  });

  it('isolcpus on the command line counts when sysfs has no isolated file content', async () => {
    const run = await doctor(
      twoSocketNode().system({
        isolatedCpus: '',
        nohzFull: '',
        cmdline: 'intel_iommu=on iommu=pt isolcpus=domain,managed_irq,9-15',
      }),
    );
    expect(check(run, 'pf-cpus', '0000:af:00.0').status).toBe('pass');
    expect(check(run, 'pf-cpus', '0000:3b:00.0').status).toBe('fail');
  });

  it('a PF link down is a warning; a PF without a driver fails', async () => {
    const node = simulatedNode()
      .pf('0000:3b:00.0', { ...x710, netdev: 'ens1f0', numa: 0, operstate: 'down', carrier: false })
      .vfs(1, iavf)
      .pf('0000:3b:00.1', { ...x710, driver: null, numa: 0 });
    const run = await doctor(node);
    expect(check(run, 'pf-link', '0000:3b:00.0')).toMatchObject({
      status: 'warn',
      fact: containing('ens1f0 is down, no carrier'),
    });
    expect(check(run, 'pf-driver', '0000:3b:00.1').status).toBe('fail');
  });

  it('reports the firmware where sysfs has it (RDMA fw_ver)', async () => {
    const node = simulatedNode()
      .pf('0000:5e:00.0', {
        vendor: '15b3',
        device: '1017',
        driver: 'mlx5_core',
        netdev: 'ens3f0',
        numa: 0,
        rdma: 'mlx5_0',
      })
      .vfs(1, { driver: 'mlx5_core', device: '1018' });
    const run = await doctor(node);
    expect(check(run, 'pf-driver', '0000:5e:00.0').fact).toBe(
      'ens3f0 (0000:5e:00.0): driver mlx5_core, firmware 16.35.2000',
    );
  });
});

describe('netplumb doctor on this machine', () => {
  it('reads the real /sys and /proc without throwing, and every check says what it saw', async () => {
    const run = await runDoctor({
      sysfsRoot: '/sys',
      procRoot: '/proc',
      vfState: null,
      host: { linkSpeeds: () => Promise.resolve(new Map()) },
    });
    for (const c of run.checks) {
      expect(c.fact.length).toBeGreaterThan(0);
      expect(c.fix === null, `${c.id}: a fix exactly when it did not pass`).toBe(c.status === 'pass');
    }
    if (run.model.pfs.length === 0) {
      expect(check(run, 'sriov-pfs')).toMatchObject({
        status: 'fail',
        fact: containing('no SR-IOV capable network PF'),
      });
    }
  });
});
