// The meta-plugin's KubeClient port served from informer caches: the node's pods and every
// NetworkAttachmentDefinition are kept in memory (trimmed to the few fields the CNI path reads),
// so an ADD needs no API round trip in the common case. A miss (an object the watch has not
// delivered yet) falls through to the live API; the status write always reads the live pod first,
// because cached objects are trimmed and must never be written back.
import type { KubeClient, NadInfo, PodEvent, PodInfo } from '../meta/kube.js';
import type { CacheResult } from './metrics.js';

/** What a watch delivers: upserts, deletions, and "the initial list is in". */
export interface WatchHandlers<T> {
  upsert(obj: T): void;
  remove(obj: T): void;
  synced(): void;
  /** The watch broke; the source restarts it itself. */
  error(err: unknown): void;
}

/** A list+watch of one kind (informer). The real adapter is kube-informers.ts. */
export interface WatchSource<T> {
  start(handlers: WatchHandlers<T>): void;
  stop(): Promise<void>;
}

export interface CachedKubeDeps {
  /** Live API, for misses and for the status write. */
  readonly live: KubeClient;
  readonly pods: WatchSource<PodInfo>;
  readonly nads: WatchSource<NadInfo>;
  readonly onLookup?: (kind: 'pod' | 'nad', result: CacheResult) => void;
  /** Called with the kind when its initial list has arrived. */
  readonly onSynced?: (kind: 'pod' | 'nad') => void;
  readonly onError?: (kind: 'pod' | 'nad', err: unknown) => void;
}

export interface CachedKube extends KubeClient {
  /** Objects held, for metrics and memory checks. */
  size(): { pods: number; nads: number };
  stop(): Promise<void>;
}

const key = (namespace: string, name: string): string => `${namespace}/${name}`;

/** Keeps only what the CNI path reads (the rest of a pod is most of its size). */
export function trimPod(p: PodInfo): PodInfo {
  return {
    namespace: p.namespace,
    name: p.name,
    uid: p.uid,
    resourceVersion: p.resourceVersion,
    annotations: p.annotations,
    containerNames: p.containerNames,
  };
}

export function createCachedKube(deps: CachedKubeDeps): CachedKube {
  const pods = new Map<string, PodInfo>();
  const nads = new Map<string, NadInfo>();
  deps.pods.start({
    upsert: (p) => pods.set(key(p.namespace, p.name), trimPod(p)),
    remove: (p) => pods.delete(key(p.namespace, p.name)),
    synced: () => deps.onSynced?.('pod'),
    error: (err) => deps.onError?.('pod', err),
  });
  deps.nads.start({
    upsert: (n) => nads.set(key(n.namespace, n.name), n),
    remove: (n) => nads.delete(key(n.namespace, n.name)),
    synced: () => deps.onSynced?.('nad'),
    error: (err) => deps.onError?.('nad', err),
  });
  return {
    async getPod(namespace, name) {
      const hit = pods.get(key(namespace, name));
      deps.onLookup?.('pod', hit ? 'hit' : 'miss');
      return hit ?? deps.live.getPod(namespace, name);
    },
    async getNad(namespace, name) {
      const hit = nads.get(key(namespace, name));
      deps.onLookup?.('nad', hit ? 'hit' : 'miss');
      return hit ?? deps.live.getNad(namespace, name);
    },
    async updatePodStatusAnnotations(pod, annotations) {
      const fresh = await deps.live.getPod(pod.namespace, pod.name);
      await deps.live.updatePodStatusAnnotations(fresh, annotations);
    },
    // Events are written, never cached: straight to the live API (AddedInterface in thick mode).
    ...(deps.live.recordEvent !== undefined && {
      recordEvent: (pod: PodInfo, event: PodEvent) =>
        deps.live.recordEvent?.(pod, event) ?? Promise.resolve(),
    }),
    size: () => ({ pods: pods.size, nads: nads.size }),
    async stop() {
      await Promise.all([deps.pods.stop(), deps.nads.stop()]);
    },
  };
}
