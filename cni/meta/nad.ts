// Network references → network configs: NetworkAttachmentDefinitions (`spec.config` conf or
// conflist, or by name from confDir when empty; `name` injected when absent) and the cluster /
// default networks (NAD in multusNamespace → conf name in confDir → directory → file).
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { CniError, CniErrorCode } from '../errors.js';
import type { JsonObject } from '../../lib/json.js';
import { parseJsonObject, parseNetworkConfig } from '../network-config.js';
import type { NetworkConfigList } from '../network-config.js';
import { RESOURCE_NAME_ANNOTATION } from './annotations.js';
import { KubeApiError, KubeErrorCode } from './kube.js';
import type { KubeClient } from './kube.js';

export interface ResolvedNetwork {
  /** `ns/name` for NADs, the conf `name` for files (used in network-status). */
  readonly displayName: string;
  readonly list: NetworkConfigList;
  readonly resourceName: string | undefined;
}

const CONF_EXT = ['.conflist', '.conf', '.json'];

async function confFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => CONF_EXT.includes(path.extname(n)))
    .sort()
    .map((n) => path.join(dir, n));
}

async function readConfFile(file: string): Promise<JsonObject> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CniError(
      CniErrorCode.IoFailure,
      `cannot read network config ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return parseJsonObject(text, file);
}

/** The conf/conflist in `confDir` whose `name` is `name` (conflists first, files in lexical order). */
export async function findConfByName(
  confDir: string,
  name: string,
): Promise<{ file: string; doc: JsonObject } | undefined> {
  const files = await confFiles(confDir);
  const ordered = [
    ...files.filter((f) => f.endsWith('.conflist')),
    ...files.filter((f) => !f.endsWith('.conflist')),
  ];
  for (const file of ordered) {
    const doc = await readConfFile(file).catch(() => undefined);
    if (doc !== undefined && doc['name'] === name) return { file, doc };
  }
  return undefined;
}

/** Fetches NAD `namespace/name` and turns it into a network config. */
export async function loadNad(
  kube: KubeClient,
  namespace: string,
  name: string,
  confDir: string,
): Promise<ResolvedNetwork> {
  const displayName = `${namespace}/${name}`;
  let nad;
  try {
    nad = await kube.getNad(namespace, name);
  } catch (err) {
    if (err instanceof KubeApiError && err.code === KubeErrorCode.NotFound) {
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `cannot find a network-attachment-definition (${name}) in namespace (${namespace}): create it or fix the pod's k8s.v1.cni.cncf.io/networks annotation`,
        { cause: err },
      );
    }
    throw new CniError(
      CniErrorCode.TryAgainLater,
      `cannot get network-attachment-definition ${displayName}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const resourceName = nad.annotations[RESOURCE_NAME_ANNOTATION];
  let doc: JsonObject;
  if (nad.config.trim() !== '') {
    doc = parseJsonObject(nad.config, `network-attachment-definition ${displayName} spec.config`);
  } else {
    const found = await findConfByName(confDir, name);
    if (found === undefined) {
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `network-attachment-definition ${displayName} has no spec.config and no conf named "${name}" exists in ${confDir}`,
      );
    }
    doc = found.doc;
  }
  if (typeof doc['name'] !== 'string' || doc['name'] === '') doc = { ...doc, name };
  return {
    displayName,
    list: parseNetworkConfig(doc, `network-attachment-definition ${displayName}`),
    resourceName: resourceName === undefined || resourceName === '' ? undefined : resourceName,
  };
}

function fromDoc(doc: JsonObject, where: string): ResolvedNetwork {
  const list = parseNetworkConfig(doc, where);
  return { displayName: list.name, list, resourceName: undefined };
}

/**
 * Resolves clusterNetwork/defaultNetworks entries as Multus does: NAD in `namespace` (when a client
 * exists) → conf name in confDir → a directory (its lexically first conf) → a file path.
 */
export async function resolveNetworkReference(
  ref: string,
  opts: { kube: KubeClient | undefined; namespace: string; confDir: string },
): Promise<ResolvedNetwork> {
  if (opts.kube !== undefined && !ref.includes('/')) {
    try {
      return await loadNad(opts.kube, opts.namespace, ref, opts.confDir);
    } catch (err) {
      if (
        !(err instanceof CniError) ||
        !(err.cause instanceof KubeApiError) ||
        err.cause.code !== KubeErrorCode.NotFound
      ) {
        throw err;
      }
    }
  }
  if (!ref.includes('/')) {
    const found = await findConfByName(opts.confDir, ref);
    if (found !== undefined) return fromDoc(found.doc, found.file);
  }
  const info = await stat(ref).catch(() => undefined);
  if (info?.isDirectory() === true) {
    const [first] = await confFiles(ref);
    if (first !== undefined) return fromDoc(await readConfFile(first), first);
  } else if (info?.isFile() === true) {
    return fromDoc(await readConfFile(ref), ref);
  }
  throw new CniError(
    CniErrorCode.InvalidNetworkConfig,
    `cannot resolve network "${ref}": no network-attachment-definition in ${opts.namespace}, no conf named so in ${opts.confDir}, and no such directory or file`,
  );
}
