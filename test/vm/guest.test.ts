// The guest the suite relies on: if hack/vm/run.sh stops giving it this hardware, say so here
// rather than in a confusing failure further down.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  PCI_DEVICES,
  findSriovPf,
  ipJson,
  linkNames,
  linkTarget,
  readSysfs,
  run,
  uniqueName,
} from './support/guest.js';

describe('the hack/vm-e2e guest', () => {
  const created: string[] = [];
  afterEach(async () => {
    for (const name of created.splice(0)) await run('ip', ['link', 'del', name]).catch(() => undefined);
  });

  it('has an NVMe PF with 4 SR-IOV VFs, bound to nvme, on NUMA node 1, in an IOMMU group', async () => {
    const pf = path.join(PCI_DEVICES, await findSriovPf());
    expect(await readSysfs(path.join(pf, 'sriov_totalvfs'))).toBe('4');
    expect(await readSysfs(path.join(pf, 'sriov_numvfs'))).toBe('0');
    expect(await linkTarget(path.join(pf, 'driver'))).toBe('nvme');
    expect(await readSysfs(path.join(pf, 'numa_node'))).toBe('1');
    expect(await linkTarget(path.join(pf, 'iommu_group'))).toMatch(/^\d+$/);
  });

  it('runs the kernel link types the host lacks: dummy and an 802.1Q VLAN on it', async () => {
    const parent = uniqueName('npvd');
    const vlan = `${parent}.210`;
    created.push(parent);
    await run('ip', ['link', 'add', parent, 'type', 'dummy']);
    await run('ip', ['link', 'add', 'link', parent, 'name', vlan, 'type', 'vlan', 'id', '210']);
    const [info] = (await ipJson(['-details', 'link', 'show', vlan])) as {
      linkinfo: { info_kind: string; info_data: { id: number } };
    }[];
    expect(info?.linkinfo.info_kind).toBe('vlan');
    expect(info?.linkinfo.info_data.id).toBe(210);
    await run('ip', ['link', 'del', parent]);
    created.length = 0;
    expect(await linkNames()).not.toContain(vlan);
  });
});
