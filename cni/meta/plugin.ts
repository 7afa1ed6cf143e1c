// The meta-plugin (`"type": "netplumb"`, Multus-compatible): the whole ADD/DEL/CHECK/STATUS/GC path
// as one function of a CniRequest and its ports. The executable (bin/netplumb-cni.ts) and the
// daemon both run exactly this; only the ports differ. Planning (resolve.ts → plan.ts) is cut from
// the effects (run.ts), as Multus cuts config generation from its watcher.
import type { Logger } from 'pino';
import { createChainRunner } from '../chain.js';
import { CniError, CniErrorCode } from '../errors.js';
import type { CniResult } from '../result.js';
import { createPlugin } from '../skel.js';
import type { AddCall, CallBase, CheckCall, CniPluginFn, DelCall, GcCall } from '../skel.js';
import { SPEC_VERSIONS } from '../version.js';
import { quarantineCache, readCache, removeCache, writeCache } from './cache.js';
import type { MetaCache } from './cache.js';
import { parseMetaConf } from './config.js';
import type { MetaConf } from './config.js';
import { createIproute2PodRoutes } from './default-route.js';
import type { MetaPluginDeps } from './deps.js';
import { KubeErrorCode, isKubeError } from './kube.js';
import type { KubeClient, PodInfo } from './kube.js';
import { attachmentsWithDevices, delegateArgs, planCall, podArgs } from './plan.js';
import { checkPodNetns, createIproute2PodNetns, prefetchLinkNames } from './pod-netns.js';
import { delClusterWithoutCache, delWithoutCache } from './recover.js';
import { getPod, resolveCluster, resolveExtras, waitReady } from './resolve.js';
import {
  addAll,
  addedEvents,
  applyDefaultRoutes,
  decodeResults,
  delAll,
  fetchDevices,
  joinDelErrors,
  listOf,
  publishStatus,
  runtimeOf,
} from './run.js';
import type { AddRun } from './run.js';

export type { MetaPluginDeps } from './deps.js';

export const META_SUPPORTED_VERSIONS: readonly string[] = SPEC_VERSIONS;

function callLog(deps: MetaPluginDeps, call: CallBase & { containerId: string; ifname: string }): Logger {
  return deps.logger.child({ containerId: call.containerId, ifname: call.ifname });
}

/**
 * A repeated ADD for a container whose earlier ADD completed is refused before any side effect (it
 * must not touch that attachment); an earlier ADD that never completed (crash, incomplete rollback)
 * is undone first from its cache. True when something was undone (the pod netns may have changed).
 */
async function settleEarlierAdd(
  deps: MetaPluginDeps,
  conf: MetaConf,
  call: AddCall,
  log: Logger,
): Promise<boolean> {
  const read = await readCache(conf.cniDir, call.containerId, call.ifname);
  if (read.state === 'missing') return false;
  if (read.state === 'corrupt') {
    await quarantineCache(conf.cniDir, call.containerId);
    await delWithoutCache(deps, conf, call, read.text, log);
    return true;
  }
  const { cache } = read;
  const complete = read.origin === 'multus' || cache.attachments.every((a) => a.result !== undefined);
  if (complete) {
    const ifnames = cache.attachments.map((a) => a.ifname).join(', ');
    throw new CniError(
      CniErrorCode.Internal,
      `container ${call.containerId} is already attached (${ifnames}) by an earlier ADD: DEL it before adding it again`,
    );
  }
  log.warn('an earlier ADD of this container never completed: undoing it first');
  const chain = createChainRunner(deps.runnerFor(conf));
  const errors = await delAll(chain, cache.attachments, { ...call, netns: cache.netns || call.netns }, log);
  if (errors.length > 0) {
    throw new CniError(
      CniErrorCode.TryAgainLater,
      `an earlier ADD of container ${call.containerId} left attachments that cannot be removed yet: ${errors.map((e) => e.message).join(' / ')}`,
    );
  }
  await removeCache(conf.cniDir, call.containerId);
  return true;
}

