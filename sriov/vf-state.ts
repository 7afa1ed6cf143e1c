// Per-VF settings held by the PF (IFLA_VF_INFO) and per-link details that sysfs lacks (VLAN id,
// link kind), read once for the whole node from `ip -json -details link show`. A port with two
// adapters: run iproute2 (production) or read a links.json file (a simulated node).
import { NetplumbError } from '../lib/errors.js';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { LinkState, VfSettings } from './model.js';

export const VF_STATE_ERROR = 'ERR_VF_STATE' as const;

export class VfStateError extends NetplumbError {
  constructor(message: string, options?: ErrorOptions) {
    super(VF_STATE_ERROR, message, options);
    this.name = 'VfStateError';
  }
}

/** Source of `ip -json -details link show` output for every link of the node, in one read. */
export interface VfStateSource {
  /** Where the data comes from, for warnings (`ip -json -details link show`, or a file path). */
  readonly origin: string;
  /** The parsed JSON (validated by parseIpLinks). Rejects with a VfStateError. */
  readLinks(): Promise<unknown>;
}

/** What discovery uses from one link of `ip -json -details link show`. */
export interface IpLink {
  readonly name: string;
  readonly linkType: string | null;
  readonly operstate: string | null;
  readonly mac: string | null;
  readonly mtu: number | null;
  /** `link` (the lower device of a VLAN/macvlan), when in the same netns. */
  readonly parent: string | null;
  readonly kind: string | null;
  readonly vlanId: number | null;
  readonly vlanProtocol: string | null;
  /** VF settings by VF index (from `vfinfo_list`). */
  readonly vfs: ReadonlyMap<number, VfSettings>;
}

export interface IpLinkTable {
  readonly links: ReadonlyMap<string, IpLink>;
  readonly warnings: readonly string[];
}

const rawVlan = z.looseObject({
  vlan: z.number().int().optional(),
  qos: z.number().int().optional(),
  protocol: z.string().optional(),
});

const rawVfInfo = z.looseObject({
  vf: z.number().int().nonnegative(),
  /** iproute2 ≥ 4.16 prints `address`; older versions printed `mac`. */
  address: z.string().optional(),
  mac: z.string().optional(),
  vlan_list: z.array(rawVlan).optional(),
  vlan: z.number().int().optional(),
  qos: z.number().int().optional(),
  rate: z.looseObject({ max_tx: z.number().optional(), min_tx: z.number().optional() }).optional(),
  tx_rate: z.number().optional(),
  spoofchk: z.boolean().optional(),
  trust: z.boolean().optional(),
  link_state: z.string().optional(),
});

const rawLink = z.looseObject({
  ifname: z.string(),
  link_type: z.string().optional(),
  operstate: z.string().optional(),
  address: z.string().optional(),
  mtu: z.number().optional(),
  link: z.string().nullable().optional(),
  linkinfo: z
    .looseObject({
      info_kind: z.string().optional(),
      info_data: z.looseObject({ id: z.number().optional(), protocol: z.string().optional() }).optional(),
    })
    .optional(),
  vfinfo_list: z.array(z.unknown()).optional(),
});

const LINK_STATES: readonly string[] = ['auto', 'enable', 'disable'] satisfies LinkState[];

function isLinkState(s: string): s is LinkState {
  return LINK_STATES.includes(s);
}

/**
 * One `vfinfo_list` entry → index and settings. Accepts both the `vlan_list` form (iproute2 ≥ 4.14;
 * only the first entry is the admin VLAN) and the older flat `vlan`/`qos` form. iproute2 omits a
 * zero VLAN/QoS and prints `protocol` only when it is not 802.1Q, so absence means 0 / 802.1Q.
 */
export function parseVfInfo(entry: unknown): { index: number; settings: VfSettings } | { error: string } {
  const parsed = rawVfInfo.safeParse(entry);
  if (!parsed.success) {
    return {
      error: `vfinfo_list entry is malformed: ${z.prettifyError(parsed.error).replaceAll('\n', ' ')}`,
    };
  }
  const e = parsed.data;
  let vlan: number | null;
  let qos: number | null;
  let vlanProto: string | null;
  if (e.vlan_list !== undefined) {
    const first = e.vlan_list[0];
    vlan = first?.vlan ?? 0;
    qos = first?.qos ?? 0;
    vlanProto = first?.protocol ?? '802.1Q';
  } else {
    vlan = e.vlan ?? 0;
    qos = e.qos ?? 0;
    vlanProto = null;
  }
  const linkState = e.link_state !== undefined && isLinkState(e.link_state) ? e.link_state : null;
  return {
    index: e.vf,
    settings: {
      mac: e.address ?? e.mac ?? null,
      vlan,
      qos,
      vlanProto,
      spoofchk: e.spoofchk ?? null,
      trust: e.trust ?? null,
      linkState,
      minTxRate: e.rate?.min_tx ?? null,
      // Old kernels report only the legacy `tx_rate` (a max rate).
      maxTxRate: e.rate?.max_tx ?? e.tx_rate ?? null,
    },
  };
}

