// Node readiness from the device plugin's side: its config against the node (pools that would be
// empty, devices two pools match, VFs left out only because of their driver) and the kubelet's
// sockets, on top of the hardware checks of sriov/doctor. Also the `netplumb_node_check{check,pf}`
// gauge (0 pass, 1 warn, 2 fail) so a dashboard shows which nodes are not ready for DPDK.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { fail, pass, statusValue, warn } from '../sriov/doctor/check.js';
import type { Check } from '../sriov/doctor/check.js';
import { runDoctor } from '../sriov/doctor/doctor.js';
import type { DoctorOptions, DoctorRun } from '../sriov/doctor/doctor.js';
import type { NodeModel, Pf, Vf } from '../sriov/model.js';
import { CONFIG_ERROR, ConfigError } from './config.js';
import type { DevicePluginConfig, PciPoolConfig } from './config.js';
import { loadConfig } from './plugin.js';
import { buildPools } from './pools.js';
import { kubeletPaths } from './registration.js';
import { matchesPciSelector } from './selectors.js';

export type ConfigOutcome =
  | { readonly ok: true; readonly file: string; readonly config: DevicePluginConfig }
  | { readonly ok: false; readonly file: string; readonly error: ConfigError };

/** Loads config.json with the device plugin's own loader; its errors become a failed check. */
export async function loadConfigOutcome(file: string, resourcePrefix: string): Promise<ConfigOutcome> {
  try {
    return { ok: true, file, config: await loadConfig(file, resourcePrefix) };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, file, error: err };
    throw err;
  }
}

const listed = (ps: readonly { path: string; message: string }[]) =>
  ps.map((p) => `${p.path}: ${p.message}`).join('; ');

export function configCheck(c: ConfigOutcome): Check {
  if (c.ok && c.config.poolErrors.length > 0)
    return fail(
      'dp-config',
      null,
      `${c.file}: pools not served: ${listed(c.config.poolErrors)}`,
      'fix the keys named above; the other pools are served',
    );
  if (c.ok && c.config.warnings.length > 0)
    return warn(
      'dp-config',
      null,
      `${c.file}: ${c.config.pools.length} pool(s); ignored, as SRIOV-DP ignores them: ${listed(c.config.warnings)}`,
      'remove or fix the keys named above (`netplumb device-plugin --check-config` refuses them)',
    );
  if (c.ok) return pass('dp-config', null, `${c.file}: ${c.config.pools.length} pool(s)`);
  if (c.error.code === CONFIG_ERROR.unreadable)
    return warn(
      'dp-config',
      null,
      `cannot read the device plugin config ${c.file}: pools not checked`,
      'pass --config with the config.json the device plugin uses',
    );
  return fail(
    'dp-config',
    null,
    `${c.file}: ${c.error.message}`,
    'fix the keys named above (or pass --config)',
  );
}

/** Pools that would advertise nothing on this node. */
export function poolsCheck(config: DevicePluginConfig, model: NodeModel): Check {
  const pools = buildPools(config.pools, model);
  const sizes = pools.map((p) => `${p.config.fullName} ${p.devices.length}`);
  const empty = pools.filter((p) => p.devices.length === 0).map((p) => p.config.fullName);
  if (pools.length === 0)
    return warn('dp-pools', null, 'the config has no resourceList entries', 'add a pool to resourceList');
  if (empty.length > 0) {
    return warn(
      'dp-pools',
      null,
      `pools matching no device on this node: ${empty.join(', ')} (devices per pool: ${sizes.join(', ')})`,
      'check their selectors against `netplumb inspect` (vendors, devices, drivers, pfNames ranges), or create the VFs',
    );
  }
  return pass('dp-pools', null, `devices per pool: ${sizes.join(', ')}`);
}

/** Devices that two or more pools select: only the first pool (config order) gets them. */
export function overlapCheck(config: DevicePluginConfig, model: NodeModel): Check {
  const claimedBy = new Map<string, string[]>();
  for (const pool of config.pools) {
    if (pool.deviceType === 'nic') continue;
    for (const d of buildPools([pool], model)[0]?.devices ?? []) {
      const list = claimedBy.get(d.id) ?? [];
      list.push(pool.fullName);
      claimedBy.set(d.id, list);
    }
  }
  const shared = [...claimedBy].filter(([, pools]) => pools.length > 1);
  if (shared.length === 0) return pass('dp-pool-overlap', null, 'no device is matched by two pools');
  const shown = shared.slice(0, 8).map(([id, pools]) => `${id} (${pools.join(', ')})`);
  const more = shared.length > 8 ? ` and ${shared.length - 8} more` : '';
  return warn(
    'dp-pool-overlap',
    null,
    `devices matched by two pools, given to the first only: ${shown.join(', ')}${more}`,
    'make the selectors disjoint (e.g. pfNames ranges such as ens785f0#0-3 and ens785f0#4-7)',
  );
}

