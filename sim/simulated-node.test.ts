import { lstat, mkdtemp, readdir, readFile, readlink, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../test/support/bin.js';
import { NODE_PRESETS } from './simulated-node-presets.js';
import { removeVf, setLinkState, simulatedNode, SIMULATED_NODE_ERROR } from './simulated-node.js';
import type { WrittenNode } from './simulated-node.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'np-node-sim-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function x710(): ReturnType<typeof simulatedNode> {
  return simulatedNode()
    .pf('0000:3b:00.0', { netdev: 'ens785f0', vendor: '8086', device: '1572', driver: 'i40e', numa: 0 })
    .vfs(3, {
      driver: 'iavf',
      device: '154c',
      overrides: { 1: { driver: 'vfio-pci' }, 2: { driver: 'igb_uio', vlan: 5 } },
    })
    .nic('0000:5e:00.0', { netdev: 'ens2f0', vendor: '8086', device: '1563', driver: 'ixgbe' })
    .vlan('ens2f0.210', { parent: 'ens2f0', id: 210 });
}

/** Every symlink under dir, relative path → raw target. */
async function links(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const p = path.join(rel, e.name);
      if (e.isSymbolicLink()) out.set(p, await readlink(path.join(dir, p)));
      else if (e.isDirectory()) await walk(p);
    }
  };
  await walk('.');
  return out;
}

