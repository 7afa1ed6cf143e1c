import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStateStore } from '../records/state.js';
import { readVf } from '../discover.js';
import { netnsAlive } from '../link/netns.js';
import { createVfSettingsRecorder } from '../../sim/vf-settings-recorder.js';
import { simulatedNode } from '../../sim/simulated-node.js';
import type { WrittenNode } from '../../sim/simulated-node.js';
import { vfCommand } from './command.js';
import type { ProvisionDeps } from './operations.js';
import { bindVfs, setVfCount } from './operations.js';
import type { PciControl } from './pci-control.js';
import { createSimulatedPciControl } from '../../sim/pci-control.js';
import { openSimulatedNode } from '../../sim/simulation.js';
import { readPf } from './pf-tree.js';
import { applyPolicy, parsePolicy } from './policy.js';

const PF = '0000:3b:00.0';
let dir: string;
let node: WrittenNode;
let deps: ProvisionDeps;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-sriovcni-prov-'));
  node = await simulatedNode()
    .pf(PF, { netdev: 'ens1f0', vendor: '8086', device: '158b', driver: 'i40e', totalVfs: 16 })
    .vfs(4, { driver: 'iavf', device: '154c', overrides: { 3: { driver: 'vfio-pci' } } })
    .write(path.join(dir, 'node'));
  deps = {
    sysfsRoot: node.sysfsRoot,
    control: createSimulatedPciControl(node.sysfsRoot),
    settings: createVfSettingsRecorder({ dir: path.join(dir, 'pf-calls') }),
    cniState: createStateStore(path.join(dir, 'cni-state')),
    netnsAlive,
  };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function recordingControl(inner: PciControl, log: string[]): PciControl {
  return {
    async writeNumVfs(pf, n) {
      log.push(`numvfs ${pf} ${n}`);
      await inner.writeNumVfs(pf, n);
    },
    async bindDriver(vf, driver) {
      log.push(`bind ${vf} ${driver}`);
      await inner.bindDriver(vf, driver);
    },
  };
}

describe('vf set-count', () => {
  it('goes through 0 when changing a non-zero count, and VFs come back at the same addresses', async () => {
    const log: string[] = [];
    const changes = await setVfCount(
      { ...deps, control: recordingControl(deps.control, log) },
      'ens1f0',
      2,
      false,
    );
    expect(log).toEqual([`numvfs ${PF} 0`, `numvfs ${PF} 2`]);
    expect(changes).toEqual([{ pf: PF, what: 'numVfs', from: '4', to: '2' }]);
    const pf = await readPf(node.sysfsRoot, PF);
    expect(pf.numVfs).toBe(2);
    expect(pf.vfs.map((v) => v.pciAddress)).toEqual(node.vfAddresses.slice(0, 2));
    expect(pf.vfs.map((v) => v.driver)).toEqual([null, null]);
    const vfDir = path.join(node.sysfsRoot, 'bus/pci/devices', node.vfAddresses[0]!);
    expect(await readFile(path.join(vfDir, 'modalias'), 'utf8')).toBe(
      'pci:v00008086d0000154Csv00008086sd00000000bc02sc00i00\n',
    );
    // Discovery reads the new VFs like any other.
    expect(await readVf(node.sysfsRoot, node.vfAddresses[1]!)).toMatchObject({
      index: 1,
      pfPciAddress: PF,
      pfNetdev: 'ens1f0',
    });
    await expect(readVf(node.sysfsRoot, node.vfAddresses[3]!)).rejects.toThrow(/not found/);
  });

  it('changes nothing when the count is already right', async () => {
    const log: string[] = [];
    expect(await setVfCount({ ...deps, control: recordingControl(deps.control, log) }, PF, 4, false)).toEqual(
      [],
    );
    expect(log).toEqual([]);
  });

  it('refuses while a pod holds a VF unless forced', async () => {
    await deps.cniState.setOwner(node.vfAddresses[1]!, `/proc/${process.pid}/ns/net`);
    await expect(setVfCount(deps, 'ens1f0', 8, false)).rejects.toThrow(
      /0000:3b:02.1 .*in use by a pod.*--force/,
    );
    expect((await readPf(node.sysfsRoot, PF)).numVfs).toBe(4);
    expect(await setVfCount(deps, 'ens1f0', 8, true)).toHaveLength(1);
    expect((await readPf(node.sysfsRoot, PF)).vfs).toHaveLength(8);
  });

  it('ignores allocations whose netns is gone', async () => {
    await deps.cniState.setOwner(node.vfAddresses[1]!, '/run/netns/np-sriovcni-gone');
    expect(await setVfCount(deps, PF, 0, false)).toHaveLength(1);
  });

  it('refuses more VFs than sriov_totalvfs and names unknown PFs', async () => {
    await expect(setVfCount(deps, PF, 17, false)).rejects.toThrow(/at most 16/);
    await expect(setVfCount(deps, 'nope0', 1, false)).rejects.toThrow(/netplumb inspect/);
    await expect(setVfCount(deps, node.vfAddresses[0]!, 1, false)).rejects.toThrow(/not an SR-IOV PF/);
  });
});

