// The effects half of the meta-plugin: fetch the pod's devices, run the delegates in order with the
// DEL cache written before the first one and after each, roll back on failure, move default
// routes, write network-status and post events. What to run comes from plan.ts.
import type { Logger } from 'pino';
import type { ChainRunner, RuntimeConf } from '../chain.js';
import { CniError, CniErrorCode } from '../errors.js';
import { parseNetworkConfig, pluginType } from '../network-config.js';
import { EMPTY_RESULT, decodeResult, ipFamily } from '../result.js';
import type { CniResult } from '../result.js';
import type { AddCall } from '../skel.js';
import { createCacheWriter, removeCache } from './cache.js';
import type { CacheWriter, CachedAttachment, MetaCache } from './cache.js';
import type { MetaConf } from './config.js';
import { moveDefaultRoute } from './default-route.js';
import type { PodRoutes } from './default-route.js';
import type { EventTiming, MetaPluginDeps } from './deps.js';
import { copyDeviceInfo, dpDeviceInfoPath, readDeviceInfo, removeDeviceInfo } from './devinfo.js';
import { assignDevices, deviceNetdev, deviceQueues, fetchPodDevices } from './devices.js';
import { KubeErrorCode, isKubeError } from './kube.js';
import type { KubeClient, PodEvent, PodInfo } from './kube.js';
import { formatNetworkStatus, networkStatuses, writeNetworkStatus } from './network-status.js';
import type { AttachmentPlan, DeviceFor, PodArgs } from './plan.js';

/** The kubelet's devices for the plans with a resourceName, and the netdevs macvlan/ipvlan need. */
export async function fetchDevices(
  deps: MetaPluginDeps,
  conf: MetaConf,
  plans: readonly AttachmentPlan[],
  pod: PodInfo | undefined,
  pa: PodArgs,
): Promise<DeviceFor[]> {
  const needing = plans.filter((p) => p.resourceName !== undefined);
  let assigned: string[] = [];
  if (needing.length > 0) {
    const client = deps.podResourcesFor(conf.podResourcesSocket);
    try {
      const devices = await fetchPodDevices(client, pa.namespace, pa.name).catch((err: unknown) => {
        throw new CniError(
          CniErrorCode.TryAgainLater,
          `cannot read the pod's devices from the kubelet: ${(err as Error).message}`,
          { cause: err },
        );
      });
      assigned = assignDevices(
        needing.map((p) => ({ network: p.name, resourceName: p.resourceName ?? '' })),
        deviceQueues(devices, pod?.containerNames ?? []),
        `${pa.namespace}/${pa.name}`,
      );
    } finally {
      client.close();
    }
  }
  const out: DeviceFor[] = [];
  for (const p of plans) {
    const n = needing.indexOf(p);
    const deviceId = n >= 0 ? assigned[n] : p.selection?.deviceId;
    const needsNetdev =
      deviceId !== undefined && p.list.plugins.some((x) => ['macvlan', 'ipvlan'].includes(pluginType(x)));
    out.push({ deviceId, netdev: needsNetdev ? await deviceNetdev(conf.sysfsRoot, deviceId) : undefined });
  }
  return out;
}

export interface CallRuntime {
  readonly containerId: string;
  readonly netns: string | undefined;
  readonly path: readonly string[];
}

export function runtimeOf(att: CachedAttachment, rt: CallRuntime): RuntimeConf {
  return {
    containerId: rt.containerId,
    netns: rt.netns,
    ifname: att.ifname,
    args: att.cniArgs,
    capabilityArgs: att.capabilityArgs,
    path: rt.path,
  };
}

export function listOf(att: CachedAttachment) {
  return parseNetworkConfig(att.config, `cached network "${att.name}"`);
}

