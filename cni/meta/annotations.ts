// Pod annotations: `k8s.v1.cni.cncf.io/networks` (comma form `[ns/]name[@ifname]` or a JSON list of
// NetworkSelectionElement) and `v1.multus-cni.io/default-network`. Same acceptance rules as Multus
// (pkg/k8sclient), messages that name the item, the field and the fix. Pure.
import { isIP } from 'node:net';
import { CniError, CniErrorCode } from '../errors.js';
import { interfaceNameProblem } from '../env.js';
import { isJsonObject } from '../../lib/json.js';
import type { JsonObject, JsonValue } from '../../lib/json.js';

export const NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';
export const DEFAULT_NETWORK_ANNOTATION = 'v1.multus-cni.io/default-network';
export const NETWORK_STATUS_ANNOTATION = 'k8s.v1.cni.cncf.io/network-status';
export const RESOURCE_NAME_ANNOTATION = 'k8s.v1.cni.cncf.io/resourceName';

/** One requested attachment. */
export interface NetworkSelection {
  readonly name: string;
  readonly namespace: string;
  readonly interface?: string;
  readonly ips?: readonly string[];
  readonly mac?: string;
  readonly defaultRoute?: readonly string[];
  readonly portMappings?: readonly JsonObject[];
  readonly bandwidth?: JsonObject;
  readonly cniArgs?: JsonObject;
  readonly infinibandGuid?: string;
  readonly deviceId?: string;
  readonly ipamClaimReference?: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function annotationError(where: string, msg: string): CniError {
  return new CniError(CniErrorCode.InvalidNetworkConfig, `${where}: ${msg}`);
}

function checkLabel(where: string, what: string, v: string): void {
  if (!DNS_LABEL.test(v)) {
    throw annotationError(
      where,
      `${what} "${v}" is not a valid name: use lower-case letters, digits and "-", starting and ending with a letter or digit`,
    );
  }
}

function checkIfname(where: string, v: string): void {
  const problem = interfaceNameProblem(v);
  if (problem !== undefined) throw annotationError(where, `interface name "${v}" ${problem}`);
}

/** True for `a:b:c:d:e:f` / `a-b-...` style MACs of 6, 8 or 20 octets (Go net.ParseMAC). */
export function isMac(v: string, octets: readonly number[] = [6, 8, 20]): boolean {
  const m = /^[0-9a-fA-F]{2}([:-])/.exec(v);
  const sep = m?.[1];
  if (sep === undefined) return false;
  const parts = v.split(sep);
  return octets.includes(parts.length) && parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p));
}

