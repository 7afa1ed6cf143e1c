// SRIOV-DP's config.json (`{"resourceList":[...]}`), validated at the edge into typed pools.
// Same keys and meaning as SRIOV-DP, plus `vlans`, `deviceType: "nic"`, `slots` and
// `allocationPolicy`. What SRIOV-DP accepts keeps serving: what it ignores (unknown keys, a bad
// part of a VF range) is a warning naming the JSON path and the fix, and the pool is served
// without it; a pool SRIOV-DP would serve differently (a selector netplumb cannot evaluate, an
// `auxNetDevice` pool) or not at all (a selector of the wrong type, a duplicate name) is left out
// with an error, and the other pools are served. `strict` turns every finding into an error.
import { formatConfigPath } from '../lib/config-path.js';
import type { ConfigPath } from '../lib/config-path.js';
import { NetplumbError } from '../lib/errors.js';
import type { NetplumbErrorOptions } from '../lib/errors.js';
import { z } from 'zod';
import { parseVfRefLenient } from './vf-range.js';
import type { VfRef } from './vf-range.js';

export const CONFIG_ERROR = {
  unreadable: 'ERR_DP_CONFIG_UNREADABLE',
  invalid: 'ERR_DP_CONFIG_INVALID',
} as const;
export type ConfigErrorCode = (typeof CONFIG_ERROR)[keyof typeof CONFIG_ERROR];

export interface ConfigProblem {
  /** JSON path, e.g. `resourceList[1].selectors[0].pfName`. */
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends NetplumbError {
  declare readonly code: ConfigErrorCode;
  readonly problems: readonly ConfigProblem[];
  constructor(code: ConfigErrorCode, problems: readonly ConfigProblem[], options?: NetplumbErrorOptions) {
    super(code, problems.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`)).join('\n'), {
      exitCode: 2,
      ...options,
    });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export const ALLOCATION_POLICIES = ['pack', 'spread'] as const;
export type AllocationPolicy = (typeof ALLOCATION_POLICIES)[number];

/** Selector for PCI pools (netDevice, accelerator). Empty list = no filter on that key. */
export interface PciSelector {
  readonly vendors: readonly string[];
  readonly devices: readonly string[];
  readonly drivers: readonly string[];
  readonly pciAddresses: readonly string[];
  readonly acpiIndexes: readonly string[];
  readonly pfNames: readonly VfRef[];
  readonly rootDevices: readonly VfRef[];
  readonly linkTypes: readonly string[];
  /** PF-side admin VLAN of a VF (0 = untagged). */
  readonly vlans: readonly number[];
  readonly isRdma: boolean;
  readonly needVhostNet: boolean;
}

/** Selector for `nic` pools: host interfaces by name, lower device, VLAN ID. */
export interface NicSelector {
  readonly names: readonly string[];
  readonly parents: readonly string[];
  readonly vlans: readonly number[];
}

interface PoolConfigBase {
  readonly resourceName: string;
  readonly resourcePrefix: string;
  /** `<prefix>/<name>`: the extended resource name the kubelet sees. */
  readonly fullName: string;
  readonly excludeTopology: boolean;
  /** `"*"` or a device ID → extra key/values for the `_INFO` env. */
  readonly additionalInfo: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly allocationPolicy: AllocationPolicy;
}

export interface PciPoolConfig extends PoolConfigBase {
  readonly deviceType: 'netDevice' | 'accelerator';
  readonly selectors: readonly PciSelector[];
}

export interface NicPoolConfig extends PoolConfigBase {
  readonly deviceType: 'nic';
  readonly selectors: readonly NicSelector[];
  /** Each selected interface is advertised as this many devices `<ifname>#0..slots-1`. */
  readonly slots: number;
}

export type PoolConfig = PciPoolConfig | NicPoolConfig;

export interface DevicePluginConfig {
  readonly pools: readonly PoolConfig[];
  /** Entries ignored as SRIOV-DP ignores them: their pools are served without them. */
  readonly warnings: readonly ConfigProblem[];
  /** Pools left out (not served), each with why: the other pools are served. */
  readonly poolErrors: readonly ConfigProblem[];
}

// ---- schemas ----

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] ?? 0;
      prev[j] = Math.min(up + 1, (prev[j - 1] ?? 0) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] ?? 0;
}

/** The known key closest to `key`, if close enough to be a typo. */
export function suggestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestScore = Infinity;
  for (const k of known) {
    const score =
      k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key.toLowerCase(), k.toLowerCase());
    if (score < bestScore) {
      best = k;
      bestScore = score;
    }
  }
  return best !== null && bestScore <= Math.max(2, Math.floor(key.length / 3)) ? best : null;
}

