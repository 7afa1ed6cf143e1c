// The contract every PfVfSettings adapter passes: each change is visible in the next read.
// Runs against the recorder here and against iproute2 on a real PF in the VM suite:
//   describeVfSettingsContract('iproute2', async () => ({ port, pf: 'eth1', vf: 0 }))
import { describe, expect, it } from 'vitest';
import { VlanProto } from './vf-settings.js';
import type { PfVfSettings } from './vf-settings.js';

export interface VfSettingsTarget {
  readonly port: PfVfSettings;
  readonly pf: string;
  readonly vf: number;
  /** Skip the 802.1ad case on drivers that do not support it. */
  readonly supports8021ad?: boolean;
}

export function describeVfSettingsContract(adapter: string, target: () => Promise<VfSettingsTarget>): void {
  describe(`PfVfSettings contract: ${adapter}`, () => {
    it('sets VLAN and QoS and reads them back', async () => {
      const { port, pf, vf } = await target();
      await port.set(pf, vf, { kind: 'vlan', vlan: 100, qos: 3, proto: VlanProto.Q });
      expect(await port.read(pf, vf)).toMatchObject({ vlan: 100, qos: 3, vlanProto: VlanProto.Q });
      await port.set(pf, vf, { kind: 'vlan', vlan: 0, qos: 0, proto: VlanProto.Q });
      expect(await port.read(pf, vf)).toMatchObject({ vlan: 0, qos: 0 });
    });

    it('sets an 802.1ad VLAN', async () => {
      const { port, pf, vf, supports8021ad } = await target();
      if (supports8021ad === false) return;
      await port.set(pf, vf, { kind: 'vlan', vlan: 200, qos: 0, proto: VlanProto.AD });
      expect(await port.read(pf, vf)).toMatchObject({ vlan: 200, vlanProto: VlanProto.AD });
      await port.set(pf, vf, { kind: 'vlan', vlan: 0, qos: 0, proto: VlanProto.Q });
    });

    it('sets the admin MAC', async () => {
      const { port, pf, vf } = await target();
      await port.set(pf, vf, { kind: 'mac', mac: '02:AA:bb:cc:dd:01' });
      expect((await port.read(pf, vf)).mac).toBe('02:aa:bb:cc:dd:01');
    });

    it('sets tx rates, spoofchk, trust and link state', async () => {
      const { port, pf, vf } = await target();
      await port.set(pf, vf, { kind: 'rate', minTxRate: 10, maxTxRate: 100 });
      await port.set(pf, vf, { kind: 'spoofchk', on: false });
      await port.set(pf, vf, { kind: 'trust', on: true });
      await port.set(pf, vf, { kind: 'state', state: 'disable' });
      expect(await port.read(pf, vf)).toMatchObject({
        minTxRate: 10,
        maxTxRate: 100,
        spoofchk: false,
        trust: true,
        linkState: 'disable',
      });
      await port.set(pf, vf, { kind: 'rate', minTxRate: 0, maxTxRate: 0 });
      await port.set(pf, vf, { kind: 'spoofchk', on: true });
      await port.set(pf, vf, { kind: 'trust', on: false });
      await port.set(pf, vf, { kind: 'state', state: 'auto' });
      expect(await port.read(pf, vf)).toMatchObject({
        maxTxRate: 0,
        spoofchk: true,
        trust: false,
        linkState: 'auto',
      });
    });
  });
}