describe('vf bind', () => {
  it('moves a VF to vfio-pci (netdev gone, DPDK) and back to its kernel driver (netdev back)', async () => {
    const vf = node.vfAddresses[0]!;
    const before = await readVf(node.sysfsRoot, vf);
    expect(before.netdev).toBe('ens1f0v0');
    const changes = await bindVfs(deps, [vf], 'vfio-pci', false);
    expect(changes).toEqual([{ pf: PF, vf: 0, vfPci: vf, what: 'driver', from: 'iavf', to: 'vfio-pci' }]);
    const dpdk = await readVf(node.sysfsRoot, vf);
    expect(dpdk).toMatchObject({ driver: 'vfio-pci', dpdk: true, netdev: null });
    expect(
      (await readFile(path.join(node.sysfsRoot, 'bus/pci/devices', vf, 'driver_override'), 'utf8')).trim(),
    ).toBe('vfio-pci');
    expect(path.basename(await readlink(path.join(node.sysfsRoot, 'bus/pci/drivers/vfio-pci', vf)))).toBe(vf);

    await bindVfs(deps, [vf], 'iavf', false);
    expect(await readVf(node.sysfsRoot, vf)).toMatchObject({
      driver: 'iavf',
      dpdk: false,
      netdev: 'ens1f0v0',
    });
    expect(await bindVfs(deps, [vf], 'iavf', false)).toEqual([]);
  });

  it('gives a VF created by set-count a netdev when bound to a kernel driver, and none under vfio-pci', async () => {
    await setVfCount(deps, PF, 0, false);
    await setVfCount(deps, PF, 2, false);
    const vf = node.vfAddresses[1]!;
    expect(await readVf(node.sysfsRoot, vf)).toMatchObject({ driver: null, netdev: null });
    await bindVfs(deps, [vf], 'iavf', false);
    const bound = await readVf(node.sysfsRoot, vf);
    expect(bound).toMatchObject({ driver: 'iavf', netdev: 'ens1f0v1', dpdk: false });
    await bindVfs(deps, [vf], 'vfio-pci', false);
    expect(await readVf(node.sysfsRoot, vf)).toMatchObject({ driver: 'vfio-pci', netdev: null, dpdk: true });
  });

  it('refuses a VF in use and a PCI address that is not a VF', async () => {
    await deps.cniState.setOwner(node.vfAddresses[2]!, `/proc/${process.pid}/ns/net`);
    await expect(bindVfs(deps, [node.vfAddresses[2]!], 'vfio-pci', false)).rejects.toThrow(/in use by a pod/);
    await expect(bindVfs(deps, [PF], 'vfio-pci', false)).rejects.toThrow(/not an SR-IOV VF/);
  });
});

describe('vf apply', () => {
  const policy = {
    pfs: [
      {
        pf: 'ens1f0',
        numVfs: 6,
        vfs: [
          { range: '0-1', driver: 'vfio-pci', vlan: 100, trust: 'on' },
          { range: '2-5', driver: 'iavf', spoofchk: 'off' },
        ],
      },
    ],
  };

  it('applies count, drivers and PF-side settings, and a second run changes nothing', async () => {
    const first = await applyPolicy(deps, parsePolicy(policy, 'policy.json'), false);
    expect(first.filter((c) => c.what === 'numVfs')).toEqual([
      { pf: PF, what: 'numVfs', from: '4', to: '6' },
    ]);
    expect(first.filter((c) => c.what === 'driver').map((c) => `${c.vf}:${c.to}`)).toEqual([
      '0:vfio-pci',
      '1:vfio-pci',
      '2:iavf',
      '3:iavf',
      '4:iavf',
      '5:iavf',
    ]);
    const calls = (await createVfSettingsRecorder({ dir: path.join(dir, 'pf-calls') }).calls('ens1f0')).map(
      (c) => c.line,
    );
    expect(calls).toEqual([
      'vf 0 vlan 100 qos 0',
      'vf 0 trust on',
      'vf 1 vlan 100 qos 0',
      'vf 1 trust on',
      'vf 2 spoofchk off',
      'vf 3 spoofchk off',
      'vf 4 spoofchk off',
      'vf 5 spoofchk off',
    ]);
    const pf = await readPf(node.sysfsRoot, PF);
    expect(pf.vfs.map((v) => v.driver)).toEqual(['vfio-pci', 'vfio-pci', 'iavf', 'iavf', 'iavf', 'iavf']);

    expect(await applyPolicy(deps, parsePolicy(policy, 'policy.json'), false)).toEqual([]);
  });

  it('reports progress for every step', async () => {
    const seen: string[] = [];
    await applyPolicy(
      { ...deps, onProgress: (d, t) => seen.push(`${d}/${t}`) },
      parsePolicy(policy, 'p'),
      false,
    );
    expect(seen.at(-1)).toBe('7/7');
  });

  it.each([
    [
      { pfs: [{ pf: 'x', numVfs: 2, vfs: [{ range: '0-2' }] }] },
      /pfs\[0\]\.vfs\[0\]\.range: VF 2 is beyond numVfs 2/,
    ],
    [{ pfs: [{ pf: 'x', numVfs: 4, vfs: [{ range: '0-1' }, { range: '1' }] }] }, /VF 1 is also in vfs\[0\]/],
    [{ pfs: [{ pf: 'x', numVfs: 4, vfs: [{ range: '0', vlan: 4095 }] }] }, /pfs\[0\]\.vfs\[0\]\.vlan/],
    [
      { pfs: [{ pf: 'x', numVfs: 4, vfs: [{ range: '0', tagged: 1 }] }] },
      /pfs\[0\]\.vfs\[0\]: Unrecognized key/,
    ],
    [{ pfs: [{ pf: 'x', numVfs: 4, vfs: [{ range: 'a' }] }] }, /range: "a" is not a VF index/],
  ])('refuses a bad policy naming the key (%#)', (raw, message) => {
    expect(() => parsePolicy(raw, 'policy.json')).toThrow(message);
  });
});

