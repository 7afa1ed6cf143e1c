// SRIOV-DP's config.json (`{"resourceList":[...]}`), validated at the edge into typed pools.
// Same keys and meaning as SRIOV-DP, plus `vlans`, `deviceType: "nic"`, `slots` and
// `allocationPolicy`. Unlike SRIOV-DP, unknown keys, bad VF ranges and duplicate names are errors
// that name the JSON path and the fix.
import { formatConfigPath } from '../lib/config-path.js';
import type { ConfigPath } from '../lib/config-path.js';
import { NetplumbError } from '../lib/errors.js';
import type { NetplumbErrorOptions } from '../lib/errors.js';
import { z } from 'zod';
import { parseVfRef } from './vf-range.js';
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

// A strict object whose unknown-key error names each key and the closest known one.
function strictObject<T extends z.ZodRawShape>(shape: T, extraKnown: readonly string[] = []) {
  const known = [...Object.keys(shape), ...extraKnown];
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code !== 'unrecognized_keys') return undefined;
      return iss.keys
        .map((k) => {
          const hint = suggestKey(k, known);
          return `${k}\u0000unknown key; ${hint === null ? `known keys: ${known.join(', ')}` : `did you mean ${hint}?`}`;
        })
        .join('\n');
    },
  });
}

const strings = z.array(z.string());
const vlanIds = z.array(z.number().int().min(0).max(4094));
const vfRefs = z.array(z.string()).transform((list, ctx) => {
  const refs: VfRef[] = [];
  list.forEach((text, i) => {
    const r = parseVfRef(text);
    if (r.ok) refs.push(r.ref);
    else ctx.addIssue({ code: 'custom', message: r.error, path: [i] });
  });
  return refs;
});

// SRIOV-DP keys we read but cannot honour (no data for them in the node model yet).
const unsupported = z.unknown().superRefine((_, ctx) => {
  ctx.addIssue({
    code: 'custom',
    message: 'is an SRIOV-DP selector netplumb does not support yet; remove it (no device would match)',
  });
});

const netDeviceSelectorSchema = strictObject({
  vendors: strings.default([]),
  devices: strings.default([]),
  drivers: strings.default([]),
  pciAddresses: strings.default([]),
  acpiIndexes: strings.default([]),
  pfNames: vfRefs.default([]),
  rootDevices: vfRefs.default([]),
  linkTypes: strings.default([]),
  vlans: vlanIds.default([]),
  isRdma: z.boolean().default(false),
  needVhostNet: z.boolean().default(false),
  ddpProfiles: unsupported.optional(),
  vdpaType: unsupported.optional(),
  pKeys: unsupported.optional(),
});

const acceleratorSelectorSchema = strictObject({
  vendors: strings.default([]),
  devices: strings.default([]),
  drivers: strings.default([]),
  pciAddresses: strings.default([]),
});

const nicSelectorSchema = strictObject({
  names: strings.default([]),
  parents: strings.default([]),
  vlans: vlanIds.default([]),
});

const RESOURCE_NAME = /^[a-zA-Z0-9_-]+$/;
// The extended resource's domain: a DNS-1123 subdomain (Kubernetes validates it the same way).
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `prefix` cannot be an extended-resource domain, or null. */
export function resourcePrefixProblem(prefix: string): string | null {
  if (prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix)) return null;
  return `"${prefix}" is not a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", at most 253 characters), e.g. intel.com`;
}

const resourceSchema = strictObject({
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

const rootSchema = strictObject({
  resourceList: z.array(z.unknown(), { error: 'is required: an array of resource objects' }),
});

type Path = ConfigPath;
const formatPath = formatConfigPath;

function problemsOf(error: z.ZodError, prefix: Path): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const base = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const line of issue.message.split('\n')) {
        const [key = '', msg = line] = line.split('\u0000');
        out.push({ path: formatPath([...base, key]), message: msg });
      }
    } else {
      out.push({ path: formatPath(base), message: issue.message });
    }
  }
  return out;
}

// Go's encoding/json matches keys case-insensitively; accept e.g. `IsRdma` as SRIOV-DP does.
function canonicalKeys(value: unknown, known: readonly string[]): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const canonical = known.includes(k) ? k : (known.find((c) => c.toLowerCase() === k.toLowerCase()) ?? k);
    out[canonical] = v;
  }
  return out;
}

function selectorKeys(type: 'netDevice' | 'accelerator' | 'nic'): readonly string[] {
  switch (type) {
    case 'netDevice':
      return Object.keys(netDeviceSelectorSchema.shape);
    case 'accelerator':
      return Object.keys(acceleratorSelectorSchema.shape);
    case 'nic':
      return Object.keys(nicSelectorSchema.shape);
  }
}

