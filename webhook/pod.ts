// The few parts of an (untrusted) Pod object the webhook reads, checked once here so the rest of the
// webhook never touches raw JSON. Anything of the wrong shape reads as absent. Pure.
import { isJsonObject } from '../lib/json.js';
import type { JsonObject, JsonValue } from '../lib/json.js';

export interface ContainerView {
  readonly index: number;
  readonly name: string;
  /** `resources` exists (an object). */
  readonly hasResources: boolean;
  /** `resources.requests` / `resources.limits`, undefined when absent. */
  readonly requests: Readonly<Record<string, JsonValue>> | undefined;
  readonly limits: Readonly<Record<string, JsonValue>> | undefined;
  /** volumeMounts, undefined when absent. */
  readonly mounts: readonly { readonly name: string; readonly mountPath: string }[] | undefined;
  /** `env` names with their literal `value` (undefined for valueFrom); undefined when `env` is absent. */
  readonly env: readonly { readonly name: string; readonly value: string | undefined }[] | undefined;
}

export interface PodView {
  readonly namespace: string;
  /** name, or generateName (pods of a ReplicaSet have no name yet at admission). */
  readonly name: string;
  /** String-valued annotations; undefined when `metadata.annotations` is absent. */
  readonly annotations: Readonly<Record<string, string>> | undefined;
  /** String-valued labels (empty when absent). */
  readonly labels: Readonly<Record<string, string>>;
  readonly containers: readonly ContainerView[];
  readonly nodeSelector: Readonly<Record<string, string>> | undefined;
  /** Volume names, undefined when `spec.volumes` is absent. */
  readonly volumes: readonly string[] | undefined;
}

function objectAt(o: JsonObject | undefined, key: string): JsonObject | undefined {
  const v = o?.[key];
  return isJsonObject(v) ? v : undefined;
}

function stringAt(o: JsonObject | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' ? v : undefined;
}

function stringRecord(o: JsonObject | undefined): Record<string, string> | undefined {
  if (o === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string') out[k] = v;
  return out;
}

function mountsOf(c: JsonObject): ContainerView['mounts'] {
  const list = c['volumeMounts'];
  if (!Array.isArray(list)) return undefined;
  return list.filter(isJsonObject).map((m) => ({
    name: stringAt(m, 'name') ?? '',
    mountPath: stringAt(m, 'mountPath') ?? '',
  }));
}

function envOf(c: JsonObject): ContainerView['env'] {
  const list = c['env'];
  if (!Array.isArray(list)) return undefined;
  return list
    .filter(isJsonObject)
    .map((e) => ({ name: stringAt(e, 'name') ?? '', value: stringAt(e, 'value') }));
}

function containerView(c: JsonValue, index: number): ContainerView | undefined {
  if (!isJsonObject(c)) return undefined;
  const resources = objectAt(c, 'resources');
  return {
    index,
    name: stringAt(c, 'name') ?? '',
    hasResources: resources !== undefined,
    requests: objectAt(resources, 'requests'),
    limits: objectAt(resources, 'limits'),
    mounts: mountsOf(c),
    env: envOf(c),
  };
}

/** Reads a Pod; `namespace` is the AdmissionRequest's (a new pod's metadata may lack it). */
export function podView(object: unknown, namespace: string): PodView {
  const pod = isJsonObject(object) ? object : undefined;
  const metadata = objectAt(pod, 'metadata');
  const spec = objectAt(pod, 'spec');
  const containers = spec?.['containers'];
  const volumes = spec?.['volumes'];
  return {
    namespace: stringAt(metadata, 'namespace') ?? namespace,
    name: stringAt(metadata, 'name') ?? stringAt(metadata, 'generateName') ?? '',
    annotations: stringRecord(objectAt(metadata, 'annotations')),
    labels: stringRecord(objectAt(metadata, 'labels')) ?? {},
    containers: Array.isArray(containers) ? containers.flatMap((c, i) => containerView(c, i) ?? []) : [],
    nodeSelector: stringRecord(objectAt(spec, 'nodeSelector')),
    volumes: Array.isArray(volumes)
      ? volumes.filter(isJsonObject).map((v) => stringAt(v, 'name') ?? '')
      : undefined,
  };
}
