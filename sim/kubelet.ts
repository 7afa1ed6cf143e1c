// A fake kubelet on the real protos and real gRPC over unix sockets, behaving like the kubelet's
// device manager: serves Registration on <root>/device-plugins/kubelet.sock (legacy) and/or
// watches <root>/plugins_registry (plugin watcher), dials each plugin back (sending `:authority` =
// the socket path, as grpc-go in kubelets before v1.26 does), reads its options,
// keeps ListAndWatch open recording every update, asks GetPreferredAllocation when offered and
// calls Allocate when a pod is admitted. It also serves PodResources v1 from its assignments on
// <root>/pod-resources/kubelet.sock. restart() behaves like a kubelet restart.
import { EventEmitter } from 'node:events';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  DevicePluginClient,
  RegistrationService,
  type AllocateResponse,
  type ContainerAllocateResponse,
  type Device,
  type DevicePluginOptions,
  type ListAndWatchResponse,
  type RegisterRequest,
  type RegistrationServer,
} from '../proto/gen/deviceplugin/v1beta1/api.js';
import {
  RegistrationClient as WatcherClient,
  type PluginInfo,
} from '../proto/gen/pluginregistration/v1/api.js';
import {
  PodResourcesListerService,
  type ContainerDevices,
  type PodResources,
  type PodResourcesListerServer,
} from '../proto/gen/podresources/v1/api.js';

export type FakeKubeletMode = 'legacy' | 'watcher' | 'both';

export interface FakeKubeletOptions {
  /** Stands in for /var/lib/kubelet. */
  readonly root: string;
  readonly mode?: FakeKubeletMode;
  /** Serve PodResources on <root>/pod-resources/kubelet.sock (default true). */
  readonly podResources?: boolean;
  /**
   * The `:authority` the kubelet sends when it dials a plugin socket. `socket-path` (default): what
   * grpc-go sends in kubelets before v1.26 (kubernetes/kubernetes#112597); `localhost`: 1.26+.
   */
  readonly authority?: 'socket-path' | 'localhost';
}

/** One registration as the kubelet saw it (legacy Register, or GetInfo in watcher mode). */
export interface SeenRegistration {
  readonly via: 'legacy' | 'watcher';
  readonly request: RegisterRequest;
  readonly at: number;
}

export interface PluginConnection {
  readonly resourceName: string;
  /** Socket path the kubelet dialed. */
  readonly socket: string;
  readonly options: DevicePluginOptions;
  /** Every ListAndWatch response, in order. */
  readonly updates: (readonly Device[])[];
  readonly client: DevicePluginClient;
  /** The last list, or [] before the first. */
  latest(): readonly Device[];
  /** False once the stream ended or failed. */
  open: boolean;
  firstUpdateAt: number | null;
}

export interface ContainerSpec {
  readonly name: string;
  readonly requests: Readonly<Record<string, number>>;
}

export interface PodSpec {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly containers: readonly ContainerSpec[];
}

export interface AdmittedContainer {
  readonly name: string;
  /** resource → device IDs allocated. */
  readonly devices: Readonly<Record<string, readonly string[]>>;
  /** resource → the plugin's Allocate answer for this container. */
  readonly responses: Readonly<Record<string, ContainerAllocateResponse>>;
}

export interface AdmittedPod {
  readonly pod: PodSpec;
  readonly containers: readonly AdmittedContainer[];
}

const unary = <T>(fn: (cb: (err: grpc.ServiceError | null, res: T) => void) => unknown): Promise<T> =>
  new Promise((resolve, reject) => {
    fn((err, res) => {
      if (err) reject(err);
      else resolve(res);
    });
  });

export class FakeKubelet {
  readonly root: string;
  readonly mode: FakeKubeletMode;
  readonly devicePluginDir: string;
  readonly kubeletSocket: string;
  readonly pluginsRegistryDir: string;
  readonly podResourcesSocket: string;
  readonly registrations: SeenRegistration[] = [];
  /** Latest connection per resource name. */
  readonly plugins = new Map<string, PluginConnection>();
  readonly pods: AdmittedPod[] = [];
  /** Errors met while dialing back plugins (a real kubelet logs them). */
  readonly errors: string[] = [];
  restarts = 0;

  private readonly events = new EventEmitter();
  private registrationServer: grpc.Server | null = null;
  private podResourcesServer: grpc.Server | null = null;
  private watcher: FSWatcher | null = null;
  private readonly watcherSeen = new Set<string>();
  private readonly streams = new Set<grpc.ClientReadableStream<ListAndWatchResponse>>();
  private readonly serveRegistryPod: boolean;
  private readonly authority: 'socket-path' | 'localhost';

