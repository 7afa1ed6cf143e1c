import { describe, expect, it } from 'vitest';
import type { Vf } from '../sriov/model.js';
import { AllocateError, containerAllocation, envName, goJson } from './allocate.js';
import { EMPTY_PCI_SELECTOR, type PciPoolConfig, type PciSelector } from './config.js';
import type { PciPoolDevice, PoolDevice } from './pools.js';

const SEL: PciSelector = EMPTY_PCI_SELECTOR;
const CONFIG: PciPoolConfig = {
  resourceName: 'intel_sriov_dpdk',
  resourcePrefix: 'example.com',
  fullName: 'example.com/intel_sriov_dpdk',
  deviceType: 'netDevice',
  excludeTopology: false,
  additionalInfo: {},
  allocationPolicy: 'pack',
  selectors: [SEL],
};

function vf(addr: string, o: Partial<Vf>): Vf {
  return {
    kind: 'vf',
    pciAddress: addr,
    vendor: '8086',
    device: '154c',
    classCode: '020000',
    driver: 'iavf',
    numaNode: 0,
    iommuGroup: 12,
    iommuNoiommu: false,
    netdevs: [],
    netdev: null,
    uioDevice: null,
    rdmaDevices: [],
    acpiIndex: null,
    linkType: 'ether',
    operstate: null,
    carrier: null,
    index: 0,
    pfPciAddress: '0000:3b:00.0',
    pfNetdev: 'ens1f0',
    dpdk: false,
    settings: null,
    ...o,
  };
}

function dev(d: Vf, selector: PciSelector = SEL): PciPoolDevice {
  return {
    kind: 'pci',
    id: d.pciAddress,
    numaNode: 0,
    group: d.pfPciAddress,
    health: 'Healthy',
    device: d,
    selector,
  };
}

const lookup = (...ds: PoolDevice[]) => new Map(ds.map((d) => [d.id, d]));

describe('envName', () => {
  it('upper-cases and turns dots into underscores, keeping hyphens (as SRIOV-DP)', () => {
    expect(envName({ resourcePrefix: 'intel.com', resourceName: 'intel_sriov_netdevice' })).toBe(
      'PCIDEVICE_INTEL_COM_INTEL_SRIOV_NETDEVICE',
    );
    expect(envName({ resourcePrefix: 'a.b.io', resourceName: 'x-y' })).toBe('PCIDEVICE_A_B_IO_X-Y');
  });
});

describe('goJson', () => {
  it('sorts keys at every level and escapes HTML characters like encoding/json', () => {
    expect(goJson({ b: { z: '1', a: '<&>' }, a: {} })).toBe(
      '{"a":{},"b":{"a":"\\u003c\\u0026\\u003e","z":"1"}}',
    );
  });
});

