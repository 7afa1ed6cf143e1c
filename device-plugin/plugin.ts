// The device plugin process: config + discovery → pools → one gRPC server per pool, registered
// with the kubelet; kept current by config-file events, SIGHUP, link events and a rescan timer, and
// re-registered when the kubelet restarts. Every change runs through one queue, in order.
import { systemClock } from '../lib/clock.js';
import type { Clock } from '../lib/clock.js';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { NodeModel } from '../sriov/model.js';
import type { HostDevices, RdmaCharDevices } from './allocate.js';
import { ConfigError, CONFIG_ERROR, parseConfig } from './config.js';
import type { DevicePluginConfig } from './config.js';
import { reportConfig, uplinkReporter } from './config-report.js';
import { createKubeletSync } from './kubelet-sync.js';
import type { KubeletSync } from './kubelet-sync.js';
import type { DevicePluginMetrics } from './metrics.js';
import { createPoolServer, socketName } from './pool-server.js';
import type { PoolServer, RegistrationMode } from './pool-server.js';
import { buildPools, uplinkExclusions } from './pools.js';
import { readDefaultRouteDevices } from '../sriov/link/default-route.js';
import type { DefaultRouteSource } from '../sriov/link/default-route.js';
import type { Pool, PoolDevice } from './pools.js';
import { configWatchNames, detectRegistrationMode, kubeletPaths, watchDirectory } from './registration.js';
import { FULL_RESCAN_EVERY } from './rescan-probe.js';
import type { RescanProbe } from './rescan-probe.js';
import { createWorkQueue } from './work-queue.js';

/** Timer port (tests may pass their own). */
export interface DevicePluginDeps {
  readonly configFile: string;
  readonly resourcePrefix: string;
  /** Discovers the node (production: discoverNode over --sysfs-root, or a --simulated-node). */
  readonly discover: () => Promise<NodeModel>;
  readonly kubeletRoot: string;
  readonly registration: RegistrationMode | 'auto';
  readonly devinfoDir: string;
  readonly cdiDir: string | null;
  readonly host: HostDevices;
  /** RDMA char devices of a PCI device (production: from --sysfs-root). */
  readonly rdmaCharDevices?: (pciAddress: string) => Promise<RdmaCharDevices>;
  readonly log: Logger;
  readonly metrics: DevicePluginMetrics;
  /** Periodic rediscovery; 0 disables it (link events and SIGHUP still trigger one). */
  readonly rescanIntervalMs: number;
  /**
   * A rescan tick's cheap first look (production: nodeRescanProbe): a tick whose fingerprint equals
   * the one taken before the last rebuild skips rediscovery, except every FULL_RESCAN_EVERY-th
   * tick. Without it every tick rediscovers.
   */
  readonly rescanProbe?: RescanProbe;
  /** Subscribes to link up/down events (production: `ip monitor link`); returns unsubscribe. */
  readonly linkEvents?: (onEvent: () => void) => () => void;
  /** The routing table's default routes (production: iproute2); their netdevs are never offered. */
  readonly defaultRoutes?: DefaultRouteSource;
  /** Timers for retries, debounces and rescans; default the system clock. */
  readonly clock?: Clock;
  /** `--strict`: a config with any warning or pool error is refused (at start: exit 2). */
  readonly strict?: boolean;
}

export interface PoolStatus {
  readonly resource: string;
  readonly socket: string;
  readonly devices: number;
  readonly healthy: number;
}

export interface DevicePluginStatus {
  readonly mode: RegistrationMode;
  readonly pools: readonly PoolStatus[];
  /** Why the last config reload failed (the previous config is still served), or null. */
  readonly configError: string | null;
  /** Pools of the config that are not served, as `<JSON path>: <why>`. */
  readonly poolErrors: readonly string[];
  readonly registered: boolean;
}

export interface DevicePlugin {
  start(): Promise<void>;
  /** Re-reads the config file; a bad file keeps the last good config (result says why). */
  reload(): Promise<{ readonly ok: boolean; readonly error?: string }>;
  /** Rediscovers the node and updates every pool. */
  rescan(): Promise<void>;
  /** Waits for queued work (config events, registration) to finish. */
  settled(): Promise<void>;
  status(): DevicePluginStatus;
  servers(): readonly PoolServer[];
  stop(): Promise<void>;
}

