// Optional Downward API volume (network-resources-injector's `podnetinfo`): the pod's
// network-status and networks annotations, all its annotations and labels (NRI's `annotations` and
// `labels` files, which app-netutil reads), and (optionally) each container's hugepages
// requests/limits in MiB, as files under /etc/podnetinfo in every container, so DPDK apps find their
// PCI addresses without API access. A container with hugepages files also gets NRI's env
// `CONTAINER_NAME` (its own name: the suffix of its files). Nothing is added where the pod already
// has that volume name or mount path, or the container that env name. Pure.
import type { JsonObject } from '../lib/json.js';
import { NETWORKS_ANNOTATION, NETWORK_STATUS_ANNOTATION } from '../cni/meta/annotations.js';
import { pointer } from './json-patch.js';
import type { PatchOperation } from './json-patch.js';
import type { ContainerView, PodView } from './pod.js';

export const PODNETINFO_VOLUME = 'podnetinfo';
export const PODNETINFO_PATH = '/etc/podnetinfo';
export const CONTAINER_NAME_ENV = 'CONTAINER_NAME';

const HUGEPAGES = [
  { resource: 'hugepages-1Gi', tag: '1G' },
  { resource: 'hugepages-2Mi', tag: '2M' },
] as const;

function hugepageItems(c: ContainerView): JsonObject[] {
  const items: JsonObject[] = [];
  for (const { resource, tag } of HUGEPAGES) {
    for (const section of ['requests', 'limits'] as const) {
      const values = section === 'requests' ? c.requests : c.limits;
      if (values?.[resource] === undefined || c.name === '') continue;
      items.push({
        path: `hugepages_${tag}_${section === 'requests' ? 'request' : 'limit'}_${c.name}`,
        resourceFieldRef: { containerName: c.name, resource: `${section}.${resource}`, divisor: '1Mi' },
      });
    }
  }
  return items;
}

function volume(pod: PodView, hugepages: boolean): JsonObject {
  const annotation = (key: string, path: string): JsonObject => ({
    path,
    fieldRef: { fieldPath: `metadata.annotations['${key}']` },
  });
  return {
    name: PODNETINFO_VOLUME,
    downwardAPI: {
      items: [
        annotation(NETWORK_STATUS_ANNOTATION, 'network-status'),
        annotation(NETWORKS_ANNOTATION, 'networks'),
        { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
        ...(hugepages ? pod.containers.flatMap(hugepageItems) : []),
      ],
    },
  };
}

/** NRI's CONTAINER_NAME env for a container that has hugepages files. */
function containerNameEnv(c: ContainerView): { patch: PatchOperation[]; warnings: string[] } {
  const base = ['spec', 'containers', c.index, 'env'];
  const env = { name: CONTAINER_NAME_ENV, value: c.name };
  const mine = c.env?.find((e) => e.name === CONTAINER_NAME_ENV);
  if (mine === undefined) {
    return {
      patch: [
        c.env === undefined
          ? { op: 'add', path: pointer(base), value: [env] }
          : { op: 'add', path: pointer([...base, '-']), value: env },
      ],
      warnings: [],
    };
  }
  const warnings =
    mine.value === c.name
      ? []
      : [`container ${c.name}: kept its own ${CONTAINER_NAME_ENV}; its hugepages files end in _${c.name}`];
  return { patch: [], warnings };
}

export function downwardApiPatch(
  pod: PodView,
  hugepages: boolean,
): { patch: PatchOperation[]; warnings: string[] } {
  if (pod.volumes?.includes(PODNETINFO_VOLUME) === true) {
    return {
      patch: [],
      warnings: [`volume "${PODNETINFO_VOLUME}" already exists: the Downward API volume was not added`],
    };
  }
  const patch: PatchOperation[] = [
    pod.volumes === undefined
      ? { op: 'add', path: pointer(['spec', 'volumes']), value: [volume(pod, hugepages)] }
      : { op: 'add', path: pointer(['spec', 'volumes', '-']), value: volume(pod, hugepages) },
  ];
  const warnings: string[] = [];
  const mount: JsonObject = { name: PODNETINFO_VOLUME, mountPath: PODNETINFO_PATH, readOnly: true };
  for (const c of pod.containers) {
    if (c.mounts?.some((m) => m.mountPath === PODNETINFO_PATH) === true) {
      warnings.push(
        `container ${c.name}: ${PODNETINFO_PATH} is already mounted; podnetinfo not mounted there`,
      );
      continue;
    }
    const base = ['spec', 'containers', c.index, 'volumeMounts'];
    patch.push(
      c.mounts === undefined
        ? { op: 'add', path: pointer(base), value: [mount] }
        : { op: 'add', path: pointer([...base, '-']), value: mount },
    );
  }
  if (hugepages) {
    for (const c of pod.containers.filter((x) => hugepageItems(x).length > 0)) {
      const e = containerNameEnv(c);
      patch.push(...e.patch);
      warnings.push(...e.warnings);
    }
  }
  return { patch, warnings };
}
