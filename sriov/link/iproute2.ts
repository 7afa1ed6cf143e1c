// LinkOps over iproute2 (`ip -json`). Node cannot enter a netns in-process, so every netns-scoped
// command runs as `ip -n <name>` (for /run/netns/<name>) or `nsenter --net=<path> ip …`.
import path from 'node:path';
import { z } from 'zod';
import { CommandError, createCommandRunner } from '../../lib/command.js';
import type { CommandRunner } from '../../lib/command.js';
import { LinkError, LinkErrorCode } from './link-ops.js';
import type { Link, LinkAddress, LinkOps, LinkStep, Netns, RouteSpec } from './link-ops.js';

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

/** The `ip` arguments of one step (also one line of an `ip -batch` script). */
export function stepArgs(step: LinkStep, hostNetns: string): string[] {
  switch (step.op) {
    case 'up':
      return ['link', 'set', 'dev', step.name, step.up ? 'up' : 'down'];
    case 'rename':
      return ['link', 'set', 'dev', step.name, 'name', step.newName];
    case 'mac':
      return ['link', 'set', 'dev', step.name, 'address', step.mac];
    case 'mtu':
      return ['link', 'set', 'dev', step.name, 'mtu', String(step.mtu)];
    case 'move':
      return ['link', 'set', 'dev', step.name, 'netns', step.to ?? hostNetns];
    case 'deleteAltname':
      return ['link', 'property', 'del', 'dev', step.name, 'altname', step.altname];
    case 'addAddress':
      // nodad: the address is usable at once (sriov-cni sets optimistic_dad for the same reason).
      return ['address', 'add', step.cidr, 'dev', step.name, ...(step.cidr.includes(':') ? ['nodad'] : [])];
    case 'flushAddresses':
      return ['address', 'flush', 'dev', step.name];
    case 'addRoute': {
      const r = step.route;
      // No -4/-6 (not allowed on a batch line): iproute2 infers the family from dst.
      const dst = r.dst === 'default' && (r.gw?.includes(':') ?? false) ? '::/0' : r.dst;
      return ['route', 'add', dst, ...(r.gw === undefined ? [] : ['via', r.gw]), 'dev', r.dev];
    }
  }
}

function describeStep(step: LinkStep): string {
  return step.op === 'addRoute' ? `add route ${step.route.dst}` : `${step.op} ${step.name}`;
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

  async function ip(ns: Netns, args: readonly string[], what: string, input?: string): Promise<string> {
    const argv = [...prefix(ns), ...args];
    try {
      return (await run(argv, input)).stdout;
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
      await ip(from, stepArgs({ op: 'move', name, to }, hostNetns), `move ${name} to ${to ?? 'host netns'}`);
    },
    async apply(ns, steps) {
      if (steps.length === 0) return;
      const lines = steps.map((s) => stepArgs(s, hostNetns));
      const what = steps.map(describeStep).join(', ');
      if (lines.length === 1) {
        await ip(ns, lines[0] ?? [], what);
        return;
      }
      // One `ip -batch` process for the lot; without -force it stops at the first failure.
      await ip(ns, ['-batch', '-'], what, `${lines.map((l) => l.join(' ')).join('\n')}\n`);
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
      await ip(ns, stepArgs({ op: 'addAddress', name, cidr }, hostNetns), `add address ${cidr} to ${name}`);
    },
    async flushAddresses(ns, name) {
      await ip(ns, ['address', 'flush', 'dev', name], `flush addresses of ${name}`);
    },
    async addRoute(ns, route) {
      await ip(ns, stepArgs({ op: 'addRoute', route }, hostNetns), `add route ${route.dst}`);
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
    async setSysctls(ns, values) {
      const pairs = Object.entries(values).map(([k, v]) => `${k}=${v}`);
      if (pairs.length === 0) return;
      const argv = [...(ns === null ? [] : ['nsenter', `--net=${ns}`]), 'sysctl', '-q', '-w', ...pairs];
      try {
        await run(argv);
      } catch (error) {
        const stderr = error instanceof CommandError ? error.stderr : String(error);
        throw new LinkError(classifyIpError(stderr), `sysctl ${pairs.join(' ')}: ${stderr.trim()}`, {
          cause: error,
        });
      }
    },
  };
}