/** Reads and validates config.json (also used by netplumb doctor). */
export async function loadConfig(
  file: string,
  resourcePrefix: string,
  strict = false,
): Promise<DevicePluginConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(
      CONFIG_ERROR.unreadable,
      [{ path: '', message: `cannot read config file ${file}; check --config` }],
      { cause },
    );
  }
  return parseConfig(text, { resourcePrefix, strict });
}

/** The NIC's backing PCI device (through its parents, e.g. a VLAN on a PF), for its device-info file. */
export function nicPciAddress(model: NodeModel | null, d: PoolDevice): string | null {
  if (d.kind !== 'nic' || model === null) return null;
  let cur = d.nic;
  for (let i = 0; i < 8; i++) {
    if (cur.pciAddress !== null) return cur.pciAddress;
    const parentName = cur.parent;
    const parent = parentName === null ? undefined : model.nics.find((n) => n.name === parentName);
    if (parent === undefined) return null;
    cur = parent;
  }
  return null;
}

interface PoolSet {
  readonly servers: Map<string, PoolServer>;
  /** Stops servers of pools no longer wanted, updates the others, starts servers for new pools. */
  apply(pools: readonly Pool[]): Promise<void>;
  stopAll(): Promise<void>;
}

function createPoolSet(
  deps: DevicePluginDeps,
  socketDir: string,
  mode: RegistrationMode,
  onStarted: (resource: string) => void,
  model: () => NodeModel | null,
): PoolSet {
  const log = deps.log.child({ component: 'device-plugin', mode });
  const servers = new Map<string, PoolServer>();
  function serve(pool: Pool): PoolServer {
    return createPoolServer({
      pool,
      socketPath: path.join(socketDir, socketName(pool.config)),
      mode,
      devinfoDir: deps.devinfoDir,
      cdiDir: deps.cdiDir,
      host: deps.host,
      ...(deps.rdmaCharDevices ? { rdmaCharDevices: deps.rdmaCharDevices } : {}),
      nicPciAddress: (d) => nicPciAddress(model(), d),
      log: deps.log,
      metrics: deps.metrics,
    });
  }
  return {
    servers,
    async apply(pools) {
      const wanted = new Set(pools.map((p) => p.config.fullName));
      for (const [name, server] of servers) {
        if (wanted.has(name)) continue;
        servers.delete(name);
        await server.stop();
        log.info({ resource: name }, 'pool removed from config; stopped serving it');
      }
      for (const pool of pools) {
        const existing = servers.get(pool.config.fullName);
        if (existing !== undefined) {
          await existing.update(pool);
          continue;
        }
        // As SRIOV-DP: a pool with no devices is not advertised (until a rescan finds some).
        if (pool.devices.length === 0) {
          log.warn({ resource: pool.config.fullName }, 'no device matches this pool; not advertised');
          continue;
        }
        const server = serve(pool);
        await server.start();
        servers.set(pool.config.fullName, server);
        onStarted(pool.config.fullName);
      }
    },
    async stopAll() {
      for (const s of servers.values()) await s.stop();
      servers.clear();
    },
  };
}

/** A debounced trigger; every pending one is cancelled by the returned stop (and ignored once stopped). */
function debouncer(timers: Clock, stopped: () => boolean, stops: (() => void)[]) {
  return (fn: () => void, ms: number): (() => void) => {
    let cancel: (() => void) | null = null;
    stops.push(() => {
      cancel?.();
      cancel = null;
    });
    return () => {
      if (stopped()) return;
      cancel?.();
      cancel = timers.setTimeout(() => {
        cancel = null;
        fn();
      }, ms);
    };
  };
}

function poolStatus(s: PoolServer): PoolStatus {
  return {
    resource: s.config.fullName,
    socket: s.socketPath,
    devices: s.devices().length,
    healthy: s.devices().filter((d) => d.health === 'Healthy').length,
  };
}

