import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createIproute2VfSettings } from './vf-settings-iproute2.js';
import { createVfSettingsRecorder } from '../../sim/vf-settings-recorder.js';
import { describeVfSettingsContract } from './vf-settings.contract.js';
import { parseVfChangeArgs, vfChangeArgs, vfSettingsFromIpJson, VlanProto } from './vf-settings.js';
import type { VfChange } from './vf-settings.js';
import type { CommandRunner } from '../../lib/command.js';
import { readVf } from '../discover.js';
import { simulatedNode } from '../../sim/simulated-node.js';
import { fileVfState } from '../vf-state.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describeVfSettingsContract('recorder (in memory)', () =>
  Promise.resolve({ port: createVfSettingsRecorder(), pf: 'ens1f0', vf: 3 }),
);
describeVfSettingsContract('recorder (directory)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'np-sriovcni-rec-'));
  dirs.push(dir);
  return { port: createVfSettingsRecorder({ dir }), pf: 'ens1f0', vf: 3 };
});

const change: fc.Arbitrary<VfChange> = fc.oneof(
  fc.record({
    kind: fc.constant('vlan' as const),
    vlan: fc.integer({ min: 0, max: 4094 }),
    qos: fc.integer({ min: 0, max: 7 }),
    proto: fc.constantFrom(VlanProto.Q, VlanProto.AD),
  }),
  fc.record({
    kind: fc.constant('mac' as const),
    mac: fc
      .array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 })
      .map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':')),
  }),
  fc.record({
    kind: fc.constant('rate' as const),
    minTxRate: fc.nat({ max: 100000 }),
    maxTxRate: fc.nat({ max: 100000 }),
  }),
  fc.record({ kind: fc.constant('spoofchk' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('trust' as const), on: fc.boolean() }),
  fc.record({
    kind: fc.constant('state' as const),
    state: fc.constantFrom('auto' as const, 'enable' as const, 'disable' as const),
  }),
);

describe('vfChangeArgs', () => {
  it('speaks `ip link set dev <pf>` syntax', () => {
    expect(vfChangeArgs(3, { kind: 'vlan', vlan: 100, qos: 0, proto: VlanProto.Q })).toEqual([
      'vf',
      '3',
      'vlan',
      '100',
      'qos',
      '0',
    ]);
    expect(vfChangeArgs(1, { kind: 'vlan', vlan: 7, qos: 2, proto: VlanProto.AD }).join(' ')).toBe(
      'vf 1 vlan 7 qos 2 proto 802.1ad',
    );
    expect(vfChangeArgs(0, { kind: 'rate', minTxRate: 1, maxTxRate: 2 }).join(' ')).toBe(
      'vf 0 min_tx_rate 1 max_tx_rate 2',
    );
    expect(vfChangeArgs(2, { kind: 'state', state: 'enable' }).join(' ')).toBe('vf 2 state enable');
  });

  it('round-trips through parseVfChangeArgs for every change', () => {
    fc.assert(
      fc.property(fc.nat({ max: 255 }), change, (vf, c) => {
        expect(parseVfChangeArgs(vfChangeArgs(vf, c))).toEqual({ vf, change: c });
      }),
    );
  });
});

describe('vfSettingsFromIpJson', () => {
  it('reads iproute2 vfinfo_list entries, defaulting absent VLAN/QoS/proto', () => {
    expect(
      vfSettingsFromIpJson({
        vf: 0,
        address: 'AA:BB:CC:00:00:01',
        vlan_list: [{ vlan: 100, qos: 2, protocol: '802.1ad' }],
        rate: { max_tx: 1000, min_tx: 10 },
        spoofchk: false,
        trust: true,
        link_state: 'enable',
      }),
    ).toEqual({
      mac: 'aa:bb:cc:00:00:01',
      vlan: 100,
      qos: 2,
      vlanProto: '802.1ad',
      spoofchk: false,
      trust: true,
      linkState: 'enable',
      minTxRate: 10,
      maxTxRate: 1000,
    });
    expect(
      vfSettingsFromIpJson({ vf: 1, mac: '00:00:00:00:00:00', spoofchk: true, link_state: 'auto' }),
    ).toMatchObject({ vlan: 0, qos: 0, vlanProto: '802.1Q', trust: null, linkState: 'auto' });
  });
});

