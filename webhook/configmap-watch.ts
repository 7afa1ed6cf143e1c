// A watch of ONE ConfigMap (the control switches) over our REST client: list with
// fieldSelector=metadata.name=<name> (so RBAC can grant get/list/watch on that name only), then
// watch from the list's resourceVersion. A watch that ends is resumed from the last version seen;
// one that fails (410 Gone, HTTP errors) is relisted `retryMs` later. The list path is the API's
// .listNamespacedConfigMap( (read by the RBAC test).
import type { KubeAccess } from '../cni/meta/kube-rest.js';
import type { WatchSource } from '../cni/daemon/kube-cache.js';
import { listWatchSource } from '../cni/daemon/kube-informers.js';

export interface ConfigMapInfo {
  readonly namespace: string;
  readonly name: string;
  readonly data: Readonly<Record<string, string>>;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});

function infoOf(o: unknown, namespace: string, name: string): ConfigMapInfo {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(obj(o)['data']))) if (typeof v === 'string') data[k] = v;
  return { namespace, name, data };
}

export function createConfigMapWatch(
  api: KubeAccess,
  namespace: string,
  name: string,
  retryMs = 5000,
): WatchSource<ConfigMapInfo> {
  return listWatchSource<ConfigMapInfo>(
    api,
    {
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
      query: `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`,
      convert: (o) => infoOf(o, namespace, name),
      key: (c) => `${c.namespace}/${c.name}`,
    },
    retryMs,
  );
}
