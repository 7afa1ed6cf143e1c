#!/usr/bin/env node
// Composition root of the SR-IOV CNI plugin executable (`"type": "sriov"`; install it as `sriov`).
// Environment read here only (a CNI plugin gets no argv): NETPLUMB_SYSFS_ROOT (the sysfs path,
// e.g. /host/sys; default /sys), NETPLUMB_SRIOV_STATE_DIR (default /var/lib/cni/sriov),
// NETPLUMB_SRIOV_LOG_DIR (where a config's logFile may go; default /var/log/netplumb), and
// NETPLUMB_SIMULATED_NODE (a node from hack/mknode: its sysfs tree and a PF-settings recorder).
import { runPluginMain } from '../cni/skel.js';
import { createSriovPlugin } from '../cni/sriov/plugin.js';
import { createSriovDeps } from '../cni/sriov/wiring.js';
import type { SriovWiring } from '../cni/sriov/wiring.js';
import { SIMULATED_NODE_ENV } from '../sriov/simulated-node-port.js';
import { resolveSysfsRoot } from '../sriov/sysfs.js';

const env = process.env;
const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);
const stateDir = nonEmpty(env.NETPLUMB_SRIOV_STATE_DIR);
// The only directory a config's logFile may write into (unset: /var/log/netplumb; "": none).
const delegateLogDir = env.NETPLUMB_SRIOV_LOG_DIR;
const simulatedDir = nonEmpty(env[SIMULATED_NODE_ENV]);

async function wiring(): Promise<SriovWiring> {
  const common = {
    ...(stateDir === undefined ? {} : { stateDir }),
    ...(delegateLogDir === undefined ? {} : { delegateLogDir }),
  };
  if (simulatedDir === undefined) return { ...common, sysfsRoot: resolveSysfsRoot(undefined, env) };
  const sim = await (await import('./demo/simulation.js')).openSimulatedNode(simulatedDir);
  return { ...common, sysfsRoot: sim.sysfsRoot, pf: sim.vfSettings };
}

await runPluginMain(createSriovPlugin(createSriovDeps(await wiring())), 'netplumb-sriov');
