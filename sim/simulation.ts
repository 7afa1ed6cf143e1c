// Opens a simulated node for `--simulated-node DIR` (see sriov/simulated-node-port.ts).
import path from 'node:path';
import { ExitCode, NetplumbError } from '../lib/errors.js';
import { exists } from '../lib/fs.js';
import { simulatedNodePaths } from '../sriov/simulated-node-port.js';
import type { SimulatedNodePorts } from '../sriov/simulated-node-port.js';
import { createSimulatedPciControl } from './pci-control.js';
import { createVfSettingsRecorder } from './vf-settings-recorder.js';

export async function openSimulatedNode(dir: string): Promise<SimulatedNodePorts> {
  const abs = path.resolve(dir);
  const { sysfsRoot, linksFile } = simulatedNodePaths(abs);
  for (const [file, what] of [
    [sysfsRoot, 'a sys/ folder'],
    [linksFile, 'a links.json file'],
  ] as const) {
    if (!(await exists(file))) {
      throw new NetplumbError(
        'simulated-node-invalid',
        `--simulated-node ${dir}: not a simulated node (no ${what} in it); write one with hack/mknode`,
        { exitCode: ExitCode.USAGE },
      );
    }
  }
  return {
    dir: abs,
    sysfsRoot,
    linksFile,
    pciControl: createSimulatedPciControl(sysfsRoot),
    vfSettings: createVfSettingsRecorder({ dir: path.join(abs, 'pf-calls'), linksFile }),
  };
}