describe('netplumb vf (command)', () => {
  async function cli(args: string[]): Promise<{ out: string; err: string; code: number }> {
    let out = '';
    let err = '';
    const cmd = vfCommand({
      env: {},
      openSimulatedNode,
      stdout: { write: (s: string) => ((out += s), true) },
      stderr: { write: (s: string) => ((err += s), true) },
    });
    cmd.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: (s) => (out += s) });
    for (const sub of cmd.commands) sub.exitOverride().configureOutput({ writeErr: (s) => (err += s) });
    try {
      await cmd.parseAsync(['node', 'vf', ...args]);
      return { out, err, code: 0 };
    } catch (error) {
      return { out, err, code: (error as { exitCode?: number }).exitCode ?? 1 };
    }
  }
  const common = (): string[] => ['--simulated-node', node.dir, '--state-dir', path.join(dir, 'cni-state')];

  it('refuses a VF count that is not a whole number, quoting what the user typed', async () => {
    for (const bad of ['abc', '1.5', '-1', '']) {
      const res = await cli(['set-count', 'ens1f0', bad, ...common()]);
      expect(res.code).toBe(2);
      expect(res.err).toContain(`VF count "${bad}" must be a whole number`);
    }
  });

  it('--sysfs-root is only a path: a simulated tree given that way is changed like the kernel would be told, not simulated', async () => {
    const pfDir = path.join(node.sysfsRoot, 'bus/pci/devices', PF);
    const before = (await readdir(pfDir)).filter((e) => e.startsWith('virtfn')).length;
    await cli([
      'set-count',
      'ens1f0',
      '2',
      '--sysfs-root',
      node.sysfsRoot,
      '--state-dir',
      path.join(dir, 'cni-state'),
    ]);
    // The kernel adapter only writes sriov_numvfs; no simulator removed VF entries.
    expect((await readdir(pfDir)).filter((e) => e.startsWith('virtfn'))).toHaveLength(before);
    expect((await readFile(path.join(pfDir, 'sriov_numvfs'), 'utf8')).trim()).toBe('2');
  });

  it('--simulated-node and --sysfs-root exclude each other', async () => {
    const res = await cli(['set-count', 'ens1f0', '2', ...common(), '--sysfs-root', node.sysfsRoot]);
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/--sysfs-root and --simulated-node exclude each other/);
  });

  it('apply prints what changed, then "nothing to change"; --json for machines', async () => {
    const file = path.join(dir, 'policy.yaml');
    await writeFile(
      file,
      'pfs:\n  - pf: ens1f0\n    numVfs: 2\n    vfs:\n      - range: "0-1"\n        vlan: 7\n',
    );
    const first = await cli(['apply', file, ...common()]);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain(`${PF}: numVfs 4 → 2`);
    expect(first.out).toContain(`${PF} vf 1 (0000:3b:02.1): vlan 0/0 → 7/0`);
    const again = await cli(['apply', file, ...common(), '--json']);
    expect(JSON.parse(again.out)).toEqual({ changed: false, changes: [] });
  });

  it('set-count and bind report errors on stderr with exit code 1', async () => {
    const res = await cli(['set-count', 'ens1f0', '99', ...common()]);
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/error: PF ens1f0 supports at most 16 VFs/);
    const bind = await cli(['bind', node.vfAddresses[0]!, '--driver', 'vfio-pci', '--json', ...common()]);
    expect(bind.code, bind.err).toBe(0);
    expect(JSON.parse(bind.out)).toMatchObject({
      changed: true,
      changes: [{ what: 'driver', to: 'vfio-pci' }],
    });
  });
});
