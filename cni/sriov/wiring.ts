// Builds the plugin's production ports from explicit settings, so the executable and the daemon
// (running the plugin in-process) wire it the same way. Reads nothing from the environment itself.
import { createWriteStream } from 'node:fs';
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { createExecRunner } from '../exec.js';
import type { PluginRunner } from '../exec.js';
import { createIproute2LinkOps } from '../../sriov/link/iproute2.js';
import { netnsAlive } from '../../sriov/link/netns.js';
import { createIproute2VfSettings } from '../../sriov/link/vf-settings-iproute2.js';
import type { PfVfSettings } from '../../sriov/link/vf-settings.js';
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
   * PF-side VF settings; default iproute2 (`ip link set <pf> vf …`). A composition root passes a
   * simulated node's recorder here (`--simulated-node`).
   */
  readonly pf?: PfVfSettings;
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
    pf: w.pf ?? createIproute2VfSettings(),
    state: createStateStore(w.stateDir ?? DEFAULT_STATE_DIR),
    locateVf: createSysfsLocateVf(w.sysfsRoot),
    ipam: createIpam(w.ipamRunner ?? createExecRunner({ binDirs: [] })),
    clock: systemClock,
    logger,
    netnsAlive,
  };
}
