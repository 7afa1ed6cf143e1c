// The KubeClient adapter (the meta-plugin's port to the Kubernetes API) over our small REST client
// (kube-rest.ts): one keep-alive agent per API server, TLS sessions reused, and no
// @kubernetes/client-node (whose models alone cost ~70 MiB of RSS and which opens a new TLS
// connection per request). The file keeps its name for its importers.
import { KubeApiError, KubeErrorCode } from './kube.js';
import type { KubeClient, NadInfo, PodInfo } from './kube.js';
import { loadKubeAccess } from './kube-rest.js';
import type { KubeAccess } from './kube-rest.js';

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

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const strings = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(obj(v)).filter((e): e is [string, string] => typeof e[1] === 'string'));
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The fields the CNI path reads; `opaque` keeps the whole object for the status write. */
export function podInfoOf(pod: unknown): PodInfo {
  const meta = obj(obj(pod)['metadata']);
  const containers = obj(obj(pod)['spec'])['containers'];
  return {
    namespace: str(meta['namespace']),
    name: str(meta['name']),
    uid: str(meta['uid']),
    resourceVersion: str(meta['resourceVersion']),
    annotations: strings(meta['annotations']),
    containerNames: Array.isArray(containers) ? containers.map((c) => str(obj(c)['name'])) : [],
    opaque: pod,
  };
}

export function nadInfoOf(nad: unknown, namespace?: string, name?: string): NadInfo {
  const meta = obj(obj(nad)['metadata']);
  const config = obj(obj(nad)['spec'])['config'];
  return {
    namespace: namespace ?? str(meta['namespace']),
    name: name ?? str(meta['name']),
    config: typeof config === 'string' ? config : '',
    annotations: strings(meta['annotations']),
  };
}

const enc = encodeURIComponent;

/**
 * Builds the client from a kubeconfig file, in-cluster config when `kubeconfig` is undefined, or
 * over an existing KubeAccess (the daemon shares one with its informers).
 */
export function createKubeClient(kubeconfig: string | undefined | KubeAccess): KubeClient {
  const api = typeof kubeconfig === 'object' ? kubeconfig : loadKubeAccess(kubeconfig);
  const podPath = (ns: string, name: string): string => `/api/v1/namespaces/${enc(ns)}/pods/${enc(name)}`;
  // Named by the API's operation IDs (as @kubernetes/client-node names them): the RBAC test reads them.
  const op = {
    readNamespacedPod: (ns: string, name: string) => api.request('GET', podPath(ns, name)),
    getNamespacedCustomObject: (ns: string, name: string) =>
      api.request(
        'GET',
        `/apis/${NAD_GROUP}/${NAD_VERSION}/namespaces/${enc(ns)}/${NAD_PLURAL}/${enc(name)}`,
      ),
    replaceNamespacedPodStatus: (ns: string, name: string, body: unknown) =>
      api.request('PUT', `${podPath(ns, name)}/status`, body),
    createNamespacedEvent: (ns: string, body: unknown) =>
      api.request('POST', `/api/v1/namespaces/${enc(ns)}/events`, body),
  };
  return {
    async getPod(namespace, name) {
      try {
        return podInfoOf(await op.readNamespacedPod(namespace, name));
      } catch (err) {
        throw toKubeError(err, `get pod ${namespace}/${name}`);
      }
    },
    async getNad(namespace, name): Promise<NadInfo> {
      try {
        return nadInfoOf(await op.getNamespacedCustomObject(namespace, name), namespace, name);
      } catch (err) {
        throw toKubeError(err, `get network-attachment-definition ${namespace}/${name}`);
      }
    },
    async updatePodStatusAnnotations(pod, annotations) {
      const base = obj(pod.opaque);
      const meta = obj(base['metadata']);
      const next: Record<string, string> = { ...strings(meta['annotations']) };
      for (const [k, v] of Object.entries(annotations)) {
        if (v === null) Reflect.deleteProperty(next, k);
        else next[k] = v;
      }
      const body = {
        apiVersion: 'v1',
        kind: 'Pod',
        ...base,
        metadata: {
          ...meta,
          name: pod.name,
          namespace: pod.namespace,
          annotations: next,
          resourceVersion: pod.resourceVersion,
        },
      };
      try {
        await op.replaceNamespacedPodStatus(pod.namespace, pod.name, body);
      } catch (err) {
        throw toKubeError(err, `update pod ${pod.namespace}/${pod.name} status`);
      }
    },
    async recordEvent(pod, event) {
      const now = new Date().toISOString();
      const body = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
        involvedObject: {
          apiVersion: 'v1',
          kind: 'Pod',
          namespace: pod.namespace,
          name: pod.name,
          uid: pod.uid,
        },
        reason: event.reason,
        message: event.message,
        type: event.type,
        source: { component: 'netplumb' },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      };
      try {
        await op.createNamespacedEvent(pod.namespace, body);
      } catch (err) {
        throw toKubeError(err, `create event on pod ${pod.namespace}/${pod.name}`);
      }
    },
  };
}