function parseSelectors<T>(
  raw: unknown,
  schema: z.ZodType<T>,
  keys: readonly string[],
  at: Path,
  problems: ConfigProblem[],
): T[] {
  // SRIOV-DP accepts one object or a list of objects; a missing key means "match everything".
  const list = raw === undefined ? [{}] : Array.isArray(raw) ? raw : [raw];
  const listed = Array.isArray(raw);
  if (typeof raw !== 'object' || raw === null) {
    if (raw !== undefined) {
      problems.push({ path: formatPath(at), message: 'must be a selector object or an array of them' });
      return [];
    }
  }
  const out: T[] = [];
  list.forEach((item: unknown, i) => {
    const r = schema.safeParse(canonicalKeys(item, keys));
    if (r.success) out.push(r.data);
    else problems.push(...problemsOf(r.error, listed ? [...at, i] : at));
  });
  return out;
}

function stripUnsupported(s: z.output<typeof netDeviceSelectorSchema>): PciSelector {
  return {
    vendors: s.vendors,
    devices: s.devices,
    drivers: s.drivers,
    pciAddresses: s.pciAddresses,
    acpiIndexes: s.acpiIndexes,
    pfNames: s.pfNames,
    rootDevices: s.rootDevices,
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

function acceleratorSelector(s: z.output<typeof acceleratorSelectorSchema>): PciSelector {
  return { ...EMPTY_PCI_SELECTOR, ...s };
}

export interface ParseConfigOptions {
  /** `--resource-prefix`; SRIOV-DP's default is `intel.com`. */
  readonly resourcePrefix: string;
}

/** Validates config.json text into pools. Throws ConfigError listing every problem found. */
export function parseConfig(text: string, options: ParseConfigOptions): DevicePluginConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(
      CONFIG_ERROR.invalid,
      [{ path: '', message: `not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}` }],
      { cause },
    );
  }
  const root = rootSchema.safeParse(json);
  if (!root.success) throw new ConfigError(CONFIG_ERROR.invalid, problemsOf(root.error, []));
  const flagProblem = resourcePrefixProblem(options.resourcePrefix);
  if (flagProblem !== null)
    throw new ConfigError(CONFIG_ERROR.invalid, [{ path: '--resource-prefix', message: flagProblem }]);

  const problems: ConfigProblem[] = [];
  const pools: PoolConfig[] = [];
  const seen = new Map<string, number>();
  const resourceKeys = Object.keys(resourceSchema.shape);
  root.data.resourceList.forEach((rawResource, i) => {
    const at: Path = ['resourceList', i];
    const r = resourceSchema.safeParse(canonicalKeys(rawResource, resourceKeys));
    if (!r.success) {
      problems.push(...problemsOf(r.error, at));
      return;
    }
    const rc = r.data;
    if (rc.deviceType === 'auxNetDevice') {
      problems.push({
        path: formatPath([...at, 'deviceType']),
        message: '"auxNetDevice" (SFs) is not supported by netplumb; use "netDevice", "accelerator" or "nic"',
      });
      return;
    }
    const prefix =
      rc.resourcePrefix === undefined || rc.resourcePrefix === ''
        ? options.resourcePrefix
        : rc.resourcePrefix;
    const fullName = `${prefix}/${rc.resourceName}`;
    const first = seen.get(fullName);
    if (first !== undefined) {
      problems.push({
        path: formatPath([...at, 'resourceName']),
        message: `duplicate resource ${fullName} (already defined by resourceList[${first}]); rename one`,
      });
      return;
    }
    seen.set(fullName, i);
    if (rc.slots !== undefined && rc.deviceType !== 'nic') {
      problems.push({
        path: formatPath([...at, 'slots']),
        message: 'only applies to deviceType "nic"; remove it',
      });
      return;
    }
    const base: PoolConfigBase = {
      resourceName: rc.resourceName,
      resourcePrefix: prefix,
      fullName,
      excludeTopology: rc.excludeTopology,
      additionalInfo: rc.additionalInfo,
      allocationPolicy: rc.allocationPolicy,
    };
    const selAt: Path = [...at, 'selectors'];
    const keys = selectorKeys(rc.deviceType);
    const before = problems.length;
    switch (rc.deviceType) {
      case 'netDevice': {
        const sels = parseSelectors(rc.selectors, netDeviceSelectorSchema, keys, selAt, problems);
        if (problems.length === before)
          pools.push({ ...base, deviceType: 'netDevice', selectors: sels.map(stripUnsupported) });
        break;
      }
      case 'accelerator': {
        const sels = parseSelectors(rc.selectors, acceleratorSelectorSchema, keys, selAt, problems);
        if (problems.length === before)
          pools.push({ ...base, deviceType: 'accelerator', selectors: sels.map(acceleratorSelector) });
        break;
      }
      case 'nic': {
        const sels = parseSelectors(rc.selectors, nicSelectorSchema, keys, selAt, problems);
        if (problems.length === before)
          pools.push({ ...base, deviceType: 'nic', selectors: sels, slots: rc.slots ?? 1 });
        break;
      }
    }
  });
  if (problems.length > 0) throw new ConfigError(CONFIG_ERROR.invalid, problems);
  return { pools };
}
