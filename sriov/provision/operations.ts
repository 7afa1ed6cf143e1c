// `netplumb vf` operations over the PciControl and PfVfSettings ports. Each returns the changes it
// made, so the command can report them and a re-run can show it is idempotent (no changes).
import type { PfVfSettings, VfChange } from '../link/vf-settings.js';
import { describeVfChange } from '../link/vf-settings.js';
import type { StateStore } from '../records/state.js';
import type { PciControl } from './pci-control.js';
import { pfOfVf, ProvisionError, readPf, resolvePf } from './pf-tree.js';

export interface Change {
  readonly pf: string;
  /** VF index, absent for PF-level changes. */
  readonly vf?: number;
  readonly vfPci?: string;
  readonly what: 'numVfs' | 'driver' | 'vlan' | 'trust' | 'spoofchk';
  readonly from: string;
  readonly to: string;
}

export interface ProvisionDeps {
  readonly sysfsRoot: string;
  readonly control: PciControl;
  /** PF-side VF settings; needed by `apply` for vlan/trust/spoofchk. */
  readonly settings: PfVfSettings;
  /** The SR-IOV CNI plugin's state: which VFs pods hold. */
  readonly cniState: StateStore;
  readonly netnsAlive: (nsPath: string) => Promise<boolean>;
  /** Called after each step of a long run (for a progress bar). */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

/** VFs held by a pod whose netns is still alive, by PCI address → netns. */
export async function vfsInUse(deps: ProvisionDeps): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const { pci, netns } of await deps.cniState.owned()) {
    if (await deps.netnsAlive(netns)) out.set(pci, netns);
  }
  return out;
}

function refuseInUse(inUse: Map<string, string>, vfs: readonly string[], action: string): void {
  const busy = vfs.filter((v) => inUse.has(v));
  if (busy.length > 0) {
    const list = busy.map((v) => `${v} (netns ${inUse.get(v) ?? '?'})`).join(', ');
    throw new ProvisionError(
      'VF_IN_USE',
      `${action}: VF ${list} in use by a pod; delete the pod first or pass --force`,
    );
  }
}

export async function setVfCount(
  deps: ProvisionDeps,
  pfName: string,
  n: number,
  force: boolean,
): Promise<Change[]> {
  if (!Number.isInteger(n) || n < 0) {
    throw new ProvisionError('BAD_COUNT', `VF count "${n}" must be a whole number ≥ 0`);
  }
  const pf = await resolvePf(deps.sysfsRoot, pfName);
  const state = await readPf(deps.sysfsRoot, pf);
  if (n > state.totalVfs) {
    throw new ProvisionError(
      'TOO_MANY_VFS',
      `PF ${pfName} supports at most ${state.totalVfs} VFs (sriov_totalvfs); asked for ${n}`,
    );
  }
  if (state.numVfs === n) return [];
  if (!force) {
    refuseInUse(
      await vfsInUse(deps),
      state.vfs.map((v) => v.pciAddress),
      `set VF count of ${pfName} to ${n}`,
    );
  }
  // The kernel refuses to change a non-zero count directly (EBUSY): go through 0.
  if (state.numVfs !== 0 && n !== 0) await deps.control.writeNumVfs(pf, 0);
  await deps.control.writeNumVfs(pf, n);
  return [{ pf, what: 'numVfs', from: String(state.numVfs), to: String(n) }];
}

export async function bindVfs(
  deps: ProvisionDeps,
  vfs: readonly string[],
  driver: string,
  force: boolean,
): Promise<Change[]> {
  if (driver === '' || driver.includes('/')) {
    throw new ProvisionError(
      'BAD_DRIVER',
      `--driver "${driver}" is not a driver name; write e.g. vfio-pci or iavf`,
    );
  }
  const targets: { vf: string; pf: string; index: number; driver: string | null }[] = [];
  for (const raw of vfs) {
    const vf = raw.toLowerCase();
    const pf = await pfOfVf(deps.sysfsRoot, vf);
    if (pf === null)
      throw new ProvisionError(
        'NOT_A_VF',
        `${raw} is not an SR-IOV VF (no physfn); run \`netplumb inspect\``,
      );
    const entry = (await readPf(deps.sysfsRoot, pf)).vfs.find((e) => e.pciAddress === vf);
    targets.push({ vf, pf, index: entry?.index ?? -1, driver: entry?.driver ?? null });
  }
  const todo = targets.filter((t) => t.driver !== driver);
  if (!force)
    refuseInUse(
      await vfsInUse(deps),
      todo.map((t) => t.vf),
      `bind to ${driver}`,
    );
  const changes: Change[] = [];
  let done = 0;
  for (const t of todo) {
    await deps.control.bindDriver(t.vf, driver);
    changes.push({
      pf: t.pf,
      vf: t.index,
      vfPci: t.vf,
      what: 'driver',
      from: t.driver ?? 'none',
      to: driver,
    });
    deps.onProgress?.(++done, todo.length);
  }
  return changes;
}

export function describeChange(c: Change): string {
  const where =
    c.vf === undefined ? c.pf : `${c.pf} vf ${c.vf}${c.vfPci === undefined ? '' : ` (${c.vfPci})`}`;
  return `${where}: ${c.what} ${c.from} → ${c.to}`;
}

/** Applies PF-side changes for one VF and returns them as Changes. */
export async function applySettings(
  deps: ProvisionDeps,
  pfNetdev: string,
  pf: string,
  vf: { index: number; pciAddress: string },
  changes: readonly VfChange[],
): Promise<Change[]> {
  const out: Change[] = [];
  const before = await deps.settings.read(pfNetdev, vf.index);
  for (const c of changes) {
    try {
      await deps.settings.set(pfNetdev, vf.index, c);
    } catch (error) {
      throw new ProvisionError(
        'SETTING_FAILED',
        `${describeVfChange(pfNetdev, vf.index, c)} failed: ${String(error)}`,
        {
          cause: error,
        },
      );
    }
    const base = { pf, vf: vf.index, vfPci: vf.pciAddress };
    switch (c.kind) {
      case 'vlan':
        out.push({
          ...base,
          what: 'vlan',
          from: `${before.vlan ?? '?'}/${before.qos ?? 0}`,
          to: `${c.vlan}/${c.qos}`,
        });
        break;
      case 'trust':
        out.push({ ...base, what: 'trust', from: String(before.trust), to: String(c.on) });
        break;
      case 'spoofchk':
        out.push({ ...base, what: 'spoofchk', from: String(before.spoofchk), to: String(c.on) });
        break;
      case 'mac':
      case 'rate':
      case 'state':
        break;
    }
  }
  return out;
}
