// One gRPC server per pool on its own unix socket: the DevicePlugin service, plus the
// pluginregistration service in plugin-watcher mode. Devices are updated in place: a device that
// leaves the pool stays listed as Unhealthy, so nothing the kubelet handed out disappears.
import { lstat, rm } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  DevicePluginService,
  type AllocateRequest,
  type AllocateResponse,
  type Device,
  type DevicePluginOptions,
  type DevicePluginServer,
  type Empty,
  type ListAndWatchResponse,
  type PreferredAllocationRequest,
  type PreferredAllocationResponse,
} from '../proto/gen/deviceplugin/v1beta1/api.js';
import {
  RegistrationService as PluginRegistrationService,
  type PluginInfo,
  type RegistrationServer as PluginRegistrationServer,
} from '../proto/gen/pluginregistration/v1/api.js';
import { ALLOCATE_ERROR, AllocateError, containerAllocation, deviceInfoDocument } from './allocate.js';
import { listenGrpcUnix } from './authority-front.js';
import type { GrpcUnixListener } from './authority-front.js';
import type { HostDevices, RdmaCharDevices } from './allocate.js';
import type { PoolConfig } from './config.js';
import { removeCdiSpec, removePoolDeviceInfo, writeCdiSpec, writeDeviceInfo } from './device-info.js';
import { HEALTH } from './health.js';
import type { DevicePluginMetrics } from './metrics.js';
import type { Pool, PoolDevice } from './pools.js';
import { preferredAllocation } from './preferred-allocation.js';
import type { PlacementInfo } from './preferred-allocation.js';

export const DEVICE_PLUGIN_VERSION = 'v1beta1';
export const PLUGIN_OPTIONS: DevicePluginOptions = {
  preStartRequired: false,
  getPreferredAllocationAvailable: true,
};

export type RegistrationMode = 'legacy' | 'watcher';

/** `<prefix>_<name>.sock`, SRIOV-DP's socket name. */
export function socketName(config: Pick<PoolConfig, 'resourcePrefix' | 'resourceName'>): string {
  return `${config.resourcePrefix}_${config.resourceName}.sock`;
}

export interface PoolServerDeps {
  readonly pool: Pool;
  readonly socketPath: string;
  readonly mode: RegistrationMode;
  readonly devinfoDir: string;
  /** CDI spec dir when --cdi is on, else null. */
  readonly cdiDir: string | null;
  readonly host: HostDevices;
  /** NUMA/PCI of a NIC device's backing PCI device, for its device-info file. */
  readonly nicPciAddress: (d: PoolDevice) => string | null;
  /** RDMA char devices of a PCI device (production: sysfsRdmaCharDevices). */
  readonly rdmaCharDevices?: (pciAddress: string) => Promise<RdmaCharDevices>;
  readonly log: Logger;
  readonly metrics: DevicePluginMetrics;
  /** Called with the watcher's NotifyRegistrationStatus. */
  readonly onWatcherStatus?: (registered: boolean, error: string) => void;
}

export interface PoolServer {
  readonly config: PoolConfig;
  readonly socketPath: string;
  /** Removes stale files, then listens on the socket. */
  start(): Promise<void>;
  /** Replaces the pool (config and/or devices); sends ListAndWatch when the list changed. */
  update(pool: Pool): Promise<void>;
  /** Listens again on a fresh socket (the old file was removed, e.g. by a kubelet restart). */
  rebind(): Promise<void>;
  /** True while the socket file exists. */
  socketPresent(): Promise<boolean>;
  /** The list as last sent to the kubelet. */
  devices(): readonly Device[];
  /** Ends ListAndWatch, stops gRPC, removes the socket, device-info files and CDI spec. */
  stop(): Promise<void>;
}

function toDevice(d: PoolDevice, excludeTopology: boolean): Device {
  return {
    ID: d.id,
    health: d.health,
    topology: excludeTopology || d.numaNode < 0 ? undefined : { nodes: [{ ID: d.numaNode }] },
  };
}

