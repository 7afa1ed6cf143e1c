// The meta-plugin (`"type": "netplumb"`, Multus-compatible): the whole ADD/DEL/CHECK/STATUS/GC path
// as one function of a CniRequest and its ports. The executable (bin/netplumb-cni.ts) and the
// daemon both run exactly this; only the ports differ.
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { createChainRunner } from '../chain.js';
import type { ChainRunner, RuntimeConf } from '../chain.js';
import { CniError, CniErrorCode } from '../errors.js';
import { cniArg } from '../env.js';
import type { CniArg } from '../env.js';
import type { PluginRunner } from '../exec.js';
import type { JsonObject } from '../../lib/json.js';
import { parseNetworkConfig, pluginType } from '../network-config.js';
import { EMPTY_RESULT, decodeResult, ipFamily } from '../result.js';
import type { CniResult } from '../result.js';
import { createPlugin } from '../skel.js';
import type { AddCall, CallBase, CheckCall, CniPluginFn, DelCall, GcCall } from '../skel.js';
import { SPEC_VERSIONS } from '../version.js';
import {
  DEFAULT_NETWORK_ANNOTATION,
  NETWORKS_ANNOTATION,
  parseDefaultNetworkAnnotation,
  parseNetworksAnnotation,
} from './annotations.js';
import type { NetworkSelection } from './annotations.js';
import { quarantineCache, readCache, removeCache, writeCache } from './cache.js';
import type { CachedAttachment, MetaCache } from './cache.js';
import { parseMetaConf } from './config.js';
import type { MetaConf } from './config.js';
import {
  cniDeviceInfoPath,
  copyDeviceInfo,
  dpDeviceInfoPath,
  readDeviceInfo,
  removeDeviceInfo,
} from './devinfo.js';
import { assignDevices, deviceNetdev, deviceQueues, fetchPodDevices, injectDevice } from './devices.js';
import { KubeApiError, KubeErrorCode, isKubeError, retryTransient } from './kube.js';
import type { Clock } from '../../lib/clock.js';
import type { KubeClient, PodInfo } from './kube.js';
import { createIproute2PodRoutes, moveDefaultRoute } from './default-route.js';
import type { PodRoutes } from './default-route.js';
import { loadNad, resolveNetworkReference } from './nad.js';
import type { ResolvedNetwork } from './nad.js';
import { formatNetworkStatus, networkStatuses, writeNetworkStatus } from './network-status.js';
import { planAttachments, withPlugins } from './plan.js';
import type { AttachmentPlan } from './plan.js';
import type { PodResourcesClient } from './podresources-port.js';

/** The ports of the meta-plugin. */
export interface MetaPluginDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Kubernetes access for this config; undefined = delegates-only mode (no annotations read). */
  kubeFor(conf: MetaConf): KubeClient | undefined;
  /** PodResources client on the config's socket; closed after use. */
  podResourcesFor(socketPath: string): PodResourcesClient;
  /** Runs delegate plugins for this config (binDir, then CNI_PATH). */
  runnerFor(conf: MetaConf): PluginRunner;
  /** Default-route changes in the pod netns (annotation `default-route`); iproute2 when absent. */
  readonly routes?: PodRoutes;
}

export const META_SUPPORTED_VERSIONS: readonly string[] = SPEC_VERSIONS;
const READINESS_POLL_MS = 1_000;
const READINESS_BUDGET_MS = 45_000;

interface PodArgs {
  readonly namespace: string;
  readonly name: string;
  readonly infraContainerId: string;
  readonly uid: string;
}

function podArgs(args: readonly CniArg[]): PodArgs {
  return {
    namespace: cniArg(args, 'K8S_POD_NAMESPACE') ?? '',
    name: cniArg(args, 'K8S_POD_NAME') ?? '',
    infraContainerId: cniArg(args, 'K8S_POD_INFRA_CONTAINER_ID') ?? '',
    uid: cniArg(args, 'K8S_POD_UID') ?? '',
  };
}

const OWN_ARGS = [
  'IgnoreUnknown',
  'K8S_POD_NAMESPACE',
  'K8S_POD_NAME',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
];

function delegateArgs(pod: PodArgs, incoming: readonly CniArg[]): CniArg[] {
  return [
    ['IgnoreUnknown', 'true'],
    ['K8S_POD_NAMESPACE', pod.namespace],
    ['K8S_POD_NAME', pod.name],
    ['K8S_POD_INFRA_CONTAINER_ID', pod.infraContainerId],
    ['K8S_POD_UID', pod.uid],
    ...incoming.filter(([k]) => !OWN_ARGS.includes(k)),
  ];
}

