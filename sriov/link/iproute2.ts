// LinkOps over iproute2 (`ip -json`). Node cannot enter a netns in-process, so every netns-scoped
// command runs as `ip -n <name>` (for /run/netns/<name>) or `nsenter --net=<path> ip …`.
import path from 'node:path';
import { z } from 'zod';
import { CommandError, createCommandRunner } from './command.js';
import type { CommandRunner } from './command.js';
import { LinkError, LinkErrorCode } from './link-ops.js';
import type { Link, LinkAddress, LinkOps, Netns, RouteSpec } from './link-ops.js';

export interface Iproute2Deps {
  readonly run?: CommandRunner;
  /** Path of the netns `null` stands for, used as a move target. Default `/proc/<our pid>/ns/net`. */
  readonly hostNetns?: string;
  /** Where `ip netns` keeps named namespaces; paths directly under it use `ip -n`. */
  readonly netnsRunDir?: string;
}

const linkJson = z.object({
  ifindex: z.number(),
  ifname: z.string(),
  flags: z.array(z.string()).default([]),
  mtu: z.number(),
  operstate: z.string().default('UNKNOWN'),
  address: z.string().optional(),
  altnames: z.array(z.string()).optional(),
  linkinfo: z.object({ info_kind: z.string().optional() }).optional(),
  addr_info: z
    .array(z.object({ family: z.string(), local: z.string().optional(), prefixlen: z.number().optional() }))
    .optional(),
});
type LinkJson = z.infer<typeof linkJson>;

const routeJson = z.object({ dst: z.string(), gateway: z.string().optional(), dev: z.string().optional() });

/** Maps iproute2/nsenter stderr to a stable LinkError code. */
export function classifyIpError(stderr: string): LinkErrorCode {
  if (/cannot open network namespace|nsenter: cannot open|reassociate to namespace/i.test(stderr)) {
    return LinkErrorCode.NETNS_GONE;
  }
  if (/cannot find device|does not exist|no such device/i.test(stderr)) return LinkErrorCode.NOT_FOUND;
  if (/file exists|already exists/i.test(stderr)) return LinkErrorCode.EXISTS;
  return LinkErrorCode.FAILED;
}

function toLink(j: LinkJson): Link {
  return {
    name: j.ifname,
    index: j.ifindex,
    mac: j.address?.toLowerCase() ?? null,
    mtu: j.mtu,
    up: j.flags.includes('UP'),
    operstate: j.operstate,
    altnames: j.altnames ?? [],
    kind: j.linkinfo?.info_kind ?? null,
  };
}

