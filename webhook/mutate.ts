// The admission decision for one Pod CREATE, as data: which NADs its networks annotation names
// (`networksOf`), then, given what each NAD lookup found, the JSON patch and the warnings
// (`computeMutation`). Pure: the server does the lookups in between.
import {
  DEFAULT_NETWORK_ANNOTATION,
  NETWORKS_ANNOTATION,
  RESOURCE_NAME_ANNOTATION,
  parseDefaultNetworkAnnotation,
  parseNetworksAnnotation,
} from '../cni/meta/annotations.js';
import type { NetworkSelection } from '../cni/meta/annotations.js';
import type { NadInfo } from '../cni/meta/kube.js';
import { isolationAllows } from '../cni/meta/resolve.js';
import { ExitCode, NetplumbError } from '../lib/errors.js';
import { downwardApiPatch } from './downward-api.js';
import { pointer } from './json-patch.js';
import type { PatchOperation } from './json-patch.js';
import { NODE_SELECTOR_ANNOTATION, nodeSelectorPatch, parseNodeSelector } from './node-selector.js';
import type { ContainerView, PodView } from './pod.js';
import { resourcePatch } from './resources.js';
import { injectedAnnotations, withInjected } from './user-injections.js';
import type { InjectedAnnotations, UserInjection } from './user-injections.js';

/** Pod annotation naming the container that gets the device requests (default: the first). */
export const RESOURCES_CONTAINER_ANNOTATION = 'netplumb.io/resources-container';
/** Pod annotation the webhook writes: `{"container": ..., "resources": {name: value}}`. */
export const INJECTED_ANNOTATION = 'netplumb.io/injected-resources';

export type NadLookup =
  | { readonly kind: 'found'; readonly nad: NadInfo }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unavailable'; readonly reason: string };

export interface MutationOptions {
  readonly downwardApi: boolean;
  /**
   * Also each container's hugepages requests/limits (resourceFieldRef). Needs Kubernetes ≥ 1.23 (on by default) or the
   * DownwardAPIHugePages feature gate: an older apiserver rejects such a pod.
   */
  readonly downwardApiHugepages?: boolean;
  /** The meta-plugin's namespaceIsolation / globalNamespaces rule (cni/meta/config.ts). */
  readonly namespaceIsolation: boolean;
  readonly globalNamespaces: readonly string[];
  /**
   * network-resources-injector's `honor-resources`: add the networks' count to the pod's own value
   * instead of keeping the larger of the two.
   */
  readonly honorExistingResources?: boolean;
  /** NAD annotations naming the device pool (NRI's `network-resource-name-keys`); default: resourceName. */
  readonly resourceNameKeys?: readonly string[];
  /** NRI's user-defined injections (ConfigMap `nri-control-switches`). */
  readonly userInjections?: readonly UserInjection[];
  /** The meta-plugin's multusNamespace: where a `v1.multus-cni.io/default-network` name is looked up (default kube-system). */
  readonly multusNamespace?: string;
}

export interface Mutation {
  readonly patch: PatchOperation[];
  readonly warnings: string[];
  /** Attachments whose NAD does not exist. */
  readonly missingNads: number;
  /** Attachments whose NAD could not be read (API unreachable / too slow). */
  readonly unavailableNads: number;
}

/** A request the webhook refuses: the pod can never start as written. */
export class AdmissionDenial extends NetplumbError {
  override readonly name = 'AdmissionDenial';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('webhook-pod-denied', message, { ...options, exitCode: ExitCode.USAGE });
  }
}

export const nadKey = (s: Pick<NetworkSelection, 'namespace' | 'name'>): string => `${s.namespace}/${s.name}`;

/**
 * The attachments the pod asks for, its user-defined injections included (throws AdmissionDenial
 * on an annotation the CNI would refuse).
 */
export function networksOf(pod: PodView, opts?: Pick<MutationOptions, 'userInjections'>): NetworkSelection[] {
  const value = withInjected(pod, injectedAnnotations(pod, opts?.userInjections)).annotations?.[
    NETWORKS_ANNOTATION
  ];
  if (value === undefined) return [];
  try {
    return parseNetworksAnnotation(value, pod.namespace);
  } catch (err) {
    throw new AdmissionDenial((err as Error).message, { cause: err });
  }
}

/**
 * The pod's `v1.multus-cni.io/default-network` override (its devices count too; the meta-plugin
 * reads it from multusNamespace unless it names a namespace, without namespace isolation).
 */
export function defaultNetworkOf(
  pod: PodView,
  opts?: Pick<MutationOptions, 'userInjections' | 'multusNamespace'>,
): NetworkSelection | undefined {
  const value = withInjected(pod, injectedAnnotations(pod, opts?.userInjections)).annotations?.[
    DEFAULT_NETWORK_ANNOTATION
  ];
  if (value === undefined || value.trim() === '') return undefined;
  try {
    return parseDefaultNetworkAnnotation(value, opts?.multusNamespace ?? 'kube-system');
  } catch (err) {
    throw new AdmissionDenial((err as Error).message, { cause: err });
  }
}

