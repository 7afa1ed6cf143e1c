import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NadInfo, PodInfo } from '../meta/kube.js';
import type { WatchSource } from './kube-cache.js';
import { createNadWatch, createPodWatch, loadKubeConfig } from './kube-informers.js';

// A minimal API server speaking list + watch (newline-delimited JSON events on a chunked response)
// the way client-node's ListWatch consumes it, plus one DaemonSet GET.
interface Api {
  url: string;
  requests: string[];
  emit(kind: 'pods' | 'nads', type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: object): void;
  daemonSet: { status: number; body?: object };
  close(): Promise<void>;
}

const pod = (name: string, annotations: Record<string, string> = {}): object => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    namespace: 'ns',
    name,
    uid: `uid-${name}`,
    resourceVersion: '10',
    annotations,
    managedFields: [{ big: 'x' }],
  },
  spec: { nodeName: 'node1', containers: [{ name: 'app', image: 'busybox' }] },
  status: { phase: 'Running' },
});
const nad = (name: string, config: string, resourceVersion = '5'): object => ({
  apiVersion: 'k8s.cni.cncf.io/v1',
  kind: 'NetworkAttachmentDefinition',
  metadata: {
    namespace: 'ns',
    name,
    resourceVersion,
    annotations: { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/x' },
  },
  spec: { config },
});

async function startApi(): Promise<Api> {
  const watchers: Record<'pods' | 'nads', ServerResponse[]> = { pods: [], nads: [] };
  const requests: string[] = [];
  const api: Partial<Api> = { requests, daemonSet: { status: 404 } };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method ?? ''} ${url.pathname}${url.search}`);
    const kind =
      url.pathname === '/api/v1/pods'
        ? 'pods'
        : url.pathname.endsWith('/network-attachment-definitions')
          ? 'nads'
          : undefined;
    if (kind !== undefined) {
      if (url.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        watchers[kind].push(res);
        return;
      }
      const items = kind === 'pods' ? [pod('a')] : [nad('n1', '{"type":"macvlan"}')];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '10' }, items }));
      return;
    }
    if (url.pathname === '/apis/apps/v1/namespaces/netplumb/daemonsets/netplumb-cni-daemon') {
      const ds = api.daemonSet!;
      res.writeHead(ds.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ds.body ?? { kind: 'Status', code: ds.status }));
      return;
    }
    res.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api.emit = (kind, type, object) => {
    for (const w of watchers[kind]) w.write(`${JSON.stringify({ type, object })}\n`);
  };
  api.close = async () => {
    for (const w of [...watchers.pods, ...watchers.nads]) w.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return api as Api;
}

let api: Api;
let dir: string;
let kubeconfig: string;
beforeAll(async () => {
  api = await startApi();
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-daemon-kube-'));
  kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: {} }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
});
afterAll(async () => {
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

async function until(pred: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function collect<T extends { name: string }>(
  src: WatchSource<T>,
): { items: Map<string, T>; synced: () => boolean } {
  const items = new Map<string, T>();
  let synced = false;
  src.start({
    upsert: (o) => items.set(o.name, o),
    remove: (o) => items.delete(o.name),
    synced: () => {
      synced = true;
    },
    error: () => undefined,
  });
  return { items, synced: () => synced };
}

describe('client-node informers (list + watch against a real HTTP API)', () => {
  it('does not report synced while the list fails, and retries', async () => {
    const bad = path.join(dir, 'bad-kubeconfig');
    await writeFile(
      bad,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'c', cluster: { server: 'http://127.0.0.1:1', 'insecure-skip-tls-verify': true } },
        ],
        users: [{ name: 'u', user: {} }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    const src = createPodWatch(loadKubeConfig(bad), 'node1', 50);
    let errors = 0;
    let synced = false;
    src.start({
      upsert: () => undefined,
      remove: () => undefined,
      synced: () => {
        synced = true;
      },
      error: () => {
        errors++;
      },
    });
    try {
      await until(() => errors >= 3, 'three failed attempts');
      expect(synced).toBe(false);
    } finally {
      await src.stop();
    }
  });

  it('lists and watches only this node’s pods, trimmed to what the CNI path reads', async () => {
    const src = createPodWatch(loadKubeConfig(kubeconfig), 'node1', 100);
    const { items, synced } = collect<PodInfo>(src);
    try {
      await until(synced, 'pod list');
      expect(items.get('a')).toEqual({
        namespace: 'ns',
        name: 'a',
        uid: 'uid-a',
        resourceVersion: '10',
        annotations: {},
        containerNames: ['app'],
      });
      await until(
        () => api.requests.some((r) => r.includes('/api/v1/pods') && r.includes('watch=true')),
        'pod watch',
      );
      for (const r of api.requests.filter((x) => x.includes('/api/v1/pods'))) {
        expect(r, 'list and watch both carry the node field selector').toContain(
          'fieldSelector=spec.nodeName%3Dnode1',
        );
      }
      api.emit('pods', 'ADDED', pod('b', { 'k8s.v1.cni.cncf.io/networks': 'macvlan-net' }));
      await until(() => items.has('b'), 'ADDED b');
      expect(items.get('b')!.annotations).toEqual({ 'k8s.v1.cni.cncf.io/networks': 'macvlan-net' });
      api.emit('pods', 'DELETED', pod('a'));
      await until(() => !items.has('a'), 'DELETED a');
    } finally {
      await src.stop();
    }
  });

  it('lists and watches NetworkAttachmentDefinitions across namespaces', async () => {
    const src = createNadWatch(loadKubeConfig(kubeconfig), 100);
    const { items, synced } = collect<NadInfo>(src);
    try {
      await until(synced, 'NAD list');
      expect(items.get('n1')).toEqual({
        namespace: 'ns',
        name: 'n1',
        config: '{"type":"macvlan"}',
        annotations: { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/x' },
      });
      await until(
        () =>
          api.requests.some((r) => r.includes('network-attachment-definitions?') && r.includes('watch=true')),
        'NAD watch',
      );
      api.emit('nads', 'MODIFIED', nad('n1', '{"type":"ipvlan"}', '6'));
      await until(() => items.get('n1')?.config === '{"type":"ipvlan"}', 'MODIFIED n1');
    } finally {
      await src.stop();
    }
  });
});
