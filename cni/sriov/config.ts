// The sriov-cni network configuration, keys unchanged, validated at the edge into a typed value.
// A NetworkAttachmentDefinition written for sriov-cni parses as is; every refusal names the key
// and says what to write instead. Unknown keys are kept (Multus adds `pciBusID`, runtimes add
// their own), and the raw object is what IPAM receives.
import { formatConfigPath } from '../../lib/config-path.js';
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import { z } from 'zod';
import { VlanProto } from '../../sriov/link/vf-settings.js';
import type { LinkState } from '../../sriov/model.js';
import { BDF_PATTERN } from '../../sriov/pci.js';

export const SriovConfigErrorCode = { INVALID: 'SRIOV_CONFIG_INVALID' } as const;

/** A bad network configuration; `key` is the JSON path of the offending key (`vlanQoS`, `ipam.type`). */
export class SriovConfigError extends NetplumbError {
  override readonly name = 'SriovConfigError';
  readonly key: string;
  constructor(key: string, message: string, options?: NetplumbErrorOptions) {
    super(SriovConfigErrorCode.INVALID, `${key}: ${message}`, { exitCode: 2, ...options });
    this.key = key;
  }
}

export type LogLevel = 'panic' | 'error' | 'warning' | 'info' | 'debug';

export interface SriovConfig {
  readonly cniVersion: string;
  readonly name: string;
  /** VF PCI address, lower case, full BDF. */
  readonly deviceID: string;
  /** Absent = leave the VF's VLAN alone (0 means "set untagged"). */
  readonly vlan: number | null;
  readonly vlanQoS: number | null;
  readonly vlanProto: VlanProto | null;
  /** Lower case. */
  readonly mac: string | null;
  readonly spoofchk: boolean | null;
  readonly trust: boolean | null;
  readonly linkState: LinkState | null;
  readonly minTxRate: number | null;
  readonly maxTxRate: number | null;
  /** The `ipam` object as given, or null when there is none (L2 only). */
  readonly ipam: Readonly<Record<string, unknown>> | null;
  readonly logLevel: LogLevel;
  readonly logFile: string | null;
  /** `runtimeConfig.mac` (capability `mac`), lower case. */
  readonly runtimeMac: string | null;
  /** The whole stdin object, untouched: what IPAM delegates receive and the cache keeps. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export const MAC_ADDRESS = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

const onOff = z.enum(['on', 'off']);
const int = z.number().int();

const schema = z.looseObject({
  cniVersion: z.string().default('0.2.0'),
  name: z.string().default(''),
  type: z.string().optional(),
  deviceID: z.string().optional(),
  vlan: int.optional(),
  vlanQoS: int.optional(),
  vlanProto: z.string().optional(),
  mac: z.string().optional(),
  spoofchk: onOff.optional(),
  trust: onOff.optional(),
  link_state: z.enum(['auto', 'enable', 'disable']).optional(),
  min_tx_rate: int.nonnegative().optional(),
  max_tx_rate: int.nonnegative().optional(),
  ipam: z.looseObject({ type: z.string().min(1).optional() }).optional(),
  logLevel: z.enum(['panic', 'error', 'warning', 'info', 'debug']).optional(),
  logFile: z.string().optional(),
  runtimeConfig: z.looseObject({ mac: z.string().optional() }).optional(),
});

const ON_OFF_HINT =
  'write "on" or "off" (sriov-cni would silently treat it as "off"; netplumb refuses it so the setting is never lost)';
const HINTS: Readonly<Record<string, string>> = {
  spoofchk: ON_OFF_HINT,
  trust: ON_OFF_HINT,
  link_state: 'write "auto", "enable" or "disable"',
  min_tx_rate: 'write a whole number of Mbps, 0 for no limit',
  max_tx_rate: 'write a whole number of Mbps, 0 for no limit',
  vlan: 'write a whole number 0..4094',
  vlanQoS: 'write a whole number 0..7',
  logLevel: 'write panic, error, warning, info or debug',
  ipam: 'write an object with a "type" naming the IPAM plugin',
};

function normaliseMac(key: string, value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  const mac = value.toLowerCase();
  if (!MAC_ADDRESS.test(mac)) {
    throw new SriovConfigError(
      key,
      `${JSON.stringify(value)} is not a MAC address; write six hex pairs like "02:00:00:aa:bb:01"`,
    );
  }
  return mac;
}

const CANONICAL = new Map(Object.keys(schema.shape).map((k) => [k.toLowerCase(), k]));

/**
 * sriov-cni decodes with Go's encoding/json, which matches keys case-insensitively: `"VLAN": 100` is
 * its `vlan`. The same spellings are read here under their canonical name; two spellings of one
 * key are refused (Go would keep whichever comes last).
 */
function foldKeyCase(input: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...input };
  for (const key of Object.keys(input)) {
    const canonical = CANONICAL.get(key.toLowerCase());
    if (canonical === undefined || canonical === key) continue;
    if (canonical in input) {
      throw new SriovConfigError(
        key,
        `both "${key}" and "${canonical}" are set (sriov-cni reads them as one key); keep "${canonical}"`,
      );
    }
    out[canonical] = input[key];
    Reflect.deleteProperty(out, key);
  }
  return out;
}

