// Which netdevs carry a default route (IPv4 or IPv6): the node's own uplink, which the device plugin
// never hands to a pod (SRIOV-DP's rule). Read from the routing table with iproute2 (`ip -json
// [-6] route show default`), or from a saved dump of both (a simulated node's routes.json).
import { readFile } from 'node:fs/promises';
import { createCommandRunner } from '../../lib/command.js';
import type { CommandRunner } from '../../lib/command.js';

export interface DefaultRouteSource {
  /** Where the data comes from, for warnings. */
  readonly origin: string;
  /** Route objects as `ip -json route` prints them (IPv4 and IPv6 together). */
  readRoutes(): Promise<unknown[]>;
}

function asArray(text: string, origin: string): unknown[] {
  const t = text.trim();
  if (t === '') return [];
  const parsed: unknown = JSON.parse(t);
  if (!Array.isArray(parsed)) throw new Error(`${origin}: expected a JSON array of routes`);
  return parsed as unknown[];
}

export function iproute2DefaultRoutes(run: CommandRunner = createCommandRunner()): DefaultRouteSource {
  return {
    origin: 'ip -json route show default',
    async readRoutes() {
      const [v4, v6] = await Promise.all([
        run(['ip', '-json', 'route', 'show', 'default']),
        run(['ip', '-6', '-json', 'route', 'show', 'default']),
      ]);
      return [...asArray(v4.stdout, 'ip -json route'), ...asArray(v6.stdout, 'ip -6 -json route')];
    },
  };
}

export function fileDefaultRoutes(file: string): DefaultRouteSource {
  return {
    origin: file,
    async readRoutes() {
      const text = await readFile(file, 'utf8').catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
        throw err;
      });
      return asArray(text, file);
    },
  };
}

function devicesOf(route: unknown): string[] {
  if (typeof route !== 'object' || route === null) return [];
  const r = route as { dst?: unknown; dev?: unknown; nexthops?: unknown };
  if (r.dst !== undefined && r.dst !== 'default' && r.dst !== '0.0.0.0/0' && r.dst !== '::/0') return [];
  const out: string[] = [];
  if (typeof r.dev === 'string') out.push(r.dev);
  // Multipath (ECMP) default routes name each device in nexthops.
  if (Array.isArray(r.nexthops))
    for (const h of r.nexthops as unknown[]) out.push(...devicesOf({ ...(h as object), dst: 'default' }));
  return out;
}

/** Netdev names with a default route; a failing source gives an empty set and a warning. */
export async function readDefaultRouteDevices(
  source: DefaultRouteSource,
): Promise<{ devices: ReadonlySet<string>; warning: string | null }> {
  try {
    const routes = await source.readRoutes();
    return { devices: new Set(routes.flatMap(devicesOf)), warning: null };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return {
      devices: new Set(),
      warning: `${source.origin}: ${message}; netdevs carrying the default route cannot be excluded`,
    };
  }
}
