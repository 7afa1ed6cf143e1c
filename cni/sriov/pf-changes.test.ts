import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyVfChange } from '../../sriov/link/vf-settings.js';
import type { VfSettings } from '../../sriov/model.js';
import { pfChanges } from './attach.js';
import { parseSriovConfig } from './config.js';
import { restoreChanges } from './release.js';
import type { Attachment } from '../../sriov/records/state.js';

const mac = fc
  .array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 })
  .map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));

const settings: fc.Arbitrary<VfSettings> = fc.record({
  mac,
  vlan: fc.integer({ min: 0, max: 4094 }),
  qos: fc.integer({ min: 0, max: 7 }),
  vlanProto: fc.constantFrom('802.1Q', '802.1ad'),
  spoofchk: fc.boolean(),
  trust: fc.boolean(),
  linkState: fc.constantFrom('auto' as const, 'enable' as const, 'disable' as const),
  minTxRate: fc.nat({ max: 1000 }),
  maxTxRate: fc.nat({ max: 100000 }),
});

const config = fc
  .record(
    {
      vlan: fc.integer({ min: 1, max: 4094 }),
      vlanQoS: fc.integer({ min: 0, max: 7 }),
      vlanProto: fc.constantFrom('802.1q', '802.1ad'),
      mac,
      spoofchk: fc.constantFrom('on', 'off'),
      trust: fc.constantFrom('on', 'off'),
      link_state: fc.constantFrom('auto', 'enable', 'disable'),
      max_tx_rate: fc.integer({ min: 1000, max: 5000 }),
      min_tx_rate: fc.nat({ max: 999 }),
    },
    { requiredKeys: [] },
  )
  .map((c) => {
    const out: Record<string, unknown> = {
      cniVersion: '1.0.0',
      name: 'n',
      type: 'sriov',
      deviceID: '0000:3b:02.0',
      ...c,
    };
    if (c.vlan === undefined) {
      delete out.vlanQoS;
      delete out.vlanProto;
    }
    return parseSriovConfig(out);
  });

describe('PF-side changes of ADD and their restore on DEL', () => {
  it('puts every VF setting back as it was, whatever the config changed', () => {
    fc.assert(
      fc.property(settings, config, (orig, cfg) => {
        const changes = pfChanges(cfg, cfg.mac, orig);
        const applied = changes.reduce(applyVfChange, orig);
        const record = {
          origSettings: orig,
          configured: {
            vlan: cfg.vlan !== null,
            mac: cfg.mac !== null,
            rate: cfg.minTxRate !== null || cfg.maxTxRate !== null,
            spoofchk: cfg.spoofchk !== null,
            trust: cfg.trust !== null,
            linkState: cfg.linkState !== null,
          },
        } as Pick<Attachment, 'origSettings' | 'configured'> as Attachment;
        expect(restoreChanges(record).reduce(applyVfChange, applied)).toEqual(orig);
      }),
    );
  });

  it('applies in sriov-cni order: vlan, MAC, rates, spoofchk, trust, link state; restores in reverse', () => {
    const cfg = parseSriovConfig({
      cniVersion: '1.0.0',
      name: 'n',
      deviceID: '0000:3b:02.0',
      vlan: 5,
      mac: '02:00:00:00:00:01',
      max_tx_rate: 100,
      spoofchk: 'off',
      trust: 'on',
      link_state: 'enable',
    });
    const orig: VfSettings = {
      mac: '00:00:00:00:00:00',
      vlan: 0,
      qos: 0,
      vlanProto: '802.1Q',
      spoofchk: true,
      trust: false,
      linkState: 'auto',
      minTxRate: 0,
      maxTxRate: 0,
    };
    expect(pfChanges(cfg, cfg.mac, orig).map((c) => c.kind)).toEqual([
      'vlan',
      'mac',
      'rate',
      'spoofchk',
      'trust',
      'state',
    ]);
    const record = {
      origSettings: orig,
      configured: { vlan: true, mac: true, rate: true, spoofchk: true, trust: true, linkState: true },
    } as Attachment;
    expect(restoreChanges(record).map((c) => c.kind)).toEqual([
      'state',
      'trust',
      'spoofchk',
      'rate',
      'mac',
      'vlan',
    ]);
  });
});
