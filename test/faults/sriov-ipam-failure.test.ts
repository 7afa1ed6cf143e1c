// Issue 12 item 2: when IPAM fails (missing plugin, a subnet host-local refuses, a data dir it
// cannot use), the rollback of ADD and DEL still give the VF back to the host with its original
// name, MAC and PF-side settings, drop its record and allocation, and report the IPAM error.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStateStore } from '../../sriov/records/state.js';
import { createBench } from '../support/sriov-cni-bench.js';
import type { Bench } from '../support/sriov-cni-bench.js';

let bench: Bench;
beforeEach(async () => {
  bench = await createBench('np-if');
});
afterEach(async () => {
  await bench.cleanup();
});

function conf(ipam: Record<string, unknown>) {
  return {
    cniVersion: '1.0.0',
    name: 'sriov-net',
    type: 'sriov',
    deviceID: bench.vf[0],
    vlan: 42,
    mac: '02:ee:00:00:00:01',
    ipam,
  };
}

async function expectVfHome(before: { mac: string | null; mtu: number }) {
  const host = await bench.links.get(null, bench.veths[0]!.name);
  expect(host).toMatchObject({ mac: before.mac, mtu: before.mtu });
  const pf = await bench.recorder.read('npscpf0', 0);
  expect(pf).toMatchObject({ vlan: 0, mac: '00:00:00:00:00:00' });
  expect(await createStateStore(bench.stateDir).all()).toEqual([]);
  expect(await createStateStore(bench.stateDir).owned()).toEqual([]);
}

const failing: [string, () => Record<string, unknown>][] = [
  ['a missing IPAM plugin', () => ({ type: 'np-no-such-ipam' })],
  ['a subnet host-local refuses', () => ({ type: 'host-local', subnet: '10.0.0.0/33' })],
  [
    'a data dir host-local cannot use',
    () => ({ type: 'host-local', subnet: '10.61.0.0/24', dataDir: path.join(bench.dir, 'ipam-file') }),
  ],
];

describe('IPAM failure in the sriov plugin', () => {
  it.each(failing)('ADD with %s rolls back the VF completely and says why', async (_what, ipam) => {
    await writeFile(path.join(bench.dir, 'ipam-file'), 'not a directory');
    const ns = await bench.newNetns();
    const before = (await bench.links.get(null, bench.veths[0]!.name))!;
    const c = conf(ipam());
    const add = await bench.call('ADD', c, { containerId: 'i1', netns: ns.path });
    expect(add.exitCode).toBe(1);
    expect((JSON.parse(add.stdout) as { msg: string }).msg).toMatch(/ipam|IPAM|host-local|np-no-such-ipam/);
    expect(await bench.links.get(ns.path, 'net1')).toBeNull();
    await expectVfHome(before);
    const del = await bench.call('DEL', c, { containerId: 'i1', netns: ns.path });
    expect(del.exitCode, del.stdout).toBe(0);
  });

  it('DEL whose IPAM release fails still returns the VF, then reports the IPAM error once', async () => {
    const ns = await bench.newNetns();
    const before = (await bench.links.get(null, bench.veths[0]!.name))!;
    const dataDir = path.join(bench.dir, 'ipam');
    const c = conf({ type: 'host-local', subnet: '10.62.0.0/24', dataDir });
    const add = await bench.call('ADD', c, { containerId: 'i2', netns: ns.path });
    expect(add.exitCode, add.stdout).toBe(0);
    // host-local can no longer open its store: its DEL fails.
    await rm(dataDir, { recursive: true, force: true });
    await writeFile(dataDir, 'not a directory');
    const del = await bench.call('DEL', c, { containerId: 'i2', netns: ns.path });
    expect(del.exitCode).toBe(1);
    expect((JSON.parse(del.stdout) as { msg: string }).msg).toMatch(
      /VF .* returned to the host.*IPAM "host-local"/,
    );
    expect(await bench.links.get(ns.path, 'net1')).toBeNull();
    await expectVfHome(before);
    await rm(dataDir);
    await mkdir(dataDir);
    expect((await bench.call('DEL', c, { containerId: 'i2', netns: ns.path })).exitCode).toBe(0);
  });
});
