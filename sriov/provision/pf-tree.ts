// Reading what provisioning needs about a PF and its VFs straight from a sysfs tree (the real
// /sys or a simulated node): count files, virtfnN links, drivers, netdevs.
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, NetplumbError } from '../../lib/errors.js';
import { BDF_PATTERN } from '../pci.js';

/** Codes that mean the user's input is wrong (exit 2); the others are run-time failures (exit 1). */
const USAGE_CODES: ReadonlySet<string> = new Set(['USAGE', 'BAD_COUNT', 'BAD_POLICY']);

export class ProvisionError extends NetplumbError {
  override readonly name = 'ProvisionError';
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(code, message, {
      cause: options?.cause,
      exitCode: USAGE_CODES.has(code) ? ExitCode.USAGE : ExitCode.FAILURE,
    });
  }
}

export interface VfEntry {
  readonly index: number;
  readonly pciAddress: string;
  readonly driver: string | null;
  readonly netdev: string | null;
}

export interface PfState {
  readonly pciAddress: string;
  readonly netdev: string | null;
  readonly totalVfs: number;
  readonly numVfs: number;
  /** In index order. */
  readonly vfs: readonly VfEntry[];
}

export function deviceDir(sysfsRoot: string, pci: string): string {
  return path.join(sysfsRoot, 'bus', 'pci', 'devices', pci);
}

async function readInt(file: string): Promise<number | null> {
  try {
    const n = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}

export async function driverOf(sysfsRoot: string, pci: string): Promise<string | null> {
  try {
    return path.basename(await readlink(path.join(deviceDir(sysfsRoot, pci), 'driver')));
  } catch {
    return null;
  }
}

async function netdevOf(sysfsRoot: string, pci: string): Promise<string | null> {
  try {
    return (await readdir(path.join(deviceDir(sysfsRoot, pci), 'net'))).sort()[0] ?? null;
  } catch {
    return null;
  }
}

/** Resolves a PF given as PCI address or netdev name; throws ProvisionError naming the fix. */
export async function resolvePf(sysfsRoot: string, pf: string): Promise<string> {
  let pci = pf.toLowerCase();
  if (!BDF_PATTERN.test(pci)) {
    try {
      pci = path.basename(await readlink(path.join(sysfsRoot, 'class', 'net', pf, 'device')));
    } catch (error) {
      throw new ProvisionError(
        'PF_NOT_FOUND',
        `PF "${pf}" is neither a PCI address nor a netdev under ${path.join(sysfsRoot, 'class', 'net')}; run \`netplumb inspect\` to list PFs`,
        { cause: error },
      );
    }
  }
  if ((await readInt(path.join(deviceDir(sysfsRoot, pci), 'sriov_totalvfs'))) === null) {
    throw new ProvisionError(
      'NOT_A_PF',
      `${pci} is not an SR-IOV PF (no sriov_totalvfs); run \`netplumb inspect --all\``,
    );
  }
  return pci;
}

export async function readPf(sysfsRoot: string, pci: string): Promise<PfState> {
  const dir = deviceDir(sysfsRoot, pci);
  const totalVfs = await readInt(path.join(dir, 'sriov_totalvfs'));
  if (totalVfs === null)
    throw new ProvisionError('NOT_A_PF', `${pci} is not an SR-IOV PF (no sriov_totalvfs)`);
  const numVfs = (await readInt(path.join(dir, 'sriov_numvfs'))) ?? 0;
  const vfs: VfEntry[] = [];
  for (const entry of await readdir(dir)) {
    const m = /^virtfn(\d+)$/.exec(entry);
    if (m === null) continue;
    const vfPci = path.basename(await readlink(path.join(dir, entry)));
    vfs.push({
      index: Number(m[1]),
      pciAddress: vfPci,
      driver: await driverOf(sysfsRoot, vfPci),
      netdev: await netdevOf(sysfsRoot, vfPci),
    });
  }
  vfs.sort((a, b) => a.index - b.index);
  return { pciAddress: pci, netdev: await netdevOf(sysfsRoot, pci), totalVfs, numVfs, vfs };
}

/** The PF of a VF (its physfn link), or null when `pci` is not a VF. */
export async function pfOfVf(sysfsRoot: string, pci: string): Promise<string | null> {
  try {
    return path.basename(await readlink(path.join(deviceDir(sysfsRoot, pci), 'physfn')));
  } catch {
    return null;
  }
}
