// The link-operations port: everything the SR-IOV CNI plugin does to a VF netdev (or the veth
// that stands for it in tests). Implementations: iproute2 (./iproute2.ts).
//
// A netns is named by the path of its nsfs file (`/run/netns/x`, `/proc/<pid>/ns/net`, …), the
// shape CNI_NETNS has. `null` means the netns this process runs in (the host's, for a CNI plugin).
import { NetplumbError } from '../../lib/errors.js';

export type Netns = string | null;

export interface LinkAddress {
  readonly family: 'inet' | 'inet6';
  /** `10.1.2.3/24` */
  readonly cidr: string;
}

export interface Link {
  readonly name: string;
  readonly index: number;
  /** Lower-case MAC, null for links without one. */
  readonly mac: string | null;
  readonly mtu: number;
  /** Administratively up (IFF_UP). */
  readonly up: boolean;
  readonly operstate: string;
  readonly altnames: readonly string[];
  /** `linkinfo.info_kind` (`veth`, …), null for hardware netdevs. */
  readonly kind: string | null;
}

export interface RouteSpec {
  /** `0.0.0.0/0`, `10.0.0.0/8`, `default`, … */
  readonly dst: string;
  readonly gw?: string | undefined;
  readonly dev: string;
}

/** One change to a link, for `LinkOps.apply` (several changes in one round trip). */
export type LinkStep =
  | { readonly op: 'up'; readonly name: string; readonly up: boolean }
  | { readonly op: 'rename'; readonly name: string; readonly newName: string }
  | { readonly op: 'mac'; readonly name: string; readonly mac: string }
  | { readonly op: 'mtu'; readonly name: string; readonly mtu: number }
  /** Moves the link out of the netns `apply` runs in, into `to`. */
  | { readonly op: 'move'; readonly name: string; readonly to: Netns }
  | { readonly op: 'deleteAltname'; readonly name: string; readonly altname: string }
  | { readonly op: 'addAddress'; readonly name: string; readonly cidr: string }
  | { readonly op: 'flushAddresses'; readonly name: string }
  | { readonly op: 'addRoute'; readonly route: RouteSpec };

export const LinkErrorCode = {
  /** The link (or netns) named is not there. */
  NOT_FOUND: 'LINK_NOT_FOUND',
  /** A link with the target name (or an address) already exists. */
  EXISTS: 'LINK_EXISTS',
  /** The netns path does not exist or is not a netns. */
  NETNS_GONE: 'LINK_NETNS_GONE',
  /** Any other failure of the underlying tool. */
  FAILED: 'LINK_FAILED',
  /** The tool answered something we could not parse. */
  BAD_OUTPUT: 'LINK_BAD_OUTPUT',
} as const;
export type LinkErrorCode = (typeof LinkErrorCode)[keyof typeof LinkErrorCode];

export class LinkError extends NetplumbError {
  override readonly name = 'LinkError';
  declare readonly code: LinkErrorCode;
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor -- narrows the codes a caller may pass
  constructor(code: LinkErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/**
 * Operations on one link in one netns. Every method fails with a LinkError; a missing link is
 * `LINK_NOT_FOUND` everywhere except `get`, which answers null.
 */
export interface LinkOps {
  get(ns: Netns, name: string): Promise<Link | null>;
  list(ns: Netns): Promise<readonly Link[]>;
  /** Moves `name` from `from` into `to`; the name is kept (fails with LINK_EXISTS on a clash). */
  move(name: string, from: Netns, to: Netns): Promise<void>;
  rename(ns: Netns, name: string, newName: string): Promise<void>;
  setMac(ns: Netns, name: string, mac: string): Promise<void>;
  setMtu(ns: Netns, name: string, mtu: number): Promise<void>;
  setUp(ns: Netns, name: string, up: boolean): Promise<void>;
  addresses(ns: Netns, name: string): Promise<readonly LinkAddress[]>;
  addAddress(ns: Netns, name: string, cidr: string): Promise<void>;
  flushAddresses(ns: Netns, name: string): Promise<void>;
  addRoute(ns: Netns, route: RouteSpec): Promise<void>;
  /** Routes whose device is `name`, as `{dst, gw}` with dst in CIDR form (`default` for the default). */
  routes(ns: Netns, name: string): Promise<readonly RouteSpec[]>;
  addAltname(ns: Netns, name: string, altname: string): Promise<void>;
  deleteAltname(ns: Netns, name: string, altname: string): Promise<void>;
  /**
   * Writes sysctls (`net.ipv4.conf.<name>.arp_notify` …) inside `ns`; every key is attempted and
   * the call fails if any of them could not be written.
   */
  setSysctls(ns: Netns, values: Readonly<Record<string, string>>): Promise<void>;
  /**
   * Applies the steps in order in one round trip; stops at the first failing step and throws its
   * LinkError (earlier steps stay applied).
   */
  apply(ns: Netns, steps: readonly LinkStep[]): Promise<void>;
}
