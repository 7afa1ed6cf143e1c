// Builds the plugin's production ports from explicit settings, so the executable and the daemon
// (running the plugin in-process) wire it the same way. Reads nothing from the environment itself.
import { pino } from 'pino';
import type { DestinationStream } from 'pino';
import { createExecRunner } from '../exec.js';
import type { PluginRunner } from '../exec.js';
import { createIproute2LinkOps } from '../../sriov/link/iproute2.js';
import { netnsAlive } from '../../sriov/link/netns.js';
import { createIproute2VfSettings } from '../../sriov/link/vf-settings-iproute2.js';
import type { PfVfSettings } from '../../sriov/link/vf-settings.js';
import type { SriovDeps } from './deps.js';
import { createDelegateLoggers, DEFAULT_DELEGATE_LOG_DIR } from './log-file.js';
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
  /**
   * The only directory a config's `logFile` may write into (log-file.ts); default
   * /var/log/netplumb; null or '' = `logFile` from configs is ignored (with a warning).
   */
  readonly delegateLogDir?: string | null;
}

export function createSriovDeps(w: SriovWiring): SriovDeps {
  const logger = createDelegateLoggers({
    logDir: w.delegateLogDir === undefined ? DEFAULT_DELEGATE_LOG_DIR : w.delegateLogDir,
    fallback: w.logDestination ?? pino.destination({ fd: 2, sync: true }),
    base: { component: 'netplumb-sriov' },
  });
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
