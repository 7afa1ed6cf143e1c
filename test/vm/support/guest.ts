// Helpers for the real-kernel suite: run host tools in the guest, read sysfs, name kernel objects.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const PCI_DEVICES = '/sys/bus/pci/devices';

/** Runs a program, returns its stdout; the error names the command and carries its stderr. */
export async function run(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { encoding: 'utf8' });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim()}`, { cause: err });
  }
}

/** `ip -json …` parsed. */
export async function ipJson(args: readonly string[]): Promise<unknown> {
  const out = await run('ip', ['-json', ...args]);
  return out.trim() === '' ? [] : (JSON.parse(out) as unknown);
}

/** A kernel-object name unique to this run: `<prefix><6 hex>` (prefix ≤ 9 chars keeps it ≤ 15). */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

export async function readSysfs(file: string): Promise<string> {
  return (await readFile(file, 'utf8')).trim();
}

/** Basename of a sysfs symlink (`driver`, `iommu_group`), or null when absent. */
export async function linkTarget(file: string): Promise<string | null> {
  try {
    return path.basename(await readlink(file));
  } catch {
    return null;
  }
}

/** The guest's SR-IOV capable PCI PF (the emulated NVMe controller). */
export async function findSriovPf(): Promise<string> {
  for (const addr of (await readdir(PCI_DEVICES)).sort()) {
    try {
      if (Number(await readSysfs(path.join(PCI_DEVICES, addr, 'sriov_totalvfs'))) > 0) return addr;
    } catch {
      // not a PF
    }
  }
  throw new Error('no PCI device with sriov_totalvfs > 0 in this guest: boot it with hack/vm/run.sh');
}

export async function linkNames(netns?: string): Promise<string[]> {
  const links = (await ipJson([...(netns === undefined ? [] : ['-n', netns]), 'link', 'show'])) as {
    ifname: string;
  }[];
  return links.map((l) => l.ifname);
}

export async function netnsNames(): Promise<string[]> {
  const list = (await ipJson(['netns', 'list'])) as { name: string }[];
  return list.map((n) => n.name);
}

/**
 * Writes an executable `dir/name` running one of the project's executables (`bin/<entry>.ts`) from
 * the bundle hack/vm-e2e made on the host: the same code, without transforming TypeScript in the
 * guest (a minute per process under TCG with tsx).
 */
export async function writeGuestExecutable(dir: string, name: string, entry: string): Promise<string> {
  const bundles = process.env.NETPLUMB_VM_BIN;
  if (bundles === undefined) throw new Error('NETPLUMB_VM_BIN is not set: run the suite with hack/vm-e2e');
  const bundle = path.join(bundles, `${entry}.mjs`);
  if (!existsSync(bundle))
    throw new Error(`${bundle} is missing: hack/vm-e2e could not bundle bin/${entry}.ts`);
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\nexec '${process.execPath}' '${bundle}' "$@"\n`);
  await chmod(file, 0o755);
  return file;
}
