// Independent check of the generated codecs against the published field numbers (kubelet's api.proto field tables: deviceplugin v1beta1, pluginregistration v1, podresources v1):
// the expected bytes are written by hand from tag = (field << 3) | wiretype.
import { describe, expect, it } from 'vitest';
import {
  AllocateResponse,
  ContainerPreferredAllocationRequest,
  Device,
  DevicePluginOptions,
  RegisterRequest,
} from './gen/deviceplugin/v1beta1/api.js';
import { PluginInfo, RegistrationStatus } from './gen/pluginregistration/v1/api.js';
import {
  AllocatableResourcesResponse,
  ContainerResources,
  GetPodResourcesRequest,
} from './gen/podresources/v1/api.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const str = (tag: number, s: string): string =>
  tag.toString(16).padStart(2, '0') + s.length.toString(16).padStart(2, '0') + Buffer.from(s).toString('hex');

describe('deviceplugin v1beta1 wire format', () => {
  it('encodes RegisterRequest fields 1..4 with options as a nested message', () => {
    const bytes = RegisterRequest.encode({
      version: 'v1beta1',
      endpoint: 'a.sock',
      resourceName: 'intel.com/x',
      options: { preStartRequired: false, getPreferredAllocationAvailable: true },
    }).finish();
    expect(hex(bytes)).toBe(
      str(0x0a, 'v1beta1') + str(0x12, 'a.sock') + str(0x1a, 'intel.com/x') + '22021001',
    );
  });

  it('encodes DevicePluginOptions booleans as varints 1 and 2', () => {
    expect(
      hex(
        DevicePluginOptions.encode({
          preStartRequired: true,
          getPreferredAllocationAvailable: true,
        }).finish(),
      ),
    ).toBe('08011001');
  });

  it('encodes Device{ID, health, topology{nodes[{ID}]}}', () => {
    const bytes = Device.encode({
      ID: '0000:3b:02.1',
      health: 'Healthy',
      topology: { nodes: [{ ID: 1 }] },
    }).finish();
    expect(hex(bytes)).toBe(str(0x0a, '0000:3b:02.1') + str(0x12, 'Healthy') + '1a040a020801');
  });

  it('encodes ContainerPreferredAllocationRequest available(1), must_include(2), allocation_size(3)', () => {
    const bytes = ContainerPreferredAllocationRequest.encode({
      availableDeviceIDs: ['a'],
      mustIncludeDeviceIDs: ['b'],
      allocationSize: 2,
    }).finish();
    expect(hex(bytes)).toBe(str(0x0a, 'a') + str(0x12, 'b') + '1802');
  });

  it('encodes ContainerAllocateResponse envs(1) as map entries and cdi_devices as field 5', () => {
    const bytes = AllocateResponse.encode({
      containerResponses: [
        { envs: { K: 'V' }, mounts: [], devices: [], annotations: {}, cdiDevices: [{ name: 'n' }] },
      ],
    }).finish();
    // container_responses(1) { envs(1) { key(1) value(2) } cdi_devices(5) { name(1) } }
    expect(hex(bytes)).toBe('0a0d' + '0a06' + str(0x0a, 'K') + str(0x12, 'V') + '2a03' + str(0x0a, 'n'));
  });
});

describe('pluginregistration v1 wire format', () => {
  it('encodes PluginInfo type(1) name(2) endpoint(3) supported_versions(4)', () => {
    const bytes = PluginInfo.encode({
      type: 'DevicePlugin',
      name: 'n',
      endpoint: 'e',
      supportedVersions: ['v1beta1'],
    }).finish();
    expect(hex(bytes)).toBe(
      str(0x0a, 'DevicePlugin') + str(0x12, 'n') + str(0x1a, 'e') + str(0x22, 'v1beta1'),
    );
  });

  it('encodes RegistrationStatus plugin_registered(1) error(2)', () => {
    expect(hex(RegistrationStatus.encode({ pluginRegistered: true, error: 'x' }).finish())).toBe(
      '0801' + str(0x12, 'x'),
    );
  });
});

describe('podresources v1 wire format', () => {
  it('packs repeated int64 cpu_ids (field 2) and decodes the unpacked form too', () => {
    const bytes = AllocatableResourcesResponse.encode({ devices: [], cpuIds: [1, 2], memory: [] }).finish();
    expect(hex(bytes)).toBe('12020102');
    expect(AllocatableResourcesResponse.decode(Buffer.from('10011002', 'hex')).cpuIds).toEqual([1, 2]);
  });

  it('encodes ContainerResources devices(2){resource_name(1) device_ids(2)}', () => {
    const bytes = ContainerResources.encode({
      name: 'c',
      devices: [{ resourceName: 'r', deviceIds: ['d'], topology: undefined }],
      cpuIds: [],
      memory: [],
      dynamicResources: [],
    }).finish();
    expect(hex(bytes)).toBe(str(0x0a, 'c') + '1206' + str(0x0a, 'r') + str(0x12, 'd'));
  });

  it('encodes GetPodResourcesRequest pod_name(1) pod_namespace(2)', () => {
    expect(hex(GetPodResourcesRequest.encode({ podName: 'p', podNamespace: 'ns' }).finish())).toBe(
      str(0x0a, 'p') + str(0x12, 'ns'),
    );
  });
});