describe('containerAllocation', () => {
  it('matches the _INFO value SRIOV-DP produces for a vfio VF, "extra":{} included (issue 13 item 9)', () => {
    const d = dev(vf('0000:4b:01.0', { driver: 'vfio-pci', iommuGroup: 314 }));
    const { response } = containerAllocation(CONFIG, lookup(d), ['0000:4b:01.0'], { vhostNet: false }, false);
    expect(response.envs.PCIDEVICE_EXAMPLE_COM_INTEL_SRIOV_DPDK_INFO).toBe(
      '{"0000:4b:01.0":{"extra":{},"generic":{"deviceID":"0000:4b:01.0"},"vfio":{"dev-mount":"/dev/vfio/314","mount":"/dev/vfio/vfio"}}}',
    );
  });

  it('de-duplicates /dev/vfio/vfio and maps no-IOMMU groups to /dev/vfio/noiommu-N on the host', () => {
    const a = dev(vf('0000:4b:01.0', { driver: 'vfio-pci', iommuGroup: 3, iommuNoiommu: true }));
    const b = dev(vf('0000:4b:01.1', { driver: 'vfio-pci', iommuGroup: 4 }));
    const { response } = containerAllocation(CONFIG, lookup(a, b), [a.id, b.id], { vhostNet: false }, false);
    expect(response.devices).toEqual([
      { containerPath: '/dev/vfio/vfio', hostPath: '/dev/vfio/vfio', permissions: 'rw' },
      { containerPath: '/dev/vfio/3', hostPath: '/dev/vfio/noiommu-3', permissions: 'rw' },
      { containerPath: '/dev/vfio/4', hostPath: '/dev/vfio/4', permissions: 'rw' },
    ]);
  });

  it('returns /dev/uioN for uio-bound VFs', () => {
    const d = dev(vf('0000:4b:01.0', { driver: 'igb_uio', uioDevice: 'uio2', iommuGroup: null }));
    const { response } = containerAllocation(CONFIG, lookup(d), [d.id], { vhostNet: false }, false);
    expect(response.devices).toEqual([
      { containerPath: '/dev/uio2', hostPath: '/dev/uio2', permissions: 'rw' },
    ]);
    expect(JSON.parse(response.envs.PCIDEVICE_EXAMPLE_COM_INTEL_SRIOV_DPDK_INFO!)).toEqual({
      '0000:4b:01.0': { extra: {}, generic: { deviceID: '0000:4b:01.0' }, uio: { mount: '/dev/uio2' } },
    });
  });

  it('adds /dev/vhost-net and /dev/net/tun for needVhostNet only when the host has both', () => {
    const d = dev(vf('0000:4b:01.0', {}), { ...SEL, needVhostNet: true });
    const with_ = containerAllocation(CONFIG, lookup(d), [d.id], { vhostNet: true }, false).response;
    expect(with_.devices.map((s) => s.hostPath)).toEqual(['/dev/vhost-net', '/dev/net/tun']);
    expect(with_.envs.PCIDEVICE_EXAMPLE_COM_INTEL_SRIOV_DPDK_INFO).toContain(
      '"vhost":{"net-mount":"/dev/vhost-net","tun-mount":"/dev/net/tun"}',
    );
    expect(
      containerAllocation(CONFIG, lookup(d), [d.id], { vhostNet: false }, false).response.devices,
    ).toEqual([]);
  });

  it('merges additionalInfo "*" with per-device keys, per-device winning', () => {
    const d = dev(vf('0000:4b:01.0', {}));
    const cfg = { ...CONFIG, additionalInfo: { '*': { a: '1', b: '2' }, '0000:4b:01.0': { b: '3' } } };
    const info = containerAllocation(cfg, lookup(d), [d.id], { vhostNet: false }, false).response.envs;
    expect(info.PCIDEVICE_EXAMPLE_COM_INTEL_SRIOV_DPDK_INFO).toBe(
      '{"0000:4b:01.0":{"extra":{"a":"1","b":"3"},"generic":{"deviceID":"0000:4b:01.0"}}}',
    );
  });

  it("with CDI, names devices both as SRIOV-DP's annotation and as cdi_devices, and still returns DeviceSpecs (issue 13 item 10)", () => {
    const d = dev(vf('0000:4b:01.0', { driver: 'vfio-pci', iommuGroup: 7 }));
    const n = dev(vf('0000:4b:01.1', {}));
    const { response } = containerAllocation(CONFIG, lookup(d, n), [d.id, n.id], { vhostNet: false }, true);
    expect(response.devices.map((x) => x.hostPath)).toEqual(['/dev/vfio/vfio', '/dev/vfio/7']);
    expect(response.cdiDevices).toEqual([{ name: 'example.com/net-pci=0000:4b:01.0' }]);
    expect(response.annotations).toEqual({
      'cdi.k8s.io/example.com_net-pci': 'example.com/net-pci=0000:4b:01.0',
    });
  });

  it('throws AllocateError naming an unknown ID', () => {
    expect(() => containerAllocation(CONFIG, lookup(), ['0000:00:00.9'], { vhostNet: false }, false)).toThrow(
      new AllocateError('unknown device ID "0000:00:00.9" for resource example.com/intel_sriov_dpdk'),
    );
  });
});