/** Multus's `NoNetworkFound` Warning event when a NAD the pod names does not exist (failures only logged). */
async function warnNoNetwork(kube: KubeClient, pod: PodInfo, err: unknown, log: Logger): Promise<void> {
  if (!(err instanceof CniError) || !isKubeError(err.cause, KubeErrorCode.NotFound)) return;
  await kube
    .recordEvent?.(pod, { type: 'Warning', reason: 'NoNetworkFound', message: err.message })
    .catch((e: unknown) => {
      log.warn({ err: e }, 'cannot record the NoNetworkFound event');
    });
}

async function add(deps: MetaPluginDeps, call: AddCall): Promise<CniResult> {
  const conf = parseMetaConf(call.config);
  const log = callLog(deps, call);
  if (conf.unknownKeys.length > 0)
    log.warn({ keys: conf.unknownKeys }, 'unknown config keys (kept, not used)');
  await waitReady(deps.clock, conf);
  const pa = podArgs(call.args);
  // The pod's interfaces are listed while the API is read (a process start: ~40 ms off the path).
  const podNetns = deps.podNetns ?? createIproute2PodNetns();
  const listing = prefetchLinkNames(podNetns, call.netns);
  const kube = deps.kubeFor(conf);
  const pod = kube !== undefined && pa.name !== '' ? await getPod(deps.clock, kube, pa, log) : undefined;
  const cluster = await resolveCluster(conf, kube, pod);
  const extras = await resolveExtras(conf, kube, pa.namespace, pod).catch(async (err: unknown) => {
    if (kube !== undefined && pod !== undefined) await warnNoNetwork(kube, pod, err, log);
    throw err;
  });
  const plans = planCall(call, pa, conf.runtimeConfig, { cluster, extras });
  const undone = await settleEarlierAdd(deps, conf, call, log);
  await checkPodNetns(undone ? podNetns : listing, call.netns, plans);
  const devices = await fetchDevices(deps, conf, plans, pod, pa);
  const attachments = attachmentsWithDevices(plans, devices, {
    devinfoDir: conf.devinfoDir,
    containerId: call.containerId,
  });
  const cache: MetaCache = {
    kind: 'netplumbCacheV1',
    containerId: call.containerId,
    netns: call.netns,
    podNamespace: pa.namespace,
    podName: pa.name,
    podUid: pod?.uid ?? pa.uid,
    attachments,
  };
  await writeCache(conf.cniDir, cache);
  const run: AddRun = { conf, call, chain: createChainRunner(deps.runnerFor(conf)), log, done: [], cache };
  const events =
    kube !== undefined && pod !== undefined ? addedEvents(kube, pod, log, deps.eventTiming) : undefined;
  try {
    await addAll(run, pa, pod?.uid ?? pa.uid, events);
    const results = await applyDefaultRoutes(
      run,
      deps.routes ?? createIproute2PodRoutes(),
      plans,
      decodeResults(run),
    );
    if (kube !== undefined && pod !== undefined) await publishStatus(run, deps, kube, pod, results);
    events?.succeeded();
    return masterResult(run, results);
  } finally {
    // Answered before the call returns (a thin call exits right after it).
    await events?.settled();
  }
}

/** The cluster network's result: the one the runtime gets. */
function masterResult(run: AddRun, results: readonly CniResult[]): CniResult {
  const master =
    results[
      Math.max(
        0,
        run.done.findIndex((a) => a.isDefault),
      )
    ];
  if (master === undefined) throw new CniError(CniErrorCode.Internal, 'no result from the cluster network');
  return master;
}

