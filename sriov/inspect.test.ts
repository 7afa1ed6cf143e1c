import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeArgsFor, PROJECT_ROOT } from '../test/support/bin.js';
import { discoverNode } from './discover.js';
import { inspectDocument, renderInspect, selectPf } from './inspect.js';
import { pciDeviceDir } from '../sim/simulated-node.js';
import { intelX710Node } from '../sim/simulated-node-presets.js';
import { fileVfState } from './vf-state.js';

const run = promisify(execFile);
const X710 = path.join(PROJECT_ROOT, 'test/fixtures/nodes/intel-x710');
const CX5 = path.join(PROJECT_ROOT, 'test/fixtures/nodes/mellanox-cx5');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function netplumb(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const r = await run(process.execPath, [...nodeArgsFor('bin/netplumb.ts'), ...args], {
      env: { PATH: process.env.PATH, ...env },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const fixtureArgs = (dir: string) => [
  '--sysfs-root',
  path.join(dir, 'sys'),
  '--links-file',
  path.join(dir, 'links.json'),
];

// Each case runs the real CLI (node + tsx); give slow, busy machines room.
const CLI = { timeout: 120_000 };

describe('netplumb inspect --json', CLI, () => {
  it('prints exactly the documented schema with absent values as null', async () => {
    const r = await netplumb(['inspect', '--json', ...fixtureArgs(X710)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as {
      node: Record<string, unknown>;
      pfs: Record<string, unknown>[];
      nics: Record<string, unknown>[];
    };
    expect(Object.keys(doc)).toEqual(['node', 'pfs', 'nics']);
    expect(Object.keys(doc.node)).toEqual([
      'os',
      'kernel',
      'cpuModel',
      'sockets',
      'cores',
      'threads',
      'memTotalBytes',
      'origin',
      'numaNodes',
    ]);
    const pf = doc.pfs[0]!;
    expect(Object.keys(pf)).toEqual([
      'pciAddress',
      'netdev',
      'vendor',
      'device',
      'driver',
      'numaNode',
      'linkType',
      'totalVfs',
      'numVfs',
      'vfs',
    ]);
    const vfs = pf.vfs as Record<string, unknown>[];
    expect(Object.keys(vfs[0]!)).toEqual([
      'index',
      'pciAddress',
      'vendor',
      'device',
      'driver',
      'netdev',
      'iommuGroup',
      'numaNode',
      'mac',
      'vlan',
      'qos',
      'spoofchk',
      'trust',
      'linkState',
      'minTxRate',
      'maxTxRate',
    ]);
    expect(vfs[6]).toMatchObject({ index: 6, driver: 'vfio-pci', netdev: null, vlan: 0 });
    expect(doc.nics.find((n) => n.name === 'ens2f0.210')).toMatchObject({
      parent: 'ens2f0',
      vlanId: 210,
      kind: 'vlan',
    });
  });

  it('equals the in-process document for the same fixture', async () => {
    const r = await netplumb(['inspect', '--json', ...fixtureArgs(CX5)]);
    const model = await discoverNode({
      sysfsRoot: path.join(CX5, 'sys'),
      vfState: fileVfState(path.join(CX5, 'links.json')),
    });
    const { node, ...rest } = JSON.parse(r.stdout) as { node: { numaNodes: { id: number; cpus: string }[] } };
    expect(rest).toEqual(inspectDocument(model));
    // The NUMA part of the header comes from the fixture's sysfs (the host part from this machine).
    expect(node.numaNodes.map((n) => [n.id, n.cpus])).toEqual([
      [0, '0-7'],
      [1, '8-15'],
    ]);
  });

  it('refuses a --simulated-node folder that is not one (exit 2), instead of showing an empty node', async () => {
    const r = await netplumb(['inspect', '--simulated-node', path.join(X710, 'sys')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a simulated node \(it has no sys\/ folder\)/);
  });

  it('takes a simulated node from --simulated-node or NETPLUMB_SIMULATED_NODE', async () => {
    for (const [args, env] of [
      [['--simulated-node', X710], {}],
      [[], { NETPLUMB_SIMULATED_NODE: X710 }],
    ] as const) {
      const r = await netplumb(['inspect', '--json', ...args], env);
      expect((JSON.parse(r.stdout) as { pfs: unknown[] }).pfs).toHaveLength(4);
    }
  });

  it('--pf narrows to one PF (by name or PCI address) and the NICs on it', async () => {
    for (const sel of ['ens785f0', '0000:3b:00.0']) {
      const r = await netplumb(['inspect', '--json', '--pf', sel, ...fixtureArgs(X710)]);
      const doc = JSON.parse(r.stdout) as { pfs: { pciAddress: string }[]; nics: { name: string }[] };
      expect(doc.pfs.map((p) => p.pciAddress)).toEqual(['0000:3b:00.0']);
      expect(doc.nics.map((n) => n.name)).toEqual(['ens785f0']);
    }
  });

  it('--pf with an unknown PF fails with exit 1 and lists the PFs', async () => {
    const r = await netplumb(['inspect', '--pf', 'eth9', ...fixtureArgs(X710)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--pf eth9: no SR-IOV PF .* PFs on this node: ens785f0 \(0000:3b:00\.0\)/);
  });
});

describe('netplumb inspect (human table)', CLI, () => {
  it('nests VFs under their PF, marks DPDK VFs and lists NICs with VLANs', async () => {
    const r = await netplumb(['inspect', ...fixtureArgs(X710)]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^Node {2}.*kernel/);
    // The node header ends with a blank line; the PF table follows.
    lines.splice(0, lines.indexOf('') + 1);
    expect(lines[0]).toMatch(
      /^PF 0000:3b:00\.0 {2}ens785f0 {2}8086:1572 {2}driver i40e {2}numa 0 {2}ether {2}up {2}VFs 8\/64 {2}\(2 DPDK\)$/,
    );
    expect(lines[1]).toMatch(/^ {2}VF +PCI +ID +DRIVER +NETDEV +STATE +IOMMU/);
    expect(lines.find((l) => l.includes('0000:3b:02.6'))).toMatch(/vfio-pci +DPDK +- /);
    expect(lines.find((l) => l.includes('0000:3b:0a.2'))).toMatch(/uio_pci_generic +DPDK uio0/);
    expect(lines.find((l) => l.includes('0000:3b:02.3'))).toMatch(/100\/q3/);
    expect(lines.find((l) => l.includes('0000:af:02.0'))).toMatch(/400 802\.1ad/);
    expect(lines.find((l) => l.startsWith('  ens2f0.210'))).toMatch(/vlan +ens2f0 +210/);
  });

  it('renders the same table in process', async () => {
    const model = await discoverNode({
      sysfsRoot: path.join(X710, 'sys'),
      vfState: fileVfState(path.join(X710, 'links.json')),
    });
    const r = await netplumb(['inspect', ...fixtureArgs(X710)]);
    expect(r.stdout.slice(r.stdout.indexOf('\n\n') + 2)).toBe(renderInspect(model));
    expect(renderInspect(selectPf(model, 'ens801f1'))).toMatch(/VFs 0\/64\n\nOther|VFs 0\/64\n\nNICs/);
  });

  it('runs on this machine’s real /sys (no SR-IOV) and lists its NICs', async () => {
    const r = await netplumb(['inspect', '--sysfs-root', '/sys']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Node {2}.*\nCPU {3}.*\n(NUMA {2}.*\n)+\nNo SR-IOV physical functions found\./);
    expect(r.stdout).toMatch(/\nNICs\n {2}NAME +KIND/);
    const json = await netplumb(['inspect', '--json', '--sysfs-root', '/sys']);
    const doc = JSON.parse(json.stdout) as { pfs: unknown[]; nics: { name: string }[] };
    expect(doc.pfs).toEqual([]);
    expect(doc.nics.length).toBeGreaterThan(0);
  });
});

describe('netplumb inspect on a broken tree', CLI, () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'np-node-inspect-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('prints warnings naming the path on stderr and still prints the rest', async () => {
    const node = await intelX710Node().write(path.join(tmp, 'broken'));
    await rm(path.join(node.sysfsRoot, pciDeviceDir('0000:3b:02.1')), { recursive: true });
    const r = await netplumb([
      'inspect',
      '--json',
      '--sysfs-root',
      node.sysfsRoot,
      '--links-file',
      node.linksFile,
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /^warning: .*bus\/pci\/devices\/0000:3b:02\.1: PCI device unreadable \(dangling link\)$/m,
    );
    const doc = JSON.parse(r.stdout) as { pfs: { vfs: unknown[] }[] };
    expect(doc.pfs[0]?.vfs).toHaveLength(7);
  });
});
