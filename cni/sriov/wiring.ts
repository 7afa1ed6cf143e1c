// Builds the plugin's production ports from explicit settings, so the executable and the daemon
// (running the plugin in-process) wire it the same way. Reads nothing from the environment itself.
import { createWriteStream, existsSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { createExecRunner } from '../exec.js';
import type { PluginRunner } from '../exec.js';
import { createIproute2LinkOps } from '../../sriov/link/iproute2.js';
import { netnsAlive } from '../../sriov/link/netns.js';
import { createIproute2VfSettings } from '../../sriov/link/vf-settings-iproute2.js';
import { createVfSettingsRecorder } from '../../sim/vf-settings-recorder.js';
import type { SriovDeps, SriovLogOptions } from './deps.js';
import { createIpam } from './ipam.js';
import { createSysfsLocateVf } from './locate.js';
import { systemClock } from '../../lib/clock.js';
import { createStateStore, DEFAULT_STATE_DIR } from '../../sriov/records/state.js';

export interface SriovWiring {
  readonly sysfsRoot: string;
  /** Default /var/lib/cni/sriov. */
  readonly stateDir?: string;
  /**
   * Simulated nodes only: record PF VF-settings calls in this directory instead of running
   * `ip link set <pf> vf …` (the PF of a simulated node does not exist in the kernel).
   */
  readonly pfRecorderDir?: string;
  /** Runs IPAM plugins; default: exec from CNI_PATH. */
  readonly ipamRunner?: PluginRunner;
  /** Where logs go when the config names no logFile; default stderr. Never stdout. */
  readonly logDestination?: DestinationStream;
}

const LEVELS: Readonly<Record<string, string>> = {
  panic: 'fatal',
  error: 'error',
  warning: 'warn',
  info: 'info',
  debug: 'debug',
};

/** A simulated node keeps `links.json` next to its `sys/`: the recorder mirrors VF settings there. */
export function simulatedLinksFile(sysfsRoot: string): { linksFile?: string } {
  const file = path.join(path.dirname(sysfsRoot), 'links.json');
  return existsSync(file) ? { linksFile: file } : {};
}

export function createSriovDeps(w: SriovWiring): SriovDeps {
  const loggers = new Map<string, Logger>();
  const logger = (o: SriovLogOptions): Logger => {
    const key = `${o.logLevel}\0${o.logFile ?? ''}`;
    let log = loggers.get(key);
    if (log === undefined) {
      const level = LEVELS[o.logLevel] ?? 'info';
      const dest =
        o.logFile !== null
          ? createWriteStream(o.logFile, { flags: 'a' })
          : (w.logDestination ?? pino.destination({ fd: 2, sync: true }));
      log = pino({ level, base: { component: 'netplumb-sriov' } }, dest);
      loggers.set(key, log);
    }
    return log;
  };
  return {
    links: createIproute2LinkOps(),
    pf:
      w.pfRecorderDir === undefined
        ? createIproute2VfSettings()
        : createVfSettingsRecorder({ dir: w.pfRecorderDir, ...simulatedLinksFile(w.sysfsRoot) }),
    state: createStateStore(w.stateDir ?? DEFAULT_STATE_DIR),
    locateVf: createSysfsLocateVf(w.sysfsRoot),
    ipam: createIpam(w.ipamRunner ?? createExecRunner({ binDirs: [] })),
    clock: systemClock,
    logger,
    netnsAlive,
  };
}
