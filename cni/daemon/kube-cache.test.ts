import { describe, expect, it } from 'vitest';
import { KubeApiError, KubeErrorCode } from '../meta/kube.js';
import type { KubeClient, NadInfo, PodInfo } from '../meta/kube.js';
import { createCachedKube } from './kube-cache.js';
import type { WatchHandlers, WatchSource } from './kube-cache.js';

/** Test adapter of the watch port: the test pushes events as an informer would. */
function source<T>(): WatchSource<T> & { h?: WatchHandlers<T> } {
  const s: WatchSource<T> & { h?: WatchHandlers<T> } = {
    start(h) {
      s.h = h;
    },
    stop: () => Promise.resolve(),
  };
  return s;
}

const pod = (name: string, rv = '1', extra: Partial<PodInfo> = {}): PodInfo => ({
  namespace: 'ns',
  name,
  uid: `uid-${name}`,
  resourceVersion: rv,
  annotations: { a: name },
  containerNames: ['c'],
  ...extra,
});

function liveApi(): KubeClient & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    getPod(ns, name) {
      calls.push(`getPod ${ns}/${name}`);
      if (name === 'gone') return Promise.reject(new KubeApiError(KubeErrorCode.NotFound, 'not found'));
      return Promise.resolve(pod(name, '99'));
    },
    getNad(ns, name) {
      calls.push(`getNad ${ns}/${name}`);
      return Promise.resolve({ namespace: ns, name, config: '{}', annotations: {} });
    },
    updatePodStatusAnnotations(p, ann) {
      calls.push(`update ${p.name}@${p.resourceVersion} ${JSON.stringify(ann)}`);
      return Promise.resolve();
    },
    recordEvent(p, ev) {
      calls.push(`event ${p.name} ${ev.reason} ${ev.message}`);
      return Promise.resolve();
    },
  };
}

describe('events through the informer-backed KubeClient', () => {
  it('posts them on the live API (thick mode posts AddedInterface too)', async () => {
    const live = liveApi();
    const kube = createCachedKube({ live, pods: source<PodInfo>(), nads: source<NadInfo>() });
    expect('recordEvent' in kube).toBe(true);
    await kube.recordEvent?.(pod('p1'), {
      type: 'Normal',
      reason: 'AddedInterface',
      message: 'Add net1 [] from ns/n',
    });
    expect(live.calls).toEqual(['event p1 AddedInterface Add net1 [] from ns/n']);
  });
});

describe('informer-backed KubeClient', () => {
  it('answers from the cache without touching the API, and counts hits and misses', async () => {
    const pods = source<PodInfo>();
    const nads = source<NadInfo>();
    const live = liveApi();
    const lookups: string[] = [];
    const synced: string[] = [];
    const kube = createCachedKube({
      live,
      pods,
      nads,
      onLookup: (k, r) => lookups.push(`${k}:${r}`),
      onSynced: (k) => synced.push(k),
    });
    pods.h!.upsert({ ...pod('p1'), opaque: { huge: 'x'.repeat(1000) } });
    nads.h!.upsert({ namespace: 'ns', name: 'n1', config: '{"type":"macvlan"}', annotations: {} });
    pods.h!.synced();
    expect(synced).toEqual(['pod']);
    expect(await kube.getPod('ns', 'p1')).toEqual(pod('p1'));
    expect((await kube.getNad('ns', 'n1')).config).toBe('{"type":"macvlan"}');
    expect(live.calls).toEqual([]);
    expect(await kube.getPod('ns', 'new')).toMatchObject({ resourceVersion: '99' });
    await expect(kube.getPod('ns', 'gone')).rejects.toMatchObject({ code: KubeErrorCode.NotFound });
    expect(lookups).toEqual(['pod:hit', 'nad:hit', 'pod:miss', 'pod:miss']);
    pods.h!.remove(pod('p1'));
    expect(kube.size()).toEqual({ pods: 0, nads: 1 });
  });

  it('keeps only the fields the CNI path reads (trimmed objects bound memory)', async () => {
    const pods = source<PodInfo>();
    const kube = createCachedKube({ live: liveApi(), pods, nads: source() });
    pods.h!.upsert({ ...pod('p1'), opaque: { spec: 'big' } });
    expect(Object.keys(await kube.getPod('ns', 'p1'))).not.toContain('opaque');
  });

  it('writes the status annotation over the live pod, never the trimmed cached one', async () => {
    const pods = source<PodInfo>();
    const live = liveApi();
    const kube = createCachedKube({ live, pods, nads: source() });
    pods.h!.upsert(pod('p1', '5'));
    await kube.updatePodStatusAnnotations(await kube.getPod('ns', 'p1'), { s: 'v' });
    expect(live.calls).toEqual(['getPod ns/p1', 'update p1@99 {"s":"v"}']);
  });
});
