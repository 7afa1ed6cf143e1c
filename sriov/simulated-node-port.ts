// The one explicit simulation option: `--simulated-node DIR` on the CLI, NETPLUMB_SIMULATED_NODE
// for the CNI executables (which get no argv). DIR is a node written by `hack/mknode` or the
// simulator's builder: `sys/` (the sysfs tree), `links.json` (the `ip -json -details link` dump
// standing in for netlink) and `pf-calls/` (the recorded PF VF-settings calls). Only composition
// roots open it (bin/demo/simulation.ts, the one way from bin/ into sim/); commands receive the
// ports. `--sysfs-root` is only ever a path: a tree at /host/sys is the real kernel's.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ExitCode, NetplumbError } from '../lib/errors.js';
import type { PfVfSettings } from './link/vf-settings.js';
import type { PciControl } from './provision/pci-control.js';

export const SIMULATED_NODE_ENV = 'NETPLUMB_SIMULATED_NODE';

export interface SimulatedNodePorts {
  readonly dir: string;
  /** `<dir>/sys`. */
  readonly sysfsRoot: string;
  /** `<dir>/links.json`: VF state instead of `ip -json -details link`. */
  readonly linksFile: string;
  /** sriov_numvfs and driver binding, with the tree changes the kernel would make. */
  readonly pciControl: PciControl;
  /** PF-side per-VF settings, recorded in `<dir>/pf-calls/<pf>.calls` and mirrored into links.json. */
  readonly vfSettings: PfVfSettings;
}

/** Opens a simulated node; rejects (exit 2) when DIR is not one. */
export type OpenSimulatedNode = (dir: string) => Promise<SimulatedNodePorts>;

/**
 * The files of a simulated node that readers need (no simulator loaded: plain paths); throws
 * (exit 2) when DIR is not a simulated node.
 */
export function simulatedNodePaths(dir: string): { sysfsRoot: string; linksFile: string } {
  const abs = path.resolve(dir);
  const paths = { sysfsRoot: path.join(abs, 'sys'), linksFile: path.join(abs, 'links.json') };
  for (const [file, what] of [
    [paths.sysfsRoot, 'sys/ folder'],
    [paths.linksFile, 'links.json file'],
  ] as const) {
    if (!existsSync(file)) {
      throw new NetplumbError(
        'SIMULATED_NODE_INVALID',
        `--simulated-node ${dir}: not a simulated node (it has no ${what}); write one with hack/mknode`,
        { exitCode: ExitCode.USAGE },
      );
    }
  }
  return paths;
}
