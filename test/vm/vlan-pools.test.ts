// `vlans` pools on a real PF VF table: the `netplumb device-plugin` process reads the VFs' PF-side
// admin VLANs from the guest kernel (`ip -json -details link show` of a netdevsim PF) and follows
// a VLAN change made with `ip link set <pf> vf N vlan …` through the kernel's link events. The PCI
// side of the VFs (netdevsim has none) comes from a simulated sysfs tree that names the real PF.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedNode } from '../../sim/simulated-node.js';
import { startFakeKubelet } from '../../sim/kubelet.js';
import type { FakeKubelet } from '../../sim/kubelet.js';
import { startDevicePlugin } from './support/device-plugin.js';
import type { RunningDevicePlugin } from './support/device-plugin.js';
import { run } from './support/guest.js';
import { createNetdevsimPf } from './support/netdevsim.js';
import type { NetdevsimPf } from './support/netdevsim.js';
import { kernelSnapshot } from './support/snapshot.js';
import type { KernelSnapshot } from './support/snapshot.js';

const SLOW = 240_000;
const VLAN210 = 'intel.com/vlan210';
const UNTAGGED = 'intel.com/untagged';

describe('device plugin vlans pools on a real PF VF table (netdevsim)', () => {
  let before: KernelSnapshot;
  let dir: string;
  let nsim: NetdevsimPf;
  let vfs: readonly string[];
  let kubelet: FakeKubelet | undefined;
  let dp: RunningDevicePlugin | undefined;

  const ids = (resource: string): string[] =>
    kubelet!.plugins
      .get(resource)!
      .latest()
      .filter((d) => d.health === 'Healthy')
      .map((d) => d.ID)
      .sort();

  beforeAll(async () => {
    before = await kernelSnapshot();
    nsim = await createNetdevsimPf(4);
    await run('ip', ['link', 'set', nsim.pf, 'vf', '0', 'vlan', '210']);
    await run('ip', ['link', 'set', nsim.pf, 'vf', '1', 'vlan', '210', 'qos', '5']);
    await run('ip', ['link', 'set', nsim.pf, 'vf', '2', 'vlan', '300']);
    dir = await mkdtemp(path.join(os.tmpdir(), 'np-vm-vlanpool-'));
    const node = await simulatedNode()
      .pf('0000:3b:00.0', {
        netdev: nsim.pf,
        vendor: '8086',
        device: '158b',
        driver: 'i40e',
        totalVfs: 4,
        operstate: 'up',
        carrier: true,
      })
      .vfs(4, { driver: 'iavf', device: '154c', operstate: 'up', carrier: true })
      .write(path.join(dir, 'node'));
    vfs = node.vfAddresses;
    const config = path.join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        resourceList: [
          { resourceName: 'vlan210', selectors: { vlans: [210] } },
          { resourceName: 'untagged', selectors: { vlans: [0] } },
        ],
      }),
    );
    const kubeletRoot = path.join(dir, 'kubelet');
    await mkdir(kubeletRoot);
    kubelet = await startFakeKubelet({ root: kubeletRoot });
    // No --links-file: the VF table comes from the kernel through iproute2.
    dp = await startDevicePlugin([
      '--config',
      config,
      '--sysfs-root',
      node.sysfsRoot,
      '--kubelet-root',
      kubeletRoot,
      '--registration',
      'legacy',
      '--devinfo-dir',
      path.join(dir, 'devinfo'),
    ]);
  });

  afterAll(async () => {
    const dpExit = await dp?.stop();
    await kubelet?.stop();
    await nsim.remove();
    await rm(dir, { recursive: true, force: true });
    expect(dpExit).toBe(0);
    expect(await kernelSnapshot()).toEqual(before);
  });

  it('pools VFs by the admin VLAN their PF reports', async () => {
    await kubelet!.waitForPlugin(VLAN210, SLOW);
    await kubelet!.waitForPlugin(UNTAGGED, SLOW);
    expect(ids(VLAN210)).toEqual([vfs[0], vfs[1]]);
    expect(ids(UNTAGGED)).toEqual([vfs[3]]);
  });

  it('moves a VF into the pool when its PF-side VLAN changes to 210', async () => {
    await run('ip', ['link', 'set', nsim.pf, 'vf', '3', 'vlan', '210']);
    await kubelet!.waitForDevices(
      VLAN210,
      (list) => list.some((d) => d.ID === vfs[3] && d.health === 'Healthy'),
      `${vfs[3]} to join after its VLAN changed`,
      SLOW,
    );
    // Each pool has its own ListAndWatch stream: the other pool's update may come a little later.
    await kubelet!.waitForDevices(
      UNTAGGED,
      (list) => !list.some((d) => d.ID === vfs[3] && d.health === 'Healthy'),
      `${vfs[3]} to leave the untagged pool`,
      60_000,
    );
    expect(ids(VLAN210)).toEqual([vfs[0], vfs[1], vfs[3]]);
    expect(ids(UNTAGGED)).toEqual([]);
  });
});
