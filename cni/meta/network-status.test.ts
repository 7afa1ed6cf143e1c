import { describe, expect, it } from 'vitest';
import { formatNetworkStatus, networkStatuses } from './network-status.js';

describe('networkStatuses', () => {
  it('builds one entry for a single-interface result with bare IPs and default-route gateways', () => {
    const s = networkStatuses(
      'cbr0',
      'eth0',
      {
        interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/run/netns/x' }],
        ips: [{ address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 0 }],
        routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }],
        dns: {},
      },
      true,
      undefined,
    );
    expect(s).toEqual([
      {
        name: 'cbr0',
        interface: 'eth0',
        ips: ['10.244.1.5'],
        mac: '0a:58:0a:f4:01:05',
        default: true,
        dns: {},
        gateway: ['10.244.1.1'],
      },
    ]);
  });

  it('builds one entry per sandbox interface, IPs by interface index, device-info attached', () => {
    const info = { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:18:02.5' } };
    const s = networkStatuses(
      'default/br',
      'net1',
      {
        interfaces: [
          { name: 'br0' },
          { name: 'net1', mac: 'aa:bb:cc:dd:ee:01', sandbox: '/run/netns/x' },
          { name: 'net1b', sandbox: '/run/netns/x' },
        ],
        ips: [{ address: '10.1.0.2/24', interface: 1 }, { address: '10.2.0.2/24' }],
        routes: [],
        dns: {},
      },
      false,
      info,
    );
    expect(s).toEqual([
      {
        name: 'default/br',
        interface: 'net1',
        ips: ['10.1.0.2'],
        mac: 'aa:bb:cc:dd:ee:01',
        dns: {},
        'device-info': info,
      },
      { name: 'default/br', interface: 'net1b', ips: ['10.2.0.2'], dns: {}, 'device-info': info },
    ]);
  });

  it('formats like NADC: each entry indented by 4, joined with ","', () => {
    expect(
      formatNetworkStatus([
        { name: 'a', dns: {} },
        { name: 'b', dns: {} },
      ]),
    ).toBe('[{\n    "name": "a",\n    "dns": {}\n},{\n    "name": "b",\n    "dns": {}\n}]');
  });
});

// Issue 12 item 9: users diff these annotations against Multus's, byte for byte.
describe('network-status bytes as Multus writes them', () => {
  it("orders keys as NADC's Go struct: name, interface, ips, mac, mtu, default, dns, device-info, gateway", () => {
    const info = { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:18:02.5' } };
    const text = formatNetworkStatus(
      networkStatuses(
        'cbr0',
        'eth0',
        {
          interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:01:05', mtu: 1450, sandbox: '/run/netns/x' }],
          ips: [{ address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 0 }],
          routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }],
          dns: { nameservers: ['10.0.0.10'] },
        },
        true,
        info,
      ),
    );
    expect(Object.keys((JSON.parse(text) as Record<string, unknown>[])[0] ?? {})).toEqual([
      'name',
      'interface',
      'ips',
      'mac',
      'mtu',
      'default',
      'dns',
      'device-info',
      'gateway',
    ]);
  });

  it('writes no "interface" (and no empty "ips") when the result names no interface (0.2.0, or 1.0.0 without interfaces)', () => {
    const text = formatNetworkStatus(
      networkStatuses(
        'default/old',
        'net1',
        { interfaces: [], ips: [], routes: [], dns: {} },
        false,
        undefined,
      ),
    );
    expect(text).toBe('[{\n    "name": "default/old",\n    "dns": {}\n}]');
  });
});