  constructor(options: FakeKubeletOptions) {
    this.root = options.root;
    this.mode = options.mode ?? 'legacy';
    this.devicePluginDir = path.join(this.root, 'device-plugins');
    this.kubeletSocket = path.join(this.devicePluginDir, 'kubelet.sock');
    this.pluginsRegistryDir = path.join(this.root, 'plugins_registry');
    this.podResourcesSocket = path.join(this.root, 'pod-resources', 'kubelet.sock');
    this.serveRegistryPod = options.podResources ?? true;
    this.authority = options.authority ?? 'socket-path';
    this.events.setMaxListeners(100);
  }

  /** Starts serving; in watcher mode also creates plugins_registry/ (which selects watcher mode). */
  async start(): Promise<this> {
    await mkdir(this.devicePluginDir, { recursive: true });
    if (this.mode !== 'legacy') await mkdir(this.pluginsRegistryDir, { recursive: true });
    await this.startKubeletSocket();
    if (this.mode !== 'legacy') this.startWatcher();
    if (this.serveRegistryPod) await this.startPodResources();
    return this;
  }

  /**
   * Like a kubelet restart: connections drop, every socket in device-plugins/ is removed, then
   * kubelet.sock is created again. The plugin watcher re-scans plugins_registry/.
   */
  async restart(): Promise<void> {
    this.restarts++;
    await this.closeRegistrationServer();
    this.dropConnections();
    this.watcher?.close();
    this.watcher = null;
    this.watcherSeen.clear();
    for (const f of await readdir(this.devicePluginDir)) {
      const p = path.join(this.devicePluginDir, f);
      if ((await stat(p).catch(() => null))?.isSocket() === true || f.endsWith('.sock'))
        await rm(p, { force: true });
    }
    await this.startKubeletSocket();
    if (this.mode !== 'legacy') this.startWatcher();
    this.emit();
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    this.dropConnections();
    await this.closeRegistrationServer();
    const pr = this.podResourcesServer;
    this.podResourcesServer = null;
    pr?.forceShutdown();
  }

