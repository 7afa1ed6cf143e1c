// NAD and network-reference resolution against the fake API server and a real confDir.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeApiServer } from '../../sim/apiserver.js';
import type { FakeApiServer } from '../../sim/apiserver.js';
import { parseMetaConf } from './config.js';
import { createKubeClient } from './kube-client-node.js';
import type { KubeClient } from './kube.js';
import { loadNad, resolveNetworkReference } from './nad.js';

let api: FakeApiServer;
let dir: string;
let confDir: string;
let kube: KubeClient;

beforeEach(async () => {
  api = await startFakeApiServer();
  dir = await mkdtemp(path.join(tmpdir(), 'np-cni-nad-'));
  confDir = path.join(dir, 'net.d');
  await mkdir(confDir);
  kube = createKubeClient(await api.writeKubeconfig(path.join(dir, 'kubeconfig')));
});

afterEach(async () => {
  await api.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('loadNad', () => {
  it('injects the NAD name when spec.config has none and keeps every other key as is', async () => {
    api.addNad('ns1', 'calico-like', {
      cniVersion: '0.4.0',
      type: 'calico',
      datastore_type: 'kubernetes',
      kubernetes: { kubeconfig: '/x' },
    });
    const n = await loadNad(kube, 'ns1', 'calico-like', confDir);
    expect(n.displayName).toBe('ns1/calico-like');
    expect(n.list.raw).toEqual({
      cniVersion: '0.4.0',
      type: 'calico',
      datastore_type: 'kubernetes',
      kubernetes: { kubeconfig: '/x' },
      name: 'calico-like',
    });
  });

  it('reads a conflist and the resourceName annotation', async () => {
    api.addNad(
      'ns1',
      'sriov',
      { cniVersion: '1.0.0', name: 'own-name', plugins: [{ type: 'sriov' }, { type: 'tuning' }] },
      {
        'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov',
      },
    );
    const n = await loadNad(kube, 'ns1', 'sriov', confDir);
    expect(n.list.name).toBe('own-name');
    expect(n.list.plugins.map((p) => p['type'])).toEqual(['sriov', 'tuning']);
    expect(n.resourceName).toBe('intel.com/sriov');
  });

  it('falls back to the conf of that name in confDir when spec.config is empty', async () => {
    api.addNad('ns1', 'on-disk', '');
    await writeFile(
      path.join(confDir, '20-on-disk.conf'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'on-disk', type: 'macvlan' }),
    );
    expect((await loadNad(kube, 'ns1', 'on-disk', confDir)).list.plugins[0]).toMatchObject({
      type: 'macvlan',
    });
    api.addNad('ns1', 'nowhere', '');
    await expect(loadNad(kube, 'ns1', 'nowhere', confDir)).rejects.toThrow(
      /has no spec.config and no conf named "nowhere" exists in/,
    );
  });

  it('names the NAD and namespace when it does not exist, and says when spec.config is not JSON', async () => {
    await expect(loadNad(kube, 'ns1', 'gone', confDir)).rejects.toThrow(
      /cannot find a network-attachment-definition \(gone\) in namespace \(ns1\)/,
    );
    api.addNad('ns1', 'bad', '{"type": ');
    await expect(loadNad(kube, 'ns1', 'bad', confDir)).rejects.toThrow(
      /network-attachment-definition ns1\/bad spec.config: invalid JSON/,
    );
  });
});

describe('resolveNetworkReference (clusterNetwork / defaultNetworks)', () => {
  it('tries a NAD in the namespace, then a conf name in confDir, then a directory, then a file', async () => {
    api.addNad('kube-system', 'flannel', { cniVersion: '1.0.0', type: 'flannel' });
    await writeFile(
      path.join(confDir, '10-calico.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'calico', plugins: [{ type: 'calico' }] }),
    );
    const sub = path.join(dir, 'primary');
    await mkdir(sub);
    await writeFile(
      path.join(sub, 'b.conf'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'b', type: 'bridge' }),
    );
    await writeFile(
      path.join(sub, 'a.conf'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'ptp' }),
    );
    const opts = { kube, namespace: 'kube-system', confDir };
    expect((await resolveNetworkReference('flannel', opts)).displayName).toBe('kube-system/flannel');
    expect((await resolveNetworkReference('calico', opts)).displayName).toBe('calico');
    expect((await resolveNetworkReference(sub, opts)).displayName).toBe('a');
    expect((await resolveNetworkReference(path.join(sub, 'b.conf'), opts)).displayName).toBe('b');
    await expect(resolveNetworkReference('nope', opts)).rejects.toThrow(/cannot resolve network "nope"/);
  });
});

describe('parseMetaConf', () => {
  it('takes a Multus config unchanged, with Multus defaults, and reports unknown keys', () => {
    const c = parseMetaConf({
      cniVersion: '0.4.0',
      name: 'multus-cni-network',
      type: 'multus',
      clusterNetwork: 'flannel',
      globalNamespaces: 'default, shared',
      someVendorKey: 1,
    });
    expect(c).toMatchObject({
      confDir: '/etc/cni/multus/net.d',
      cniDir: '/var/lib/cni/multus',
      binDir: '/opt/cni/bin',
      multusNamespace: 'kube-system',
      systemNamespaces: ['kube-system'],
      globalNamespaces: ['default', 'shared'],
      podResourcesSocket: '/var/lib/kubelet/pod-resources/kubelet.sock',
      devinfoDir: '/var/run/k8s.cni.cncf.io/devinfo',
      unknownKeys: ['someVendorKey'],
    });
  });

  it('names the bad key and asks for a cluster network', () => {
    expect(() => parseMetaConf({ clusterNetwork: 'x', namespaceIsolation: 'yes' })).toThrow(
      /netplumb config: namespaceIsolation: /,
    );
    expect(() => parseMetaConf({ name: 'n' })).toThrow(
      /at least one delegate\/clusterNetwork must be specified/,
    );
  });
});
