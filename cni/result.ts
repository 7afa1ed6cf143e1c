// CNI results: one canonical in-memory shape (the 1.1.0 result) and the wire formats of every spec
// version. Conversion is decode(from) then encode(to); both are pure.
//
// Rules (SPEC.md "Result", libcni types 020/040/100):
// - 0.3.x/0.4.0 carry `ips[].version` ("4"|"6", derived from the address family); 1.x drops it.
// - 1.1.0-only fields (interface mtu/socketPath/pciID, route mtu/advmss/priority/table/scope) are
//   dropped when encoding for an older version.
// - 0.1.0/0.2.0 keep only the first IPv4 and the first IPv6 address; routes go to ip4/ip6 by the
//   family of their `dst` (only dst/gw survive).
// - 1.x omits an empty `dns`; older formats always print `"dns": {}` like the Go types do.
import { formatIssues } from '../lib/config-path.js';
import * as z from 'zod/mini';
import '../lib/zod-locale.js';
import { CniError, CniErrorCode } from './errors.js';
import type { JsonObject } from '../lib/json.js';
import { resultFormatOf, versionAtLeast } from './version.js';

export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  readonly mtu?: number;
  readonly sandbox?: string;
  readonly socketPath?: string;
  readonly pciID?: string;
}

export interface CniIpConfig {
  /** CIDR, e.g. `10.1.0.5/24`. */
  readonly address: string;
  readonly gateway?: string;
  /** Index into `interfaces`. */
  readonly interface?: number;
}

export interface CniRoute {
  readonly dst: string;
  readonly gw?: string;
  readonly mtu?: number;
  readonly advmss?: number;
  readonly priority?: number;
  readonly table?: number;
  readonly scope?: number;
}

export interface CniDns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

/** A CNI result in canonical (1.1.0) form. */
export interface CniResult {
  readonly interfaces: readonly CniInterface[];
  readonly ips: readonly CniIpConfig[];
  readonly routes: readonly CniRoute[];
  readonly dns: CniDns;
}

export const EMPTY_RESULT: CniResult = { interfaces: [], ips: [], routes: [], dns: {} };

export function ipFamily(addressOrCidr: string): 4 | 6 {
  return addressOrCidr.includes(':') ? 6 : 4;
}

const dnsSchema = z.nullish(
  z.object({
    nameservers: z.nullish(z.array(z.string())),
    domain: z.nullish(z.string()),
    search: z.nullish(z.array(z.string())),
    options: z.nullish(z.array(z.string())),
  }),
);

// Classic zod's z.number().int(): a non-number fails as "expected number" (z.int() alone says "int").
const integer = () => z.number().check(z.int());

const routeSchema = z.object({
  dst: z.string(),
  gw: z.nullish(z.string()),
  mtu: z.nullish(integer()),
  advmss: z.nullish(integer()),
  priority: z.nullish(integer()),
  table: z.nullish(integer()),
  scope: z.nullish(integer()),
});

const interfaceSchema = z.object({
  name: z.string(),
  mac: z.nullish(z.string()),
  mtu: z.nullish(integer()),
  sandbox: z.nullish(z.string()),
  socketPath: z.nullish(z.string()),
  pciID: z.nullish(z.string()),
});

const ipSchema = z.object({
  address: z.string(),
  gateway: z.nullish(z.string()),
  interface: z.nullish(z.number().check(z.int(), z.nonnegative())),
  version: z.nullish(z.enum(['4', '6'])),
});

const currentSchema = z.object({
  cniVersion: z.optional(z.string()),
  interfaces: z.nullish(z.array(interfaceSchema)),
  ips: z.nullish(z.array(ipSchema)),
  routes: z.nullish(z.array(routeSchema)),
  dns: dnsSchema,
});

const legacyIpSchema = z.object({
  ip: z.string(),
  gateway: z.nullish(z.string()),
  routes: z.nullish(z.array(routeSchema)),
});

const legacySchema = z.object({
  cniVersion: z.optional(z.string()),
  ip4: z.nullish(legacyIpSchema),
  ip6: z.nullish(legacyIpSchema),
  dns: dnsSchema,
});

type Nullish<T> = T | null | undefined;

// Builds an object without the keys whose value is null/undefined (exactOptionalPropertyTypes).
function compact<T extends object>(o: { [K in keyof T]: Nullish<T[K]> }): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = v;
  return out as T;
}

function decodeDns(d: z.infer<typeof dnsSchema>): CniDns {
  if (d === null || d === undefined) return {};
  return compact<CniDns>({
    nameservers: d.nameservers,
    domain: d.domain,
    search: d.search,
    options: d.options,
  });
}

function decodeRoute(r: z.infer<typeof routeSchema>): CniRoute {
  return compact<CniRoute>(r);
}

function zodMessage(err: z.core.$ZodError): string {
  return formatIssues(err.issues);
}

/**
 * Reads a result printed by a plugin of spec `version` (the result's own `cniVersion` wins when
 * present). Throws CniError 6 (decoding failure) naming the bad field.
 */