/** Parses and validates stdin (already JSON-decoded) into a SriovConfig; throws SriovConfigError. */
export function parseSriovConfig(input: unknown): SriovConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SriovConfigError('(root)', 'the network configuration must be a JSON object');
  }
  const c = parseSchema(input as Record<string, unknown>);
  const deviceID = checkDeviceId(c.deviceID);
  checkVlanQos(c);
  const vlanProto = checkVlanProto(c);
  checkTxRates(c);
  return {
    cniVersion: c.cniVersion,
    name: c.name,
    deviceID,
    vlan: c.vlan ?? null,
    vlanQoS: c.vlan === undefined ? null : (c.vlanQoS ?? 0),
    vlanProto: c.vlan === undefined ? null : (vlanProto ?? VlanProto.Q),
    mac: normaliseMac('mac', c.mac),
    spoofchk: c.spoofchk === undefined ? null : c.spoofchk === 'on',
    trust: c.trust === undefined ? null : c.trust === 'on',
    linkState: c.link_state ?? null,
    minTxRate: c.min_tx_rate ?? null,
    maxTxRate: c.max_tx_rate ?? null,
    ipam: c.ipam ?? null,
    logLevel: c.logLevel ?? 'info',
    logFile: c.logFile === undefined || c.logFile === '' ? null : c.logFile,
    runtimeMac: normaliseMac('runtimeConfig.mac', c.runtimeConfig?.mac),
    raw: input as Record<string, unknown>,
  };
}

type ParsedSchema = z.infer<typeof schema>;

/** The schema check, keys folded as Go's encoding/json does; the first issue names its key and a hint. */
function parseSchema(input: Record<string, unknown>): ParsedSchema {
  const parsed = schema.safeParse(foldKeyCase(input));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const key = issue === undefined || issue.path.length === 0 ? '(root)' : formatConfigPath(issue.path);
  const hint = HINTS[String(issue?.path[0] ?? '')];
  throw new SriovConfigError(key, `${issue?.message ?? 'invalid'}${hint === undefined ? '' : `; ${hint}`}`, {
    cause: parsed.error,
  });
}

function checkDeviceId(raw: string | undefined): string {
  if (raw === undefined || raw === '') {
    throw new SriovConfigError(
      'deviceID',
      'the VF PCI address is required; set "deviceID" (Multus sets it from the device plugin allocation)',
    );
  }
  const deviceID = raw.toLowerCase();
  if (!BDF_PATTERN.test(deviceID)) {
    throw new SriovConfigError(
      'deviceID',
      `${JSON.stringify(raw)} is not a PCI address; write it as "0000:3b:02.1"`,
    );
  }
  return deviceID;
}

function checkVlanQos(c: ParsedSchema): void {
  if (c.vlan !== undefined && (c.vlan < 0 || c.vlan > 4094)) {
    throw new SriovConfigError(
      'vlan',
      `${c.vlan} is out of range; use 0..4094 (0 = untagged, 4095 is reserved)`,
    );
  }
  if (c.vlanQoS === undefined) return;
  if (c.vlanQoS < 0 || c.vlanQoS > 7) {
    throw new SriovConfigError('vlanQoS', `${c.vlanQoS} is out of range; use 0..7`);
  }
  if (c.vlan === undefined) {
    throw new SriovConfigError('vlanQoS', 'needs "vlan"; set "vlan" too, or remove "vlanQoS"');
  }
  if (c.vlanQoS !== 0 && c.vlan === 0) {
    throw new SriovConfigError('vlanQoS', `a non-zero QoS (${c.vlanQoS}) needs a non-zero "vlan"`);
  }
}

function checkVlanProto(c: ParsedSchema): VlanProto | null {
  if (c.vlanProto === undefined) return null;
  const p = c.vlanProto.toLowerCase();
  if (p !== '802.1q' && p !== '802.1ad') {
    throw new SriovConfigError(
      'vlanProto',
      `${JSON.stringify(c.vlanProto)} is not a VLAN protocol; write "802.1q" or "802.1ad"`,
    );
  }
  if (c.vlan === undefined) {
    throw new SriovConfigError('vlanProto', 'needs "vlan"; set "vlan" too, or remove "vlanProto"');
  }
  if (p === '802.1ad' && c.vlan === 0) {
    throw new SriovConfigError('vlanProto', '"802.1ad" needs a non-zero "vlan"');
  }
  return p === '802.1ad' ? VlanProto.AD : VlanProto.Q;
}

function checkTxRates(c: ParsedSchema): void {
  const { min_tx_rate: min, max_tx_rate: max } = c;
  if (min !== undefined && max !== undefined && max !== 0 && min > max) {
    throw new SriovConfigError(
      'min_tx_rate',
      `${min} exceeds max_tx_rate ${max}; lower it or raise max_tx_rate (0 = no limit)`,
    );
  }
}

/**
 * The MAC to give the VF, with sriov-cni's precedence: config `mac` < CNI_ARGS `MAC=` <
 * `runtimeConfig.mac`. Null when none is asked for.
 */
export function resolveMac(config: SriovConfig, cniArgs: Readonly<Record<string, string>>): string | null {
  if (config.runtimeMac !== null) return config.runtimeMac;
  const fromArgs = normaliseMac('CNI_ARGS MAC', cniArgs.MAC);
  if (fromArgs !== null) return fromArgs;
  return config.mac;
}
