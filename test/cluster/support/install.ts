// netplumb as the cluster tests install it: the two test overlays, its namespace and image, and
// the kubectl waits on its workloads.
import path from 'node:path';
import { kubectl, ROOT, waitFor } from './cluster.js';

/** The product's deployments/ plus what the test node needs (test/cluster/overlays/netplumb). */
export const OVERLAY = path.join(ROOT, 'test', 'cluster', 'overlays', 'netplumb');
/** deployments/examples on the test node's image (test/cluster/overlays/examples). */
export const EXAMPLES = path.join(ROOT, 'test', 'cluster', 'overlays', 'examples');
export const NS = 'netplumb';
/** The image deployments/kustomization.yaml names (hack/build-image builds it). */
export const IMAGE = 'ghcr.io/netplumb/netplumb:0.1.0';
export const DEVICE_PLUGIN = 'netplumb-device-plugin';
export const CNI_DAEMON = 'netplumb-cni-daemon';

/** `kubectl rollout status` of a DaemonSet or Deployment in the netplumb namespace. */
export async function rollout(kind: 'daemonset' | 'deployment', name: string): Promise<void> {
  await kubectl(['-n', NS, 'rollout', 'status', `${kind}/${name}`, '--timeout=240s'], {
    timeoutMs: 250_000,
  });
}

/** Deletes the pod(s) of one of netplumb's workloads (by its app.kubernetes.io/name) and waits until they are gone. */
export async function deleteWorkloadPods(name: string): Promise<void> {
  await kubectl(['-n', NS, 'delete', 'pod', '-l', `app.kubernetes.io/name=${name}`, '--wait=true'], {
    timeoutMs: 130_000,
  });
}

/** Waits until the netplumb namespace is gone (its content deleted by the namespace controller). */
export async function waitNamespaceGone(): Promise<void> {
  await waitFor(
    'netplumb namespace gone',
    async () => (await kubectl(['get', 'namespace', NS, '--ignore-not-found'])).stdout.trim() === '',
    { timeoutMs: 180_000 },
  );
}