/** DEL attachments in reverse; returns the errors (never throws). */
export async function delAll(
  chain: ChainRunner,
  atts: readonly CachedAttachment[],
  rt: CallRuntime,
  log: Logger,
): Promise<CniError[]> {
  const errors: CniError[] = [];
  for (const att of [...atts].reverse()) {
    try {
      await chain.del(listOf(att), runtimeOf(att, rt), att.result);
    } catch (err) {
      const e = CniError.from(err, `error deleting network "${att.name}" (${att.ifname})`);
      log.warn({ err: e, network: att.name }, 'delegate DEL failed');
      errors.push(e);
    }
    if (att.devinfoFile !== undefined) await removeDeviceInfo(att.devinfoFile).catch(() => undefined);
  }
  return errors;
}

/** delAll's errors as one error: the first one's code and every message; undefined when there are none. */
export function joinDelErrors(errors: readonly CniError[]): CniError | undefined {
  const [first] = errors;
  return first === undefined
    ? undefined
    : new CniError(first.code, errors.map((e) => e.message).join(' / '), { cause: errors });
}

/** One ADD in progress: what ran so far and its cache. */
export interface AddRun {
  readonly conf: MetaConf;
  readonly call: AddCall;
  readonly chain: ChainRunner;
  readonly log: Logger;
  readonly done: CachedAttachment[];
  cache: MetaCache;
}

/**
 * Undoes an ADD in reverse and throws `reason`. The failed attachment is DELed too (it may have
 * half-succeeded), but only failures to undo completed attachments keep the cache for the runtime's DEL.
 */
export async function rollback(
  run: AddRun,
  failed: CachedAttachment | undefined,
  reason: CniError,
): Promise<never> {
  const { call, log } = run;
  const failedErrors =
    failed === undefined || run.done.some((d) => d.ifname === failed.ifname)
      ? []
      : await delAll(run.chain, [failed], call, log);
  const errors = await delAll(run.chain, run.done, call, log);
  if (errors.length === 0) await removeCache(run.conf.cniDir, call.containerId);
  else
    log.error(
      { errors: errors.map((e) => e.message) },
      'rollback incomplete: DEL cache kept for the runtime DEL',
    );
  if (failedErrors.length > 0)
    log.warn({ errors: failedErrors.map((e) => e.message) }, 'DEL of the failed attachment failed');
  throw reason;
}

async function copyDevinfo(run: AddRun, att: CachedAttachment): Promise<void> {
  if (att.devinfoFile === undefined || att.resourceName === undefined || att.deviceId === undefined) return;
  const from = dpDeviceInfoPath(run.conf.devinfoDir, att.resourceName, att.deviceId);
  const copied = await copyDeviceInfo(from, att.devinfoFile).catch((err: unknown) => {
    run.log.warn({ err }, 'cannot copy device-info file');
    return false;
  });
  if (!copied)
    run.log.debug(
      { resource: att.resourceName, deviceId: att.deviceId },
      'no device-info file from the device plugin',
    );
}

/**
 * Runs every attachment's ADD in order, recording each result in the cache (coalesced writes, all
 * on disk before this returns) and posting its event; rolls back on failure.
 */
export async function addAll(run: AddRun, pa: PodArgs, podUid: string, events?: AddedEvents): Promise<void> {
  const writer = createCacheWriter(run.conf.cniDir);
  for (const att of run.cache.attachments) {
    const prefix = `[${pa.namespace}/${pa.name}/${podUid}:${att.name}]: error adding container to network "${att.name}"`;
    try {
      await copyDevinfo(run, att);
      const result = await run.chain.add(listOf(att), runtimeOf(att, run.call));
      const withResult = { ...att, result };
      run.done.push(withResult);
      run.cache = {
        ...run.cache,
        attachments: run.cache.attachments.map((a) => (a === att ? withResult : a)),
      };
      writer.record(run.cache);
      run.log.info({ network: att.name, ifname: att.ifname }, 'attached');
      events?.attached(withResult);
    } catch (err) {
      await writer.flush().catch(() => undefined);
      await rollback(run, att, CniError.from(err, prefix));
    }
  }
  await flushOrRollBack(run, writer);
}

async function flushOrRollBack(run: AddRun, writer: CacheWriter): Promise<void> {
  try {
    await writer.flush();
  } catch (err) {
    await rollback(run, undefined, CniError.from(err, "cannot record the delegates' results"));
  }
}