/** The cache for DEL/CHECK; an unreadable one is quarantined (kept as `.corrupt`) and its text returned. */
async function loadCache(
  conf: MetaConf,
  call: { containerId: string; ifname: string },
  log: Logger,
): Promise<{ cache?: MetaCache; corruptText?: string }> {
  const read = await readCache(conf.cniDir, call.containerId, call.ifname);
  if (read.state === 'ok') {
    if (read.origin === 'multus')
      log.info('DEL from a Multus cache (pod attached before netplumb took over)');
    return { cache: read.cache };
  }
  if (read.state === 'corrupt') {
    const moved = await quarantineCache(conf.cniDir, call.containerId);
    log.error(
      { problem: read.problem, movedTo: moved },
      "DEL cache unreadable: recovering from the API and the delegates' state",
    );
    return { corruptText: read.text };
  }
  return {};
}

async function del(deps: MetaPluginDeps, call: DelCall): Promise<void> {
  const conf = parseMetaConf(call.config);
  const log = callLog(deps, call);
  const { cache, corruptText } = await loadCache(conf, call, log);
  if (corruptText !== undefined) {
    await delWithoutCache(deps, conf, call, corruptText, log);
    return;
  }
  if (cache === undefined) {
    await delClusterWithoutCache(deps, conf, call, log);
    return;
  }
  const chain = createChainRunner(deps.runnerFor(conf));
  const args = delegateArgs(podArgs(call.args), call.args);
  const atts = cache.attachments.map((a) => (a.cniArgs.length > 0 ? a : { ...a, cniArgs: args }));
  const errors = await delAll(chain, atts, call, log);
  if (errors.length === 0 || !conf.retryDeleteOnError) await removeCache(conf.cniDir, call.containerId);
  const failed = joinDelErrors(errors);
  if (failed !== undefined) throw failed;
}

async function check(deps: MetaPluginDeps, call: CheckCall): Promise<void> {
  const conf = parseMetaConf(call.config);
  const { cache } = await loadCache(conf, call, callLog(deps, call));
  if (cache === undefined) {
    throw new CniError(
      CniErrorCode.UnknownContainer,
      `no attachments recorded for container ${call.containerId}`,
    );
  }
  const chain = createChainRunner(deps.runnerFor(conf));
  for (const att of cache.attachments) {
    if (att.result === undefined) {
      throw new CniError(CniErrorCode.Internal, `network "${att.name}" (${att.ifname}) never finished ADD`);
    }
    await chain.check(listOf(att), runtimeOf(att, call), att.result).catch((err: unknown) => {
      throw CniError.from(err, `CHECK of network "${att.name}" (${att.ifname})`);
    });
  }
}

async function clusterOnly(deps: MetaPluginDeps, call: CallBase) {
  const conf = parseMetaConf(call.config);
  const cluster = await resolveCluster(conf, deps.kubeFor(conf), undefined);
  return { chain: createChainRunner(deps.runnerFor(conf)), list: cluster.list };
}

/** Calls for one container run one at a time (a repeated ADD or a DEL racing an ADD sees its cache). */
function perContainer(): <T>(containerId: string, fn: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<unknown>>();
  return async (containerId, fn) => {
    const before = tails.get(containerId) ?? Promise.resolve();
    const mine = before.then(fn, fn);
    const tail = mine.catch(() => undefined);
    tails.set(containerId, tail);
    try {
      return await mine;
    } finally {
      if (tails.get(containerId) === tail) tails.delete(containerId);
    }
  };
}

export function createMetaPlugin(deps: MetaPluginDeps): CniPluginFn {
  const serial = perContainer();
  return createPlugin({
    supportedVersions: META_SUPPORTED_VERSIONS,
    add: (call) => serial(call.containerId, () => add(deps, call)),
    del: (call) => serial(call.containerId, () => del(deps, call)),
    check: (call) => serial(call.containerId, () => check(deps, call)),
    async status(call) {
      const { chain, list } = await clusterOnly(deps, call);
      await chain.status(list, call.path);
    },
    async gc(call: GcCall) {
      const { chain, list } = await clusterOnly(deps, call);
      await chain.gc(list, call.path, call.validAttachments);
    },
  });
}