export function createIproute2LinkOps(deps: Iproute2Deps = {}): LinkOps {
  const run = deps.run ?? createCommandRunner();
  const hostNetns = deps.hostNetns ?? `/proc/${process.pid}/ns/net`;
  const runDir = deps.netnsRunDir ?? '/run/netns';

  function prefix(ns: Netns): string[] {
    if (ns === null) return ['ip'];
    if (path.dirname(ns) === runDir) return ['ip', '-n', path.basename(ns)];
    return ['nsenter', `--net=${ns}`, 'ip'];
  }

  async function ip(ns: Netns, args: readonly string[], what: string): Promise<string> {
    const argv = [...prefix(ns), ...args];
    try {
      return (await run(argv)).stdout;
    } catch (error) {
      if (error instanceof CommandError) {
        const code = classifyIpError(error.stderr);
        const where = ns === null ? 'host netns' : `netns ${ns}`;
        throw new LinkError(code, `${what} in ${where}: ${error.stderr.trim() || error.message}`, {
          cause: error,
        });
      }
      throw new LinkError(LinkErrorCode.FAILED, `${what}: ${String(error)}`, { cause: error });
    }
  }

  async function json<T>(ns: Netns, args: readonly string[], schema: z.ZodType<T>, what: string): Promise<T> {
    const out = await ip(ns, ['-json', ...args], what);
    const text = out.trim() === '' ? '[]' : out;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new LinkError(LinkErrorCode.BAD_OUTPUT, `${what}: ip printed no JSON: ${text.slice(0, 200)}`, {
        cause: error,
      });
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw new LinkError(LinkErrorCode.BAD_OUTPUT, `${what}: unexpected ip JSON: ${parsed.error.message}`);
    }
    return parsed.data;
  }

  const linkList = z.array(linkJson);

  return {
    async get(ns, name) {
      try {
        const links = await json(
          ns,
          ['-details', 'link', 'show', 'dev', name],
          linkList,
          `read link ${name}`,
        );
        const first = links[0];
        return first === undefined ? null : toLink(first);
      } catch (error) {
        if (error instanceof LinkError && error.code === LinkErrorCode.NOT_FOUND) return null;
        throw error;
      }
    },
    async list(ns) {
      const links = await json(ns, ['-details', 'link', 'show'], linkList, 'list links');
      return links.map(toLink);
    },
    async move(name, from, to) {
      await ip(
        from,
        ['link', 'set', 'dev', name, 'netns', to ?? hostNetns],
        `move ${name} to ${to ?? 'host netns'}`,
      );
    },
    async rename(ns, name, newName) {
      await ip(ns, ['link', 'set', 'dev', name, 'name', newName], `rename ${name} to ${newName}`);
    },
    async setMac(ns, name, mac) {
      await ip(ns, ['link', 'set', 'dev', name, 'address', mac], `set MAC ${mac} on ${name}`);
    },
    async setMtu(ns, name, mtu) {
      await ip(ns, ['link', 'set', 'dev', name, 'mtu', String(mtu)], `set MTU ${mtu} on ${name}`);
    },
    async setUp(ns, name, up) {
      await ip(ns, ['link', 'set', 'dev', name, up ? 'up' : 'down'], `set ${name} ${up ? 'up' : 'down'}`);
    },
    async addresses(ns, name) {
      const links = await json(ns, ['address', 'show', 'dev', name], linkList, `read addresses of ${name}`);
      const out: LinkAddress[] = [];
      for (const a of links[0]?.addr_info ?? []) {
        if (
          (a.family === 'inet' || a.family === 'inet6') &&
          a.local !== undefined &&
          a.prefixlen !== undefined
        ) {
          out.push({ family: a.family, cidr: `${a.local}/${a.prefixlen}` });
        }
      }
      return out;
    },
    async addAddress(ns, name, cidr) {
      // nodad: the address is usable at once (sriov-cni sets optimistic_dad for the same reason).
      const extra = cidr.includes(':') ? ['nodad'] : [];
      await ip(ns, ['address', 'add', cidr, 'dev', name, ...extra], `add address ${cidr} to ${name}`);
    },
    async flushAddresses(ns, name) {
      await ip(ns, ['address', 'flush', 'dev', name], `flush addresses of ${name}`);
    },
    async addRoute(ns, route) {
      const family = route.dst.includes(':') || (route.gw?.includes(':') ?? false) ? ['-6'] : [];
      const gw = route.gw === undefined ? [] : ['via', route.gw];
      await ip(ns, [...family, 'route', 'add', route.dst, ...gw, 'dev', route.dev], `add route ${route.dst}`);
    },
    async routes(ns, name) {
      const out: RouteSpec[] = [];
      for (const family of ['-4', '-6']) {
        const rows = await json(
          ns,
          [family, 'route', 'show', 'dev', name],
          z.array(routeJson),
          `read routes of ${name}`,
        );
        for (const r of rows) out.push({ dst: r.dst, gw: r.gateway, dev: name });
      }
      return out;
    },
    async addAltname(ns, name, altname) {
      await ip(
        ns,
        ['link', 'property', 'add', 'dev', name, 'altname', altname],
        `add altname ${altname} to ${name}`,
      );
    },
    async deleteAltname(ns, name, altname) {
      await ip(ns, ['link', 'property', 'del', 'dev', name, 'altname', altname], `delete altname ${altname}`);
    },
    async setSysctl(ns, key, value) {
      const argv = [
        ...(ns === null ? [] : ['nsenter', `--net=${ns}`]),
        'sysctl',
        '-q',
        '-w',
        `${key}=${value}`,
      ];
      try {
        await run(argv);
      } catch (error) {
        const stderr = error instanceof CommandError ? error.stderr : String(error);
        throw new LinkError(classifyIpError(stderr), `sysctl ${key}=${value}: ${stderr.trim()}`, {
          cause: error,
        });
      }
    },
  };
}
