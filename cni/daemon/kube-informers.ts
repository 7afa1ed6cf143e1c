// client-node adapters of the WatchSource port: the node's pods (field selector
// spec.nodeName=<node> on list AND watch) and all NetworkAttachmentDefinitions. The only file of
// the daemon that imports @kubernetes/client-node.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import type { KubernetesListObject, KubernetesObject, V1Pod } from '@kubernetes/client-node';
import type { NadInfo, PodInfo } from '../meta/kube.js';
import type { WatchHandlers, WatchSource } from './kube-cache.js';

const NAD_GROUP = 'k8s.cni.cncf.io';
const NAD_VERSION = 'v1';
const NAD_PLURAL = 'network-attachment-definitions';

export function loadKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig === undefined) kc.loadFromCluster();
  else kc.loadFromFile(kubeconfig);
  return kc;
}

interface NadObject extends KubernetesObject {
  spec?: { config?: unknown };
}

function podInfo(p: V1Pod): PodInfo {
  return {
    namespace: p.metadata?.namespace ?? '',
    name: p.metadata?.name ?? '',
    uid: p.metadata?.uid ?? '',
    resourceVersion: p.metadata?.resourceVersion ?? '',
    annotations: p.metadata?.annotations ?? {},
    containerNames: (p.spec?.containers ?? []).map((c) => c.name),
  };
}

function nadInfo(n: NadObject): NadInfo {
  return {
    namespace: n.metadata?.namespace ?? '',
    name: n.metadata?.name ?? '',
    config: typeof n.spec?.config === 'string' ? n.spec.config : '',
    annotations: n.metadata?.annotations ?? {},
  };
}

/** A ListWatch restarted `retryMs` after it breaks (client-node does not restart it). */
function listWatchSource<K extends KubernetesObject, T>(
  make: () => ListWatch<K>,
  convert: (o: K) => T,
  retryMs: number,
): WatchSource<T> {
  let lw: ListWatch<K> | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  return {
    start(h: WatchHandlers<T>) {
      lw = make();
      const informer = lw;
      let synced = false;
      let failed = false;
      const attempt = (): void => {
        failed = false;
        informer
          .start()
          .then(() => {
            // client-node resolves start() even when the list failed (it reports through 'error').
            if (!failed && !synced) {
              synced = true;
              h.synced();
            }
          })
          .catch((err: unknown) => {
            h.error(err);
          });
      };
      informer.on('add', (o) => {
        h.upsert(convert(o));
      });
      informer.on('update', (o) => {
        h.upsert(convert(o));
      });
      informer.on('delete', (o) => {
        h.remove(convert(o));
      });
      informer.on('error', (err: unknown) => {
        failed = true;
        h.error(err);
        if (stopped) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(attempt, retryMs);
      });
      attempt();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await lw?.stop();
    },
  };
}

export function createPodWatch(kc: KubeConfig, nodeName: string, retryMs = 5000): WatchSource<PodInfo> {
  const core = kc.makeApiClient(CoreV1Api);
  const fieldSelector = `spec.nodeName=${nodeName}`;
  return listWatchSource<V1Pod, PodInfo>(
    () =>
      new ListWatch<V1Pod>(
        '/api/v1/pods',
        new Watch(kc),
        () => core.listPodForAllNamespaces({ fieldSelector }),
        false,
        undefined,
        fieldSelector,
      ),
    podInfo,
    retryMs,
  );
}

export function createNadWatch(kc: KubeConfig, retryMs = 5000): WatchSource<NadInfo> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return listWatchSource<NadObject, NadInfo>(
    () =>
      new ListWatch<NadObject>(
        `/apis/${NAD_GROUP}/${NAD_VERSION}/${NAD_PLURAL}`,
        new Watch(kc),
        async () =>
          (await custom.listClusterCustomObject({
            group: NAD_GROUP,
            version: NAD_VERSION,
            plural: NAD_PLURAL,
          })) as KubernetesListObject<NadObject>,
        false,
      ),
    nadInfo,
    retryMs,
  );
}

/**
 * True when DaemonSet `name` is gone or being deleted: the daemon is being uninstalled rather than
 * restarted, so it removes its config and binaries on the way out. API errors count as "not gone"
 * (a restart must never strip the node's CNI config).
 */
export async function daemonSetGone(kc: KubeConfig, namespace: string, name: string): Promise<boolean> {
  try {
    const ds = await kc.makeApiClient(AppsV1Api).readNamespacedDaemonSet({ namespace, name });
    return ds.metadata?.deletionTimestamp !== undefined;
  } catch (err) {
    return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 404;
  }
}