/** The container that gets the requests; AdmissionDenial when the annotation names none of them. */
export function targetContainer(pod: PodView): ContainerView | undefined {
  const wanted = pod.annotations?.[RESOURCES_CONTAINER_ANNOTATION];
  if (wanted === undefined) return pod.containers[0];
  const found = pod.containers.find((c) => c.name === wanted);
  if (found === undefined) {
    throw new AdmissionDenial(
      `${RESOURCES_CONTAINER_ANNOTATION}: no container named "${wanted.slice(0, 64)}" (containers: ${pod.containers.map((c) => c.name).join(', ')})`,
    );
  }
  return found;
}

interface Tally {
  readonly needed: Map<string, number>;
  readonly labels: Map<string, { value: string; nad: string }>;
  readonly warnings: string[];
  missing: number;
  unavailable: number;
}

function tallyOne(
  t: Tally,
  opts: MutationOptions,
  pod: PodView,
  s: NetworkSelection,
  l: NadLookup | undefined,
  isolated = true,
): void {
  const key = nadKey(s);
  if (isolated && !isolationAllows(opts, pod.namespace, s)) {
    t.warnings.push(
      `network ${key}: namespace isolation forbids it for a pod in ${pod.namespace}; not counted`,
    );
  } else if (l === undefined || l.kind === 'unavailable') {
    t.unavailable++;
    t.warnings.push(
      `network ${key}: could not be read (${l?.reason ?? 'not looked up'}); its devices were not added`,
    );
  } else if (l.kind === 'missing') {
    t.missing++;
    t.warnings.push(
      `network ${key}: no such NetworkAttachmentDefinition; the pod will fail to start until it exists`,
    );
  } else {
    for (const k of opts.resourceNameKeys ?? [RESOURCE_NAME_ANNOTATION]) {
      const resource = l.nad.annotations[k];
      if (resource !== undefined && resource !== '')
        t.needed.set(resource, (t.needed.get(resource) ?? 0) + 1);
    }
    const selector = l.nad.annotations[NODE_SELECTOR_ANNOTATION];
    if (selector === undefined) return;
    const parsed = parseNodeSelector(selector, key);
    t.warnings.push(...parsed.warnings);
    for (const [k, value] of Object.entries(parsed.labels))
      if (!t.labels.has(k)) t.labels.set(k, { value, nad: key });
  }
}

/** Adds `entries` to the pod's annotations (one op creating the map when the pod has none). */
function annotationsPatch(pod: PodView, entries: Readonly<Record<string, string>>): PatchOperation[] {
  if (Object.keys(entries).length === 0) return [];
  if (pod.annotations === undefined)
    return [{ op: 'add', path: pointer(['metadata', 'annotations']), value: { ...entries } }];
  return Object.entries(entries).map(([key, value]) => ({
    op: 'add' as const,
    path: pointer(['metadata', 'annotations', key]),
    value,
  }));
}

/** The device requests for the target container, and the annotation that records them. */
function devicesPatch(pod: PodView, t: Tally, opts: MutationOptions, annotations: Record<string, string>) {
  const patch: PatchOperation[] = [];
  const container = targetContainer(pod);
  if (container === undefined) {
    t.warnings.push('the pod has no containers: no device requests added');
  } else if (t.needed.size > 0) {
    const r = resourcePatch(container, t.needed, opts.honorExistingResources ?? false);
    patch.push(...r.patch);
    t.warnings.push(...r.warnings);
    annotations[INJECTED_ANNOTATION] = JSON.stringify({ container: container.name, resources: r.result });
  }
  return patch;
}

/** The patch and warnings for `pod`, given the lookup of every NAD its `selections` name. */
export function computeMutation(
  pod: PodView,
  selections: readonly NetworkSelection[],
  lookups: ReadonlyMap<string, NadLookup>,
  opts: MutationOptions,
  defaultNetwork?: NetworkSelection,
): Mutation {
  const injected: InjectedAnnotations = injectedAnnotations(pod, opts.userInjections);
  const t: Tally = {
    needed: new Map(),
    labels: new Map(),
    warnings: [...injected.warnings],
    missing: 0,
    unavailable: 0,
  };
  const annotations: Record<string, string> = { ...injected.add };
  const merged = withInjected(pod, injected);
  for (const s of selections) tallyOne(t, opts, merged, s, lookups.get(nadKey(s)));
  if (defaultNetwork) tallyOne(t, opts, merged, defaultNetwork, lookups.get(nadKey(defaultNetwork)), false);
  const networks = selections.length > 0 || defaultNetwork !== undefined;
  const patch: PatchOperation[] = networks ? devicesPatch(merged, t, opts, annotations) : [];
  const ns = nodeSelectorPatch(pod.nodeSelector, t.labels);
  patch.push(...ns.patch, ...annotationsPatch(pod, annotations));
  t.warnings.push(...ns.warnings);
  if (opts.downwardApi && networks) {
    const d = downwardApiPatch(pod, opts.downwardApiHugepages ?? false);
    patch.push(...d.patch);
    t.warnings.push(...d.warnings);
  }
  return { patch, warnings: t.warnings, missingNads: t.missing, unavailableNads: t.unavailable };
}
