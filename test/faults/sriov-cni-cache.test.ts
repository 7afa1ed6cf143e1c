// Issue 12 item 5: switching between sriov-cni and netplumb in either direction strands no VF.
//   - DEL from an sriov-cni cache entry whose allocation file is missing (older sriov-cni) takes
//     the netdev out of the pod netns named by CNI_NETNS.
//   - The record netplumb writes carries sriov-cni's NetConf fields (Master, VFID, MAC,
//     OrigVfState): read with only those fields, as sriov-cni's DEL reads it, it restores the VF.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStateStore } from '../../sriov/records/state.js';
import { createBench } from '../support/sriov-cni-bench.js';
import type { Bench } from '../support/sriov-cni-bench.js';

let bench: Bench;
beforeEach(async () => {
  bench = await createBench('np-sc5');
});
afterEach(async () => {
  await bench.cleanup();
});

const netConf = () => ({ cniVersion: '1.0.0', name: 'sriov-net', type: 'sriov', deviceID: bench.vf[0] });

describe('sriov-cni caches', () => {
  it('DEL of an sriov-cni entry without its allocation file moves the VF out of CNI_NETNS', async () => {
    const ns = await bench.newNetns();
    const veth = bench.veths[0]!.name;
    const orig = (await bench.links.get(null, veth))!;
    await bench.links.move(veth, null, ns.path);
    await bench.links.rename(ns.path, veth, 'net1');
    await mkdir(bench.stateDir, { recursive: true });
    await writeFile(
      path.join(bench.stateDir, 'old-cid-net1'),
      JSON.stringify({
        cniVersion: '0.3.1',
        name: 'sriov-network',
        type: 'sriov',
        deviceID: bench.vf[0],
        Master: 'npscpf0',
        VFID: 0,
        MAC: '',
        OrigVfState: { HostIFName: veth, AdminMAC: '00:00:00:00:00:00', EffectiveMAC: orig.mac, Vlan: 0 },
      }),
    );
    const del = await bench.call('DEL', netConf(), { containerId: 'old-cid', netns: ns.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect(await bench.links.get(ns.path, 'net1')).toBeNull();
    expect(await bench.links.get(null, veth)).toMatchObject({ name: veth, mac: orig.mac });
  });

  it("netplumb's record, read with sriov-cni's fields only, gives the VF back as it was", async () => {
    const ns = await bench.newNetns();
    const veth = bench.veths[0]!.name;
    const orig = (await bench.links.get(null, veth))!;
    const conf = { ...netConf(), vlan: 300, mac: '02:5c:00:00:00:01', spoofchk: 'off' };
    const add = await bench.call('ADD', conf, { containerId: 'np-cid', netns: ns.path });
    expect(add.exitCode, add.stdout).toBe(0);
    const file = path.join(bench.stateDir, 'np-cid-net1');
    const written = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(written).toMatchObject({
      Master: 'npscpf0',
      VFID: 0,
      MAC: '02:5c:00:00:00:01',
      vlan: 300,
      OrigVfState: { HostIFName: veth, EffectiveMAC: orig.mac, AdminMAC: '00:00:00:00:00:00', Vlan: 0 },
    });
    // What sriov-cni's Go decoder keeps: its NetConf fields, none of ours.
    const ours = ['kind', 'containerId', 'ifname', 'netns', 'pfNetdev', 'vfIndex', 'dpdk', 'phase'];
    const more = ['origSettings', 'configured', 'origNetdev', 'tempName', 'podMac', 'config', 'result'];
    const sriovCniView = Object.fromEntries(
      Object.entries(written).filter(([k]) => ![...ours, ...more].includes(k)),
    );
    await writeFile(file, JSON.stringify(sriovCniView));
    const del = await bench.call('DEL', conf, { containerId: 'np-cid', netns: ns.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect(await bench.links.get(ns.path, 'net1')).toBeNull();
    expect(await bench.links.get(null, veth)).toMatchObject({ name: veth, mac: orig.mac });
    expect(await bench.recorder.read('npscpf0', 0)).toMatchObject({ vlan: 0, mac: '00:00:00:00:00:00' });
    expect(await createStateStore(bench.stateDir).all()).toEqual([]);
  });
});