  /** Resolves when `pred()` holds; re-checked on every kubelet event; rejects after `timeoutMs`. */
  waitFor(pred: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onEvent = () => {
        if (!pred()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake kubelet: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off('change', onEvent);
      };
      this.events.on('change', onEvent);
    });
  }

  /** Waits until `resource` is connected and has sent at least one list. */
  async waitForPlugin(resource: string, timeoutMs = 5_000): Promise<PluginConnection> {
    await this.waitFor(
      () => {
        const p = this.plugins.get(resource);
        return p !== undefined && p.open && p.updates.length > 0;
      },
      `plugin ${resource} to register and send ListAndWatch`,
      timeoutMs,
    );
    const p = this.plugins.get(resource);
    if (p === undefined) throw new Error(`fake kubelet: plugin ${resource} vanished`);
    return p;
  }

  /** Waits until the latest list of `resource` satisfies `pred`. */
  async waitForDevices(
    resource: string,
    pred: (devices: readonly Device[]) => boolean,
    what: string,
    timeoutMs = 5_000,
  ): Promise<readonly Device[]> {
    await this.waitFor(
      () => {
        const p = this.plugins.get(resource);
        return p !== undefined && p.updates.length > 0 && pred(p.latest());
      },
      `${resource}: ${what}`,
      timeoutMs,
    );
    return this.plugins.get(resource)?.latest() ?? [];
  }

  /** Calls Allocate for one container with the given IDs (as the kubelet does at container creation). */
  async allocate(resource: string, ids: readonly string[]): Promise<AllocateResponse> {
    const p = this.connection(resource);
    return unary<AllocateResponse>((cb) =>
      p.client.allocate({ containerRequests: [{ devicesIds: [...ids] }] }, cb),
    );
  }

  /** Asks GetPreferredAllocation for one container. */
  async preferred(
    resource: string,
    available: readonly string[],
    mustInclude: readonly string[],
    size: number,
  ): Promise<string[]> {
    const p = this.connection(resource);
    const res = await unary<{ containerResponses: { deviceIDs: string[] }[] }>((cb) =>
      p.client.getPreferredAllocation(
        {
          containerRequests: [
            {
              availableDeviceIDs: [...available],
              mustIncludeDeviceIDs: [...mustInclude],
              allocationSize: size,
            },
          ],
        },
        cb,
      ),
    );
    return res.containerResponses[0]?.deviceIDs ?? [];
  }

  /** Devices of `resource` that are Healthy and not assigned to an admitted pod. */
  free(resource: string): string[] {
    const used = new Set(
      this.pods.flatMap((p) => p.containers.flatMap((c) => [...(c.devices[resource] ?? [])])),
    );
    return this.connection(resource)
      .latest()
      .filter((d) => d.health === 'Healthy' && !used.has(d.ID))
      .map((d) => d.ID);
  }

  /**
   * Admits a pod like the kubelet: per container and resource, picks devices (asking
   * GetPreferredAllocation when the plugin offers it), calls Allocate, and remembers the
   * assignment for PodResources.
   */
  async admitPod(pod: PodSpec): Promise<AdmittedPod> {
    const containers: AdmittedContainer[] = [];
    const pending: AdmittedContainer[] = [];
    const admitted: AdmittedPod = { pod, containers };
    this.pods.push({ pod, containers: pending });
    try {
      for (const c of pod.containers) {
        const devices: Record<string, string[]> = {};
        const responses: Record<string, ContainerAllocateResponse> = {};
        for (const [resource, count] of Object.entries(c.requests)) {
          const p = this.connection(resource);
          const available = this.free(resource);
          if (available.length < count)
            throw new Error(`fake kubelet: ${resource}: ${count} requested, ${available.length} free`);
          const ids = p.options.getPreferredAllocationAvailable
            ? await this.preferred(resource, available, [], count)
            : available.slice(0, count);
          const res = await this.allocate(resource, ids);
          const r = res.containerResponses[0];
          if (r === undefined)
            throw new Error(`fake kubelet: ${resource}: Allocate returned no container response`);
          devices[resource] = ids;
          responses[resource] = r;
          pending.push({ name: c.name, devices: { [resource]: ids }, responses: {} });
        }
        containers.push({ name: c.name, devices, responses });
      }
    } finally {
      this.pods.splice(
        this.pods.findIndex((p) => p.pod === pod),
        1,
      );
    }
    this.pods.push(admitted);
    this.emit();
    return admitted;
  }

  removePod(namespace: string, name: string): void {
    const i = this.pods.findIndex((p) => p.pod.namespace === namespace && p.pod.name === name);
    if (i >= 0) this.pods.splice(i, 1);
  }

  // ---- internals ----

  /** grpc-go (kubelets < 1.26) puts the dialed socket path in `:authority`. */
  private dialOptions(socket: string): grpc.ChannelOptions {
    return this.authority === 'socket-path' ? { 'grpc.default_authority': socket } : {};
  }

  private emit(): void {
    this.events.emit('change');
  }

  private connection(resource: string): PluginConnection {
    const p = this.plugins.get(resource);
    if (p === undefined) throw new Error(`fake kubelet: no plugin registered for ${resource}`);
    return p;
  }

  private async startKubeletSocket(): Promise<void> {
    if (this.mode === 'watcher') return;
    await rm(this.kubeletSocket, { force: true });
    const server = new grpc.Server();
    const impl: RegistrationServer = {
      register: (call, cb) => {
        const request = call.request;
        this.registrations.push({ via: 'legacy', request, at: performance.now() });
        if (request.version !== 'v1beta1') {
          cb({ code: grpc.status.INVALID_ARGUMENT, details: `unsupported version ${request.version}` });
          return;
        }
        cb(null, {});
        this.emit();
        // The kubelet answers first, then dials the plugin back.
        void this.connect(request.resourceName, path.join(this.devicePluginDir, request.endpoint));
      },
    };
    server.addService(RegistrationService, impl);
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${this.kubeletSocket}`, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
    this.registrationServer = server;
  }

  private async closeRegistrationServer(): Promise<void> {
    const s = this.registrationServer;
    this.registrationServer = null;
    s?.forceShutdown();
    await rm(this.kubeletSocket, { force: true });
  }

  private dropConnections(): void {
    for (const s of this.streams) s.cancel();
    this.streams.clear();
    for (const p of this.plugins.values()) {
      p.open = false;
      p.client.close();
    }
  }

  private startWatcher(): void {
    this.watcher = watch(this.pluginsRegistryDir, { persistent: false }, () => {
      void this.scanRegistry();
    });
    void this.scanRegistry();
  }

  private async scanRegistry(): Promise<void> {
    const entries = await readdir(this.pluginsRegistryDir).catch(() => [] as string[]);
    const present = new Set(entries.map((f) => path.join(this.pluginsRegistryDir, f)));
    for (const seen of [...this.watcherSeen]) if (!present.has(seen)) this.watcherSeen.delete(seen);
    for (const sock of present) {
      if (this.watcherSeen.has(sock)) continue;
      if ((await stat(sock).catch(() => null))?.isSocket() !== true) continue;
      this.watcherSeen.add(sock);
      void this.registerViaWatcher(sock);
    }
  }

  private async registerViaWatcher(sock: string): Promise<void> {
    const client = new WatcherClient(
      `unix:${sock}`,
      grpc.credentials.createInsecure(),
      this.dialOptions(sock),
    );
    try {
      const info = await unary<PluginInfo>((cb) => client.getInfo({}, cb));
      if (info.type !== 'DevicePlugin') {
        await unary((cb) =>
          client.notifyRegistrationStatus({ pluginRegistered: false, error: 'not a device plugin' }, cb),
        );
        return;
      }
      const endpoint = info.endpoint === '' ? sock : info.endpoint;
      this.registrations.push({
        via: 'watcher',
        request: {
          version: info.supportedVersions.join(','),
          endpoint,
          resourceName: info.name,
          options: undefined,
        },
        at: performance.now(),
      });
      const ok = await this.connect(info.name, endpoint);
      await unary((cb) =>
        client.notifyRegistrationStatus({ pluginRegistered: ok, error: ok ? '' : 'dial back failed' }, cb),
      );
    } catch (err) {
      this.errors.push(`watcher ${sock}: ${String(err)}`);
      this.watcherSeen.delete(sock);
    } finally {
      client.close();
      this.emit();
    }
  }

  private async connect(resourceName: string, socket: string): Promise<boolean> {
    const client = new DevicePluginClient(
      `unix:${socket}`,
      grpc.credentials.createInsecure(),
      this.dialOptions(socket),
    );
    try {
      const options = await unary<DevicePluginOptions>((cb) =>
        client.getDevicePluginOptions({}, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, cb),
      );
      const old = this.plugins.get(resourceName);
      if (old !== undefined) {
        old.open = false;
        old.client.close();
      }
      const updates: Device[][] = [];
      const conn: PluginConnection = {
        resourceName,
        socket,
        options,
        updates,
        client,
        latest: () => updates.at(-1) ?? [],
        open: true,
        firstUpdateAt: null,
      };
      this.plugins.set(resourceName, conn);
      const stream = client.listAndWatch({});
      this.streams.add(stream);
      stream.on('data', (res: ListAndWatchResponse) => {
        conn.firstUpdateAt ??= performance.now();
        updates.push(res.devices);
        this.emit();
      });
      const end = () => {
        conn.open = false;
        this.streams.delete(stream);
        this.emit();
      };
      stream.on('error', end);
      stream.on('end', end);
      this.emit();
      return true;
    } catch (err) {
      this.errors.push(`dial ${socket} for ${resourceName}: ${String(err)}`);
      client.close();
      this.emit();
      return false;
    }
  }

  private async startPodResources(): Promise<void> {
    await mkdir(path.dirname(this.podResourcesSocket), { recursive: true });
    await rm(this.podResourcesSocket, { force: true });
    // Like the kubelet's device manager: one ContainerDevices per device, with its NUMA topology.
    const topologyOf = (resource: string, id: string) =>
      this.plugins
        .get(resource)
        ?.latest()
        .find((d) => d.ID === id)?.topology;
    const toPodResources = (p: AdmittedPod): PodResources => ({
      name: p.pod.name,
      namespace: p.pod.namespace,
      containers: p.containers.map((c) => ({
        name: c.name,
        devices: Object.entries(c.devices).flatMap(([resourceName, ids]) =>
          ids.map((id) => ({ resourceName, deviceIds: [id], topology: topologyOf(resourceName, id) })),
        ),
        cpuIds: [],
        memory: [],
        dynamicResources: [],
      })),
    });
    const impl: PodResourcesListerServer = {
      list: (_call, cb) => {
        cb(null, { podResources: this.pods.map(toPodResources) });
      },
      get: (call, cb) => {
        const p = this.pods.find(
          (x) => x.pod.name === call.request.podName && x.pod.namespace === call.request.podNamespace,
        );
        if (p === undefined) {
          cb({
            code: grpc.status.NOT_FOUND,
            details: `pod ${call.request.podNamespace}/${call.request.podName} not found`,
          });
          return;
        }
        cb(null, { podResources: toPodResources(p) });
      },
      getAllocatableResources: (_call, cb) => {
        const devices: ContainerDevices[] = [];
        for (const p of this.plugins.values()) {
          for (const d of p.latest()) {
            if (d.health !== 'Healthy') continue;
            devices.push({ resourceName: p.resourceName, deviceIds: [d.ID], topology: d.topology });
          }
        }
        cb(null, { devices, cpuIds: [], memory: [] });
      },
    };
    const server = new grpc.Server();
    server.addService(PodResourcesListerService, impl);
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${this.podResourcesSocket}`, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
    this.podResourcesServer = server;
  }
}

export async function startFakeKubelet(options: FakeKubeletOptions): Promise<FakeKubelet> {
  return new FakeKubelet(options).start();
}