function sameList(a: readonly Device[], b: readonly Device[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((d, i) => {
    const o = b[i];
    return (
      o !== undefined &&
      o.ID === d.ID &&
      o.health === d.health &&
      o.topology?.nodes[0]?.ID === d.topology?.nodes[0]?.ID
    );
  });
}

/** GetPreferredAllocation for each container request of `req`. */
function preferredResponse(
  req: PreferredAllocationRequest,
  known: ReadonlyMap<string, PoolDevice>,
  policy: PoolConfig['allocationPolicy'],
): PreferredAllocationResponse {
  const placement = new Map<string, PlacementInfo>();
  for (const d of known.values()) placement.set(d.id, { numaNode: d.numaNode, group: d.group });
  return {
    containerResponses: req.containerRequests.map((c) => ({
      deviceIDs: preferredAllocation({
        available: c.availableDeviceIDs,
        mustInclude: c.mustIncludeDeviceIDs,
        size: c.allocationSize,
        policy,
        placement,
      }),
    })),
  };
}

/** The gRPC status of a failed Allocate: refusals name the device; anything else is INTERNAL. */
function allocateErrorStatus(err: unknown, log: Logger): Partial<grpc.StatusObject> {
  if (err instanceof AllocateError) {
    log.warn({ err }, 'Allocate refused');
    const code =
      err.code === ALLOCATE_ERROR.goneDevice ? grpc.status.FAILED_PRECONDITION : grpc.status.INVALID_ARGUMENT;
    return { code, details: err.message };
  }
  log.error({ err }, 'Allocate failed');
  return { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}

/** Host devices for a request: the RDMA char devices of its isRdma devices looked up on demand. */
async function hostFor(
  deps: PoolServerDeps,
  known: ReadonlyMap<string, PoolDevice>,
  req: AllocateRequest,
): Promise<HostDevices> {
  const lookup = deps.rdmaCharDevices;
  if (lookup === undefined) return deps.host;
  const rdmaIds = req.containerRequests
    .flatMap((c) => c.devicesIds)
    .filter((id) => {
      const d = known.get(id);
      return d?.kind === 'pci' && d.selector.isRdma;
    });
  if (rdmaIds.length === 0) return deps.host;
  const rdma = new Map<string, RdmaCharDevices>();
  await Promise.all(rdmaIds.map(async (id) => rdma.set(id, await lookup(id))));
  return { ...deps.host, rdma };
}

/** Every pool, accelerators too: SRIOV-DP writes a device-info file for each allocated device. */
async function writeDeviceInfos(
  deps: PoolServerDeps,
  config: PoolConfig,
  devices: readonly PoolDevice[],
): Promise<void> {
  await Promise.all(
    devices.map(async (d) => {
      const doc = deviceInfoDocument(d, d.kind === 'nic' ? deps.nicPciAddress(d) : null);
      if (doc !== null) await writeDeviceInfo(deps.devinfoDir, config, d.id, doc);
    }),
  );
}

/** The pluginregistration service of a pool socket in plugin-watcher mode. */
function registrationService(
  deps: PoolServerDeps,
  config: () => PoolConfig,
  log: Logger,
): PluginRegistrationServer {
  return {
    getInfo: (_call, cb) => {
      const info: PluginInfo = {
        type: 'DevicePlugin',
        name: config().fullName,
        endpoint: deps.socketPath,
        supportedVersions: [DEVICE_PLUGIN_VERSION],
      };
      cb(null, info);
    },
    notifyRegistrationStatus: (call, cb) => {
      const { pluginRegistered, error } = call.request;
      deps.metrics.registrations.inc({
        resource: config().fullName,
        mode: 'watcher',
        result: pluginRegistered ? 'ok' : 'error',
      });
      if (pluginRegistered) log.info('registered with the kubelet plugin watcher');
      else log.error({ error }, 'kubelet plugin watcher refused the registration');
      deps.onWatcherStatus?.(pluginRegistered, error);
      cb(null, {});
    },
  };
}

export function createPoolServer(deps: PoolServerDeps): PoolServer {
  let config = deps.pool.config;
  const log = deps.log.child({ resource: config.fullName });
  /** Every device ever advertised by this server, by ID; gone ones are kept as Unhealthy. */
  const known = new Map<string, PoolDevice>();
  let list: Device[] = [];
  const streams = new Set<grpc.ServerWritableStream<Empty, ListAndWatchResponse>>();
  let server: grpc.Server | null = null;
  let front: GrpcUnixListener | null = null;

  /** IDs in the pool now; a known ID not in it has left (and is listed as Unhealthy). */
  let present = new Set<string>();

  function recompute(pool: Pool): boolean {
    config = pool.config;
    present = new Set<string>();
    for (const d of pool.devices) {
      known.set(d.id, d);
      present.add(d.id);
    }
    for (const [id, d] of known) {
      if (!present.has(id) && d.health !== HEALTH.unhealthy)
        known.set(id, { ...d, health: HEALTH.unhealthy });
    }
    const next = [...known.values()].map((d) => toDevice(d, config.excludeTopology));
    const changed = !sameList(list, next);
    list = next;
    deps.metrics.devices.set(
      { resource: config.fullName, health: HEALTH.healthy },
      next.filter((d) => d.health === HEALTH.healthy).length,
    );
    deps.metrics.devices.set(
      { resource: config.fullName, health: HEALTH.unhealthy },
      next.filter((d) => d.health === HEALTH.unhealthy).length,
    );
    return changed;
  }
  recompute(deps.pool);

  async function publish(): Promise<void> {
    if (deps.cdiDir !== null && config.deviceType !== 'nic') {
      await writeCdiSpec(deps.cdiDir, config, [...known.values()], deps.host);
    }
    for (const s of streams) s.write({ devices: list });
  }

  const devicePlugin: DevicePluginServer = {
    getDevicePluginOptions: (_call, cb) => {
      cb(null, PLUGIN_OPTIONS);
    },
    listAndWatch: (call) => {
      streams.add(call);
      const drop = () => streams.delete(call);
      call.on('cancelled', drop);
      call.on('close', drop);
      call.on('error', drop);
      call.write({ devices: list });
      log.debug({ devices: list.length }, 'ListAndWatch opened');
    },
    getPreferredAllocation: (call, cb) => {
      cb(null, preferredResponse(call.request, known, config.allocationPolicy));
    },
    allocate: (call, cb) => {
      allocate(call.request).then(
        (res) => {
          cb(null, res);
        },
        (err: unknown) => {
          cb(allocateErrorStatus(err, log));
        },
      );
    },
    preStartContainer: (_call, cb) => {
      cb(null, {});
    },
  };

  async function allocate(req: AllocateRequest): Promise<AllocateResponse> {
    const host = await hostFor(deps, known, req);
    const responses = req.containerRequests.map((c) =>
      containerAllocation(config, known, c.devicesIds, host, deps.cdiDir !== null, present),
    );
    await writeDeviceInfos(
      deps,
      config,
      responses.flatMap((r) => r.devices),
    );
    const count = responses.reduce((n, r) => n + r.devices.length, 0);
    deps.metrics.allocations.inc({ resource: config.fullName }, count);
    log.info({ devices: responses.map((r) => r.devices.map((d) => d.id)) }, 'Allocate');
    return { containerResponses: responses.map((r) => r.response) };
  }

  const pluginRegistration = registrationService(deps, () => config, log);

  // Through the authority front, so kubelets that send `:authority` = socket path are served too.
  async function listen(): Promise<void> {
    await rm(deps.socketPath, { force: true });
    const s = new grpc.Server();
    s.addService(DevicePluginService, devicePlugin);
    if (deps.mode === 'watcher') s.addService(PluginRegistrationService, pluginRegistration);
    try {
      front = await listenGrpcUnix(s, deps.socketPath, (err) => {
        log.warn({ err }, 'kubelet connection ended: malformed HTTP/2');
      });
    } catch (err) {
      s.forceShutdown();
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`cannot listen on ${deps.socketPath}: ${message}`, { cause: err });
    }
    server = s;
  }

  function shutdown(): void {
    front?.close();
    front = null;
    server?.forceShutdown();
    server = null;
  }

  function endStreams(): void {
    for (const s of streams) s.end();
    streams.clear();
  }

  return {
    get config() {
      return config;
    },
    socketPath: deps.socketPath,
    async start() {
      await removePoolDeviceInfo(deps.devinfoDir, config);
      await listen();
      if (deps.cdiDir !== null && config.deviceType !== 'nic') await publish();
      log.info({ socket: deps.socketPath, devices: list.length }, 'serving');
    },
    async update(pool) {
      if (recompute(pool)) await publish();
    },
    async rebind() {
      endStreams();
      shutdown();
      await listen();
      log.info({ socket: deps.socketPath }, 'socket recreated');
    },
    async socketPresent() {
      return lstat(deps.socketPath).then(
        () => true,
        () => false,
      );
    },
    devices: () => list,
    async stop() {
      endStreams();
      shutdown();
      await rm(deps.socketPath, { force: true });
      await removePoolDeviceInfo(deps.devinfoDir, config);
      if (deps.cdiDir !== null) await removeCdiSpec(deps.cdiDir, config);
    },
  };
}
