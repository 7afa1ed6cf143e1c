import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSriovConfig, resolveMac, SriovConfigError } from './config.js';

const base = { cniVersion: '1.0.0', name: 'sriov-net', type: 'sriov', deviceID: '0000:3b:02.1' };

function errorOf(input: unknown): SriovConfigError {
  try {
    parseSriovConfig(input);
  } catch (error) {
    if (error instanceof SriovConfigError) return error;
    throw error;
  }
  throw new Error('expected a SriovConfigError');
}

describe('parseSriovConfig', () => {
  it('reads a NetworkAttachmentDefinition written for sriov-cni as is', () => {
    const c = parseSriovConfig({
      ...base,
      deviceID: '0000:3B:02.1',
      pciBusID: '0000:3b:02.1',
      vlan: 100,
      vlanQoS: 3,
      vlanProto: '802.1Q',
      mac: 'CA:FE:C0:FF:EE:01',
      spoofchk: 'off',
      trust: 'on',
      link_state: 'enable',
      min_tx_rate: 100,
      max_tx_rate: 1000,
      ipam: { type: 'host-local', subnet: '10.56.217.0/24' },
      logLevel: 'debug',
      logFile: '/var/log/sriov.log',
      runtimeConfig: { mac: '02:00:00:00:00:AA' },
    });
    expect(c).toMatchObject({
      deviceID: '0000:3b:02.1',
      vlan: 100,
      vlanQoS: 3,
      vlanProto: '802.1Q',
      mac: 'ca:fe:c0:ff:ee:01',
      spoofchk: false,
      trust: true,
      linkState: 'enable',
      minTxRate: 100,
      maxTxRate: 1000,
      logLevel: 'debug',
      logFile: '/var/log/sriov.log',
      runtimeMac: '02:00:00:00:00:aa',
    });
    expect(c.raw.pciBusID).toBe('0000:3b:02.1');
  });

  it('leaves VLAN, QoS and proto unset when vlan is absent, and defaults them when vlan is set', () => {
    expect(parseSriovConfig(base)).toMatchObject({
      vlan: null,
      vlanQoS: null,
      vlanProto: null,
      spoofchk: null,
    });
    expect(parseSriovConfig({ ...base, vlan: 0 })).toMatchObject({
      vlan: 0,
      vlanQoS: 0,
      vlanProto: '802.1Q',
    });
  });

  it.each([
    [{ ...base, deviceID: undefined }, 'deviceID', /required/],
    [{ ...base, deviceID: '3b:02.1' }, 'deviceID', /0000:3b:02.1/],
    [{ ...base, vlan: 4095 }, 'vlan', /0\.\.4094/],
    [{ ...base, vlan: -1 }, 'vlan', /0\.\.4094/],
    [{ ...base, vlan: 1.5 }, 'vlan', /whole number/],
    [{ ...base, vlanQoS: 1 }, 'vlanQoS', /needs "vlan"/],
    [{ ...base, vlan: 0, vlanQoS: 2 }, 'vlanQoS', /non-zero "vlan"/],
    [{ ...base, vlan: 10, vlanQoS: 8 }, 'vlanQoS', /0\.\.7/],
    [{ ...base, vlan: 0, vlanProto: '802.1ad' }, 'vlanProto', /non-zero "vlan"/],
    [{ ...base, vlanProto: '802.1q' }, 'vlanProto', /needs "vlan"/],
    [{ ...base, vlan: 5, vlanProto: 'qinq' }, 'vlanProto', /802\.1q" or "802\.1ad/],
    [{ ...base, mac: 'not-a-mac' }, 'mac', /MAC address/],
    [{ ...base, spoofchk: true }, 'spoofchk', /"on" or "off"/],
    [{ ...base, trust: 'yes' }, 'trust', /"on" or "off"/],
    [{ ...base, link_state: 'up' }, 'link_state', /auto/],
    [{ ...base, min_tx_rate: -5 }, 'min_tx_rate', /Mbps/],
    [{ ...base, min_tx_rate: 500, max_tx_rate: 100 }, 'min_tx_rate', /exceeds max_tx_rate/],
    [{ ...base, ipam: 'host-local' }, 'ipam', /object/],
    [{ ...base, runtimeConfig: { mac: 'zz' } }, 'runtimeConfig.mac', /MAC/],
    [[1, 2], '(root)', /JSON object/],
  ])('refuses %j naming %s', (input, key, message) => {
    const error = errorOf(input);
    expect(error.key).toBe(key);
    expect(error.message).toMatch(message);
    expect(error.message.startsWith(`${key}:`)).toBe(true);
  });

  it('accepts every vlan 0..4094 and every QoS 0..7 with a non-zero vlan', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4094 }), fc.integer({ min: 0, max: 7 }), (vlan, qos) => {
        expect(parseSriovConfig({ ...base, vlan, vlanQoS: qos })).toMatchObject({ vlan, vlanQoS: qos });
      }),
    );
  });
});

describe('resolveMac', () => {
  const withMac = { ...base, mac: '02:00:00:00:00:01' };
  it('prefers runtimeConfig.mac over CNI_ARGS MAC over the config mac', () => {
    expect(resolveMac(parseSriovConfig(withMac), {})).toBe('02:00:00:00:00:01');
    expect(resolveMac(parseSriovConfig(withMac), { MAC: '02:00:00:00:00:02' })).toBe('02:00:00:00:00:02');
    expect(
      resolveMac(parseSriovConfig({ ...withMac, runtimeConfig: { mac: '02:00:00:00:00:03' } }), {
        MAC: '02:00:00:00:00:02',
      }),
    ).toBe('02:00:00:00:00:03');
    expect(resolveMac(parseSriovConfig(base), {})).toBeNull();
  });

  it('names CNI_ARGS MAC when it is not a MAC', () => {
    expect(() => resolveMac(parseSriovConfig(base), { MAC: 'xx' })).toThrow(/^CNI_ARGS MAC:/);
  });
});

// Issue 12 item 10: sriov-cni decodes with Go's encoding/json, which matches keys case-insensitively.
describe('sriov-cni key spellings', () => {
  it('applies "VLAN", "vlanqos", "Spoofchk", "DeviceID" as sriov-cni does', () => {
    const c = parseSriovConfig({
      cniVersion: '1.0.0',
      name: 'n',
      type: 'sriov',
      DeviceID: '0000:3b:02.1',
      VLAN: 100,
      vlanqos: 3,
      Spoofchk: 'off',
    });
    expect(c).toMatchObject({ deviceID: '0000:3b:02.1', vlan: 100, vlanQoS: 3, spoofchk: false });
  });
  it('refuses two spellings of one key, naming the right one', () => {
    expect(errorOf({ ...base, vlan: 1, VLAN: 2 }).message).toMatch(
      /both "VLAN" and "vlan" are set.*keep "vlan"/,
    );
  });
  it.each([
    ['spoofchk', 'yes'],
    ['trust', 'ON'],
  ])('keeps refusing %s: %j, and says why', (key, value) => {
    expect(errorOf({ ...base, [key]: value }).message).toMatch(/sriov-cni would silently treat it as "off"/);
  });
});
