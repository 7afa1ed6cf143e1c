// Registration with the kubelet: legacy (Register on device-plugins/kubelet.sock) or the plugin
// watcher (our socket in plugins_registry/, the kubelet calls GetInfo). Kubelet restarts are
// noticed from directory events, not by polling.
import { NetplumbError } from '../lib/errors.js';
import { existsSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RegistrationClient } from '../proto/gen/deviceplugin/v1beta1/api.js';
import type { RegisterRequest } from '../proto/gen/deviceplugin/v1beta1/api.js';
import type { RegistrationMode } from './pool-server.js';

export const REGISTRATION_ERROR = { failed: 'ERR_DP_REGISTER_FAILED' } as const;

export class RegistrationError extends NetplumbError {
  constructor(message: string, options?: ErrorOptions) {
    super(REGISTRATION_ERROR.failed, message, options);
    this.name = 'RegistrationError';
  }
}

export interface KubeletPaths {
  readonly root: string;
  readonly devicePluginDir: string;
  readonly kubeletSocket: string;
  readonly pluginsRegistryDir: string;
}

export function kubeletPaths(root: string): KubeletPaths {
  const devicePluginDir = path.join(root, 'device-plugins');
  return {
    root,
    devicePluginDir,
    kubeletSocket: path.join(devicePluginDir, 'kubelet.sock'),
    pluginsRegistryDir: path.join(root, 'plugins_registry'),
  };
}

/** `auto`: plugin watcher when `<root>/plugins_registry/` exists, else legacy (SRIOV-DP's rule). */
export function detectRegistrationMode(
  requested: RegistrationMode | 'auto',
  paths: KubeletPaths,
): RegistrationMode {
  if (requested !== 'auto') return requested;
  return existsSync(paths.pluginsRegistryDir) ? 'watcher' : 'legacy';
}

/** Identity of the kubelet socket file: changes when the kubelet recreates it. */
export async function socketIdentity(file: string): Promise<string | null> {
  try {
    const st = await lstat(file);
    return `${String(st.ino)}:${String(st.ctimeMs)}`;
  } catch {
    return null;
  }
}

/** A connection to the kubelet's Registration service, reused for every pool of one pass. */
export interface KubeletRegistrar {
  register(request: RegisterRequest, timeoutMs?: number): Promise<void>;
  close(): void;
}

export function connectKubelet(kubeletSocket: string): KubeletRegistrar {
  const client = new RegistrationClient(`unix:${kubeletSocket}`, grpc.credentials.createInsecure());
  return {
    register: (request, timeoutMs = 5_000) =>
      new Promise<void>((resolve, reject) => {
        client.register(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err) => {
          if (err) {
            reject(
              new RegistrationError(
                `Register ${request.resourceName} with ${kubeletSocket} failed: ${err.message}`,
                { cause: err },
              ),
            );
          } else resolve();
        });
      }),
    close: () => {
      client.close();
    },
  };
}

/**
 * Calls `onChange` (coalesced) whenever an entry of `dir` is created, removed or renamed, or, with
 * `names`, only when one of those entries is (a file event without a name counts as a match).
 * Returns a stop function. The directory must exist.
 */
export function watchDirectory(dir: string, onChange: () => void, names?: ReadonlySet<string>): () => void {
  let watcher: FSWatcher | null = watch(dir, { persistent: false }, (_event, filename) => {
    if (names !== undefined && filename !== null && !names.has(filename)) return;
    onChange();
  });
  watcher.on('error', () => {
    // The directory itself went away; the owner re-creates the watch on its next reconcile.
    watcher?.close();
    watcher = null;
  });
  return () => {
    watcher?.close();
    watcher = null;
  };
}

/**
 * The entries of the config file's directory whose events mean "the config may have changed":
 * the file itself (edited in place or replaced by rename) and `..data`, the symlink a Kubernetes
 * ConfigMap volume swaps atomically on update. Nothing else: a log file next to the config must
 * not trigger reloads.
 */
export function configWatchNames(configFile: string): ReadonlySet<string> {
  return new Set([path.basename(configFile), '..data']);
}
