// Node discovery (sriov/discover.ts) on the guest's real kernel: real VF state from iproute2 on a
// netdevsim PF, and real VLAN sub-interfaces as NICs. (The PCI side: pci-sriov.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverNode } from '../../sriov/discover.js';
import { iproute2VfState, readIpLinkTable } from '../../sriov/vf-state.js';
import { run, uniqueName } from './support/guest.js';
import { createNetdevsimPf } from './support/netdevsim.js';
import type { NetdevsimPf } from './support/netdevsim.js';
import { kernelSnapshot } from './support/snapshot.js';
import type { KernelSnapshot } from './support/snapshot.js';

describe('discovery of VF state and VLAN NICs through iproute2', () => {
  let nsim: NetdevsimPf;
  let before: KernelSnapshot;

  beforeAll(async () => {
    before = await kernelSnapshot();
    nsim = await createNetdevsimPf(4);
  });
  afterAll(async () => {
    await nsim.remove();
    expect(await kernelSnapshot()).toEqual(before);
  });

  it('reads each VF’s PF-held settings from vfinfo_list', async () => {
    await run('ip', [
      'link',
      'set',
      nsim.pf,
      'vf',
      '1',
      'vlan',
      '210',
      'qos',
      '2',
      'mac',
      '02:00:00:00:02:10',
    ]);
    await run('ip', ['link', 'set', nsim.pf, 'vf', '2', 'vlan', '300', 'proto', '802.1ad', 'trust', 'on']);
    await run('ip', [
      'link',
      'set',
      nsim.pf,
      'vf',
      '3',
      'max_tx_rate',
      '100',
      'min_tx_rate',
      '10',
      'state',
      'disable',
    ]);
    const table = await readIpLinkTable(iproute2VfState());
    expect(table.warnings).toEqual([]);
    const vfs = table.links.get(nsim.pf)?.vfs;
    expect([...(vfs?.keys() ?? [])]).toEqual([0, 1, 2, 3]);
    expect(vfs?.get(0)).toMatchObject({ vlan: 0, qos: 0, vlanProto: '802.1Q', mac: '00:00:00:00:00:00' });
    expect(vfs?.get(1)).toMatchObject({ vlan: 210, qos: 2, mac: '02:00:00:00:02:10' });
    expect(vfs?.get(2)).toMatchObject({ vlan: 300, vlanProto: '802.1ad', trust: true });
    expect(vfs?.get(3)).toMatchObject({ minTxRate: 10, maxTxRate: 100, linkState: 'disable' });
  });

  it('lists VLAN sub-interfaces as NICs with their parent and VLAN id', async () => {
    const parent = uniqueName('npvn');
    try {
      await run('ip', ['link', 'add', parent, 'type', 'dummy']);
      await run('ip', ['link', 'add', 'link', parent, 'name', `${parent}.210`, 'type', 'vlan', 'id', '210']);
      await run('ip', [
        'link',
        'add',
        'link',
        nsim.pf,
        'name',
        `${nsim.pf}.300`,
        'type',
        'vlan',
        'id',
        '300',
      ]);
      const model = await discoverNode({ sysfsRoot: '/sys', vfState: iproute2VfState() });
      const byName = new Map(model.nics.map((n) => [n.name, n]));
      expect(byName.get(parent)).toMatchObject({ kind: 'dummy', parent: null, vlanId: null, virtual: true });
      expect(byName.get(`${parent}.210`)).toMatchObject({ kind: 'vlan', parent, vlanId: 210 });
      expect(byName.get(`${nsim.pf}.300`)).toMatchObject({ kind: 'vlan', parent: nsim.pf, vlanId: 300 });
      expect(byName.get(nsim.pf)).toMatchObject({ kind: null, parent: null, pciAddress: null });
    } finally {
      await run('ip', ['link', 'del', parent]).catch(() => undefined);
      await run('ip', ['link', 'del', `${nsim.pf}.300`]).catch(() => undefined);
    }
  });
});