const strings = z.array(z.string());
const vlanIds = z.array(z.number().int().min(0).max(4094));

// Unknown keys are not rejected by the schemas (SRIOV-DP, like Go's encoding/json, ignores them):
// unknownKeys() reports each one with the closest known key.
const netDeviceSelectorSchema = z.object({
  vendors: strings.default([]),
  devices: strings.default([]),
  drivers: strings.default([]),
  pciAddresses: strings.default([]),
  acpiIndexes: strings.default([]),
  pfNames: strings.default([]),
  rootDevices: strings.default([]),
  linkTypes: strings.default([]),
  vlans: vlanIds.default([]),
  isRdma: z.boolean().default(false),
  needVhostNet: z.boolean().default(false),
  // SRIOV-DP selectors netplumb cannot evaluate yet (no data for them in the node model).
  ddpProfiles: strings.default([]),
  pKeys: strings.default([]),
  vdpaType: z.string().default(''),
});

const acceleratorSelectorSchema = z.object({
  vendors: strings.default([]),
  devices: strings.default([]),
  drivers: strings.default([]),
  pciAddresses: strings.default([]),
  acpiIndexes: strings.default([]),
});

const nicSelectorSchema = z.object({
  names: strings.default([]),
  parents: strings.default([]),
  vlans: vlanIds.default([]),
});

/** What each unsupported selector would need, for its error (SRIOV-DP serves only matching devices). */
const UNSUPPORTED_SELECTORS = {
  ddpProfiles: 'the DDP profile of each device (SRIOV-DP reads it with ddptool)',
  pKeys: 'the InfiniBand partition keys of each device',
  vdpaType: 'the vDPA devices of each VF',
} as const;

const RESOURCE_NAME = /^[a-zA-Z0-9_-]+$/;
// The extended resource's domain: a DNS-1123 subdomain (Kubernetes validates it the same way).
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `prefix` cannot be an extended-resource domain, or null. */
export function resourcePrefixProblem(prefix: string): string | null {
  if (prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix)) return null;
  return `"${prefix}" is not a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", at most 253 characters), e.g. intel.com`;
}

const resourceSchema = z.object({
  resourceName: z
    .string({ error: 'is required: a name matching ^[a-zA-Z0-9_-]+$' })
    .max(63, { error: 'must be at most 63 characters (a Kubernetes resource name)' })
    .regex(RESOURCE_NAME, { error: 'must match ^[a-zA-Z0-9_-]+$ (letters, digits, "_" and "-")' }),
  // "" means the default prefix, as in SRIOV-DP.
  resourcePrefix: z
    .string()
    .optional()
    .superRefine((p, ctx) => {
      const problem = p === undefined || p === '' ? null : resourcePrefixProblem(p);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    }),
  deviceType: z
    .enum(['netDevice', 'accelerator', 'nic', 'auxNetDevice'], {
      error: 'must be "netDevice", "accelerator" or "nic"',
    })
    .default('netDevice'),
  excludeTopology: z.boolean().default(false),
  selectors: z.unknown().optional(),
  additionalInfo: z.record(z.string(), z.record(z.string(), z.string())).default({}),
  slots: z.number().int().min(1).max(1024).optional(),
  allocationPolicy: z.enum(ALLOCATION_POLICIES, { error: 'must be "pack" or "spread"' }).default('pack'),
});

const rootSchema = z.object({
  resourceList: z.array(z.unknown(), { error: 'is required: an array of resource objects' }),
});

type Path = ConfigPath;
const formatPath = formatConfigPath;

/** A finding while reading the config: a warning (ignored, pool served) or an error (pool left out). */
interface Finding extends ConfigProblem {
  readonly severity: 'warning' | 'error';
}

