// Opens a simulated node for `--simulated-node DIR` (see sriov/simulated-node-port.ts).
import path from 'node:path';
import { simulatedNodePaths } from '../sriov/simulated-node-port.js';
import type { SimulatedNodePorts } from '../sriov/simulated-node-port.js';
import { createSimulatedPciControl } from './pci-control.js';
import { createVfSettingsRecorder } from './vf-settings-recorder.js';

export function openSimulatedNode(dir: string): Promise<SimulatedNodePorts> {
  const abs = path.resolve(dir);
  const { sysfsRoot, linksFile } = simulatedNodePaths(abs);
  return Promise.resolve({
    dir: abs,
    sysfsRoot,
    linksFile,
    pciControl: createSimulatedPciControl(sysfsRoot),
    vfSettings: createVfSettingsRecorder({ dir: path.join(abs, 'pf-calls'), linksFile }),
  });
}