/** An IP address or an IP/prefix. */
export function isIpOrCidr(v: string): boolean {
  const slash = v.indexOf('/');
  if (slash < 0) return isIP(v) !== 0;
  const fam = isIP(v.slice(0, slash));
  const prefix = v.slice(slash + 1);
  if (fam === 0 || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (fam === 4 ? 32 : 128);
}

function parseCommaItem(item: string, index: number, podNamespace: string): NetworkSelection {
  const where = `${NETWORKS_ANNOTATION} item ${index + 1} "${item}"`;
  if (item === '')
    throw annotationError(`${NETWORKS_ANNOTATION} item ${index + 1}`, 'empty item (remove the stray ",")');
  const slash = item.split('/');
  if (slash.length > 2) {
    throw annotationError(where, 'more than one "/" (use "namespace/name" or "namespace/name@ifname")');
  }
  const namespace = slash.length === 2 ? (slash[0] ?? '') : podNamespace;
  const rest = slash.at(-1) ?? '';
  const at = rest.split('@');
  if (at.length > 2) throw annotationError(where, 'more than one "@" (use "name@ifname")');
  const name = at[0] ?? '';
  checkLabel(where, 'namespace', namespace);
  checkLabel(where, 'network name', name);
  const ifname = at[1];
  if (ifname === undefined) return { name, namespace };
  checkIfname(where, ifname);
  return { name, namespace, interface: ifname };
}

function optString(o: JsonObject, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string')
    throw annotationError(where, `"${key}" must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function optStringList(o: JsonObject, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) {
    throw annotationError(where, `"${key}" must be a list of strings, got ${JSON.stringify(v)}`);
  }
  return v;
}

function optObject(o: JsonObject, key: string, where: string): JsonObject | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isJsonObject(v)) throw annotationError(where, `"${key}" must be an object, got ${JSON.stringify(v)}`);
  return v;
}

function parseJsonItem(v: JsonValue, index: number, podNamespace: string): NetworkSelection {
  let where = `${NETWORKS_ANNOTATION}[${index}]`;
  if (!isJsonObject(v))
    throw annotationError(where, `must be an object like {"name": "net-a"}, got ${JSON.stringify(v)}`);
  const name = optString(v, 'name', where);
  if (name === undefined || name === '')
    throw annotationError(where, 'missing "name" (the NetworkAttachmentDefinition to attach)');
  where = `${where} (network "${name}")`;
  const namespace = optString(v, 'namespace', where);
  const ns = namespace === undefined || namespace === '' ? podNamespace : namespace;
  checkLabel(where, 'namespace', ns);
  checkLabel(where, 'network name', name);
  const out: { -readonly [K in keyof NetworkSelection]: NetworkSelection[K] } = { name, namespace: ns };
  const ifname = optString(v, 'interface', where) ?? optString(v, 'interfaceRequest', where);
  if (ifname !== undefined && ifname !== '') {
    checkIfname(where, ifname);
    out.interface = ifname;
  }
  const ips = optStringList(v, 'ips', where);
  if (ips !== undefined) {
    for (const ip of ips) {
      if (!isIpOrCidr(ip))
        throw annotationError(where, `"ips": "${ip}" is not an IP address or CIDR (e.g. "10.1.1.5/24")`);
    }
    out.ips = ips;
  }
  const mac = optString(v, 'mac', where);
  if (mac !== undefined && mac !== '') {
    if (!isMac(mac))
      throw annotationError(where, `"mac": "${mac}" is not a MAC address (e.g. "02:00:00:00:00:01")`);
    out.mac = mac;
  }
  const guid = optString(v, 'infiniband-guid', where);
  if (guid !== undefined && guid !== '') {
    if (!isMac(guid, [8])) {
      throw annotationError(
        where,
        `"infiniband-guid": "${guid}" is not a GUID (8 octets, e.g. "c2:11:22:33:44:55:66:77")`,
      );
    }
    out.infinibandGuid = guid;
  }
  const routes = optStringList(v, 'default-route', where);
  if (routes !== undefined) {
    for (const gw of routes) {
      if (isIP(gw) === 0)
        throw annotationError(where, `"default-route": "${gw}" is not an IP address (give the gateway)`);
    }
    out.defaultRoute = routes;
  }
  const pm = v['portMappings'];
  if (pm !== undefined && pm !== null) {
    if (!Array.isArray(pm) || !pm.every(isJsonObject)) {
      throw annotationError(where, `"portMappings" must be a list of {hostPort, containerPort, protocol}`);
    }
    out.portMappings = pm;
  }
  const bandwidth = optObject(v, 'bandwidth', where);
  if (bandwidth !== undefined) out.bandwidth = bandwidth;
  const cniArgs = optObject(v, 'cni-args', where);
  if (cniArgs !== undefined) out.cniArgs = cniArgs;
  const deviceId = optString(v, 'deviceID', where);
  if (deviceId !== undefined && deviceId !== '') out.deviceId = deviceId;
  const claim = optString(v, 'ipam-claim-reference', where);
  if (claim !== undefined && claim !== '') {
    if (ips !== undefined && ips.length > 0) {
      throw annotationError(where, '"ipam-claim-reference" and "ips" exclude each other (keep one)');
    }
    out.ipamClaimReference = claim;
  }
  return out;
}

/** Bounds on the annotation (untrusted input): Kubernetes caps all of a pod's annotations at 256 KiB. */
export const ANNOTATION_LIMITS = { bytes: 262_144, depth: 32, attachments: 100 } as const;

/** Deepest `[`/`{` nesting outside strings; stops counting past the limit. */
function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length && max <= limit; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') max = Math.max(max, ++depth);
    else if (c === ']' || c === '}') depth--;
  }
  return max;
}

function checkBounds(text: string): void {
  const L = ANNOTATION_LIMITS;
  if (Buffer.byteLength(text) > L.bytes)
    throw annotationError(
      NETWORKS_ANNOTATION,
      `larger than ${L.bytes} bytes (the Kubernetes limit for all annotations)`,
    );
  if (jsonDepth(text, L.depth) > L.depth)
    throw annotationError(
      NETWORKS_ANNOTATION,
      `JSON nested more than ${L.depth} levels: give a flat list like [{"name": "net-a"}]`,
    );
}

function checkCount(n: number): void {
  if (n > ANNOTATION_LIMITS.attachments)
    throw annotationError(
      NETWORKS_ANNOTATION,
      `${n} attachments; at most ${ANNOTATION_LIMITS.attachments} per pod`,
    );
}

/** Parses the networks annotation; an empty or blank value means no attachments. */
export function parseNetworksAnnotation(value: string, podNamespace: string): NetworkSelection[] {
  const text = value.trim();
  if (text === '') return [];
  checkBounds(value);
  if (/[[{"]/.test(text)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw annotationError(
        NETWORKS_ANNOTATION,
        `invalid JSON: ${(err as Error).message} (expected a list like [{"name": "net-a"}])`,
      );
    }
    if (!Array.isArray(parsed)) {
      throw annotationError(NETWORKS_ANNOTATION, 'JSON form must be a list: wrap the object in [ ... ]');
    }
    checkCount(parsed.length);
    return (parsed as JsonValue[]).map((item, i) => parseJsonItem(item, i, podNamespace));
  }
  const items = text.split(',');
  checkCount(items.length);
  return items.map((item, i) => parseCommaItem(item.trim(), i, podNamespace));
}

/** `v1.multus-cni.io/default-network`: exactly one network, namespace defaulting to `defaultNamespace`. */
export function parseDefaultNetworkAnnotation(value: string, defaultNamespace: string): NetworkSelection {
  const items = parseNetworksAnnotation(value, defaultNamespace);
  const [first] = items;
  if (first === undefined || items.length !== 1) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `${DEFAULT_NETWORK_ANNOTATION}: ${items.length === 0 ? 'is empty' : 'more than one default network is specified'} (give exactly one network name)`,
    );
  }
  return first;
}