describe('simulatedNode().write()', () => {
  let node: WrittenNode;
  beforeAll(async () => {
    node = await x710().write(path.join(tmp, 'x710'));
  });

  it('puts devices under devices/pci0000:<bus> and links bus/pci/devices to them like the kernel', async () => {
    const sys = node.sysfsRoot;
    expect(await readlink(path.join(sys, 'bus/pci/devices/0000:3b:02.0'))).toBe(
      '../../../devices/pci0000:3b/0000:3b:02.0',
    );
    expect((await lstat(path.join(sys, 'devices/pci0000:3b/0000:3b:02.0'))).isDirectory()).toBe(true);
    expect(await readlink(path.join(sys, 'devices/pci0000:3b/0000:3b:02.0/driver'))).toBe(
      '../../../bus/pci/drivers/iavf',
    );
    expect(await readlink(path.join(sys, 'devices/pci0000:3b/0000:3b:00.0/virtfn1'))).toBe('../0000:3b:02.1');
    expect(await readlink(path.join(sys, 'devices/pci0000:3b/0000:3b:02.1/physfn'))).toBe('../0000:3b:00.0');
    expect(await readlink(path.join(sys, 'class/net/ens785f0'))).toBe(
      '../../devices/pci0000:3b/0000:3b:00.0/net/ens785f0',
    );
    expect(await readlink(path.join(sys, 'class/net/ens2f0.210'))).toBe(
      '../../devices/virtual/net/ens2f0.210',
    );
    expect(await readlink(path.join(sys, 'devices/virtual/net/ens2f0.210/lower_ens2f0'))).toBe(
      '../../../pci0000:5e/0000:5e:00.0/net/ens2f0',
    );
  });

  it('writes only relative symlinks, and every one of them resolves inside the tree', async () => {
    const all = await links(node.sysfsRoot);
    expect(all.size).toBeGreaterThan(30);
    const root = await realpath(node.sysfsRoot);
    for (const [p, target] of all) {
      expect(path.isAbsolute(target), p).toBe(false);
      const resolved = await realpath(path.join(node.sysfsRoot, p));
      expect(resolved.startsWith(root), `${p} -> ${target}`).toBe(true);
    }
  });

  it('writes IDs in the kernel formats: 0x-prefixed files and an upper-case modalias', async () => {
    const dir = path.join(node.sysfsRoot, 'bus/pci/devices/0000:3b:02.0');
    expect(await readFile(path.join(dir, 'vendor'), 'utf8')).toBe('0x8086\n');
    expect(await readFile(path.join(dir, 'class'), 'utf8')).toBe('0x020000\n');
    expect(await readFile(path.join(dir, 'modalias'), 'utf8')).toBe(
      'pci:v00008086d0000154Csv00008086sd00000000bc02sc00i00\n',
    );
    expect(await readFile(path.join(dir, 'numa_node'), 'utf8')).toBe('0\n');
    const pf = path.join(node.sysfsRoot, 'bus/pci/devices/0000:3b:00.0');
    expect(await readFile(path.join(pf, 'sriov_numvfs'), 'utf8')).toBe('3\n');
    expect(await readFile(path.join(pf, 'sriov_offset'), 'utf8')).toBe('16\n');
  });

  it('gives vfio VFs no net/ and uio VFs a uio/uioN', async () => {
    const vfio = path.join(node.sysfsRoot, 'bus/pci/devices/0000:3b:02.1');
    await expect(stat(path.join(vfio, 'net'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readlink(path.join(vfio, 'iommu_group'))).toMatch(
      /^\.\.\/\.\.\/\.\.\/kernel\/iommu_groups\/\d+$/,
    );
    expect(await readdir(path.join(node.sysfsRoot, 'bus/pci/devices/0000:3b:02.2/uio'))).toEqual(['uio0']);
  });

  it('writes links.json as iproute2 prints it, with vfinfo_list and VLAN linkinfo', async () => {
    const json = JSON.parse(await readFile(node.linksFile, 'utf8')) as Record<string, unknown>[];
    const pf = json.find((l) => l.ifname === 'ens785f0');
    expect(pf?.vfinfo_list).toEqual([
      expect.objectContaining({ vf: 0, vlan_list: [{}] }),
      expect.objectContaining({ vf: 1 }),
      expect.objectContaining({ vf: 2, vlan_list: [{ vlan: 5 }], spoofchk: true, link_state: 'auto' }),
    ]);
    expect(json.find((l) => l.ifname === 'ens2f0.210')).toMatchObject({
      link: 'ens2f0',
      linkinfo: { info_kind: 'vlan', info_data: { protocol: '802.1Q', id: 210 } },
    });
    expect(json.map((l) => l.ifname)).not.toContain('ens785f0v1');
  });
});

describe('simulatedNode() input checks', () => {
  const expectError = (f: () => unknown, message: RegExp) => {
    expect(f).toThrow(
      expect.objectContaining({
        code: SIMULATED_NODE_ERROR,
        message: expect.stringMatching(message) as unknown,
      }),
    );
  };

  it('names the bad field and the fix', () => {
    expectError(
      () => simulatedNode().pf('3b:00.0', { vendor: '8086', device: '1572' }),
      /use the full lower-case form/,
    );
    expectError(
      () => simulatedNode().pf('0000:3b:00.0', { vendor: '0x8086', device: '1572' }),
      /vendor.*4 lower-case hex/,
    );
    expectError(() => simulatedNode().vfs(1), /needs a pf\(\) before it/);
    expectError(
      () => simulatedNode().pf('0000:3b:00.0', { vendor: '8086', device: '1572', totalVfs: 2 }).vfs(3),
      /raise totalVfs/,
    );
    expectError(
      () =>
        simulatedNode()
          .pf('0000:3b:00.0', { vendor: '8086', device: '1572' })
          .nic('0000:3b:00.0', { netdev: 'x', vendor: '8086', device: '1572' }),
      /used twice/,
    );
    expectError(() => simulatedNode().vlan('a.1', { parent: 'a', id: 1 }), /parent "a" is not a netdev/);
    expectError(
      () =>
        simulatedNode().nic('0000:01:00.0', {
          netdev: 'averyveryverylongname',
          vendor: '8086',
          device: '1521',
        }),
      /1\.\.15 characters/,
    );
  });
});

describe('setLinkState and removeVf', () => {
  it('flip a VF netdev in sysfs and links.json', async () => {
    const node = await x710().write(path.join(tmp, 'flip'));
    await setLinkState(node, 'ens785f0v0', { operstate: 'down', carrier: false });
    const dir = path.join(node.sysfsRoot, 'class/net/ens785f0v0');
    expect(await readFile(path.join(dir, 'operstate'), 'utf8')).toBe('down\n');
    expect(await readFile(path.join(dir, 'carrier'), 'utf8')).toBe('0\n');
    const json = JSON.parse(await readFile(node.linksFile, 'utf8')) as {
      ifname: string;
      operstate: string;
      flags: string[];
    }[];
    expect(json.find((l) => l.ifname === 'ens785f0v0')).toMatchObject({
      operstate: 'DOWN',
      flags: ['BROADCAST', 'MULTICAST'],
    });
    await expect(setLinkState(node, 'nope0', { operstate: 'up', carrier: true })).rejects.toMatchObject({
      code: SIMULATED_NODE_ERROR,
    });
  });

  it('removeVf takes the VF and every link to it away, and refuses a PF', async () => {
    const node = await x710().write(path.join(tmp, 'remove'));
    await removeVf(node, '0000:3b:02.0');
    const all = await links(node.sysfsRoot);
    for (const [p, target] of all) expect(`${p} -> ${target}`).not.toMatch(/0000:3b:02\.0/);
    expect([...all.keys()].some((p) => p.endsWith('virtfn0'))).toBe(false);
    const json = JSON.parse(await readFile(node.linksFile, 'utf8')) as {
      ifname: string;
      vfinfo_list?: { vf: number }[];
    }[];
    expect(json.map((l) => l.ifname)).not.toContain('ens785f0v0');
    expect(json.find((l) => l.ifname === 'ens785f0')?.vfinfo_list?.map((v) => v.vf)).toEqual([1, 2]);
    await expect(removeVf(node, '0000:3b:00.0')).rejects.toMatchObject({
      message: expect.stringMatching(/not a VF/) as unknown,
    });
  });
});

describe('test/fixtures/nodes', () => {
  // The committed fixtures are generated by `hack/mknode --fixtures`; a stale copy fails here.
  for (const [name, preset] of Object.entries(NODE_PRESETS)) {
    it(`${name} matches what its preset writes today`, async () => {
      const fresh = await preset().write(path.join(tmp, `fresh-${name}`));
      const committed = path.join(PROJECT_ROOT, 'test/fixtures/nodes', name);
      expect(await links(path.join(committed, 'sys'))).toEqual(await links(fresh.sysfsRoot));
      expect(await readFile(path.join(committed, 'links.json'), 'utf8')).toBe(
        await readFile(fresh.linksFile, 'utf8'),
      );
      const files = async (root: string) => {
        const out: Record<string, string> = {};
        const walk = async (rel: string): Promise<void> => {
          for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
            const p = path.join(rel, e.name);
            if (e.isFile()) out[p] = await readFile(path.join(root, p), 'utf8');
            else if (e.isDirectory()) await walk(p);
          }
        };
        await walk('.');
        return out;
      };
      expect(await files(path.join(committed, 'sys'))).toEqual(await files(fresh.sysfsRoot));
    });
  }
});
