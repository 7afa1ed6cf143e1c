// The demo's Kubernetes API stand-in: an in-memory KubeClient (the meta-plugin's port) holding one
// pod and the example NetworkAttachmentDefinitions, recording the status annotations written.
import { KubeApiError, KubeErrorCode } from '../../cni/meta/kube.js';
import type { KubeClient, NadInfo, PodInfo } from '../../cni/meta/kube.js';

export interface ApiStandIn extends KubeClient {
  /** The pod as the API holds it now (annotations include what the CNI path wrote). */
  pod(namespace: string, name: string): PodInfo | undefined;
}

export function createApiStandIn(pods: readonly PodInfo[], nads: readonly NadInfo[]): ApiStandIn {
  const podMap = new Map(pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const nadMap = new Map(nads.map((n) => [`${n.namespace}/${n.name}`, n]));
  return {
    pod: (ns, name) => podMap.get(`${ns}/${name}`),
    getPod(ns, name) {
      const p = podMap.get(`${ns}/${name}`);
      if (p === undefined)
        return Promise.reject(
          new KubeApiError(KubeErrorCode.NotFound, `pod ${ns}/${name} not found`, { status: 404 }),
        );
      return Promise.resolve(p);
    },
    getNad(ns, name) {
      const n = nadMap.get(`${ns}/${name}`);
      if (n === undefined)
        return Promise.reject(
          new KubeApiError(KubeErrorCode.NotFound, `network-attachment-definition ${ns}/${name} not found`, {
            status: 404,
          }),
        );
      return Promise.resolve(n);
    },
    updatePodStatusAnnotations(pod, annotations) {
      const cur = podMap.get(`${pod.namespace}/${pod.name}`);
      if (cur === undefined)
        return Promise.reject(new KubeApiError(KubeErrorCode.NotFound, 'pod gone', { status: 404 }));
      if (cur.resourceVersion !== pod.resourceVersion) {
        return Promise.reject(
          new KubeApiError(KubeErrorCode.Conflict, 'the object has been modified', { status: 409 }),
        );
      }
      const next: Record<string, string> = { ...cur.annotations };
      for (const [k, v] of Object.entries(annotations)) {
        if (v === null) Reflect.deleteProperty(next, k);
        else next[k] = v;
      }
      podMap.set(`${pod.namespace}/${pod.name}`, {
        ...cur,
        annotations: next,
        resourceVersion: String(Number(cur.resourceVersion) + 1),
      });
      return Promise.resolve();
    },
  };
}
