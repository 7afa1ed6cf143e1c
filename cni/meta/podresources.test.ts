// The gRPC PodResources adapter and the Get→List fallback against the fake kubelet server.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakePodResources } from '../../sim/podresources.js';
import { fetchPodDevices } from './devices.js';
import { createPodResourcesClient } from './podresources.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-cni-podres-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const pod = {
  namespace: 'default',
  name: 'p',
  containers: { app: { 'intel.com/sriov': ['0000:3b:02.3', '0000:3b:02.1'] } },
};

describe('PodResources adapter', () => {
  it('asks Get for the pod', async () => {
    const server = await startFakePodResources(path.join(dir, 'kubelet.sock'));
    server.setPod(pod);
    const client = createPodResourcesClient(server.socket);
    try {
      const devices = await fetchPodDevices(client, 'default', 'p');
      expect(devices.containers).toEqual([
        {
          name: 'app',
          devices: [{ resourceName: 'intel.com/sriov', deviceIds: ['0000:3b:02.3', '0000:3b:02.1'] }],
        },
      ]);
      expect(server.calls).toEqual(['Get default/p']);
    } finally {
      client.close();
      await server.stop();
    }
  });

  it('falls back to List on a kubelet without Get', async () => {
    const server = await startFakePodResources(path.join(dir, 'kubelet.sock'), { getUnimplemented: true });
    server.setPod(pod);
    server.setPod({ namespace: 'other', name: 'q', containers: {} });
    const client = createPodResourcesClient(server.socket);
    try {
      const devices = await fetchPodDevices(client, 'default', 'p');
      expect(devices.containers[0]?.devices[0]?.deviceIds).toEqual(['0000:3b:02.3', '0000:3b:02.1']);
      expect(server.calls).toEqual(['Get default/p', 'List']);
    } finally {
      client.close();
      await server.stop();
    }
  });

  it('reports a missing socket as Unavailable', async () => {
    const client = createPodResourcesClient(path.join(dir, 'nope.sock'), 500);
    await expect(client.get('default', 'p')).rejects.toMatchObject({ code: 'PODRES_UNAVAILABLE' });
    client.close();
  });
});