/** Validates `ip -json -details link show` output; a bad entry is a warning, never fatal. */
export function parseIpLinks(json: unknown, origin: string): IpLinkTable {
  const warnings: string[] = [];
  const links = new Map<string, IpLink>();
  if (!Array.isArray(json)) {
    return { links, warnings: [`${origin}: expected a JSON array of links (ip -json -details link show)`] };
  }
  json.forEach((item: unknown, i) => {
    const parsed = rawLink.safeParse(item);
    if (!parsed.success) {
      warnings.push(`${origin}: link #${i} skipped: ${z.prettifyError(parsed.error).replaceAll('\n', ' ')}`);
      return;
    }
    const l = parsed.data;
    const vfs = new Map<number, VfSettings>();
    l.vfinfo_list?.forEach((entry, j) => {
      const r = parseVfInfo(entry);
      if ('error' in r) warnings.push(`${origin}: ${l.ifname} vfinfo_list[${j}]: ${r.error}`);
      else vfs.set(r.index, r.settings);
    });
    const kind = l.linkinfo?.info_kind ?? null;
    links.set(l.ifname, {
      name: l.ifname,
      linkType: l.link_type ?? null,
      operstate: l.operstate?.toLowerCase() ?? null,
      mac: l.address ?? null,
      mtu: l.mtu ?? null,
      parent: l.link ?? null,
      kind,
      vlanId: kind === 'vlan' ? (l.linkinfo?.info_data?.id ?? null) : null,
      vlanProtocol: kind === 'vlan' ? (l.linkinfo?.info_data?.protocol ?? null) : null,
      vfs,
    });
  });
  return { links, warnings };
}

export interface Iproute2Options {
  /** Path of the `ip` binary (default `ip` from PATH). */
  readonly ipBinary?: string;
  readonly timeoutMs?: number;
}

/** Runs `ip -json -details link show` once for all links (not once per PF). */
export function iproute2VfState(options: Iproute2Options = {}): VfStateSource {
  const bin = options.ipBinary ?? 'ip';
  const args = ['-json', '-details', 'link', 'show'];
  return {
    origin: `${bin} ${args.join(' ')}`,
    readLinks: () =>
      new Promise((resolve, reject) => {
        execFile(
          bin,
          args,
          { timeout: options.timeoutMs ?? 10_000, maxBuffer: 256 * 1024 * 1024 },
          (err, stdout) => {
            if (err) {
              reject(new VfStateError(`${bin} ${args.join(' ')} failed: ${err.message}`, { cause: err }));
              return;
            }
            try {
              resolve(JSON.parse(stdout));
            } catch (cause) {
              reject(new VfStateError(`${bin} ${args.join(' ')} printed invalid JSON`, { cause }));
            }
          },
        );
      }),
  };
}

/** Reads a saved `ip -json -details link show` output (a simulated node's links.json). */
export function fileVfState(file: string): VfStateSource {
  return {
    origin: file,
    readLinks: async () => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (cause) {
        throw new VfStateError(
          `links file ${file} is unreadable; check --links-file or the --simulated-node folder`,
          {
            cause,
          },
        );
      }
      try {
        return JSON.parse(text) as unknown;
      } catch (cause) {
        throw new VfStateError(`links file ${file} is not valid JSON`, { cause });
      }
    },
  };
}

/** A saved dump when one is given (a simulated node's links.json, or `inspect --links-file`), else iproute2. */
export function resolveVfStateSource(linksFile: string | undefined): VfStateSource {
  return linksFile !== undefined && linksFile !== '' ? fileVfState(linksFile) : iproute2VfState();
}

/** Reads and parses; a failing source becomes a warning and an empty table. */
export async function readIpLinkTable(source: VfStateSource): Promise<IpLinkTable> {
  try {
    return parseIpLinks(await source.readLinks(), source.origin);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { links: new Map(), warnings: [`${message}; VF settings are unknown`] };
  }
}
