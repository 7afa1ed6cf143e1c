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
import type { DevicePluginMetrics } from './metrics.js';
import { createPoolServer, DEVICE_PLUGIN_VERSION, PLUGIN_OPTIONS, socketName } from './pool-server.js';
import type { PoolServer, RegistrationMode } from './pool-server.js';
import { buildPools, uplinkExclusions } from './pools.js';
import { ignoredPfNameEntries } from './selectors.js';
import { readDefaultRouteDevices } from '../sriov/link/default-route.js';
import type { DefaultRouteSource } from '../sriov/link/default-route.js';
import type { Pool, PoolDevice } from './pools.js';
import {
  configWatchNames,
  connectKubelet,
  detectRegistrationMode,
  kubeletPaths,
  socketIdentity,
  watchDirectory,
} from './registration.js';
import type { KubeletRegistrar } from './registration.js';

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
  /** Subscribes to link up/down events (production: `ip monitor link`); returns unsubscribe. */
  readonly linkEvents?: (onEvent: () => void) => () => void;
  /** The routing table's default routes (production: iproute2); their netdevs are never offered. */
  readonly defaultRoutes?: DefaultRouteSource;
  /** Timers for retries, debounces and rescans; default the system clock. */
  readonly clock?: Clock;
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
export async function loadConfig(file: string, resourcePrefix: string): Promise<DevicePluginConfig> {
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
  return parseConfig(text, { resourcePrefix });
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
  const servers = new Map<string, PoolServer>();
  /** Kubelet socket identity at the last complete legacy registration. */
  let registeredWith: string | null = null;
  const needsRegister = new Set<string>();
  const stops: (() => void)[] = [];
  let queue: Promise<void> = Promise.resolve();
  let stopped = false;
  let retryPending = false;

  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn);
    queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  // Event-driven work: failures are logged here, once, and the next event or rescan retries.
  function background(what: string, fn: () => Promise<unknown>): void {
    serial(fn).catch((err: unknown) => {
      log.error({ err }, `${what} failed`);
    });
  }

  function nicPciAddress(d: PoolDevice): string | null {
    if (d.kind !== 'nic' || model === null) return null;
    const nics = model.nics;
    let cur = d.nic;
    for (let i = 0; i < 8; i++) {
      if (cur.pciAddress !== null) return cur.pciAddress;
      const parentName = cur.parent;
      const parent = parentName === null ? undefined : nics.find((n) => n.name === parentName);
      if (parent === undefined) return null;
      cur = parent;
    }
    return null;
  }

  async function applyPools(pools: readonly Pool[]): Promise<void> {
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
      const server = createPoolServer({
        pool,
        socketPath: path.join(socketDir, socketName(pool.config)),
        mode,
        devinfoDir: deps.devinfoDir,
        cdiDir: deps.cdiDir,
        host: deps.host,
        ...(deps.rdmaCharDevices ? { rdmaCharDevices: deps.rdmaCharDevices } : {}),
        nicPciAddress,
        log: deps.log,
        metrics: deps.metrics,
      });
      await server.start();
      servers.set(pool.config.fullName, server);
      needsRegister.add(pool.config.fullName);
    }
  }

  async function rebuild(): Promise<void> {
    if (config === null || stopped) return;
    const [found, routes] = await Promise.all([
      deps.discover(),
      deps.defaultRoutes === undefined ? null : readDefaultRouteDevices(deps.defaultRoutes),
    ]);
    model = found;
    for (const w of model.warnings) log.debug({ warning: w }, 'discovery warning');
    if (routes?.warning != null) log.warn(routes.warning);
    const uplinks = routes?.devices ?? new Set<string>();
    logUplinks(uplinkExclusions(model, uplinks));
    await applyPools(buildPools(config.pools, model, uplinks));
    await reconcileKubelet();
  }

  // What SRIOV-DP accepts but ignores, said at each load.
  function logConfigWarnings(c: DevicePluginConfig): void {
    c.pools.forEach((pool, i) => {
      if (pool.deviceType === 'nic') return;
      pool.selectors.forEach((sel, j) => {
        for (const k of ignoredPfNameEntries(sel.pfNames)) {
          deps.metrics.configWarnings.inc();
          log.warn(
            { resource: pool.fullName, path: `resourceList[${i}].selectors[${j}].pfNames[${k}]` },
            'ignored: an earlier pfNames entry names the same PF (SRIOV-DP reads only the first); merge the ranges into that entry',
          );
        }
      });
    });
  }

  // Said once per change: which devices no pool offers because they carry a default route.
  let uplinksLogged = '';
  function logUplinks(excluded: readonly { netdev: string; pciAddress: string | null }[]): void {
    const key = JSON.stringify(excluded);
    if (key === uplinksLogged) return;
    uplinksLogged = key;
    for (const e of excluded)
      log.info(
        { netdev: e.netdev, pciAddress: e.pciAddress },
        'excluded from every pool: carries a default route (the node uplink)',
      );
  }

  async function register(kubelet: KubeletRegistrar, server: PoolServer, ident: string): Promise<boolean> {
    const resource = server.config.fullName;
    try {
      await kubelet.register({
        version: DEVICE_PLUGIN_VERSION,
        endpoint: path.basename(server.socketPath),
        resourceName: resource,
        options: PLUGIN_OPTIONS,
      });
      deps.metrics.registrations.inc({ resource, mode, result: 'ok' });
      log.info({ resource, kubelet: ident }, 'registered with the kubelet');
      return true;
    } catch (err) {
      deps.metrics.registrations.inc({ resource, mode, result: 'error' });
      log.error({ err, resource }, 'registration failed; will retry');
      return false;
    }
  }

  // Makes sockets and registrations match what is on disk: recreate our sockets if they were
  // removed, and Register again (legacy) when the kubelet's socket is new or ours was recreated.
  async function reconcileKubelet(): Promise<void> {
    if (stopped) return;
    for (const server of servers.values()) {
      if (!(await server.socketPresent())) {
        await server.rebind();
        needsRegister.add(server.config.fullName);
      }
    }
    if (mode === 'watcher') {
      needsRegister.clear();
      return;
    }
    const ident = await socketIdentity(paths.kubeletSocket);
    if (ident === null) {
      registeredWith = null;
      return;
    }
    if (ident !== registeredWith) for (const name of servers.keys()) needsRegister.add(name);
    let failed = false;
    const kubelet = connectKubelet(paths.kubeletSocket);
    try {
      for (const name of [...needsRegister]) {
        const server = servers.get(name);
        if (server === undefined) {
          needsRegister.delete(name);
          continue;
        }
        if (await register(kubelet, server, ident)) needsRegister.delete(name);
        else failed = true;
      }
    } finally {
      kubelet.close();
    }
    registeredWith = ident;
    if (failed && !retryPending) {
      retryPending = true;
      stops.push(
        timers.setTimeout(() => {
          retryPending = false;
          background('kubelet reconcile', reconcileKubelet);
        }, 1_000),
      );
    }
  }

  async function reloadNow(): Promise<{ ok: boolean; error?: string }> {
    try {
      config = await loadConfig(deps.configFile, deps.resourcePrefix);
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
    logConfigWarnings(config);
    await rebuild();
    return { ok: true };
  }

  // A pending debounce is cancelled by stop(): one firing after it would serve pools again.
  function debounced(fn: () => void, ms: number): () => void {
    let cancel: (() => void) | null = null;
    stops.push(() => {
      cancel?.();
      cancel = null;
    });
    return () => {
      if (stopped) return;
      cancel?.();
      cancel = timers.setTimeout(() => {
        cancel = null;
        fn();
      }, ms);
    };
  }

  return {
    async start() {
      await mkdir(socketDir, { recursive: true });
      // A bad config at start is fatal: there is no previous config to keep serving.
      config = await loadConfig(deps.configFile, deps.resourcePrefix);
      logConfigWarnings(config);
      await serial(rebuild);
      stops.push(
        watchDirectory(socketDir, () => {
          background('kubelet reconcile', reconcileKubelet);
        }),
      );
      // The kubelet may have come up between the first reconcile and the watch.
      background('kubelet reconcile', reconcileKubelet);
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
          background('rediscovery', rebuild);
        }, 100);
        stops.push(deps.linkEvents(onLink));
      }
      if (deps.rescanIntervalMs > 0) {
        stops.push(
          timers.setInterval(() => {
            background('rediscovery', rebuild);
          }, deps.rescanIntervalMs),
        );
      }
    },
    reload: () => serial(reloadNow),
    rescan: () => serial(rebuild),
    settled: () => serial(() => Promise.resolve()),
    status: () => ({
      mode,
      configError,
      registered: mode === 'watcher' || (registeredWith !== null && needsRegister.size === 0),
      pools: [...servers.values()].map((s) => ({
        resource: s.config.fullName,
        socket: s.socketPath,
        devices: s.devices().length,
        healthy: s.devices().filter((d) => d.health === 'Healthy').length,
      })),
    }),
    servers: () => [...servers.values()],
    async stop() {
      stopped = true;
      for (const s of stops.splice(0)) s();
      await serial(async () => {
        for (const s of servers.values()) await s.stop();
        servers.clear();
      });
    },
  };
}
