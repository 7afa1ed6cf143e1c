// A watch of ONE ConfigMap (the control switches) over our REST client: list with
// fieldSelector=metadata.name=<name> (so RBAC can grant get/list/watch on that name only), then
// watch from the list's resourceVersion. A watch that ends is resumed from the last version seen;
// one that fails (410 Gone, HTTP errors) is relisted `retryMs` later. The list path is the API's
// .listNamespacedConfigMap( (read by the RBAC test).
import type { KubeAccess } from '../cni/meta/kube-rest.js';
import type { WatchHandlers, WatchSource } from '../cni/daemon/kube-cache.js';

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

const rvOf = (o: unknown): string => {
  const rv = obj(obj(o)['metadata'])['resourceVersion'];
  return typeof rv === 'string' ? rv : '';
};

export function createConfigMapWatch(
  api: KubeAccess,
  namespace: string,
  name: string,
  retryMs = 5000,
): WatchSource<ConfigMapInfo> {
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: { abort(): void } | undefined;
  let present = false;
  const gone: ConfigMapInfo = { namespace, name, data: {} };

  function apply(h: WatchHandlers<ConfigMapInfo>, o: unknown): void {
    if (o === undefined) {
      if (present) h.remove(gone);
      present = false;
    } else {
      present = true;
      h.upsert(infoOf(o, namespace, name));
    }
  }

  async function list(h: WatchHandlers<ConfigMapInfo>): Promise<string> {
    const res = obj(await api.request('GET', base));
    const items = Array.isArray(res['items']) ? (res['items'] as unknown[]) : [];
    apply(
      h,
      items.find((i) => obj(obj(i)['metadata'])['name'] === name),
    );
    return rvOf(res);
  }

  function onEvent(h: WatchHandlers<ConfigMapInfo>, line: string, rv: { value: string }): void {
    const ev = obj(JSON.parse(line));
    const type = ev['type'];
    if (type === 'ERROR')
      throw new Error(`watch configmap ${namespace}/${name}: ${JSON.stringify(ev['object'])}`);
    rv.value = rvOf(ev['object']) || rv.value;
    if (type === 'BOOKMARK') return;
    apply(h, type === 'DELETED' ? undefined : ev['object']);
  }

  async function run(h: WatchHandlers<ConfigMapInfo>, synced: { done: boolean }): Promise<void> {
    const rv = { value: await list(h) };
    if (!synced.done) {
      synced.done = true;
      h.synced();
    }
    while (!stopped) {
      const started = performance.now();
      const s = api.stream(
        `${base}&watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv.value)}`,
        (line) => {
          onEvent(h, line, rv);
        },
      );
      current = s;
      await s.done;
      // A server that ends watches at once must not turn this into a busy loop.
      if (performance.now() - started < 1_000) await new Promise((r) => setTimeout(r, retryMs));
    }
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
