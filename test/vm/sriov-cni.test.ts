// The SR-IOV CNI executable (bin/netplumb-sriov.ts) on the guest's real kernel, with its
// production ports: the PF VF settings go to a real PF VF table (netdevsim) through iproute2, and
// a real dummy netdev stands for the VF netdev; the VF's place in sysfs (PF, index, netdev) comes
// from a simulated node that names those real links.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIproute2VfSettings } from '../../sriov/link/vf-settings-iproute2.js';
import type { VfSettings } from '../../sriov/model.js';
import { simulatedNode } from '../../sim/simulated-node.js';
import { execCni, expectSuccess } from './support/cni.js';
import { ipJson, linkNames, netnsNames, run, uniqueName, writeGuestExecutable } from './support/guest.js';
import { createNetdevsimPf } from './support/netdevsim.js';
import type { NetdevsimPf } from './support/netdevsim.js';
import { kernelSnapshot } from './support/snapshot.js';
import type { KernelSnapshot } from './support/snapshot.js';

const VF_INDEX = 2;
const VF_MAC = '02:5a:00:00:00:02';

interface IpLinkJson {
  ifname: string;
  address: string;
  mtu: number;
  operstate: string;
  flags: string[];
}

describe('netplumb-sriov on a real kernel (netdevsim PF, dummy VF netdev)', () => {
  const pfSettings = createIproute2VfSettings();
  let nsim: NetdevsimPf;
  let dir: string;
  let plugin: string;
  let vfNetdev: string;
  let vfPci: string;
  let stateDir: string;
  let sysfsRoot: string;
  let originalVfSettings: VfSettings;
  let originalLink: IpLinkJson;
  let before: KernelSnapshot;

  beforeAll(async () => {
    before = await kernelSnapshot();
    nsim = await createNetdevsimPf(4);
    dir = await mkdtemp(path.join(os.tmpdir(), 'np-vm-sriov-'));
    vfNetdev = uniqueName('npvf');
    await run('ip', ['link', 'add', vfNetdev, 'type', 'dummy']);
    await run('ip', ['link', 'set', vfNetdev, 'address', '02:5a:00:00:00:99', 'mtu', '1500']);
    // A VF state that is not the driver default, so "restored" cannot pass by accident.
    await run('ip', ['link', 'set', nsim.pf, 'vf', String(VF_INDEX), 'vlan', '7', 'qos', '1']);
    await run('ip', ['link', 'set', nsim.pf, 'vf', String(VF_INDEX), 'mac', '02:5a:00:00:00:77']);
    await run('ip', ['link', 'set', nsim.pf, 'vf', String(VF_INDEX), 'spoofchk', 'on', 'trust', 'off']);
    originalVfSettings = await pfSettings.read(nsim.pf, VF_INDEX);
    [originalLink] = (await ipJson(['link', 'show', vfNetdev])) as [IpLinkJson];
    const node = await simulatedNode()
      .pf('0000:3b:00.0', { netdev: nsim.pf, vendor: '8086', device: '158b', driver: 'i40e', totalVfs: 4 })
      .vfs(4, { driver: 'iavf', device: '154c', overrides: { [VF_INDEX]: { netdev: vfNetdev } } })
      .write(path.join(dir, 'node'));
    vfPci = node.vfAddresses[VF_INDEX]!;
    sysfsRoot = node.sysfsRoot;
    stateDir = path.join(dir, 'state');
    plugin = await writeGuestExecutable(dir, 'sriov', 'netplumb-sriov');
  });

  afterAll(async () => {
    await run('ip', ['link', 'del', vfNetdev]).catch(() => undefined);
    await nsim.remove();
    await rm(dir, { recursive: true, force: true });
    expect(await kernelSnapshot()).toEqual(before);
  });

  it('ADD applies the PF-side settings, moves the VF netdev into the pod; DEL restores both exactly', async () => {
    const pod = uniqueName('np-vm-p');
    await run('ip', ['netns', 'add', pod]);
    try {
      const call = {
        containerId: uniqueName('cid'),
        netns: `/run/netns/${pod}`,
        ifname: 'net1',
        env: { NETPLUMB_SYSFS_ROOT: sysfsRoot, NETPLUMB_SRIOV_STATE_DIR: stateDir },
      };
      const config = {
        cniVersion: '1.0.0',
        name: 'sriov-vlan210',
        type: 'sriov',
        deviceID: vfPci,
        vlan: 210,
        vlanQoS: 3,
        mac: VF_MAC,
        spoofchk: 'off',
        trust: 'on',
        min_tx_rate: 10,
        max_tx_rate: 100,
        link_state: 'enable',
        ipam: { type: 'static', addresses: [{ address: '10.56.210.10/24' }] },
      };

      const result = expectSuccess(await execCni(plugin, { command: 'ADD', ...call }, config), 'ADD');
      expect(result).toMatchObject({
        cniVersion: '1.0.0',
        interfaces: [{ name: 'net1', mac: VF_MAC, sandbox: `/run/netns/${pod}` }],
        ips: [{ address: '10.56.210.10/24', interface: 0 }],
      });
      expect(await pfSettings.read(nsim.pf, VF_INDEX)).toMatchObject({
        vlan: 210,
        qos: 3,
        mac: VF_MAC,
        spoofchk: false,
        trust: true,
        minTxRate: 10,
        maxTxRate: 100,
        linkState: 'enable',
      });
      expect(await linkNames()).not.toContain(vfNetdev);
      const [inPod] = (await ipJson(['-n', pod, 'addr', 'show', 'net1'])) as [
        IpLinkJson & { addr_info: { family: string; local: string; prefixlen: number }[] },
      ];
      expect(inPod.address).toBe(VF_MAC);
      expect(inPod.flags).toContain('UP');
      expect(inPod.addr_info).toContainEqual(
        expect.objectContaining({ family: 'inet', local: '10.56.210.10', prefixlen: 24 }),
      );
      expectSuccess(
        await execCni(plugin, { command: 'CHECK', ...call }, { ...config, prevResult: result }),
        'CHECK',
      );

      expectSuccess(await execCni(plugin, { command: 'DEL', ...call }, config), 'DEL');
      expect(await pfSettings.read(nsim.pf, VF_INDEX)).toEqual(originalVfSettings);
      expect(await linkNames(pod)).toEqual(['lo']);
      const [back] = (await ipJson(['link', 'show', vfNetdev])) as [IpLinkJson];
      expect({ address: back.address, mtu: back.mtu }).toEqual({
        address: originalLink.address,
        mtu: originalLink.mtu,
      });
      expect(await readdir(stateDir).catch(() => [])).not.toContain(`${call.containerId}-net1`);

      // A repeated DEL has nothing left to undo and still succeeds.
      expectSuccess(await execCni(plugin, { command: 'DEL', ...call }, config), 'second DEL');
      expect(await pfSettings.read(nsim.pf, VF_INDEX)).toEqual(originalVfSettings);
    } finally {
      await run('ip', ['netns', 'del', pod]).catch(() => undefined);
    }
    expect(await netnsNames()).not.toContain(pod);
  });
});