export function createMetaPlugin(deps: MetaPluginDeps): CniPluginFn {
  const routes = deps.routes ?? createIproute2PodRoutes();
  async function waitReady(conf: MetaConf): Promise<void> {
    const file = conf.readinessIndicatorFile;
    if (file === undefined) return;
    const deadline = deps.clock.now() + READINESS_BUDGET_MS;
    for (;;) {
      if ((await stat(file).catch(() => undefined)) !== undefined) return;
      if (deps.clock.now() >= deadline) {
        throw new CniError(
          CniErrorCode.TryAgainLater,
          `readiness indicator file ${file} did not appear within ${READINESS_BUDGET_MS / 1000} s: the cluster network is not ready yet`,
        );
      }
      await deps.clock.sleep(READINESS_POLL_MS);
    }
  }

  async function getPod(kube: KubeClient, pod: PodArgs, log: Logger): Promise<PodInfo | undefined> {
    try {
      const found = await retryTransient(deps.clock, () => kube.getPod(pod.namespace, pod.name), {
        intervalMs: 250,
        budgetMs: 2_500,
        retryable: (err) => isKubeError(err, KubeErrorCode.Unavailable),
      });
      if (pod.uid !== '' && found.uid !== '' && found.uid !== pod.uid) {
        throw new CniError(
          CniErrorCode.TryAgainLater,
          `pod ${pod.namespace}/${pod.name}: expected UID ${pod.uid} but the API has ${found.uid} (the pod was recreated)`,
        );
      }
      return found;
    } catch (err) {
      if (isKubeError(err, KubeErrorCode.NotFound)) {
        log.warn('pod not found in the API: attaching only the cluster and default networks');
        return undefined;
      }
      if (err instanceof KubeApiError) {
        throw new CniError(
          CniErrorCode.TryAgainLater,
          `cannot read pod ${pod.namespace}/${pod.name}: ${err.message}`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  async function resolveCluster(
    conf: MetaConf,
    kube: KubeClient | undefined,
    pod: PodInfo | undefined,
  ): Promise<ResolvedNetwork> {
    const override = pod?.annotations[DEFAULT_NETWORK_ANNOTATION];
    if (override !== undefined && override.trim() !== '' && kube !== undefined) {
      const sel = parseDefaultNetworkAnnotation(override, conf.multusNamespace);
      return loadNad(kube, sel.namespace, sel.name, conf.confDir);
    }
    if (conf.clusterNetwork !== undefined) {
      return resolveNetworkReference(conf.clusterNetwork, {
        kube,
        namespace: conf.multusNamespace,
        confDir: conf.confDir,
      });
    }
    const first = conf.delegates[0];
    if (first === undefined)
      throw new CniError(CniErrorCode.InvalidNetworkConfig, 'no cluster network configured');
    const list = parseNetworkConfig(first, 'delegates[0]');
    return { displayName: list.name, list, resourceName: undefined };
  }

  async function resolveExtras(
    conf: MetaConf,
    kube: KubeClient | undefined,
    podNamespace: string,
    pod: PodInfo | undefined,
  ): Promise<{ network: ResolvedNetwork; selection?: NetworkSelection }[]> {
    const extras: { network: ResolvedNetwork; selection?: NetworkSelection }[] = [];
    if (conf.clusterNetwork === undefined) {
      conf.delegates.slice(1).forEach((d, i) => {
        const list = parseNetworkConfig(d, `delegates[${i + 1}]`);
        extras.push({ network: { displayName: list.name, list, resourceName: undefined } });
      });
    }
    if (!conf.systemNamespaces.includes(podNamespace)) {
      for (const ref of conf.defaultNetworks) {
        extras.push({
          network: await resolveNetworkReference(ref, {
            kube,
            namespace: conf.multusNamespace,
            confDir: conf.confDir,
          }),
        });
      }
    }
    const annotation = pod?.annotations[NETWORKS_ANNOTATION];
    if (annotation === undefined || kube === undefined) return extras;
    const selections = parseNetworksAnnotation(annotation, podNamespace);
    for (const selection of selections) {
      if (
        conf.namespaceIsolation &&
        selection.namespace !== podNamespace &&
        !conf.globalNamespaces.includes(selection.namespace)
      ) {
        throw new CniError(
          CniErrorCode.InvalidNetworkConfig,
          `namespace isolation is enabled: pod is in namespace ${podNamespace} but refers to network ${selection.namespace}/${selection.name} (allowed: its own namespace and ${conf.globalNamespaces.join(', ')})`,
        );
      }
    }
    // Fetched concurrently (each distinct NAD once), attached in annotation order.
    const byKey = new Map<string, Promise<ResolvedNetwork>>();
    for (const s of selections) {
      const key = `${s.namespace}/${s.name}`;
      if (!byKey.has(key)) byKey.set(key, loadNad(kube, s.namespace, s.name, conf.confDir));
    }
    const settled = await Promise.allSettled(byKey.values());
    const failedNad = settled.find((r) => r.status === 'rejected');
    if (failedNad !== undefined) throw failedNad.reason;
    for (const selection of selections) {
      extras.push({
        network: await (byKey.get(`${selection.namespace}/${selection.name}`) as Promise<ResolvedNetwork>),
        selection,
      });
    }
    return extras;
  }

  /** Gives attachments with a resourceName their devices; returns the cache entries to run. */
  async function withDevices(
    conf: MetaConf,
    plans: readonly AttachmentPlan[],
    pod: PodInfo | undefined,
    podArgs_: PodArgs,
    containerId: string,
  ): Promise<CachedAttachment[]> {
    const needing = plans.filter((p) => p.resourceName !== undefined);
    let assigned: string[] = [];
    if (needing.length > 0) {
      const client = deps.podResourcesFor(conf.podResourcesSocket);
      try {
        const devices = await fetchPodDevices(client, podArgs_.namespace, podArgs_.name).catch(
          (err: unknown) => {
            throw new CniError(
              CniErrorCode.TryAgainLater,
              `cannot read the pod's devices from the kubelet: ${(err as Error).message}`,
              {
                cause: err,
              },
            );
          },
        );
        assigned = assignDevices(
          needing.map((p) => ({ network: p.name, resourceName: p.resourceName ?? '' })),
          deviceQueues(devices, pod?.containerNames ?? []),
          `${podArgs_.namespace}/${podArgs_.name}`,
        );
      } finally {
        client.close();
      }
    }
    const out: CachedAttachment[] = [];
    for (const p of plans) {
      const n = needing.indexOf(p);
      const deviceId = n >= 0 ? assigned[n] : p.selection?.deviceId;
      let list = p.list;
      const capabilityArgs: JsonObject = { ...p.capabilityArgs };
      let devinfoFile: string | undefined;
      if (deviceId !== undefined) {
        const needsNetdev = list.plugins.some((x) => ['macvlan', 'ipvlan'].includes(pluginType(x)));
        const netdev = needsNetdev ? await deviceNetdev(conf.sysfsRoot, deviceId) : undefined;
        list = withPlugins(list, injectDevice(list.plugins, deviceId, netdev));
        capabilityArgs['deviceID'] = deviceId;
        devinfoFile = cniDeviceInfoPath(conf.devinfoDir, p.name, containerId, p.ifname);
        capabilityArgs['CNIDeviceInfoFile'] = devinfoFile;
      }
      out.push({
        name: p.name,
        ifname: p.ifname,
        isDefault: p.isDefault,
        config: list.raw,
        capabilityArgs,
        cniArgs: p.cniArgs,
        ...(p.resourceName !== undefined && { resourceName: p.resourceName }),
        ...(deviceId !== undefined && { deviceId }),
        ...(devinfoFile !== undefined && { devinfoFile }),
      });
    }
    return out;
  }

  function runtimeOf(
    att: CachedAttachment,
    containerId: string,
    netns: string | undefined,
    path: readonly string[],
  ): RuntimeConf {
    return {
      containerId,
      netns,
      ifname: att.ifname,
      args: att.cniArgs,
      capabilityArgs: att.capabilityArgs,
      path,
    };
  }

  function listOf(att: CachedAttachment) {
    return parseNetworkConfig(att.config, `cached network "${att.name}"`);
  }

  /** DEL attachments in reverse; returns the errors (never throws). */
  async function delAll(
    chain: ChainRunner,
    atts: readonly CachedAttachment[],
    containerId: string,
    netns: string | undefined,
    path: readonly string[],
    log: Logger,
  ): Promise<CniError[]> {
    const errors: CniError[] = [];
    for (const att of [...atts].reverse()) {
      try {
        await chain.del(listOf(att), runtimeOf(att, containerId, netns, path), att.result);
      } catch (err) {
        const e = CniError.from(err, `error deleting network "${att.name}" (${att.ifname})`);
        log.warn({ err: e, network: att.name }, 'delegate DEL failed');
        errors.push(e);
      }
      if (att.devinfoFile !== undefined) await removeDeviceInfo(att.devinfoFile).catch(() => undefined);
    }
    return errors;
  }

  async function add(call: AddCall): Promise<CniResult> {
    const conf = parseMetaConf(call.config);
    const log = deps.logger.child({ containerId: call.containerId, ifname: call.ifname });
    if (conf.unknownKeys.length > 0)
      log.warn({ keys: conf.unknownKeys }, 'unknown config keys (kept, not used)');
    await waitReady(conf);
    const pa = podArgs(call.args);
    const kube = deps.kubeFor(conf);
    const pod = kube !== undefined && pa.name !== '' ? await getPod(kube, pa, log) : undefined;
    const cluster = await resolveCluster(conf, kube, pod);
    const extras = await resolveExtras(conf, kube, pa.namespace, pod);
    const plans = planAttachments({
      cluster,
      extras,
      runtimeIfname: call.ifname,
      runtimeConfig: conf.runtimeConfig,
      baseArgs: delegateArgs(pa, call.args),
    });
    const attachments = await withDevices(conf, plans, pod, pa, call.containerId);
    let cache: MetaCache = {
      kind: 'netplumbCacheV1',
      containerId: call.containerId,
      netns: call.netns,
      podNamespace: pa.namespace,
      podName: pa.name,
      podUid: pod?.uid ?? pa.uid,
      attachments,
    };
    await writeCache(conf.cniDir, cache);

    const chain = createChainRunner(deps.runnerFor(conf));
    const done: CachedAttachment[] = [];
    // Undo in reverse. The failed attachment is DELed too (it may have half-succeeded), but only
    // failures to undo completed attachments keep the cache for the runtime's DEL.
    const rollback = async (failed: CachedAttachment | undefined, reason: CniError): Promise<never> => {
      const failedErrors =
        failed === undefined || done.some((d) => d.ifname === failed.ifname)
          ? []
          : await delAll(chain, [failed], call.containerId, call.netns, call.path, log);
      const errors = await delAll(chain, done, call.containerId, call.netns, call.path, log);
      if (errors.length === 0) await removeCache(conf.cniDir, call.containerId);
      else
        log.error(
          { errors: errors.map((e) => e.message) },
          'rollback incomplete: DEL cache kept for the runtime DEL',
        );
      if (failedErrors.length > 0)
        log.warn({ errors: failedErrors.map((e) => e.message) }, 'DEL of the failed attachment failed');
      throw reason;
    };
    for (const att of attachments) {
      const prefix = `[${pa.namespace}/${pa.name}/${pod?.uid ?? pa.uid}:${att.name}]: error adding container to network "${att.name}"`;
      try {
        if (att.devinfoFile !== undefined && att.resourceName !== undefined && att.deviceId !== undefined) {
          const copied = await copyDeviceInfo(
            dpDeviceInfoPath(conf.devinfoDir, att.resourceName, att.deviceId),
            att.devinfoFile,
          ).catch((err: unknown) => {
            log.warn({ err }, 'cannot copy device-info file');
            return false;
          });
          if (!copied)
            log.debug(
              { resource: att.resourceName, deviceId: att.deviceId },
              'no device-info file from the device plugin',
            );
        }
        const result = await chain.add(listOf(att), runtimeOf(att, call.containerId, call.netns, call.path));
        const withResult = { ...att, result };
        done.push(withResult);
        cache = { ...cache, attachments: cache.attachments.map((a) => (a === att ? withResult : a)) };
        await writeCache(conf.cniDir, cache);
        log.info({ network: att.name, ifname: att.ifname }, 'attached');
      } catch (err) {
        return rollback(att, CniError.from(err, prefix));
      }
    }

    let results = done.map((att) => decodeResult(att.result, listOf(att).cniVersion));
    const gateways = plans.flatMap((p, i) => (p.selection?.defaultRoute ?? []).map((gw) => ({ i, gw })));
    for (const { i, gw } of gateways) {
      const att = done[i];
      if (att === undefined) continue;
      const family = ipFamily(gw);
      try {
        await routes.replaceDefault(call.netns, family, att.ifname, gw);
      } catch (err) {
        return rollback(undefined, CniError.from(err, `default-route of network "${att.name}"`));
      }
      results = moveDefaultRoute(results, i, family, gw);
    }

    if (kube !== undefined && pod !== undefined) {
      const statuses = [];
      for (const [i, att] of done.entries()) {
        const info = att.devinfoFile === undefined ? undefined : await readDeviceInfo(att.devinfoFile);
        statuses.push(
          ...networkStatuses(att.name, att.ifname, results[i] ?? EMPTY_RESULT, att.isDefault, info),
        );
      }
      try {
        await writeNetworkStatus(
          { kube, clock: deps.clock, logger: log },
          pod,
          formatNetworkStatus(statuses),
        );
      } catch (err) {
        return rollback(
          undefined,
          CniError.from(err, `cannot set network-status on pod ${pa.namespace}/${pa.name}`),
        );
      }
    }
    // Events are informational: sent concurrently, failures only logged.
    const recordEvent = kube?.recordEvent?.bind(kube);
    if (recordEvent !== undefined && pod !== undefined) {
      await Promise.all(
        done.map(async (att, i) => {
          if (att.isDefault) return;
          const ips = (results[i]?.ips ?? []).map((x) => x.address).join(' ');
          await recordEvent(pod, {
            type: 'Normal',
            reason: 'AddedInterface',
            message: `Add ${att.ifname} [${ips}] from ${att.name}`,
          }).catch((err: unknown) => {
            log.warn({ err }, 'cannot record the AddedInterface event');
          });
        }),
      );
    }

    const masterIndex = Math.max(
      0,
      done.findIndex((a) => a.isDefault),
    );
    const masterResult = results[masterIndex];
    if (masterResult === undefined)
      throw new CniError(CniErrorCode.Internal, 'no result from the cluster network');
    return masterResult;
  }

  async function loadCache(
    conf: MetaConf,
    containerId: string,
    ifname: string,
    log: Logger,
  ): Promise<MetaCache | undefined> {
    const read = await readCache(conf.cniDir, containerId, ifname);
    if (read.state === 'ok') {
      if (read.origin === 'multus')
        log.info('DEL from a Multus cache (pod attached before netplumb took over)');
      return read.cache;
    }
    if (read.state === 'corrupt') {
      const moved = await quarantineCache(conf.cniDir, containerId);
      log.error(
        { problem: read.problem, movedTo: moved },
        'DEL cache unreadable: cannot undo the attachments it described',
      );
    } else {
      log.info('no DEL cache: nothing left to undo');
    }
    return undefined;
  }

  async function del(call: DelCall): Promise<void> {
    const conf = parseMetaConf(call.config);
    const log = deps.logger.child({ containerId: call.containerId, ifname: call.ifname });
    const cache = await loadCache(conf, call.containerId, call.ifname, log);
    if (cache === undefined) return;
    const chain = createChainRunner(deps.runnerFor(conf));
    const args = delegateArgs(podArgs(call.args), call.args);
    const atts = cache.attachments.map((a) => (a.cniArgs.length > 0 ? a : { ...a, cniArgs: args }));
    const errors = await delAll(chain, atts, call.containerId, call.netns, call.path, log);
    if (errors.length === 0 || !conf.retryDeleteOnError) await removeCache(conf.cniDir, call.containerId);
    const [first] = errors;
    if (first !== undefined) {
      throw new CniError(first.code, errors.map((e) => e.message).join(' / '), { cause: errors });
    }
  }

  async function check(call: CheckCall): Promise<void> {
    const conf = parseMetaConf(call.config);
    const log = deps.logger.child({ containerId: call.containerId, ifname: call.ifname });
    const cache = await loadCache(conf, call.containerId, call.ifname, log);
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
      await chain
        .check(listOf(att), runtimeOf(att, call.containerId, call.netns, call.path), att.result)
        .catch((err: unknown) => {
          throw CniError.from(err, `CHECK of network "${att.name}" (${att.ifname})`);
        });
    }
  }

  async function clusterOnly(call: CallBase) {
    const conf = parseMetaConf(call.config);
    const cluster = await resolveCluster(conf, deps.kubeFor(conf), undefined);
    return { chain: createChainRunner(deps.runnerFor(conf)), list: cluster.list };
  }

  return createPlugin({
    supportedVersions: META_SUPPORTED_VERSIONS,
    add,
    del,
    check,
    async status(call) {
      const { chain, list } = await clusterOnly(call);
      await chain.status(list, call.path);
    },
    async gc(call: GcCall) {
      const { chain, list } = await clusterOnly(call);
      await chain.gc(list, call.path, call.validAttachments);
    },
  });
}
