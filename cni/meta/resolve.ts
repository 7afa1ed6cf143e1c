// Reading what a pod asks for: the readiness wait, the pod from the API, the cluster network and the
// extra networks (delegates, defaultNetworks, the networks annotation's NADs). I/O through the
// KubeClient port only; what to run is decided by plan.ts from what this returns.
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Clock } from '../../lib/clock.js';
import { CniError, CniErrorCode } from '../errors.js';
import { parseNetworkConfig } from '../network-config.js';
import {
  DEFAULT_NETWORK_ANNOTATION,
  NETWORKS_ANNOTATION,
  parseDefaultNetworkAnnotation,
  parseNetworksAnnotation,
} from './annotations.js';
import type { NetworkSelection } from './annotations.js';
import type { MetaConf } from './config.js';
import { KubeApiError, KubeErrorCode, isKubeError, retryTransient } from './kube.js';
import type { KubeClient, PodInfo } from './kube.js';
import { loadNad, resolveNetworkReference } from './nad.js';
import type { ResolvedNetwork } from './nad.js';
import type { PodArgs } from './plan.js';

const READINESS_POLL_MS = 1_000;
const READINESS_BUDGET_MS = 45_000;

export interface ExtraNetwork {
  readonly network: ResolvedNetwork;
  readonly selection?: NetworkSelection;
}

/** Waits for `readinessindicatorfile` (45 s), then fails with code 11. */
export async function waitReady(clock: Clock, conf: MetaConf): Promise<void> {
  const file = conf.readinessIndicatorFile;
  if (file === undefined) return;
  const deadline = clock.now() + READINESS_BUDGET_MS;
  for (;;) {
    if ((await stat(file).catch(() => undefined)) !== undefined) return;
    if (clock.now() >= deadline) {
      throw new CniError(
        CniErrorCode.TryAgainLater,
        `readiness indicator file ${file} did not appear within ${READINESS_BUDGET_MS / 1000} s: the cluster network is not ready yet`,
      );
    }
    await clock.sleep(READINESS_POLL_MS);
  }
}

/** The pod (retrying 503s for 2.5 s as Multus does); undefined when the API says it is gone. */
export async function getPod(
  clock: Clock,
  kube: KubeClient,
  pod: PodArgs,
  log: Logger,
): Promise<PodInfo | undefined> {
  try {
    const found = await retryTransient(clock, () => kube.getPod(pod.namespace, pod.name), {
      intervalMs: 250,
      budgetMs: 2_500,
      retryable: (err) => isKubeError(err, KubeErrorCode.Unavailable),
    });
    if (pod.uid !== '' && found.uid !== '' && found.uid !== pod.uid) {
      throw new CniError(
        CniErrorCode.TryAgainLater,
        `pod ${pod.namespace}/${pod.name}: expected UID ${pod.uid} but the API has ${found.uid} (the pod was recreated)`,
      );
    }
    return found;
  } catch (err) {
    if (isKubeError(err, KubeErrorCode.NotFound)) {
      log.warn('pod not found in the API: attaching only the cluster and default networks');
      return undefined;
    }
    if (err instanceof KubeApiError) {
      throw new CniError(
        CniErrorCode.TryAgainLater,
        `cannot read pod ${pod.namespace}/${pod.name}: ${err.message}`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** The cluster network: the pod's default-network override, clusterNetwork, or delegates[0]. */
export async function resolveCluster(
  conf: MetaConf,
  kube: KubeClient | undefined,
  pod: PodInfo | undefined,
): Promise<ResolvedNetwork> {
  const override = pod?.annotations[DEFAULT_NETWORK_ANNOTATION];
  if (override !== undefined && override.trim() !== '' && kube !== undefined) {
    const sel = parseDefaultNetworkAnnotation(override, conf.multusNamespace);
    return loadNad(kube, sel.namespace, sel.name, conf.confDir);
  }
  if (conf.clusterNetwork !== undefined) {
    return resolveNetworkReference(conf.clusterNetwork, {
      kube,
      namespace: conf.multusNamespace,
      confDir: conf.confDir,
    });
  }
  const first = conf.delegates[0];
  if (first === undefined)
    throw new CniError(CniErrorCode.InvalidNetworkConfig, 'no cluster network configured');
  const list = parseNetworkConfig(first, 'delegates[0]');
  return { displayName: list.name, list, resourceName: undefined };
}

/** The namespace-isolation rule: may a pod in `podNamespace` use network `s`? (Also the webhook's.) */
export function isolationAllows(
  conf: Pick<MetaConf, 'namespaceIsolation' | 'globalNamespaces'>,
  podNamespace: string,
  s: Pick<NetworkSelection, 'namespace'>,
): boolean {
  return (
    !conf.namespaceIsolation || s.namespace === podNamespace || conf.globalNamespaces.includes(s.namespace)
  );
}

function checkIsolation(conf: MetaConf, podNamespace: string, selections: readonly NetworkSelection[]): void {
  for (const s of selections) {
    if (isolationAllows(conf, podNamespace, s)) continue;
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `namespace isolation is enabled: pod is in namespace ${podNamespace} but refers to network ${s.namespace}/${s.name} (allowed: its own namespace and ${conf.globalNamespaces.join(', ')})`,
    );
  }
}

/** The NADs of the annotation: each distinct one fetched once, concurrently; attached in order. */
async function annotationNetworks(
  conf: MetaConf,
  kube: KubeClient,
  selections: readonly NetworkSelection[],
): Promise<ExtraNetwork[]> {
  const byKey = new Map<string, Promise<ResolvedNetwork>>();
  for (const s of selections) {
    const key = `${s.namespace}/${s.name}`;
    if (!byKey.has(key)) byKey.set(key, loadNad(kube, s.namespace, s.name, conf.confDir));
  }
  const settled = await Promise.allSettled(byKey.values());
  const failedNad = settled.find((r) => r.status === 'rejected');
  if (failedNad !== undefined) throw failedNad.reason;
  const out: ExtraNetwork[] = [];
  for (const selection of selections) {
    const network = await (byKey.get(`${selection.namespace}/${selection.name}`) as Promise<ResolvedNetwork>);
    out.push({ network, selection });
  }
  return out;
}

/** delegates[1..] (without clusterNetwork), defaultNetworks (outside system namespaces), then the annotation. */
export async function resolveExtras(
  conf: MetaConf,
  kube: KubeClient | undefined,
  podNamespace: string,
  pod: PodInfo | undefined,
): Promise<ExtraNetwork[]> {
  const extras: ExtraNetwork[] = [];
  if (conf.clusterNetwork === undefined) {
    conf.delegates.slice(1).forEach((d, i) => {
      const list = parseNetworkConfig(d, `delegates[${i + 1}]`);
      extras.push({ network: { displayName: list.name, list, resourceName: undefined } });
    });
  }
  if (!conf.systemNamespaces.includes(podNamespace)) {
    for (const ref of conf.defaultNetworks) {
      const ctx = { kube, namespace: conf.multusNamespace, confDir: conf.confDir };
      extras.push({ network: await resolveNetworkReference(ref, ctx) });
    }
  }
  const annotation = pod?.annotations[NETWORKS_ANNOTATION];
  if (annotation === undefined || kube === undefined) return extras;
  const selections = parseNetworksAnnotation(annotation, podNamespace);
  checkIsolation(conf, podNamespace, selections);
  return [...extras, ...(await annotationNetworks(conf, kube, selections))];
}