export function createDevicePlugin(deps: DevicePluginDeps): DevicePlugin {
  const timers = deps.clock ?? systemClock;
  const paths = kubeletPaths(deps.kubeletRoot);
  const mode = detectRegistrationMode(deps.registration, paths);
  const socketDir = mode === 'legacy' ? paths.devicePluginDir : paths.pluginsRegistryDir;
  const log = deps.log.child({ component: 'device-plugin', mode });

  let config: DevicePluginConfig | null = null;
  let model: NodeModel | null = null;
  let configError: string | null = null;
  const stops: (() => void)[] = [];
  let stopped = false;
  const { serial, background } = createWorkQueue(log);
  const pools = createPoolSet(
    deps,
    socketDir,
    mode,
    (r) => {
      sync.added(r);
    },
    () => model,
  );
  const sync: KubeletSync = createKubeletSync({
    mode,
    paths,
    servers: pools.servers,
    metrics: deps.metrics,
    log,
    timers,
    requeue: () => {
      background('kubelet reconcile', () => sync.reconcile());
    },
    stopped: () => stopped,
  });
  const reportUplinks = uplinkReporter(log);
  const debounced = debouncer(timers, () => stopped, stops);
  const reconcile = () => sync.reconcile();

  /** The probe taken before the last successful rebuild (null: none, or an event-driven one). */
  let lastProbe: string | null = null;
  let ticks = 0;

  async function rebuild(probed: string | null = null): Promise<void> {
    if (config === null || stopped) return;
    lastProbe = null;
    const [found, routes] = await Promise.all([
      deps.discover(),
      deps.defaultRoutes === undefined ? null : readDefaultRouteDevices(deps.defaultRoutes),
    ]);
    model = found;
    for (const w of model.warnings) log.debug({ warning: w }, 'discovery warning');
    if (routes?.warning != null) log.warn(routes.warning);
    const uplinks = routes?.devices ?? new Set<string>();
    reportUplinks(uplinkExclusions(model, uplinks));
    await pools.apply(buildPools(config.pools, model, uplinks));
    await sync.reconcile();
    lastProbe = probed;
  }

  /** The rescan timer: rediscovers unless the probe says nothing it covers has changed. */
  async function rescanTick(): Promise<void> {
    ticks += 1;
    if (deps.rescanProbe === undefined) return rebuild();
    let probed: string | null = null;
    try {
      probed = await deps.rescanProbe();
    } catch (err) {
      log.debug({ err }, 'rescan probe failed; rediscovering');
    }
    if (probed !== null && probed === lastProbe && ticks % FULL_RESCAN_EVERY !== 0) return;
    await rebuild(probed);
  }

  const load = async (): Promise<DevicePluginConfig> => {
    const c = await loadConfig(deps.configFile, deps.resourcePrefix, deps.strict);
    reportConfig(c, { log, metrics: deps.metrics, configFile: deps.configFile });
    return c;
  };

  async function reloadNow(): Promise<{ ok: boolean; error?: string }> {
    try {
      config = await load();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      configError = message;
      deps.metrics.configErrors.set(1);
      log.error(
        { err, configFile: deps.configFile },
        'config reload failed; still serving the previous config',
      );
      return { ok: false, error: message };
    }
    configError = null;
    deps.metrics.configErrors.set(0);
    log.info({ configFile: deps.configFile, pools: config.pools.length }, 'config loaded');
    await rebuild();
    return { ok: true };
  }

  function watch(): void {
    stops.push(
      watchDirectory(socketDir, () => {
        background('kubelet reconcile', reconcile);
      }),
    );
    // The kubelet may have come up between the first reconcile and the watch.
    background('kubelet reconcile', reconcile);
    // Editors and ConfigMap updates replace the file (rename / `..data` symlink swap), which a
    // watch on the file's inode would miss: watch its directory, for the file's and `..data`'s
    // entries only.
    const onConfigEvent = debounced(() => {
      background('config reload', reloadNow);
    }, 50);
    stops.push(
      watchDirectory(path.dirname(deps.configFile), onConfigEvent, configWatchNames(deps.configFile)),
    );
    if (deps.linkEvents !== undefined) {
      const onLink = debounced(() => {
        background('rediscovery', () => rebuild());
      }, 100);
      stops.push(deps.linkEvents(onLink));
    }
    if (deps.rescanIntervalMs > 0) {
      stops.push(
        timers.setInterval(() => {
          background('rediscovery', rescanTick);
        }, deps.rescanIntervalMs),
      );
    }
  }

  return {
    async start() {
      await mkdir(socketDir, { recursive: true });
      // A config nothing can be served from is fatal at start: there is no previous one to keep.
      config = await load();
      await serial(() => rebuild());
      watch();
    },
    reload: () => serial(reloadNow),
    rescan: () => serial(() => rebuild()),
    settled: () => serial(() => Promise.resolve()),
    status: () => ({
      mode,
      configError,
      poolErrors: (config?.poolErrors ?? []).map((e) => `${e.path}: ${e.message}`),
      registered: sync.registered(),
      pools: [...pools.servers.values()].map(poolStatus),
    }),
    servers: () => [...pools.servers.values()],
    async stop() {
      stopped = true;
      sync.stop();
      for (const s of stops.splice(0)) s();
      await serial(() => pools.stopAll());
    },
  };
}
