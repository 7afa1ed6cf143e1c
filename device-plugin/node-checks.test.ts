// The device plugin's side of node readiness: its config.json against a simulated node written
// to disk, the kubelet sockets (real unix sockets), the netplumb_node_check gauge, and
// `netplumb doctor` end to end (table, --json, exit codes).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedNode } from '../sim/simulated-node.js';
import type { WrittenNode } from '../sim/simulated-node.js';
import type { Check } from '../sriov/doctor/check.js';
import type { DoctorDocument } from '../sriov/doctor/render.js';
import { simulatedHost } from '../sriov/node-info.js';
import { fileVfState } from '../sriov/vf-state.js';
import { doctorCommand } from './doctor-command.js';
import { createNodeCheckMetrics, kubeletSocketsCheck, runNodeChecks } from './node-checks.js';

/** expect.stringContaining, typed for object matchers. */
const containing = (s: string): unknown => expect.stringContaining(s) as unknown;

let dir: string;
let node: WrittenNode;
const servers: Server[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-nodechecks-'));
  node = await simulatedNode()
    .pf('0000:3b:00.0', {
      vendor: '8086',
      device: '1572',
      driver: 'i40e',
      netdev: 'ens1f0',
      numa: 0,
      totalVfs: 8,
    })
    .vfs(4, { driver: 'iavf', device: '154c', overrides: { 2: { driver: 'vfio-pci' } } })
    .write(path.join(dir, 'node'));
});
afterAll(async () => {
  for (const s of servers) s.close();
  await rm(dir, { recursive: true, force: true });
});

async function configFile(name: string, resourceList: unknown): Promise<string> {
  const file = path.join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify({ resourceList }));
  return file;
}

async function checksWith(config: string, kubeletRoot = path.join(dir, 'no-kubelet')): Promise<Check[]> {
  const run = await runNodeChecks({
    sysfsRoot: node.sysfsRoot,
    procRoot: path.join(node.dir, 'proc'),
    vfState: fileVfState(node.linksFile),
    host: simulatedHost(node.dir),
    configFile: config,
    resourcePrefix: 'intel.com',
    kubeletRoot,
  });
  return [...run.checks];
}

const byId = (checks: readonly Check[], id: string): Check | undefined => checks.find((c) => c.id === id);

describe('the device plugin config against the node', () => {
  it('passes for disjoint pools that all find devices', async () => {
    const file = await configFile('good', [
      { resourceName: 'netdev', selectors: { drivers: ['iavf'] } },
      { resourceName: 'dpdk', selectors: { drivers: ['vfio-pci'] } },
    ]);
    const checks = await checksWith(file);
    expect(byId(checks, 'dp-config')?.status).toBe('pass');
    expect(byId(checks, 'dp-pools')).toMatchObject({
      status: 'pass',
      fact: 'devices per pool: intel.com/netdev 3, intel.com/dpdk 1',
    });
    expect(byId(checks, 'dp-pool-overlap')?.status).toBe('pass');
    expect(byId(checks, 'pf-vf-drivers')?.status).toBe('pass');
  });

  it('warns about a pool that would be empty', async () => {
    const file = await configFile('empty', [
      { resourceName: 'netdev', selectors: { drivers: ['iavf'] } },
      { resourceName: 'mlx', selectors: { vendors: ['15b3'] } },
    ]);
    const c = byId(await checksWith(file), 'dp-pools');
    expect(c).toMatchObject({
      status: 'warn',
      fact: containing('matching no device on this node: intel.com/mlx'),
    });
  });

  it('warns about VFs two pools match (first pool wins)', async () => {
    const file = await configFile('overlap', [
      { resourceName: 'a', selectors: { pfNames: ['ens1f0#0-1'] } },
      { resourceName: 'b', selectors: { pfNames: ['ens1f0#1-3'] } },
    ]);
    const c = byId(await checksWith(file), 'dp-pool-overlap');
    expect(c?.status).toBe('warn');
    expect(c?.fact).toContain('0000:3b:02.1 (intel.com/a, intel.com/b)');
    expect(c?.fact).not.toContain('0000:3b:02.0');
  });

  it('warns per PF about VFs left out only because of their driver, with the bind command', async () => {
    const file = await configFile('drivers', [
      { resourceName: 'dpdk', selectors: { pfNames: ['ens1f0#2-3'], drivers: ['vfio-pci'] } },
    ]);
    const c = byId(await checksWith(file), 'pf-vf-drivers');
    expect(c).toMatchObject({ status: 'warn', pf: '0000:3b:00.0' });
    expect(c?.fact).toContain('VF 3 0000:3b:02.3 is bound to iavf, intel.com/dpdk selects vfio-pci');
    expect(c?.fact).not.toContain('VF 2');
    expect(c?.fix).toBe('netplumb vf bind --driver vfio-pci 0000:3b:02.3');
  });

  it('fails on a pool that is not served, warns on an ignored key, each with its JSON path, and warns when there is none', async () => {
    const file = await configFile('bad', [{ resourceName: 'x', selectors: { ddpProfiles: ['GTP'] } }]);
    expect(byId(await checksWith(file), 'dp-config')).toMatchObject({
      status: 'fail',
      fact: containing('resourceList[0].selectors.ddpProfiles'),
    });
    const typo = await configFile('typo', [{ resourceName: 'x', selectors: { pfName: ['ens1f0'] } }]);
    expect(byId(await checksWith(typo), 'dp-config')).toMatchObject({
      status: 'warn',
      fact: containing('resourceList[0].selectors.pfName: unknown key; did you mean pfNames?'),
    });
    expect(byId(await checksWith(path.join(dir, 'absent.json')), 'dp-config')?.status).toBe('warn');
  });
});

