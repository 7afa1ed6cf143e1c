// KubeClient adapter over @kubernetes/client-node 1.x: the only file that imports it.
import {
  CoreV1Api,
  CoreV1Event,
  CustomObjectsApi,
  KubeConfig,
  V1EventSource,
  V1ObjectMeta,
  V1ObjectReference,
  V1Pod,
} from '@kubernetes/client-node';
import { KubeApiError, KubeErrorCode } from './kube.js';
import type { KubeClient, NadInfo, PodInfo } from './kube.js';

const NAD_GROUP = 'k8s.cni.cncf.io';
const NAD_VERSION = 'v1';
const NAD_PLURAL = 'network-attachment-definitions';

const TRANSIENT_NET = [
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
];

function errnoOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && typeof e === 'object' && e !== null; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function toKubeError(err: unknown, what: string): KubeApiError {
  const status = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof status === 'number') {
    const code =
      status === 404
        ? KubeErrorCode.NotFound
        : status === 409
          ? KubeErrorCode.Conflict
          : status === 401 || status === 403
            ? KubeErrorCode.Forbidden
            : status === 429 || status >= 500
              ? KubeErrorCode.Unavailable
              : KubeErrorCode.Failed;
    return new KubeApiError(code, `${what}: HTTP ${status}`, { status, cause: err });
  }
  const errno = errnoOf(err);
  const text = err instanceof Error ? err.message : String(err);
  if (
    (errno !== undefined && TRANSIENT_NET.includes(errno)) ||
    /fetch failed|socket hang up|timed? ?out/i.test(text)
  ) {
    return new KubeApiError(KubeErrorCode.Unavailable, `${what}: API server unreachable (${errno ?? text})`, {
      cause: err,
    });
  }
  return new KubeApiError(KubeErrorCode.Failed, `${what}: ${text}`, { cause: err });
}

function podInfo(pod: V1Pod): PodInfo {
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    uid: pod.metadata?.uid ?? '',
    resourceVersion: pod.metadata?.resourceVersion ?? '',
    annotations: pod.metadata?.annotations ?? {},
    containerNames: (pod.spec?.containers ?? []).map((c) => c.name),
    opaque: pod,
  };
}

/** Builds the client from a kubeconfig file, or in-cluster config when `kubeconfig` is undefined. */
export function createKubeClient(kubeconfig: string | undefined): KubeClient {
  const kc = new KubeConfig();
  if (kubeconfig === undefined) kc.loadFromCluster();
  else kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    async getPod(namespace, name) {
      try {
        return podInfo(await core.readNamespacedPod({ name, namespace }));
      } catch (err) {
        throw toKubeError(err, `get pod ${namespace}/${name}`);
      }
    },
    async getNad(namespace, name): Promise<NadInfo> {
      let obj: unknown;
      try {
        obj = await custom.getNamespacedCustomObject({
          group: NAD_GROUP,
          version: NAD_VERSION,
          namespace,
          plural: NAD_PLURAL,
          name,
        });
      } catch (err) {
        throw toKubeError(err, `get network-attachment-definition ${namespace}/${name}`);
      }
      const o = obj as { metadata?: { annotations?: Record<string, string> }; spec?: { config?: unknown } };
      return {
        namespace,
        name,
        config: typeof o.spec?.config === 'string' ? o.spec.config : '',
        annotations: o.metadata?.annotations ?? {},
      };
    },
    async updatePodStatusAnnotations(pod, annotations) {
      const base = pod.opaque instanceof V1Pod ? pod.opaque : new V1Pod();
      const next: Record<string, string> = { ...(base.metadata?.annotations ?? {}) };
      for (const [k, v] of Object.entries(annotations)) {
        if (v === null) Reflect.deleteProperty(next, k);
        else next[k] = v;
      }
      const metadata = Object.assign(new V1ObjectMeta(), base.metadata, {
        annotations: next,
        resourceVersion: pod.resourceVersion,
      });
      const body = Object.assign(new V1Pod(), base, { metadata });
      try {
        await core.replaceNamespacedPodStatus({ name: pod.name, namespace: pod.namespace, body });
      } catch (err) {
        throw toKubeError(err, `update pod ${pod.namespace}/${pod.name} status`);
      }
    },
    async recordEvent(pod, event) {
      const now = new Date();
      const body = Object.assign(new CoreV1Event(), {
        metadata: Object.assign(new V1ObjectMeta(), {
          generateName: `${pod.name}.`,
          namespace: pod.namespace,
        }),
        involvedObject: Object.assign(new V1ObjectReference(), {
          apiVersion: 'v1',
          kind: 'Pod',
          namespace: pod.namespace,
          name: pod.name,
          uid: pod.uid,
        }),
        reason: event.reason,
        message: event.message,
        type: event.type,
        source: Object.assign(new V1EventSource(), { component: 'netplumb' }),
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
      try {
        await core.createNamespacedEvent({ namespace: pod.namespace, body });
      } catch (err) {
        throw toKubeError(err, `create event on pod ${pod.namespace}/${pod.name}`);
      }
    },
  };
}
