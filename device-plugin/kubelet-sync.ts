// Keeps the kubelet's view of our pool sockets current: recreates a socket that was removed, and in
// legacy mode Registers each pool again when the kubelet's socket is new (a kubelet restart) or
// ours was recreated; a failed Register is retried after a second.
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { DevicePluginMetrics } from './metrics.js';
import { DEVICE_PLUGIN_VERSION, PLUGIN_OPTIONS } from './pool-server.js';
import type { PoolServer, RegistrationMode } from './pool-server.js';
import { connectKubelet, socketIdentity } from './registration.js';
import type { KubeletPaths, KubeletRegistrar } from './registration.js';

export interface KubeletSyncDeps {
  readonly mode: RegistrationMode;
  readonly paths: KubeletPaths;
  /** The pool servers now, by resource name. */
  readonly servers: ReadonlyMap<string, PoolServer>;
  readonly metrics: DevicePluginMetrics;
  readonly log: Logger;
  readonly timers: Clock;
  /** Queues reconcile() on the plugin's work queue (for the retry after a failed Register). */
  readonly requeue: () => void;
  readonly stopped: () => boolean;
}

export interface KubeletSync {
  /** A pool server was started: it needs a Register. */
  added(resource: string): void;
  reconcile(): Promise<void>;
  /** Every pool is registered with the kubelet we last saw (always true for the plugin watcher). */
  registered(): boolean;
  /** Cancels a pending retry. */
  stop(): void;
}

async function registerOne(
  deps: KubeletSyncDeps,
  kubelet: KubeletRegistrar,
  server: PoolServer,
  ident: string,
): Promise<boolean> {
  const resource = server.config.fullName;
  const mode = deps.mode;
  try {
    await kubelet.register({
      version: DEVICE_PLUGIN_VERSION,
      endpoint: path.basename(server.socketPath),
      resourceName: resource,
      options: PLUGIN_OPTIONS,
    });
    deps.metrics.registrations.inc({ resource, mode, result: 'ok' });
    deps.log.info({ resource, kubelet: ident }, 'registered with the kubelet');
    return true;
  } catch (err) {
    deps.metrics.registrations.inc({ resource, mode, result: 'error' });
    deps.log.error({ err, resource }, 'registration failed; will retry');
    return false;
  }
}

export function createKubeletSync(deps: KubeletSyncDeps): KubeletSync {
  /** Kubelet socket identity at the last complete legacy registration. */
  let registeredWith: string | null = null;
  const needsRegister = new Set<string>();
  let retry: (() => void) | null = null;

  async function rebindMissing(): Promise<void> {
    for (const server of deps.servers.values()) {
      if (await server.socketPresent()) continue;
      await server.rebind();
      needsRegister.add(server.config.fullName);
    }
  }

  /** Registers what needs it; false when one failed. */
  async function registerPending(ident: string): Promise<boolean> {
    let ok = true;
    const kubelet = connectKubelet(deps.paths.kubeletSocket);
    try {
      for (const name of [...needsRegister]) {
        const server = deps.servers.get(name);
        if (server === undefined) needsRegister.delete(name);
        else if (await registerOne(deps, kubelet, server, ident)) needsRegister.delete(name);
        else ok = false;
      }
    } finally {
      kubelet.close();
    }
    return ok;
  }

  return {
    added: (resource) => needsRegister.add(resource),
    async reconcile() {
      if (deps.stopped()) return;
      await rebindMissing();
      if (deps.mode === 'watcher') {
        needsRegister.clear();
        return;
      }
      const ident = await socketIdentity(deps.paths.kubeletSocket);
      if (ident === null) {
        registeredWith = null;
        return;
      }
      if (ident !== registeredWith) for (const name of deps.servers.keys()) needsRegister.add(name);
      const ok = await registerPending(ident);
      registeredWith = ident;
      if (!ok && retry === null) {
        retry = deps.timers.setTimeout(() => {
          retry = null;
          deps.requeue();
        }, 1_000);
      }
    },
    registered: () => deps.mode === 'watcher' || (registeredWith !== null && needsRegister.size === 0),
    stop() {
      retry?.();
      retry = null;
    },
  };
}