describe('kubelet sockets', () => {
  it('passes when both sockets are unix sockets, warns naming the missing one otherwise', async () => {
    const root = path.join(dir, 'kubelet');
    await mkdir(path.join(root, 'device-plugins'), { recursive: true });
    await mkdir(path.join(root, 'pod-resources'), { recursive: true });
    const dp = path.join(root, 'device-plugins', 'kubelet.sock');
    await new Promise<void>((resolve) => servers.push(createServer().listen(dp, resolve)));
    expect(await kubeletSocketsCheck(root)).toMatchObject({
      status: 'warn',
      fact: `no kubelet socket at ${path.join(root, 'pod-resources', 'kubelet.sock')}`,
    });
    const pr = path.join(root, 'pod-resources', 'kubelet.sock');
    await new Promise<void>((resolve) => servers.push(createServer().listen(pr, resolve)));
    expect((await kubeletSocketsCheck(root)).status).toBe('pass');
  });
});

describe('netplumb_node_check', () => {
  it('exposes each check as 0/1/2 by check and pf, and drops checks that went away', async () => {
    const registry = new Registry();
    const m = createNodeCheckMetrics(registry);
    const file = await configFile('metrics', [{ resourceName: 'mlx', selectors: { vendors: ['15b3'] } }]);
    m.update(await checksWith(file));
    const text = await registry.metrics();
    expect(text).toContain('netplumb_node_check{check="iommu",pf=""} 0');
    expect(text).toContain('netplumb_node_check{check="dp-pools",pf=""} 1');
    expect(text).toContain('netplumb_node_check{check="pf-vfs",pf="0000:3b:00.0"} 0');
    m.update([{ id: 'pf-vfs', pf: '0000:3b:00.0', status: 'fail', fact: 'x', fix: 'y' }]);
    const after = await registry.metrics();
    expect(after).toContain('netplumb_node_check{check="pf-vfs",pf="0000:3b:00.0"} 2');
    expect(after).not.toContain('check="iommu"');
  });
});

async function doctorCli(args: readonly string[]): Promise<{ code: number; out: string }> {
  let out = '';
  let code = 0;
  const cmd = doctorCommand({
    env: {},
    stdout: { write: (s: string) => ((out += s), true) },
    stderr: { write: () => true },
    setExitCode: (c) => (code = c),
  });
  cmd.exitOverride();
  await cmd.parseAsync(['node', 'doctor', ...args]);
  return { code, out };
}

describe('netplumb doctor', () => {
  it('--simulated-node --json: the document, exit 1 for warnings (no kubelet here)', async () => {
    const file = await configFile('cli', [
      { resourceName: 'netdev', selectors: { drivers: ['iavf'] } },
      { resourceName: 'dpdk', selectors: { drivers: ['vfio-pci'] } },
    ]);
    const r = await doctorCli([
      '--simulated-node',
      node.dir,
      '--json',
      '--config',
      file,
      '--kubelet-root',
      dir,
    ]);
    const doc = JSON.parse(r.out) as DoctorDocument;
    expect(doc.host).toMatchObject({
      os: 'Simulated Linux (netplumb simulated node)',
      sockets: 1,
      threads: 8,
    });
    expect(doc.summary).toEqual({ pass: doc.checks.length - 1, warn: 1, fail: 0 });
    expect(doc.checks.find((c) => c.status === 'warn')?.id).toBe('kubelet-sockets');
    expect([r.code, doc.exitCode]).toEqual([1, 1]);
  });

  it('prints a table with the fix under each failing check and exits 2', async () => {
    const bare = await simulatedNode()
      .pf('0000:3b:00.0', { vendor: '8086', device: '1572', driver: 'i40e', netdev: 'ens9f0', numa: 0 })
      .write(path.join(dir, 'bare'));
    const r = await doctorCli(['--simulated-node', bare.dir, '--kubelet-root', dir]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/^FAIL {2}pf-vfs +ens9f0 \(0000:3b:00\.0\): sriov_numvfs is 0/m);
    expect(r.out).toMatch(/^ +fix: netplumb vf set-count ens9f0 N/m);
    expect(r.out).toMatch(/^not ready: \d+ pass, 2 warn, 1 fail$/m);
  });
});