describe('iproute2 PfVfSettings', () => {
  it('runs `ip link set dev <pf> vf N …` and parses `ip -json link show dev <pf>`', async () => {
    const seen: string[][] = [];
    const run: CommandRunner = (argv) => {
      seen.push([...argv]);
      const stdout = argv.includes('-json')
        ? JSON.stringify([
            { ifname: 'pf0', vfinfo_list: [{ vf: 2, address: '02:00:00:00:00:02', spoofchk: true }] },
          ])
        : '';
      return Promise.resolve({ stdout, stderr: '' });
    };
    const port = createIproute2VfSettings({ run });
    await port.set('pf0', 2, { kind: 'trust', on: true });
    expect(seen[0]).toEqual(['ip', 'link', 'set', 'dev', 'pf0', 'vf', '2', 'trust', 'on']);
    expect((await port.read('pf0', 2)).mac).toBe('02:00:00:00:00:02');
    await expect(port.read('pf0', 5)).rejects.toMatchObject({ code: 'LINK_NOT_FOUND' });
  });

  it('fails with a LinkError naming the command on a PF this kernel does not have', async () => {
    const port = createIproute2VfSettings();
    await expect(port.set('np-nopf0', 0, { kind: 'trust', on: true })).rejects.toThrow(
      /np-nopf0 vf 0 trust on/,
    );
  });
});

describe('recorder mirroring a simulated node (links.json)', () => {
  it("starts from the node's VF table and writes changes back where discovery reads them", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'np-sriovcni-rec-'));
    dirs.push(dir);
    const node = await simulatedNode()
      .pf('0000:3b:00.0', { netdev: 'ens9f0', vendor: '8086', device: '158b', driver: 'i40e' })
      .vfs(2, { driver: 'iavf', overrides: { 1: { vlan: 5, trust: true } } })
      .write(path.join(dir, 'node'));
    const rec = createVfSettingsRecorder({ dir: path.join(dir, 'calls'), linksFile: node.linksFile });
    expect(await rec.read('ens9f0', 1)).toMatchObject({ vlan: 5, trust: true, spoofchk: true });
    await rec.set('ens9f0', 1, { kind: 'vlan', vlan: 300, qos: 4, proto: VlanProto.AD });
    await rec.set('ens9f0', 1, { kind: 'trust', on: false });
    const vf = await readVf(node.sysfsRoot, node.vfAddresses[1]!, { vfState: fileVfState(node.linksFile) });
    expect(vf.settings).toMatchObject({ vlan: 300, qos: 4, vlanProto: '802.1ad', trust: false });
    const other = await readVf(node.sysfsRoot, node.vfAddresses[0]!, {
      vfState: fileVfState(node.linksFile),
    });
    expect(other.settings).toMatchObject({ vlan: 0, trust: false });
  });
});

describe('recorder', () => {
  it('appends each call to <pf>.calls in order and injects failures from <pf>.fail', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'np-sriovcni-rec-'));
    dirs.push(dir);
    const rec = createVfSettingsRecorder({ dir });
    await rec.set('p0', 3, { kind: 'vlan', vlan: 100, qos: 0, proto: VlanProto.Q });
    await rec.set('p0', 3, { kind: 'trust', on: true });
    expect(await readFile(path.join(dir, 'p0.calls'), 'utf8')).toBe('vf 3 vlan 100 qos 0\nvf 3 trust on\n');
    const other = createVfSettingsRecorder({ dir });
    expect((await other.calls('p0')).map((c) => c.line)).toEqual(['vf 3 vlan 100 qos 0', 'vf 3 trust on']);
    expect((await other.read('p0', 3)).vlan).toBe(100);
    await rec.failOn('p0', 'vf 3 spoofchk');
    await expect(other.set('p0', 3, { kind: 'spoofchk', on: false })).rejects.toThrow(/injected/);
    expect(await other.calls('p0')).toHaveLength(2);
  });
});
