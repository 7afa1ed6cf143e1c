// Informer adapters of the WatchSource port over our REST client (cni/meta/kube-rest.ts): the
// node's pods (field selector spec.nodeName=<node> on list AND watch) and all
// NetworkAttachmentDefinitions. Each is list, then watch from the list's resourceVersion; a watch
// that ends is resumed from the last version seen, one that fails (410 Gone, errors) is relisted
// `retryMs` later. Only the converted, trimmed objects leave this file (nothing else is kept: no
// copy of whole pods, as @kubernetes/client-node's ListWatch cache held). The list paths are named
// by the API's operation IDs below (.listPodForAllNamespaces( .listClusterCustomObject(
// .listNamespacedDaemonSet( (uninstall-on-delete.ts's watch, and its GET: .readNamespacedDaemonSet()),
// which the RBAC test reads; listWatchSource( adds the watch verb.
import { nadInfoOf, podInfoOf } from '../meta/kube-client-node.js';
import { loadKubeAccess } from '../meta/kube-rest.js';
import type { KubeAccess } from '../meta/kube-rest.js';
import type { NadInfo, PodInfo } from '../meta/kube.js';
import { trimPod } from './kube-cache.js';
import type { WatchHandlers, WatchSource } from './kube-cache.js';

const NAD_PATH = '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions';

/** The API access of the daemon (kubeconfig file, or in-cluster when undefined). */
export function loadKubeConfig(kubeconfig: string | undefined): KubeAccess {
  return loadKubeAccess(kubeconfig);
}

/** What a list+watch source lists and watches, and how it converts and keys the objects. */
export interface Kind<T> {
  readonly path: string;
  /** Extra query (e.g. fieldSelector=...), without the leading `&`. */
  readonly query: string;
  convert(o: unknown): T;
  key(o: T): string;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const rvOf = (o: unknown): string => {
  const rv = obj(obj(o)['metadata'])['resourceVersion'];
  return typeof rv === 'string' ? rv : '';
};

class GoneError extends Error {
  override readonly name = 'GoneError';
}

export function listWatchSource<T>(api: KubeAccess, kind: Kind<T>, retryMs: number): WatchSource<T> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: { abort(): void } | undefined;
  const known = new Map<string, T>();

  async function list(h: WatchHandlers<T>): Promise<string> {
    const res = obj(await api.request('GET', `${kind.path}?${kind.query}`));
    const items = Array.isArray(res['items']) ? res['items'].map((i) => kind.convert(i)) : [];
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(kind.key(item));
      known.set(kind.key(item), item);
      h.upsert(item);
    }
    for (const [k, item] of known) {
      if (!seen.has(k)) {
        known.delete(k);
        h.remove(item);
      }
    }
    return rvOf(res);
  }

  function onEvent(h: WatchHandlers<T>, line: string, rv: { value: string }): void {
    const ev = obj(JSON.parse(line));
    const type = ev['type'];
    if (type === 'ERROR') throw new GoneError(`watch ${kind.path}: ${JSON.stringify(ev['object'])}`);
    rv.value = rvOf(ev['object']) || rv.value;
    if (type === 'BOOKMARK') return;
    const item = kind.convert(ev['object']);
    if (type === 'DELETED') {
      known.delete(kind.key(item));
      h.remove(item);
    } else {
      known.set(kind.key(item), item);
      h.upsert(item);
    }
  }

  async function watchFrom(h: WatchHandlers<T>, rv: { value: string }): Promise<void> {
    while (!stopped) {
      const started = performance.now();
      const q = `${kind.query}&watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv.value)}`;
      const s = api.stream(`${kind.path}?${q}`, (line) => {
        onEvent(h, line, rv);
      });
      current = s;
      await s.done;
      // A server that ends watches at once must not turn this into a busy loop.
      if (performance.now() - started < 1_000) await new Promise((r) => setTimeout(r, retryMs));
    }
  }

  async function run(h: WatchHandlers<T>, synced: { done: boolean }): Promise<void> {
    const rv = { value: await list(h) };
    if (!synced.done) {
      synced.done = true;
      h.synced();
    }
    await watchFrom(h, rv);
  }

  return {
    start(h) {
      const synced = { done: false };
      const attempt = (): void => {
        run(h, synced).catch((err: unknown) => {
          if (stopped) return;
          h.error(err);
          timer = setTimeout(attempt, retryMs);
        });
      };
      attempt();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      current?.abort();
      return Promise.resolve();
    },
  };
}

export function createPodWatch(api: KubeAccess, nodeName: string, retryMs = 5000): WatchSource<PodInfo> {
  return listWatchSource<PodInfo>(
    api,
    {
      path: '/api/v1/pods',
      query: `fieldSelector=${encodeURIComponent(`spec.nodeName=${nodeName}`)}`,
      convert: (o) => trimPod(podInfoOf(o)),
      key: (p) => `${p.namespace}/${p.name}`,
    },
    retryMs,
  );
}

export function createNadWatch(api: KubeAccess, retryMs = 5000): WatchSource<NadInfo> {
  return listWatchSource<NadInfo>(
    api,
    { path: NAD_PATH, query: '', convert: (o) => nadInfoOf(o), key: (n) => `${n.namespace}/${n.name}` },
    retryMs,
  );
}

/** What the uninstall decision needs of a DaemonSet (cni/daemon/uninstall-on-delete.ts). */
export interface DaemonSetInfo {
  readonly name: string;
  /** It has a deletionTimestamp. */
  readonly deleting: boolean;
}

/** A DaemonSet object (from a list, a watch event or a GET) as DaemonSetInfo. */
export function daemonSetInfoOf(o: unknown): DaemonSetInfo {
  const meta = obj(obj(o)['metadata']);
  const n = meta['name'];
  return {
    name: typeof n === 'string' ? n : '',
    deleting: meta['deletionTimestamp'] !== undefined && meta['deletionTimestamp'] !== null,
  };
}

/**
 * One DaemonSet, by name (`fieldSelector=metadata.name=…`: RBAC `resourceNames` then covers list and
 * watch as well as get).
 */
export function createDaemonSetWatch(
  api: KubeAccess,
  namespace: string,
  name: string,
  retryMs = 5000,
): WatchSource<DaemonSetInfo> {
  return listWatchSource<DaemonSetInfo>(
    api,
    {
      path: `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets`,
      query: `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`,
      convert: daemonSetInfoOf,
      key: (d) => d.name,
    },
    retryMs,
  );
}