function driverOnlyMiss(pool: PciPoolConfig, vf: Vf): string | null {
  for (const s of pool.selectors) {
    if (s.drivers.length === 0 || matchesPciSelector(s, vf)) continue;
    if (matchesPciSelector({ ...s, drivers: [] }, vf)) return s.drivers.join(' or ');
  }
  return null;
}

/** Per PF: VFs in no pool that some pool would take with another driver. */
export function vfDriversCheck(config: DevicePluginConfig, model: NodeModel, pf: Pf): Check {
  const pooled = new Set(buildPools(config.pools, model).flatMap((p) => p.devices.map((d) => d.id)));
  const misses: string[] = [];
  const binds = new Map<string, string[]>();
  for (const vf of pf.vfs) {
    if (pooled.has(vf.pciAddress)) continue;
    for (const pool of config.pools) {
      if (pool.deviceType === 'nic') continue;
      const want = driverOnlyMiss(pool, vf);
      if (want === null) continue;
      misses.push(
        `VF ${vf.index} ${vf.pciAddress} is bound to ${vf.driver ?? 'no driver'}, ${pool.fullName} selects ${want}`,
      );
      const first = want.split(' or ')[0] ?? want;
      binds.set(first, [...(binds.get(first) ?? []), vf.pciAddress]);
      break;
    }
  }
  if (misses.length === 0)
    return pass('pf-vf-drivers', pf.pciAddress, 'every VF a pool selects by driver is bound to that driver');
  const fix = [...binds].map(([driver, vfs]) => `netplumb vf bind --driver ${driver} ${vfs.join(' ')}`);
  return warn('pf-vf-drivers', pf.pciAddress, misses.join('; '), fix.join('; '));
}

async function isSocket(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isSocket(),
    () => false,
  );
}

/** The kubelet's device-plugin and PodResources sockets under `kubeletRoot`. */
export async function kubeletSocketsCheck(kubeletRoot: string): Promise<Check> {
  const want = [
    kubeletPaths(kubeletRoot).kubeletSocket,
    path.join(kubeletRoot, 'pod-resources', 'kubelet.sock'),
  ];
  const missing: string[] = [];
  for (const p of want) if (!(await isSocket(p))) missing.push(p);
  if (missing.length === 0)
    return pass('kubelet-sockets', null, `kubelet sockets present: ${want.join(', ')}`);
  return warn(
    'kubelet-sockets',
    null,
    `no kubelet socket at ${missing.join(', ')}`,
    'run on a node where the kubelet runs (mount /var/lib/kubelet into the pod), or pass --kubelet-root',
  );
}

export interface NodeCheckOptions extends DoctorOptions {
  readonly configFile: string;
  readonly resourcePrefix: string;
  readonly kubeletRoot: string;
}

/** Every check: the hardware (sriov/doctor), then the config against the node, then the kubelet. */
export async function runNodeChecks(o: NodeCheckOptions): Promise<DoctorRun> {
  const [run, config] = await Promise.all([runDoctor(o), loadConfigOutcome(o.configFile, o.resourcePrefix)]);
  const checks = [...run.checks, configCheck(config)];
  if (config.ok) {
    checks.push(poolsCheck(config.config, run.model), overlapCheck(config.config, run.model));
    for (const pf of run.pfs) checks.push(vfDriversCheck(config.config, run.model, pf));
  }
  checks.push(await kubeletSocketsCheck(o.kubeletRoot));
  return { ...run, checks };
}

export interface NodeCheckMetrics {
  /** Replaces every series with `checks` (a check that went away stops being reported). */
  update(checks: readonly Check[]): void;
}

/** Node readiness changes with boot options and admin actions, not by the second. */
export const NODE_CHECK_INTERVAL_MS = 60_000;

export interface NodeCheckRefresherDeps {
  readonly registry: Registry;
  readonly run: () => Promise<DoctorRun>;
  readonly log: Pick<Logger, 'warn'>;
  readonly intervalMs?: number;
}

/** Runs the checks now and every `intervalMs` into the gauge; a failed run keeps the last values. */
export function startNodeCheckMetrics(deps: NodeCheckRefresherDeps): { stop(): void } {
  const metrics = createNodeCheckMetrics(deps.registry);
  const refresh = (): void => {
    deps.run().then(
      (r) => {
        metrics.update(r.checks);
      },
      (err: unknown) => {
        deps.log.warn({ err }, 'node readiness checks failed; netplumb_node_check keeps its last values');
      },
    );
  };
  refresh();
  const timer = setInterval(refresh, deps.intervalMs ?? NODE_CHECK_INTERVAL_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
    },
  };
}

export function createNodeCheckMetrics(registry: Registry): NodeCheckMetrics {
  const gauge = new Gauge({
    name: 'netplumb_node_check',
    help: 'Node readiness for SR-IOV/DPDK per check (netplumb doctor): 0 pass, 1 warn, 2 fail; pf is the PF PCI address or empty',
    labelNames: ['check', 'pf'],
    registers: [registry],
  });
  return {
    update(checks) {
      gauge.reset();
      for (const c of checks) gauge.set({ check: c.id, pf: c.pf ?? '' }, statusValue(c.status));
    },
  };
}
