// Device Information Spec 1.1.0 files: the device plugin's `<devinfoDir>/dp/<resource>-<id>-device.json`
// copied to a per-attachment `<devinfoDir>/cni/<network>-<containerID>_<ifname>` before ADD (its path
// goes to the delegates as capability `CNIDeviceInfoFile`), read back for network-status, removed on DEL.
import { tempPathFor } from '../../lib/atomic-file.js';
import { copyFile, chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { isJsonObject } from '../../lib/json.js';
import type { JsonObject } from '../../lib/json.js';

const slashToDash = (s: string) => s.replaceAll('/', '-');

export function dpDeviceInfoPath(devinfoDir: string, resourceName: string, deviceId: string): string {
  return path.join(devinfoDir, 'dp', `${slashToDash(resourceName)}-${slashToDash(deviceId)}-device.json`);
}

export function cniDeviceInfoPath(
  devinfoDir: string,
  network: string,
  containerId: string,
  ifname: string,
): string {
  return path.join(devinfoDir, 'cni', slashToDash(`${network}-${containerId}_${ifname}`));
}

/** Copies the DP file to `to` (0444, atomically). Returns false when the DP file does not exist. */
export async function copyDeviceInfo(from: string, to: string): Promise<boolean> {
  const tmp = tempPathFor(to);
  try {
    await mkdir(path.dirname(to), { recursive: true });
    await copyFile(from, tmp);
    await chmod(tmp, 0o444);
    await rename(tmp, to);
    return true;
  } catch (err) {
    await rm(tmp, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** The file's JSON object, or undefined when absent or not a JSON object. */
export async function readDeviceInfo(file: string): Promise<JsonObject | undefined> {
  try {
    const v: unknown = JSON.parse(await readFile(file, 'utf8'));
    return isJsonObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export async function removeDeviceInfo(file: string): Promise<void> {
  await rm(file, { force: true });
}
