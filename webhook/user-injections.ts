// network-resources-injector's "user-defined injections": annotations an operator attaches to every
// pod carrying a label set to "true" (e.g. `feature.pod.kubernetes.io_sriov-network: "true"` adds
// `k8s.v1.cni.cncf.io/networks: sriov-net`). The injected networks count like the pod's own. Unlike
// NRI, which replaces the whole `metadata.annotations` object, only keys the pod does not set are
// added: the pod's own value of a key wins (with a warning when they differ). Pure.
import type { PodView } from './pod.js';

export interface UserInjection {
  /** The pod label that asks for it (value "true", any case). */
  readonly label: string;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface InjectedAnnotations {
  /** Annotations to add (keys the pod does not have). */
  readonly add: Readonly<Record<string, string>>;
  readonly warnings: string[];
}

const NONE: InjectedAnnotations = { add: {}, warnings: [] };

/** The annotations `injections` add to `pod`; injections are applied in label order, the first to set a key wins. */
export function injectedAnnotations(
  pod: Pick<PodView, 'labels' | 'annotations'>,
  injections: readonly UserInjection[] | undefined,
): InjectedAnnotations {
  if (injections === undefined || injections.length === 0) return NONE;
  const add: Record<string, string> = {};
  const warnings: string[] = [];
  const wanted = injections
    .filter((i) => pod.labels[i.label]?.toLowerCase() === 'true')
    .sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  for (const injection of wanted) {
    for (const [key, value] of Object.entries(injection.annotations)) {
      const mine = pod.annotations?.[key];
      if (mine !== undefined) {
        if (mine !== value)
          warnings.push(
            `annotation ${key}: kept the pod's value; label ${injection.label} would inject another`,
          );
      } else if (!(key in add)) add[key] = value;
    }
  }
  return { add, warnings };
}

/** `pod` as the CNI will see it once the injected annotations are added. */
export function withInjected(pod: PodView, injected: InjectedAnnotations): PodView {
  if (Object.keys(injected.add).length === 0) return pod;
  return { ...pod, annotations: { ...injected.add, ...pod.annotations } };
}