export function decodeResult(json: unknown, version: string): CniResult {
  const own =
    typeof json === 'object' && json !== null && 'cniVersion' in json && typeof json.cniVersion === 'string'
      ? json.cniVersion
      : version;
  if (resultFormatOf(own) === 'legacy') {
    const p = legacySchema.safeParse(json);
    if (!p.success) {
      throw new CniError(CniErrorCode.DecodingFailure, `invalid ${own} result: ${zodMessage(p.error)}`);
    }
    const ips: CniIpConfig[] = [];
    const routes: CniRoute[] = [];
    for (const block of [p.data.ip4, p.data.ip6]) {
      if (block === null || block === undefined) continue;
      ips.push(compact<CniIpConfig>({ address: block.ip, gateway: block.gateway }));
      for (const r of block.routes ?? []) routes.push(decodeRoute(r));
    }
    return { interfaces: [], ips, routes, dns: decodeDns(p.data.dns) };
  }
  const p = currentSchema.safeParse(json);
  if (!p.success) {
    throw new CniError(CniErrorCode.DecodingFailure, `invalid ${own} result: ${zodMessage(p.error)}`);
  }
  return {
    interfaces: (p.data.interfaces ?? []).map((i) => compact<CniInterface>(i)),
    ips: (p.data.ips ?? []).map((i) =>
      compact<CniIpConfig>({ address: i.address, gateway: i.gateway, interface: i.interface }),
    ),
    routes: (p.data.routes ?? []).map(decodeRoute),
    dns: decodeDns(p.data.dns),
  };
}

function dnsJson(d: CniDns): JsonObject {
  const out: JsonObject = {};
  if (d.nameservers !== undefined) out['nameservers'] = [...d.nameservers];
  if (d.domain !== undefined) out['domain'] = d.domain;
  if (d.search !== undefined) out['search'] = [...d.search];
  if (d.options !== undefined) out['options'] = [...d.options];
  return out;
}

function routeJson(r: CniRoute, full: boolean): JsonObject {
  const out: JsonObject = { dst: r.dst };
  if (r.gw !== undefined) out['gw'] = r.gw;
  if (full) {
    if (r.mtu !== undefined) out['mtu'] = r.mtu;
    if (r.advmss !== undefined) out['advmss'] = r.advmss;
    if (r.priority !== undefined) out['priority'] = r.priority;
    if (r.table !== undefined) out['table'] = r.table;
    if (r.scope !== undefined) out['scope'] = r.scope;
  }
  return out;
}

function interfaceJson(i: CniInterface, full: boolean): JsonObject {
  const out: JsonObject = { name: i.name };
  if (i.mac !== undefined) out['mac'] = i.mac;
  if (full && i.mtu !== undefined) out['mtu'] = i.mtu;
  if (i.sandbox !== undefined) out['sandbox'] = i.sandbox;
  if (full && i.socketPath !== undefined) out['socketPath'] = i.socketPath;
  if (full && i.pciID !== undefined) out['pciID'] = i.pciID;
  return out;
}

/** Renders `result` in the wire format of spec `version`. */
export function encodeResult(result: CniResult, version: string): JsonObject {
  const format = resultFormatOf(version);
  const dns = dnsJson(result.dns);
  if (format === 'legacy') {
    const out: JsonObject = { cniVersion: version };
    for (const fam of [4, 6] as const) {
      const ip = result.ips.find((i) => ipFamily(i.address) === fam);
      if (ip === undefined) continue;
      const block: JsonObject = { ip: ip.address };
      if (ip.gateway !== undefined) block['gateway'] = ip.gateway;
      const routes = result.routes.filter((r) => ipFamily(r.dst) === fam).map((r) => routeJson(r, false));
      if (routes.length > 0) block['routes'] = routes;
      out[fam === 4 ? 'ip4' : 'ip6'] = block;
    }
    out['dns'] = dns;
    return out;
  }
  const full = versionAtLeast(version, '1.1.0');
  const out: JsonObject = { cniVersion: version };
  if (result.interfaces.length > 0) out['interfaces'] = result.interfaces.map((i) => interfaceJson(i, full));
  if (result.ips.length > 0) {
    out['ips'] = result.ips.map((i) => {
      const ip: JsonObject = {};
      if (format === 'v04') ip['version'] = String(ipFamily(i.address));
      if (i.interface !== undefined) ip['interface'] = i.interface;
      ip['address'] = i.address;
      if (i.gateway !== undefined) ip['gateway'] = i.gateway;
      return ip;
    });
  }
  if (result.routes.length > 0) out['routes'] = result.routes.map((r) => routeJson(r, full));
  if (format === 'v04' || Object.keys(dns).length > 0) out['dns'] = dns;
  return out;
}

/** Converts a result printed for spec `from` into the wire format of spec `to`. */
export function convertResult(json: unknown, from: string, to: string): JsonObject {
  return encodeResult(decodeResult(json, from), to);
}

/** The spec's pretty printing (4-space indent, like Go's PrintResult). */
export function printJson(v: unknown): string {
  return JSON.stringify(v, null, 4);
}