/** Collects findings in document order. */
class Findings {
  readonly list: Finding[] = [];
  warn(path: Path, message: string): void {
    this.list.push({ path: formatPath(path), message, severity: 'warning' });
  }
  error(path: Path, message: string): void {
    this.list.push({ path: formatPath(path), message, severity: 'error' });
  }
  errorsOf(error: z.ZodError, prefix: Path): void {
    for (const issue of error.issues) this.error([...prefix, ...issue.path], issue.message);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Each key of `value` no schema key matches (case-insensitively, as Go): a warning, ignored. */
function unknownKeys(value: Record<string, unknown>, known: readonly string[], at: Path, f: Findings): void {
  const lower = new Set(known.map((k) => k.toLowerCase()));
  for (const k of Object.keys(value)) {
    if (lower.has(k.toLowerCase())) continue;
    const hint = suggestKey(k, known);
    f.warn(
      [...at, k],
      `unknown key; ${hint === null ? `known keys: ${known.join(', ')}` : `did you mean ${hint}?`}`,
    );
  }
}

// Go's encoding/json matches keys case-insensitively; accept e.g. `IsRdma` as SRIOV-DP does.
function canonicalKeys(value: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const canonical = known.includes(k) ? k : (known.find((c) => c.toLowerCase() === k.toLowerCase()) ?? k);
    out[canonical] = v;
  }
  return out;
}

/** An object checked against `schema`: unknown keys are warnings, a wrong value an error (null). */
function parseObject<T>(
  raw: unknown,
  schema: z.ZodObject<z.ZodRawShape> & z.ZodType<T>,
  at: Path,
  f: Findings,
  what: string,
): T | null {
  if (!isRecord(raw)) {
    f.error(at, `must be ${what}`);
    return null;
  }
  const known = Object.keys(schema.shape);
  unknownKeys(raw, known, at, f);
  const r = schema.safeParse(canonicalKeys(raw, known));
  if (r.success) return r.data;
  f.errorsOf(r.error, at);
  return null;
}

/** SRIOV-DP accepts one selector object or a list of them; a missing key means "match everything". */
function selectorItems(raw: unknown, at: Path): { item: unknown; at: Path }[] {
  if (raw === undefined) return [{ item: {}, at }];
  if (Array.isArray(raw)) return raw.map((item: unknown, i) => ({ item, at: [...at, i] }));
  return [{ item: raw, at }];
}

/** pfNames/rootDevices entries; a bad part selects no VF (a warning), as SRIOV-DP skips it. */
function vfRefs(list: readonly string[], at: Path, f: Findings): VfRef[] {
  return list.map((text, i) => {
    const r = parseVfRefLenient(text);
    for (const problem of r.problems)
      f.warn([...at, i], `${problem}; that part selects no VF (as in SRIOV-DP)`);
    return r.ref;
  });
}

/** A netDevice selector; null when it uses a selector netplumb cannot evaluate (an error). */
function netDeviceSelector(raw: unknown, at: Path, f: Findings): PciSelector | null {
  const s = parseObject(raw, netDeviceSelectorSchema, at, f, 'a selector object');
  if (s === null) return null;
  let ok = true;
  for (const [key, needs] of Object.entries(UNSUPPORTED_SELECTORS)) {
    const value = s[key as keyof typeof UNSUPPORTED_SELECTORS];
    if (value.length === 0) continue;
    ok = false;
    f.error(
      [...at, key],
      `is an SRIOV-DP selector netplumb does not support yet: it needs ${needs}, and SRIOV-DP serves only the devices that match it, so this pool is not served; remove the key to serve the pool without it`,
    );
  }
  if (!ok) return null;
  return {
    vendors: s.vendors,
    devices: s.devices,
    drivers: s.drivers,
    pciAddresses: s.pciAddresses,
    acpiIndexes: s.acpiIndexes,
    pfNames: vfRefs(s.pfNames, [...at, 'pfNames'], f),
    rootDevices: vfRefs(s.rootDevices, [...at, 'rootDevices'], f),
    linkTypes: s.linkTypes,
    vlans: s.vlans,
    isRdma: s.isRdma,
    needVhostNet: s.needVhostNet,
  };
}

/** A selector that matches every device (every key empty or off). */
export const EMPTY_PCI_SELECTOR: PciSelector = {
  vendors: [],
  devices: [],
  drivers: [],
  pciAddresses: [],
  acpiIndexes: [],
  pfNames: [],
  rootDevices: [],
  linkTypes: [],
  vlans: [],
  isRdma: false,
  needVhostNet: false,
};

function acceleratorSelector(raw: unknown, at: Path, f: Findings): PciSelector | null {
  const s = parseObject(raw, acceleratorSelectorSchema, at, f, 'a selector object');
  return s === null ? null : { ...EMPTY_PCI_SELECTOR, ...s };
}

function nicSelector(raw: unknown, at: Path, f: Findings): NicSelector | null {
  return parseObject(raw, nicSelectorSchema, at, f, 'a selector object');
}

/** Every selector of a pool, or null when one of them is an error (the pool is left out). */
function selectorsOf<T>(
  raw: unknown,
  at: Path,
  f: Findings,
  one: (raw: unknown, at: Path, f: Findings) => T | null,
): T[] | null {
  if (raw !== undefined && (typeof raw !== 'object' || raw === null)) {
    f.error(at, 'must be a selector object or an array of them');
    return null;
  }
  const out: T[] = [];
  let ok = true;
  for (const { item, at: itemAt } of selectorItems(raw, at)) {
    const s = one(item, itemAt, f);
    if (s === null) ok = false;
    else out.push(s);
  }
  return ok ? out : null;
}

export interface ParseConfigOptions {
  /** `--resource-prefix`; SRIOV-DP's default is `intel.com`. */
  readonly resourcePrefix: string;
  /** Every warning and pool error is an error: the whole config is refused (`--strict`). */
  readonly strict?: boolean;
}

type ResourceFields = z.output<typeof resourceSchema>;

interface ResourceContext {
  readonly defaultPrefix: string;
  /** fullName → index of the resource that defined it. */
  readonly seen: Map<string, number>;
  readonly f: Findings;
}

function poolBase(rc: ResourceFields, prefix: string): PoolConfigBase {
  return {
    resourceName: rc.resourceName,
    resourcePrefix: prefix,
    fullName: `${prefix}/${rc.resourceName}`,
    excludeTopology: rc.excludeTopology,
    additionalInfo: rc.additionalInfo,
    allocationPolicy: rc.allocationPolicy,
  };
}

function poolOf(rc: ResourceFields, base: PoolConfigBase, at: Path, f: Findings): PoolConfig | null {
  const selAt: Path = [...at, 'selectors'];
  switch (rc.deviceType) {
    case 'netDevice': {
      const selectors = selectorsOf(rc.selectors, selAt, f, netDeviceSelector);
      return selectors === null ? null : { ...base, deviceType: 'netDevice', selectors };
    }
    case 'accelerator': {
      const selectors = selectorsOf(rc.selectors, selAt, f, acceleratorSelector);
      return selectors === null ? null : { ...base, deviceType: 'accelerator', selectors };
    }
    case 'nic': {
      const selectors = selectorsOf(rc.selectors, selAt, f, nicSelector);
      return selectors === null ? null : { ...base, deviceType: 'nic', selectors, slots: rc.slots ?? 1 };
    }
    case 'auxNetDevice':
      f.error(
        [...at, 'deviceType'],
        '"auxNetDevice" (SFs) is not supported by netplumb, so this pool is not served; use "netDevice", "accelerator" or "nic"',
      );
      return null;
  }
}

/** One resourceList entry as a pool, or null when it is left out (the findings say why). */
function parseResource(raw: unknown, i: number, ctx: ResourceContext): PoolConfig | null {
  const at: Path = ['resourceList', i];
  const { f } = ctx;
  const rc = parseObject(raw, resourceSchema, at, f, 'a resource object');
  if (rc === null) return null;
  const prefix =
    rc.resourcePrefix === undefined || rc.resourcePrefix === '' ? ctx.defaultPrefix : rc.resourcePrefix;
  const base = poolBase(rc, prefix);
  const first = ctx.seen.get(base.fullName);
  if (first !== undefined) {
    f.error(
      [...at, 'resourceName'],
      `duplicate resource ${base.fullName} (already defined by resourceList[${first}]); rename one`,
    );
    return null;
  }
  ctx.seen.set(base.fullName, i);
  if (rc.slots !== undefined && rc.deviceType !== 'nic')
    f.warn([...at, 'slots'], 'only applies to deviceType "nic"; remove it');
  return poolOf(rc, base, at, f);
}

function invalidJson(cause: unknown): ConfigError {
  return new ConfigError(
    CONFIG_ERROR.invalid,
    [{ path: '', message: `not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}` }],
    { cause },
  );
}

const problemOf = (x: Finding): ConfigProblem => ({ path: x.path, message: x.message });

/**
 * Validates config.json text into pools, warnings and pool errors. Throws ConfigError when nothing
 * can be served from it (not JSON, no resourceList, a bad --resource-prefix), and with `strict`
 * when there is any finding at all.
 */
export function parseConfig(text: string, options: ParseConfigOptions): DevicePluginConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw invalidJson(cause);
  }
  const f = new Findings();
  const root = parseObject(json, rootSchema, [], f, 'an object with a resourceList array');
  if (root === null) throw new ConfigError(CONFIG_ERROR.invalid, f.list.map(problemOf));
  const flagProblem = resourcePrefixProblem(options.resourcePrefix);
  if (flagProblem !== null)
    throw new ConfigError(CONFIG_ERROR.invalid, [{ path: '--resource-prefix', message: flagProblem }]);
  const ctx: ResourceContext = { defaultPrefix: options.resourcePrefix, seen: new Map(), f };
  const pools: PoolConfig[] = [];
  root.resourceList.forEach((raw, i) => {
    const pool = parseResource(raw, i, ctx);
    if (pool !== null) pools.push(pool);
  });
  if (options.strict === true && f.list.length > 0)
    throw new ConfigError(CONFIG_ERROR.invalid, f.list.map(problemOf));
  return {
    pools,
    warnings: f.list.filter((x) => x.severity === 'warning').map(problemOf),
    poolErrors: f.list.filter((x) => x.severity === 'error').map(problemOf),
  };
}
