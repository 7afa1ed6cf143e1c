import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempNameFor } from './attach.js';
import { createStateStore, Phase } from '../../sriov/records/state.js';
import { createBench } from '../../test/support/sriov-cni-bench.js';
import type { Bench } from '../../test/support/sriov-cni-bench.js';

let bench: Bench;

beforeEach(async () => {
  bench = await createBench();
});
afterEach(async () => {
  await bench.cleanup();
});

function netConf(extra: object = {}): Record<string, unknown> {
  return { cniVersion: '1.0.0', name: 'sriov-net', type: 'sriov', deviceID: bench.vf[0], ...extra };
}

function hostLocal(subnet = '10.77.0.0/24'): object {
  return { type: 'host-local', ranges: [[{ subnet }]], dataDir: path.join(bench.dir, 'ipam') };
}

function parse(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function pfCalls(): Promise<string[]> {
  return (await bench.recorder.calls('npscpf0')).map((c) => c.line);
}

describe('ADD of a netdev VF', () => {
  it('applies PF-side settings in order, moves the VF into the pod under CNI_IFNAME and configures IPAM addresses', async () => {
    const ns = await bench.newNetns();
    const host = await bench.links.get(null, bench.veths[0]!.name);
    const conf = netConf({
      vlan: 100,
      vlanQoS: 2,
      mac: '02:aa:00:00:00:01',
      min_tx_rate: 10,
      max_tx_rate: 100,
      spoofchk: 'off',
      trust: 'on',
      link_state: 'enable',
      ipam: hostLocal(),
    });
    const res = await bench.call('ADD', conf, { containerId: 'c1', netns: ns.path });
    expect(res.exitCode, res.stdout).toBe(0);
    const result = parse(res.stdout);
    expect(result.interfaces).toEqual([{ name: 'net1', mac: '02:aa:00:00:00:01', sandbox: ns.path }]);
    expect(result.ips).toEqual([{ address: '10.77.0.2/24', gateway: '10.77.0.1', interface: 0 }]);

    expect(await pfCalls()).toEqual([
      'vf 0 vlan 100 qos 2',
      'vf 0 mac 02:aa:00:00:00:01',
      'vf 0 min_tx_rate 10 max_tx_rate 100',
      'vf 0 spoofchk off',
      'vf 0 trust on',
      'vf 0 state enable',
    ]);
    expect(await bench.links.get(null, bench.veths[0]!.name)).toBeNull();
    const pod = await bench.links.get(ns.path, 'net1');
    expect(pod).toMatchObject({ mac: '02:aa:00:00:00:01', up: true, index: host?.index });
    expect(await bench.links.addresses(ns.path, 'net1')).toContainEqual({
      family: 'inet',
      cidr: '10.77.0.2/24',
    });
  });

  it('reports MTU and pciID of the interface to 1.1.0 runtimes', async () => {
    const ns = await bench.newNetns();
    const res = await bench.call('ADD', netConf({ cniVersion: '1.1.0' }), {
      containerId: 'c1b',
      netns: ns.path,
    });
    expect(res.exitCode, res.stdout).toBe(0);
    expect(parse(res.stdout).interfaces).toEqual([
      expect.objectContaining({ name: 'net1', mtu: 1500, sandbox: ns.path, pciID: bench.vf[0] }),
    ]);
  });

  it('DEL restores the PF side, then the netdev name, MAC and MTU in the host, and releases the IP; repeated DEL succeeds', async () => {
    const ns = await bench.newNetns();
    const veth = bench.veths[0]!.name;
    const before = await bench.links.get(null, veth);
    const conf = netConf({ vlan: 100, mac: '02:aa:00:00:00:02', trust: 'on', ipam: hostLocal() });
    expect((await bench.call('ADD', conf, { containerId: 'c2', netns: ns.path })).exitCode).toBe(0);
    // A chained tuning plugin may change the MTU in the pod; DEL puts the original back (PR #316).
    await bench.links.setMtu(ns.path, 'net1', 1400);

    const del = await bench.call('DEL', conf, { containerId: 'c2', netns: ns.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect(await pfCalls()).toEqual([
      'vf 0 vlan 100 qos 0',
      'vf 0 mac 02:aa:00:00:00:02',
      'vf 0 trust on',
      'vf 0 trust off',
      'vf 0 mac 00:00:00:00:00:00',
      'vf 0 vlan 0 qos 0',
    ]);
    const after = await bench.links.get(null, veth);
    expect(after).toMatchObject({ name: veth, mac: before?.mac, mtu: 1500, up: false });
    expect(await bench.links.get(ns.path, 'net1')).toBeNull();
    expect(await bench.links.addresses(null, veth)).toEqual([]);
    const ipamFiles = await readdir(path.join(bench.dir, 'ipam', 'sriov-net'));
    expect(ipamFiles.filter((f) => f.startsWith('10.'))).toEqual([]);
    expect(await createStateStore(bench.stateDir).all()).toEqual([]);

    const again = await bench.call('DEL', conf, { containerId: 'c2', netns: ns.path });
    expect(again.exitCode).toBe(0);
    expect(await pfCalls()).toHaveLength(6);
  });

  it('configures static IPAM addresses and routes and prints the result in the config version', async () => {
    const ns = await bench.newNetns();
    const conf = {
      ...netConf({
        ipam: {
          type: 'static',
          addresses: [{ address: '10.9.0.5/24', gateway: '10.9.0.1' }, { address: 'fd00:9::5/64' }],
          routes: [{ dst: '10.10.0.0/16' }],
        },
      }),
      cniVersion: '0.3.1',
    };
    const res = await bench.call('ADD', conf, { containerId: 'c3', netns: ns.path });
    expect(res.exitCode, res.stdout).toBe(0);
    const result = parse(res.stdout);
    expect(result.cniVersion).toBe('0.3.1');
    expect(result.ips).toEqual([
      { version: '4', address: '10.9.0.5/24', gateway: '10.9.0.1', interface: 0 },
      { version: '6', address: 'fd00:9::5/64', interface: 0 },
    ]);
    const addrs = await bench.links.addresses(ns.path, 'net1');
    expect(addrs).toContainEqual({ family: 'inet', cidr: '10.9.0.5/24' });
    expect(addrs).toContainEqual({ family: 'inet6', cidr: 'fd00:9::5/64' });
    expect(await bench.links.routes(ns.path, 'net1')).toContainEqual({
      dst: '10.10.0.0/16',
      gw: '10.9.0.1',
      dev: 'net1',
    });
    expect(result.interfaces).toEqual([expect.objectContaining({ name: 'net1', sandbox: ns.path })]);
  });

  it('gives CNI_ARGS MAC precedence over the config mac, and runtimeConfig.mac over both', async () => {
    const ns = await bench.newNetns();
    const conf = netConf({ mac: '02:00:00:00:00:01' });
    let res = await bench.call('ADD', conf, {
      containerId: 'c4',
      netns: ns.path,
      args: 'IgnoreUnknown=1;MAC=02:00:00:00:00:02',
    });
    expect(res.exitCode, res.stdout).toBe(0);
    expect((await bench.links.get(ns.path, 'net1'))?.mac).toBe('02:00:00:00:00:02');
    expect((await bench.call('DEL', conf, { containerId: 'c4', netns: ns.path })).exitCode).toBe(0);

    const withRuntime = { ...conf, runtimeConfig: { mac: '02:00:00:00:00:03' } };
    res = await bench.call('ADD', withRuntime, {
      containerId: 'c5',
      netns: ns.path,
      args: 'MAC=02:00:00:00:00:02',
    });
    expect(res.exitCode, res.stdout).toBe(0);
    expect((await bench.links.get(ns.path, 'net1'))?.mac).toBe('02:00:00:00:00:03');
    expect((await bench.recorder.read('npscpf0', 0)).mac).toBe('02:00:00:00:00:03');
  });

  it('deletes altnames before the move and restores them on DEL', async () => {
    const ns = await bench.newNetns();
    const veth = bench.veths[0]!.name;
    const alt = `${veth}a`.slice(0, 15);
    await bench.links.addAltname(null, veth, alt);
    expect((await bench.call('ADD', netConf(), { containerId: 'c6', netns: ns.path })).exitCode).toBe(0);
    expect((await bench.links.get(ns.path, 'net1'))?.altnames).toEqual([]);
    expect((await bench.call('DEL', netConf(), { containerId: 'c6', netns: ns.path })).exitCode).toBe(0);
    expect((await bench.links.get(null, veth))?.altnames).toEqual([alt]);
  });

  it('refuses a CNI_IFNAME that already exists in the pod and changes nothing', async () => {
    const ns = await bench.newNetns();
    const res = await bench.call('ADD', netConf({ vlan: 5 }), {
      containerId: 'c7',
      netns: ns.path,
      ifname: 'lo',
    });
    expect(res.exitCode).toBe(1);
    expect(parse(res.stdout).msg).toMatch(/CNI_IFNAME lo already exists/);
    expect(await pfCalls()).toEqual([]);
    expect(await bench.links.get(null, bench.veths[0]!.name)).not.toBeNull();
  });

  it('rolls everything back when a PF-side setting fails', async () => {
    const ns = await bench.newNetns();
    await bench.recorder.failOn('npscpf0', 'vf 0 trust on');
    const before = await bench.links.get(null, bench.veths[0]!.name);
    const conf = netConf({ vlan: 7, mac: '02:bb:00:00:00:01', trust: 'on', ipam: hostLocal() });
    const res = await bench.call('ADD', conf, { containerId: 'c8', netns: ns.path });
    expect(res.exitCode).toBe(1);
    expect(parse(res.stdout).msg).toMatch(/vf 0 trust on/);
    expect(await pfCalls()).toEqual([
      'vf 0 vlan 7 qos 0',
      'vf 0 mac 02:bb:00:00:00:01',
      'vf 0 trust off',
      'vf 0 mac 00:00:00:00:00:00',
      'vf 0 vlan 0 qos 0',
    ]);
    expect(await bench.links.get(null, bench.veths[0]!.name)).toMatchObject({ mac: before?.mac });
    expect(await createStateStore(bench.stateDir).all()).toEqual([]);
    expect(await createStateStore(bench.stateDir).owner(bench.vf[0]!)).toBeNull();
  });

  it('keeps the record when the rollback itself fails, restores what it can, and DEL finishes later', async () => {
    const ns = await bench.newNetns();
    // The driver refuses every trust change: ADD fails, and so does restoring trust.
    await bench.recorder.failOn('npscpf0', 'vf 0 trust');
    const conf = netConf({ vlan: 8, trust: 'on', spoofchk: 'off' });
    const res = await bench.call('ADD', conf, { containerId: 'c10', netns: ns.path });
    expect(res.exitCode).toBe(1);
    expect(parse(res.stdout).msg).toMatch(/rollback is incomplete/);
    expect(await pfCalls()).toEqual([
      'vf 0 vlan 8 qos 0',
      'vf 0 spoofchk off',
      'vf 0 spoofchk on',
      'vf 0 mac 00:00:00:00:00:00',
      'vf 0 vlan 0 qos 0',
    ]);
    expect(await createStateStore(bench.stateDir).load('c10', 'net1')).not.toBeNull();
    await bench.recorder.failOn('npscpf0', null);
    const del = await bench.call('DEL', conf, { containerId: 'c10', netns: ns.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect(await createStateStore(bench.stateDir).load('c10', 'net1')).toBeNull();
    expect(await bench.links.get(null, bench.veths[0]!.name)).not.toBeNull();
  });

  it('rolls back cleanly when the IPAM plugin refuses the config version (Debian host-local has no 1.1.0)', async () => {
    const ns = await bench.newNetns();
    const conf = netConf({ cniVersion: '1.1.0', vlan: 3, ipam: hostLocal() });
    const res = await bench.call('ADD', conf, { containerId: 'c12', netns: ns.path });
    expect(res.exitCode).toBe(1);
    expect(parse(res.stdout)).toMatchObject({
      code: 1,
      msg: expect.stringMatching(/host-local.*incompatible CNI versions/) as unknown,
    });
    expect(await createStateStore(bench.stateDir).all()).toEqual([]);
    expect(await bench.links.get(null, bench.veths[0]!.name)).not.toBeNull();
    expect((await pfCalls()).slice(-1)).toEqual(['vf 0 vlan 0 qos 0']);
    expect((await bench.call('DEL', conf, { containerId: 'c12', netns: ns.path })).exitCode).toBe(0);
  });

  it('a repeated ADD of an attachment whose earlier ADD left a record starts over instead of reporting the VF busy', async () => {
    const ns = await bench.newNetns();
    await bench.recorder.failOn('npscpf0', 'vf 0 trust');
    const conf = netConf({ vlan: 8, trust: 'on' });
    expect((await bench.call('ADD', conf, { containerId: 'c11', netns: ns.path })).exitCode).toBe(1);
    await bench.recorder.failOn('npscpf0', null);
    const retry = await bench.call('ADD', conf, { containerId: 'c11', netns: ns.path });
    expect(retry.exitCode, retry.stdout).toBe(0);
    expect(await bench.links.get(ns.path, 'net1')).not.toBeNull();
    expect((await bench.recorder.read('npscpf0', 0)).trust).toBe(true);
  });

  it('rolls back the move and the IP allocation when IPAM fails after the VF reached the pod', async () => {
    const ns = await bench.newNetns();
    const res = await bench.call(
      'ADD',
      netConf({ ipam: { type: 'static', addresses: [{ address: 'bogus' }] } }),
      {
        containerId: 'c9',
        netns: ns.path,
      },
    );
    expect(res.exitCode).toBe(1);
    expect(await bench.links.get(null, bench.veths[0]!.name)).not.toBeNull();
    expect(await bench.links.get(ns.path, 'net1')).toBeNull();
    expect(await createStateStore(bench.stateDir).all()).toEqual([]);
  });
});

describe('ADD of a DPDK VF (vfio-pci)', () => {
  it('applies only PF-side settings, reports the IPAM addresses without configuring them, and DEL remembers DPDK mode', async () => {
    const ns = await bench.newNetns();
    const conf = netConf({
      deviceID: bench.vf[2],
      vlan: 300,
      mac: '02:dd:00:00:00:01',
      ipam: hostLocal('10.78.0.0/24'),
    });
    const res = await bench.call('ADD', conf, { containerId: 'd1', netns: ns.path });
    expect(res.exitCode, res.stdout).toBe(0);
    const result = parse(res.stdout);
    expect(result.interfaces).toEqual([{ name: 'net1', mac: '02:dd:00:00:00:01', sandbox: ns.path }]);
    expect(result.ips).toEqual([{ address: '10.78.0.2/24', gateway: '10.78.0.1', interface: 0 }]);
    expect(await bench.links.get(ns.path, 'net1')).toBeNull();
    const record = await createStateStore(bench.stateDir).load('d1', 'net1');
    expect(record).toMatchObject({ dpdk: true, origNetdev: null, phase: Phase.DONE });

    const del = await bench.call('DEL', conf, { containerId: 'd1', netns: ns.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect((await bench.recorder.calls('npscpf0')).filter((c) => c.vf === 2).map((c) => c.line)).toEqual([
      'vf 2 vlan 300 qos 0',
      'vf 2 mac 02:dd:00:00:00:01',
      'vf 2 mac 00:00:00:00:00:00',
      'vf 2 vlan 0 qos 0',
    ]);
  });
});

describe('CHECK', () => {
  it('passes for a healthy attachment and fails when the pod interface lost its MAC', async () => {
    const ns = await bench.newNetns();
    const conf = netConf({ vlan: 12, mac: '02:cc:00:00:00:01', ipam: hostLocal() });
    const add = await bench.call('ADD', conf, { containerId: 'k1', netns: ns.path });
    expect(add.exitCode, add.stdout).toBe(0);
    const withPrev = { ...conf, prevResult: parse(add.stdout) };
    const ok = await bench.call('CHECK', withPrev, { containerId: 'k1', netns: ns.path });
    expect(ok.exitCode, ok.stdout).toBe(0);
    await bench.links.setMac(ns.path, 'net1', '02:cc:00:00:00:99');
    const bad = await bench.call('CHECK', withPrev, { containerId: 'k1', netns: ns.path });
    expect(bad.exitCode).toBe(1);
    expect(parse(bad.stdout).msg).toMatch(/MAC 02:cc:00:00:00:99, expected 02:cc:00:00:00:01/);
  });

  it('passes CHECK on to IPAM, which notices a lost allocation', async () => {
    const ns = await bench.newNetns();
    const conf = netConf({ ipam: hostLocal('10.79.0.0/24') });
    const add = await bench.call('ADD', conf, { containerId: 'k3', netns: ns.path });
    expect(add.exitCode, add.stdout).toBe(0);
    const withPrev = { ...conf, prevResult: parse(add.stdout) };
    expect((await bench.call('CHECK', withPrev, { containerId: 'k3', netns: ns.path })).exitCode).toBe(0);
    await rm(path.join(bench.dir, 'ipam', 'sriov-net', '10.79.0.2'));
    const bad = await bench.call('CHECK', withPrev, { containerId: 'k3', netns: ns.path });
    expect(bad.exitCode).toBe(1);
    expect(parse(bad.stdout).msg).toMatch(/host-local/);
  });

  it('fails when the PF no longer holds the configured VLAN', async () => {
    const ns = await bench.newNetns();
    const conf = netConf({ vlan: 12 });
    expect((await bench.call('ADD', conf, { containerId: 'k2', netns: ns.path })).exitCode).toBe(0);
    await bench.recorder.set('npscpf0', 0, { kind: 'vlan', vlan: 13, qos: 0, proto: '802.1Q' });
    const bad = await bench.call('CHECK', conf, { containerId: 'k2', netns: ns.path });
    expect(parse(bad.stdout).msg).toMatch(/VLAN 13, expected 12/);
  });
});

describe('allocation and locking', () => {
  it('lets exactly one of two parallel ADDs for one VF win; the other is told to try again', async () => {
    const [a, b] = [await bench.newNetns(), await bench.newNetns()];
    const conf = netConf({ vlan: 9 });
    const results = await Promise.all([
      bench.call('ADD', conf, { containerId: 'p1', netns: a.path }),
      bench.call('ADD', conf, { containerId: 'p2', netns: b.path }),
    ]);
    expect(results.map((r) => r.exitCode).sort()).toEqual([0, 1]);
    const loser = parse(results.find((r) => r.exitCode === 1)!.stdout);
    expect(loser).toMatchObject({ code: 11 });
    expect(loser.msg).toMatch(/already allocated/);
    expect(await pfCalls()).toEqual(['vf 0 vlan 9 qos 0']);
  });

  it('runs ADDs of different VFs of one PF in parallel, each into its own pod', async () => {
    const [a, b] = [await bench.newNetns(), await bench.newNetns()];
    const results = await Promise.all([
      bench.call('ADD', netConf({ vlan: 61 }), { containerId: 'q1', netns: a.path }),
      bench.call('ADD', netConf({ deviceID: bench.vf[1], vlan: 62 }), { containerId: 'q2', netns: b.path }),
    ]);
    expect(results.map((r) => r.exitCode)).toEqual([0, 0]);
    expect(await bench.links.get(a.path, 'net1')).not.toBeNull();
    expect(await bench.links.get(b.path, 'net1')).not.toBeNull();
    expect((await pfCalls()).sort()).toEqual(['vf 0 vlan 61 qos 0', 'vf 1 vlan 62 qos 0']);
    // Both changes reached the simulated node's VF table (written under a lock).
    expect((await bench.recorder.read('npscpf0', 0)).vlan).toBe(61);
    const links = JSON.parse(await readFile(bench.node.linksFile, 'utf8')) as {
      ifname: string;
      vfinfo_list?: { vf: number; vlan_list?: { vlan?: number }[] }[];
    }[];
    const table = links.find((l) => l.ifname === 'npscpf0')?.vfinfo_list ?? [];
    expect(table.slice(0, 2).map((e) => e.vlan_list?.[0]?.vlan)).toEqual([61, 62]);
  });

  it('refuses a PCI address that is not a VF, naming deviceID', async () => {
    const ns = await bench.newNetns();
    const res = await bench.call('ADD', netConf({ deviceID: '0000:3b:00.0' }), {
      containerId: 'e1',
      netns: ns.path,
    });
    expect(parse(res.stdout)).toMatchObject({ code: 7 });
    expect(parse(res.stdout).msg).toMatch(/^deviceID: 0000:3b:00.0 is not an SR-IOV VF/);
  });

  it('answers bad configs with code 7 naming the key', async () => {
    const ns = await bench.newNetns();
    const res = await bench.call('ADD', netConf({ vlan: 4095 }), { containerId: 'e2', netns: ns.path });
    expect(parse(res.stdout)).toMatchObject({
      code: 7,
      msg: expect.stringMatching(/^vlan: 4095/) as unknown,
    });
  });
});

describe('crashes and dead netns', () => {
  it('DEL succeeds and restores the PF side when the pod netns is already gone', async () => {
    const ns = await bench.newNetns();
    const conf = netConf({ vlan: 21, trust: 'on' });
    expect((await bench.call('ADD', conf, { containerId: 'x1', netns: ns.path })).exitCode).toBe(0);
    await ns.remove();
    const del = await bench.call('DEL', conf, { containerId: 'x1', netns: ns.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect((await pfCalls()).slice(-3)).toEqual([
      'vf 0 trust off',
      'vf 0 mac 00:00:00:00:00:00',
      'vf 0 vlan 0 qos 0',
    ]);
    expect(await createStateStore(bench.stateDir).all()).toEqual([]);
    expect((await bench.call('DEL', conf, { containerId: 'x1' })).exitCode).toBe(0);
  });

  it('DEL finishes an ADD that crashed while the VF was crossing into the pod under its temporary name', async () => {
    const ns = await bench.newNetns();
    const veth = bench.veths[0]!.name;
    const orig = await bench.links.get(null, veth);
    const store = createStateStore(bench.stateDir);
    const temp = tempNameFor(bench.vf[0]!);
    // The state a crash leaves: record at NETDEV_MOVING, PF MAC set, netdev in the pod as temp.
    await store.save({
      kind: 'netplumb-sriov/v1',
      containerId: 'x2',
      ifname: 'net1',
      netns: ns.path,
      deviceID: bench.vf[0]!,
      pfNetdev: 'npscpf0',
      vfIndex: 0,
      dpdk: false,
      phase: Phase.NETDEV_MOVING,
      origSettings: await bench.recorder.read('npscpf0', 0),
      configured: { vlan: false, mac: true, rate: false, spoofchk: false, trust: false, linkState: false },
      origNetdev: { name: veth, mac: orig!.mac, mtu: 1500, altnames: [] },
      tempName: temp,
      podMac: '02:ee:00:00:00:01',
      config: netConf({ mac: '02:ee:00:00:00:01' }),
      result: null,
    });
    await store.setOwner(bench.vf[0]!, ns.path);
    await bench.recorder.set('npscpf0', 0, { kind: 'mac', mac: '02:ee:00:00:00:01' });
    await bench.links.rename(null, veth, temp);
    await bench.links.move(temp, null, ns.path);

    const del = await bench.call('DEL', netConf(), { containerId: 'x2', netns: ns.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect(await bench.links.get(null, veth)).toMatchObject({ name: veth, mac: orig!.mac });
    expect(await bench.links.get(ns.path, temp)).toBeNull();
    expect((await bench.recorder.read('npscpf0', 0)).mac).toBe('00:00:00:00:00:00');
    expect(await store.owner(bench.vf[0]!)).toBeNull();
  });

  it('the next ADD recovers a VF whose pod netns died without DEL (sriov-cni #349)', async () => {
    const [dead, next] = [await bench.newNetns(), await bench.newNetns()];
    const veth = bench.veths[0]!.name;
    const orig = await bench.links.get(null, veth);
    const conf = netConf({ vlan: 33, mac: '02:ff:00:00:00:01' });
    expect((await bench.call('ADD', conf, { containerId: 'o1', netns: dead.path })).exitCode).toBe(0);
    // What the kernel does to a physical VF when its netns goes away: it returns to the host
    // under its pod name. (A veth would be destroyed with the netns, so move it by hand.)
    await bench.links.move('net1', dead.path, null);
    await dead.remove();

    const res = await bench.call('ADD', netConf({ vlan: 34 }), { containerId: 'o2', netns: next.path });
    expect(res.exitCode, res.stdout).toBe(0);
    expect(await pfCalls()).toEqual([
      'vf 0 vlan 33 qos 0',
      'vf 0 mac 02:ff:00:00:00:01',
      'vf 0 mac 00:00:00:00:00:00',
      'vf 0 vlan 0 qos 0',
      'vf 0 vlan 34 qos 0',
    ]);
    expect(await bench.links.get(next.path, 'net1')).toMatchObject({ mac: orig!.mac });
    const store = createStateStore(bench.stateDir);
    expect((await store.all()).map((r) => r.containerId)).toEqual(['o2']);
    // The dead pod's DEL arriving late finds nothing to undo.
    expect((await bench.call('DEL', conf, { containerId: 'o1', netns: dead.path })).exitCode).toBe(0);
    expect(await store.owner(bench.vf[0]!)).toBe(next.path);
  });
});

describe('upgrade from sriov-cni', () => {
  it("DEL releases a VF that sriov-cni attached, from sriov-cni's own cache entry", async () => {
    const ns = await bench.newNetns();
    const veth = bench.veths[0]!.name;
    const orig = await bench.links.get(null, veth);
    // What sriov-cni leaves after ADD: the VF in the pod as net1 with the requested MAC, the PF
    // holding VLAN 100 and the admin MAC, its cache entry and its allocation file.
    await bench.recorder.set('npscpf0', 0, { kind: 'vlan', vlan: 100, qos: 0, proto: '802.1Q' });
    await bench.recorder.set('npscpf0', 0, { kind: 'mac', mac: '02:12:34:56:78:9a' });
    await bench.links.move(veth, null, ns.path);
    await bench.links.rename(ns.path, veth, 'net1');
    await bench.links.setMac(ns.path, 'net1', '02:12:34:56:78:9a');
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(path.join(bench.stateDir, 'pci'), { recursive: true });
    await writeFile(path.join(bench.stateDir, 'pci', bench.vf[0]!), ns.path);
    await writeFile(
      path.join(bench.stateDir, 'legacy-cid-1-net1'),
      JSON.stringify({
        MAC: '02:12:34:56:78:9a',
        MTU: 1500,
        Master: 'npscpf0',
        OrigVfState: {
          AdminMAC: '00:00:00:00:00:00',
          EffectiveMAC: orig!.mac,
          HostIFName: veth,
          LinkState: 0,
          MaxTxRate: 0,
          MinTxRate: 0,
          SpoofChk: true,
          Trust: false,
          Vlan: 0,
          VlanProto: 33024,
          VlanQoS: 0,
        },
        VFID: 0,
        cniVersion: '0.3.1',
        deviceID: bench.vf[0],
        name: 'sriov-network',
        runtimeConfig: {},
        type: 'sriov',
        vlan: 100,
        vlanProto: null,
        vlanQoS: null,
        min_tx_rate: null,
        max_tx_rate: null,
      }),
    );
    await bench.recorder.calls('npscpf0');
    const before = (await pfCalls()).length;
    const del = await bench.call('DEL', netConf(), { containerId: 'legacy-cid-1', netns: ns.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect((await pfCalls()).slice(before)).toEqual(['vf 0 mac 00:00:00:00:00:00', 'vf 0 vlan 0 qos 0']);
    expect(await bench.links.get(null, veth)).toMatchObject({ name: veth, mac: orig!.mac });
    expect(await bench.links.get(ns.path, 'net1')).toBeNull();
    expect(await createStateStore(bench.stateDir).owner(bench.vf[0]!)).toBeNull();
  });
});

describe('GC', () => {
  it('releases attachments the runtime no longer lists', async () => {
    const ns = await bench.newNetns();
    const conf = { ...netConf({ vlan: 40 }), cniVersion: '1.1.0' };
    expect((await bench.call('ADD', conf, { containerId: 'g1', netns: ns.path })).exitCode).toBe(0);
    expect(
      (
        await bench.call(
          'ADD',
          { ...conf, deviceID: bench.vf[1] },
          { containerId: 'g2', netns: ns.path, ifname: 'net2' },
        )
      ).exitCode,
    ).toBe(0);
    const gc = await bench.plugin({
      env: { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' },
      stdin: JSON.stringify({
        ...conf,
        'cni.dev/valid-attachments': [{ containerID: 'g2', ifname: 'net2' }],
      }),
    });
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect((await createStateStore(bench.stateDir).all()).map((r) => r.containerId)).toEqual(['g2']);
    // A GC of another network leaves this network's attachments alone.
    const other = await bench.plugin({
      env: { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' },
      stdin: JSON.stringify({ ...conf, name: 'other-net', 'cni.dev/valid-attachments': [] }),
    });
    expect(other.exitCode, other.stdout).toBe(0);
    expect((await createStateStore(bench.stateDir).all()).map((r) => r.containerId)).toEqual(['g2']);
    expect(await bench.links.get(null, bench.veths[0]!.name)).not.toBeNull();
  });
});
