// Device Information Spec files under --devinfo-dir and CDI specs under --cdi-dir: written
// atomically (temp + rename), removed for the whole pool on start and stop.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { PoolConfig } from './config.js';
import { cdiKind, deviceInfoFileName, deviceSpecs } from './allocate.js';
import type { HostDevices } from './allocate.js';
import type { PoolDevice } from './pools.js';
import { writeFileAtomic, writeFileAtomicSync } from '../lib/atomic-file.js';
import { BDF_PATTERN } from '../sriov/pci.js';

// Like SRIOV-DP (os.WriteFile with 0444) the mode is subject to the umask; no extra chmod. The
// directory is created lazily, on the first write into it.
function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  return writeFileAtomic(file, text, { mode, createDir: true });
}

/**
 * writeAtomically with blocking calls: Allocate writes a few hundred bytes per device, on tmpfs in
 * production (/var/run), where the threadpool round trips of the async calls cost more than the write.
 */
function writeAtomicallySync(file: string, text: string, mode: number): void {
  writeFileAtomicSync(file, text, { mode, createDir: true });
}

/** Replaces the device-info file of one device (SRIOV-DP deletes then writes, mode 0444). */
export function writeDeviceInfo(dir: string, config: PoolConfig, id: string, doc: string): Promise<string> {
  const file = path.join(dir, deviceInfoFileName(config, id));
  try {
    writeAtomicallySync(file, doc, 0o444);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
  return Promise.resolve(file);
}

/** Removes every device-info file this pool may have written. */
export async function removePoolDeviceInfo(dir: string, config: PoolConfig): Promise<void> {
  const base = `${config.fullName.replaceAll('/', '-')}-`;
  const entries = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    entries
      .filter((f) => {
        if (!f.startsWith(base) || !f.endsWith('-device.json')) return false;
        const id = f.slice(base.length, -'-device.json'.length);
        return config.deviceType === 'nic' ? /#\d+$/.test(id) : BDF_PATTERN.test(id);
      })
      .map((f) => rm(path.join(dir, f), { force: true })),
  );
}

/** CDI spec file of a pool: `sriov-dp-<prefix>_<name>.json` (SRIOV-DP's `sriov-dp-` prefix). */
export function cdiSpecPath(dir: string, config: PoolConfig): string {
  return path.join(dir, `sriov-dp-${config.fullName.replaceAll('/', '_')}.json`);
}

/** Writes the pool's CDI spec: one CDI device per device that needs device nodes. */
export async function writeCdiSpec(
  dir: string,
  config: PoolConfig,
  devices: readonly PoolDevice[],
  host: HostDevices,
): Promise<void> {
  const cdiDevices = devices.flatMap((d) => {
    const nodes = deviceSpecs(d, host);
    if (nodes.length === 0) return [];
    return [
      {
        name: d.id,
        containerEdits: {
          deviceNodes: nodes.map((n) => ({
            path: n.containerPath,
            hostPath: n.hostPath,
            permissions: n.permissions,
          })),
        },
      },
    ];
  });
  // No device needs a device node (kernel netdevs only): no spec, as CDI requires devices.
  if (cdiDevices.length === 0) {
    await removeCdiSpec(dir, config);
    return;
  }
  const spec = { cdiVersion: '0.6.0', kind: cdiKind(config), devices: cdiDevices };
  await writeAtomically(cdiSpecPath(dir, config), `${JSON.stringify(spec, null, 2)}\n`, 0o644);
}

export async function removeCdiSpec(dir: string, config: PoolConfig): Promise<void> {
  await rm(cdiSpecPath(dir, config), { force: true });
}
