// DEL without a readable cache (truncated, garbage, empty, wrong schema): undo what can still be
// found instead of leaking every delegate's lease. From the API when it answers (the pod and its
// NADs give the same plan ADD ran); otherwise from the delegates' own state: host-local leases
// carrying this container ID (in the data dirs the damaged cache still names, and the default
// one) and the links left in the pod netns. What could not be undone is logged.
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { createCommandRunner } from '../../lib/command.js';
import type { CommandRunner } from '../../lib/command.js';
import { createChainRunner } from '../chain.js';
import type { DelCall } from '../skel.js';
import type { MetaConf } from './config.js';
import type { MetaPluginDeps } from './deps.js';
import type { CachedAttachment } from './cache.js';
import { attachmentsWithDevices, planCall, podArgs } from './plan.js';
import type { DeviceFor } from './plan.js';
import { getPod, resolveCluster, resolveExtras } from './resolve.js';
import { delAll, fetchDevices, joinDelErrors } from './run.js';

/** host-local's default data directory. */
export const HOST_LOCAL_DATA_DIR = '/var/lib/cni/networks';
const MAX_SCAN_FILES = 100_000;

/** Rebuilds ADD's attachments from the API and local confs; undefined when that is not possible. */
async function replan(
  deps: MetaPluginDeps,
  conf: MetaConf,
  call: DelCall,
  log: Logger,
): Promise<CachedAttachment[] | undefined> {
  const pa = podArgs(call.args);
  const kube = deps.kubeFor(conf);
  try {
    const read =
      kube !== undefined && pa.name !== ''
        ? await getPod(deps.clock, kube, pa, log).then(
            (pod) => ({ pod, apiDown: false }),
            (err: unknown) => {
              log.warn({ err }, 'API unavailable: re-planning only the networks of the local configs');
              return { pod: undefined, apiDown: true };
            },
          )
        : { pod: undefined, apiDown: false };
    const { pod, apiDown } = read;
    const cluster = await resolveCluster(conf, apiDown ? undefined : kube, pod);
    const extras = apiDown ? [] : await resolveExtras(conf, kube, pa.namespace, pod);
    const plans = planCall(call, pa, conf.runtimeConfig, { cluster, extras });
    const devices: DeviceFor[] = await fetchDevices(deps, conf, plans, pod, pa).catch(() =>
      plans.map(() => ({ deviceId: undefined, netdev: undefined })),
    );
    return attachmentsWithDevices(plans, devices, {
      devinfoDir: conf.devinfoDir,
      containerId: call.containerId,
    });
  } catch (err) {
    log.warn({ err }, 'cannot re-plan the attachments from the API and local configs');
    return undefined;
  }
}

/** host-local data dirs named in the damaged cache text (`"dataDir":"…"`), plus the default. */
export function dataDirsIn(text: string): string[] {
  const dirs = new Set<string>([HOST_LOCAL_DATA_DIR]);
  for (const m of text.matchAll(/"dataDir"\s*:\s*"((?:[^"\\]|\\.){1,4096})"/g)) {
    const raw = m[1];
    if (raw === undefined) continue;
    try {
      const dir = JSON.parse(`"${raw}"`) as string;
      if (path.isAbsolute(dir)) dirs.add(path.normalize(dir));
    } catch {
      // not a JSON string: skip
    }
  }
  return [...dirs];
}

/** Removes host-local lease files (`<dir>/<network>/<ip>`) whose first line is `containerId`. */
export async function releaseHostLocalLeases(
  dirs: readonly string[],
  containerId: string,
): Promise<string[]> {
  const removed: string[] = [];
  let scanned = 0;
  for (const dir of dirs) {
    for (const net of await readdir(dir).catch(() => [] as string[])) {
      const netDir = path.join(dir, net);
      for (const f of await readdir(netDir).catch(() => [] as string[])) {
        if (++scanned > MAX_SCAN_FILES) return removed;
        if (f.startsWith('.') || f.startsWith('last_reserved_ip') || f === 'lock') continue;
        const file = path.join(netDir, f);
        const text = await readFile(file, 'utf8').catch(() => '');
        if (text.split(/\r?\n/)[0]?.trim() !== containerId) continue;
        await rm(file, { force: true });
        removed.push(`${net}/${f}`);
      }
    }
  }
  return removed;
}

