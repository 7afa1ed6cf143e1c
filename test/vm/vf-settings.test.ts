// The production PF VF-settings adapter (sriov/link, iproute2) against a real PF VF table:
// netdevsim's, on the guest's real kernel. The same contract the recorder passes on the host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkErrorCode } from '../../sriov/link/link-ops.js';
import { describeVfSettingsContract } from '../../sriov/link/vf-settings.contract.js';
import { createIproute2VfSettings } from '../../sriov/link/vf-settings-iproute2.js';
import { createNetdevsimPf } from './support/netdevsim.js';
import type { NetdevsimPf } from './support/netdevsim.js';

describe('PF VF settings over iproute2 on a netdevsim PF', () => {
  let nsim: NetdevsimPf;
  const port = createIproute2VfSettings();

  beforeAll(async () => {
    nsim = await createNetdevsimPf(4);
  });
  afterAll(async () => {
    await nsim.remove();
  });

  // VF 2, so a VF index mix-up anywhere between argv and vfinfo_list shows.
  describeVfSettingsContract('iproute2 on netdevsim', () =>
    Promise.resolve({ port, pf: nsim.pf, vf: 2, supports8021ad: true }),
  );

  it('leaves the other VFs of the PF alone', async () => {
    const before = await port.read(nsim.pf, 1);
    await port.set(nsim.pf, 3, { kind: 'vlan', vlan: 42, qos: 1, proto: '802.1Q' });
    expect(await port.read(nsim.pf, 1)).toEqual(before);
    expect(await port.read(nsim.pf, 3)).toMatchObject({ vlan: 42, qos: 1 });
  });

  it('rejects a VF the PF does not have with a LinkError naming PF and VF', async () => {
    await expect(port.set(nsim.pf, 9, { kind: 'trust', on: true })).rejects.toMatchObject({
      message: expect.stringContaining(`${nsim.pf} vf 9`) as unknown,
    });
    await expect(port.read(nsim.pf, 9)).rejects.toMatchObject({ code: LinkErrorCode.NOT_FOUND });
  });
});
