// The link-operations port: everything the SR-IOV CNI plugin does to a VF netdev (or the veth
// that stands for it in tests). Implementations: iproute2 (./iproute2.ts).
//
// A netns is named by the path of its nsfs file (`/run/netns/x`, `/proc/<pid>/ns/net`, …), the
// shape CNI_NETNS has. `null` means the netns this process runs in (the host's, for a CNI plugin).

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

export class LinkError extends Error {
  override readonly name = 'LinkError';
  readonly code: LinkErrorCode;
  constructor(code: LinkErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
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
  /** Writes a per-interface sysctl (`net.ipv4.conf.<name>.arp_notify` …) inside `ns`. */
  setSysctl(ns: Netns, key: string, value: string): Promise<void>;
}