/** Deletes the links left in the pod netns (not lo); physical netdevs refuse and are reported. */
export async function removePodLinks(
  netns: string,
  run: CommandRunner = createCommandRunner(),
): Promise<{ removed: string[]; kept: string[] }> {
  const removed: string[] = [];
  const kept: string[] = [];
  if (netns === '') return { removed, kept };
  const ip = (...args: string[]) => run(['nsenter', `--net=${netns}`, 'ip', ...args]);
  const listed = await ip('-j', 'link', 'show').catch(() => undefined);
  if (listed === undefined) return { removed, kept };
  for (const l of JSON.parse(listed.stdout) as { ifname?: string }[]) {
    if (l.ifname === undefined || l.ifname === 'lo') continue;
    const ok = await ip('link', 'del', l.ifname).then(
      () => true,
      () => false,
    );
    (ok ? removed : kept).push(l.ifname);
  }
  return { removed, kept };
}

/** DEL of a container whose cache was unreadable (`text`: what the file held). Never throws. */
export async function delWithoutCache(
  deps: MetaPluginDeps,
  conf: MetaConf,
  call: DelCall,
  text: string,
  log: Logger,
): Promise<void> {
  const atts = await replan(deps, conf, call, log);
  const unresolved: string[] = [];
  if (atts !== undefined) {
    const chain = createChainRunner(deps.runnerFor(conf));
    const errors = await delAll(chain, atts, call, log);
    unresolved.push(...errors.map((e) => e.message));
  }
  const leases = await releaseHostLocalLeases(dataDirsIn(text), call.containerId);
  const links = await removePodLinks(call.netns ?? '');
  unresolved.push(...links.kept.map((l) => `link ${l} left in ${call.netns ?? ''}`));
  if (atts === undefined)
    unresolved.push(
      'delegates other than host-local were not asked to DEL (no plan: API and local configs unavailable)',
    );
  log.error(
    {
      replanned: atts?.map((a) => `${a.name}:${a.ifname}`) ?? null,
      leasesReleased: leases,
      linksRemoved: links.removed,
      notUndone: unresolved,
    },
    'DEL cache unreadable: undid what could be found',
  );
}

/**
 * DEL of a container with no DEL cache at all. The runtime may have attached it through the cluster
 * network's own config, before netplumb's existed (a pod started while the CNI daemon came up), so
 * the cluster network is DELed from the config, as Multus does; what other networks a pod had is
 * unknown without a cache. host-local and the reference plugins DEL idempotently (an unknown
 * container is a no-op), so a repeated DEL is harmless.
 */
export async function delClusterWithoutCache(
  deps: MetaPluginDeps,
  conf: MetaConf,
  call: DelCall,
  log: Logger,
): Promise<void> {
  let atts: CachedAttachment[];
  try {
    const cluster = await resolveCluster(conf, deps.kubeFor(conf), undefined);
    const plans = planCall(call, podArgs(call.args), conf.runtimeConfig, { cluster, extras: [] });
    atts = attachmentsWithDevices(plans, [], { devinfoDir: conf.devinfoDir, containerId: call.containerId });
  } catch (err) {
    log.warn({ err }, 'no DEL cache and the cluster network cannot be resolved: nothing undone');
    return;
  }
  const errors = await delAll(createChainRunner(deps.runnerFor(conf)), atts, call, log);
  log.info(
    { delegates: atts.map((a) => `${a.name}:${a.ifname}`), failed: errors.length },
    'no DEL cache: DEL of the cluster network from the config',
  );
  const failed = joinDelErrors(errors);
  if (failed !== undefined) throw failed;
}
