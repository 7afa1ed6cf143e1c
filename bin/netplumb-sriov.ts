#!/usr/bin/env node
// Composition root of the SR-IOV CNI plugin executable (`"type": "sriov"`; install it as `sriov`).
// Environment read here only: NETPLUMB_SYSFS_ROOT (simulated node), NETPLUMB_SRIOV_STATE_DIR
// (default /var/lib/cni/sriov), NETPLUMB_PF_RECORDER_DIR (simulated node: record PF VF settings).
import { runPluginMain } from '../cni/skel.js';
import { createSriovPlugin } from '../cni/sriov/plugin.js';
import { createSriovDeps } from '../cni/sriov/wiring.js';
import { resolveSysfsRoot } from '../sriov/sysfs.js';

const env = process.env;
const stateDir = env.NETPLUMB_SRIOV_STATE_DIR;
const recorder = env.NETPLUMB_PF_RECORDER_DIR;

await runPluginMain(
  createSriovPlugin(
    createSriovDeps({
      sysfsRoot: resolveSysfsRoot(undefined, env),
      ...(stateDir === undefined || stateDir === '' ? {} : { stateDir }),
      ...(recorder === undefined || recorder === '' ? {} : { pfRecorderDir: recorder }),
    }),
  ),
);
