import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignDevices, deviceNetdev, deviceQueues, injectDevice, nicSlotInterface } from './devices.js';
import type { PodDevices } from './podresources.js';

const pod = (containers: PodDevices['containers']): PodDevices => ({
  namespace: 'default',
  name: 'p',
  containers,
});

describe('device hand-out', () => {
  it('orders devices by pod-spec container order, sorted within a container', () => {
    const q = deviceQueues(
      pod([
        { name: 'b', devices: [{ resourceName: 'r', deviceIds: ['0000:00:02.2', '0000:00:02.1'] }] },
        { name: 'a', devices: [{ resourceName: 'r', deviceIds: ['0000:00:03.1'] }] },
      ]),
      ['a', 'b'],
    );
    expect(q.get('r')).toEqual(['0000:00:03.1', '0000:00:02.1', '0000:00:02.2']);
  });

  it('is independent of the order the kubelet reports IDs in (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^0000:3b:0[0-9]\.[0-7]$/), { minLength: 1, maxLength: 8 }),
        (ids) => {
          const a = deviceQueues(pod([{ name: 'c', devices: [{ resourceName: 'r', deviceIds: ids }] }]), [
            'c',
          ]);
          const b = deviceQueues(
            pod([{ name: 'c', devices: [{ resourceName: 'r', deviceIds: [...ids].reverse() }] }]),
            ['c'],
          );
          expect(a).toEqual(b);
        },
      ),
    );
  });

  it('hands out one device per request in request order and names NAD, resource and pod when short', () => {
    const q = new Map([['intel.com/sriov', ['0000:3b:02.1', '0000:3b:02.2']]]);
    const req = { network: 'default/sriov-a', resourceName: 'intel.com/sriov' };
    expect(assignDevices([req, req], q, 'default/p')).toEqual(['0000:3b:02.1', '0000:3b:02.2']);
    expect(() => assignDevices([req, req, req], q, 'default/p')).toThrow(
      /network "default\/sriov-a" needs a device of resource "intel.com\/sriov" but pod default\/p was allocated 2 of them for 3 attachment/,
    );
  });
});

describe('injectDevice', () => {
  it('gives sriov deviceID and pciBusID, macvlan its master, and keeps unknown keys', () => {
    const out = injectDevice(
      [
        { type: 'sriov', vlan: 100, custom: { x: 1 } },
        { type: 'macvlan', master: 'eth9' },
        { type: 'tuning' },
      ],
      '0000:3b:02.1',
      'ens1f0v1',
    );
    expect(out).toEqual([
      { type: 'sriov', vlan: 100, custom: { x: 1 }, deviceID: '0000:3b:02.1', pciBusID: '0000:3b:02.1' },
      { type: 'macvlan', master: 'ens1f0v1' },
      { type: 'tuning', deviceID: '0000:3b:02.1', pciBusID: '0000:3b:02.1' },
    ]);
  });

  it('gives host-device `device` for a NIC-pool interface name', () => {
    expect(injectDevice([{ type: 'host-device' }], 'ens2f0.210', 'ens2f0.210')).toEqual([
      { type: 'host-device', device: 'ens2f0.210' },
    ]);
  });

  it('takes the interface of a NIC-pool slot ID (`<ifname>#<slot>`) for master and device', async () => {
    const netdev = await deviceNetdev('/nonexistent', 'ens2f0.210#1');
    expect(netdev).toBe('ens2f0.210');
    expect(
      injectDevice(
        [{ type: 'macvlan' }, { type: 'ipvlan' }, { type: 'host-device' }],
        'ens2f0.210#1',
        netdev,
      ),
    ).toEqual([
      { type: 'macvlan', master: 'ens2f0.210' },
      { type: 'ipvlan', master: 'ens2f0.210' },
      { type: 'host-device', device: 'ens2f0.210' },
    ]);
  });
});

describe('nicSlotInterface', () => {
  it('strips only the last `#<slot>` and leaves plain names alone', () => {
    expect(nicSlotInterface('eth1.210#0')).toBe('eth1.210');
    expect(nicSlotInterface('eth1')).toBe('eth1');
  });
});