/** The `default-route` requests: routes changed in the pod and in the results. */
export async function applyDefaultRoutes(
  run: AddRun,
  routes: PodRoutes,
  plans: readonly AttachmentPlan[],
  results: CniResult[],
): Promise<CniResult[]> {
  let out = results;
  const gateways = plans.flatMap((p, i) => (p.selection?.defaultRoute ?? []).map((gw) => ({ i, gw })));
  for (const { i, gw } of gateways) {
    const att = run.done[i];
    if (att === undefined) continue;
    const family = ipFamily(gw);
    try {
      await routes.replaceDefault(run.call.netns, family, att.ifname, gw);
    } catch (err) {
      await rollback(run, undefined, CniError.from(err, `default-route of network "${att.name}"`));
    }
    out = moveDefaultRoute(out, i, family, gw);
  }
  return out;
}

export function decodeResults(run: AddRun): CniResult[] {
  return run.done.map((att) => decodeResult(att.result, listOf(att).cniVersion));
}

/** network-status on the pod; a failure rolls the ADD back (code 11 when the API is unavailable). */
export async function publishStatus(
  run: AddRun,
  deps: MetaPluginDeps,
  kube: KubeClient,
  pod: PodInfo,
  results: readonly CniResult[],
): Promise<void> {
  const statuses = [];
  for (const [i, att] of run.done.entries()) {
    const info = att.devinfoFile === undefined ? undefined : await readDeviceInfo(att.devinfoFile);
    statuses.push(...networkStatuses(att.name, att.ifname, results[i] ?? EMPTY_RESULT, att.isDefault, info));
  }
  try {
    await writeNetworkStatus(
      { kube, clock: deps.clock, logger: run.log },
      pod,
      formatNetworkStatus(statuses),
    );
  } catch (err) {
    const prefix = `cannot set network-status on pod ${pod.namespace}/${pod.name}`;
    // 5xx, 429 and connection failures are transient: the runtime retries on code 11.
    const reason = isKubeError(err, KubeErrorCode.Unavailable)
      ? new CniError(CniErrorCode.TryAgainLater, `${prefix}: ${(err as Error).message}`, { cause: err })
      : CniError.from(err, prefix);
    await rollback(run, undefined, reason);
  }
}

/** Posts Multus's AddedInterface events; `settled` resolves when every one posted has been answered. */
export interface AddedEvents {
  /** One attachment's ADD succeeded: its event is sent now or held (per the timing), never awaited. */
  attached(att: CachedAttachment): void;
  /** The whole ADD succeeded: the held events are sent. */
  succeeded(): void;
  settled(): Promise<void>;
}

/**
 * Multus's AddedInterface event per attachment. 'per-attachment': posted as each delegate's ADD
 * succeeds (as Multus does, in its delegate loop): the round trip overlaps the next delegate instead
 * of following the last one, and an attachment added before a later one fails keeps its event, as in
 * Multus. 'after-status': held until the whole ADD succeeded (none for an ADD that failed).
 */
export function addedEvents(
  kube: KubeClient,
  pod: PodInfo,
  log: Logger,
  timing: EventTiming = 'per-attachment',
): AddedEvents {
  const posted: Promise<void>[] = [];
  const held: CachedAttachment[] = [];
  const recordEvent = kube.recordEvent?.bind(kube);
  const post = (att: CachedAttachment): void => {
    if (recordEvent === undefined || att.result === undefined) return;
    const result = decodeResult(att.result, listOf(att).cniVersion);
    const ips = result.ips.map((x) => x.address).join(' ');
    const event: PodEvent = {
      type: 'Normal',
      reason: 'AddedInterface',
      message: `Add ${att.ifname} [${ips}] from ${att.name}`,
    };
    posted.push(
      recordEvent(pod, event).catch((err: unknown) => {
        log.warn({ err }, 'cannot record the AddedInterface event');
      }),
    );
  };
  return {
    attached(att) {
      if (timing === 'per-attachment') post(att);
      else held.push(att);
    },
    succeeded() {
      for (const att of held.splice(0)) post(att);
    },
    async settled() {
      await Promise.all(posted);
    },
  };
}
