// What the device plugin says about a loaded config and the node: config entries ignored as
// SRIOV-DP ignores them (logged with their JSON path, counted in netplumb_dp_config_warnings),
// pools left out (netplumb_dp_config_pool_errors), and netdevs no pool offers (the uplink).
import type { Logger } from 'pino';
import { formatConfigPath } from '../lib/config-path.js';
import type { DevicePluginConfig } from './config.js';
import type { DevicePluginMetrics } from './metrics.js';
import { ignoredPfNameEntries } from './selectors.js';

/** pfNames entries ignored because an earlier entry names the same PF, as JSON paths. */
function ignoredPfNamePaths(c: DevicePluginConfig): { resource: string; path: string }[] {
  const out: { resource: string; path: string }[] = [];
  c.pools.forEach((pool, i) => {
    if (pool.deviceType === 'nic') return;
    pool.selectors.forEach((sel, j) => {
      for (const k of ignoredPfNameEntries(sel.pfNames))
        out.push({
          resource: pool.fullName,
          path: formatConfigPath(['resourceList', i, 'selectors', j, 'pfNames', k]),
        });
    });
  });
  return out;
}

/** Logs and counts, at each load, what was ignored and which pools are left out. */
export function reportConfig(
  c: DevicePluginConfig,
  deps: { readonly log: Logger; readonly metrics: DevicePluginMetrics; readonly configFile: string },
): void {
  const { log, metrics, configFile } = deps;
  for (const w of c.warnings) {
    metrics.configWarnings.inc();
    log.warn(
      { path: w.path, problem: w.message, configFile },
      'config entry ignored, as SRIOV-DP ignores it; its pool is served without it',
    );
  }
  for (const e of c.poolErrors)
    log.error(
      { path: e.path, problem: e.message, configFile },
      'pool not served: SRIOV-DP would not serve it the same way; the other pools are served',
    );
  metrics.configPoolErrors.set(c.poolErrors.length);
  for (const { resource, path } of ignoredPfNamePaths(c)) {
    metrics.configWarnings.inc();
    log.warn(
      { resource, path },
      'ignored: an earlier pfNames entry names the same PF (SRIOV-DP reads only the first); merge the ranges into that entry',
    );
  }
}

/** Says once per change which netdevs no pool offers because they carry a default route. */
export function uplinkReporter(
  log: Logger,
): (excluded: readonly { netdev: string; pciAddress: string | null }[]) => void {
  let logged = '';
  return (excluded) => {
    const key = JSON.stringify(excluded);
    if (key === logged) return;
    logged = key;
    for (const e of excluded)
      log.info(
        { netdev: e.netdev, pciAddress: e.pciAddress },
        'excluded from every pool: carries a default route (the node uplink)',
      );
  };
}
