// Composition of the CNI daemon: the meta-plugin (cni/meta) with informer-backed Kubernetes
// access and the SR-IOV plugin in-process, behind the socket server, plus the config writer.
// `netplumb cni-daemon` (command.ts) and the demo/benchmarks start it through startCniDaemon.
import { lazyPodResources } from '../meta/podresources-lazy.js';
import { ExitCode, NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import type { PfVfSettings } from '../../sriov/link/vf-settings.js';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { createExecRunner, createInProcessRunner, createPluginLookup } from '../exec.js';
import type { PluginLookup, PluginRunner, ProcessSpawner } from '../exec.js';
import { createHelperSpawner, createSpawnerCommandRunner } from './spawner/client.js';
import { createIproute2PodRoutes } from '../meta/default-route.js';
import { createIproute2PodNetns } from '../meta/pod-netns.js';
import { withBackgroundEvents } from './background-events.js';
import type { BackgroundEventsClient } from './background-events.js';
import { isJsonObject } from '../../lib/json.js';
import { daemonConfigProblems } from './daemon-config.js';
import type { JsonObject } from '../../lib/json.js';
import { createKubeClient } from '../meta/kube-client-node.js';
import { systemClock } from '../../lib/clock.js';
import type { KubeClient } from '../meta/kube.js';
import { createMetaPlugin } from '../meta/plugin.js';
import type { CniPluginFn } from '../skel.js';
import { createSriovPlugin } from '../sriov/plugin.js';
import { createSriovDeps } from '../sriov/wiring.js';
import { createConfWriter } from './conf-writer.js';
import type { ConfWriter } from './conf-writer.js';
import { createCachedKube } from './kube-cache.js';
import type { CachedKube } from './kube-cache.js';
import { createNadWatch, createPodWatch, loadKubeConfig } from './kube-informers.js';
import { trackDaemonSet } from './uninstall-on-delete.js';
import type { DaemonSetTracker } from './uninstall-on-delete.js';
import { createLimiter } from './limiter.js';
import { createDaemonMetrics } from './metrics.js';
import type { DaemonMetrics } from './metrics.js';
import { createReadiness } from './readiness.js';
import type { Readiness } from './readiness.js';
import { createDaemonServer } from './server.js';
import type { DaemonServer } from './server.js';

export interface CniDaemonOptions {
  readonly socketPath: string;
  /** Where 00-netplumb.conflist goes; undefined = write no config (demo, benchmarks). */
  readonly cniConfDir?: string | undefined;
  /** JSON object of Multus keys merged into the generated config (and readinessindicatorfile). */
  readonly daemonConfig?: JsonObject;
  /** Kubernetes access: "in-cluster", a kubeconfig path, or undefined for none (delegates only). */
  readonly kube?: 'in-cluster' | { kubeconfig: string } | undefined;
  /** A ready KubeClient instead of informers (the demo's in-memory API stand-in, tests). */
  readonly kubeClient?: KubeClient | undefined;
  readonly nodeName?: string | undefined;
  readonly metricsAddress?: { host: string; port: number } | undefined;
  readonly maxConcurrent: number;
  readonly maxQueued: number;
  readonly readyWaitMs: number;
  readonly sysfsRoot: string;
  /** PF-side VF settings of the in-process sriov plugin; default iproute2 (a simulated node's recorder with --simulated-node). */
  readonly sriovPf?: PfVfSettings | undefined;
  /** State dir of the in-process sriov plugin (default /var/lib/cni/sriov). */
  readonly sriovStateDir?: string | undefined;
  /** The only directory a NAD's sriov `logFile` may write into (default /var/log/netplumb; '' = none). */
  readonly delegateLogDir?: string | undefined;
  /** netplumb-spawner executable that starts the delegates; undefined = Node's child_process (forks the daemon). */
  readonly spawnerPath?: string | undefined;
  readonly logger: Logger;
}

export interface RunningDaemon {
  readonly readiness: Readiness;
  readonly metrics: DaemonMetrics;
  readonly confWriter: ConfWriter | undefined;
  readonly metricsPort: number | undefined;
  /** Watches DaemonSet `name` in `namespace` from now on, to tell uninstall from restart at SIGTERM (undefined without API access). */
  trackDaemonSet(namespace: string, name: string): DaemonSetTracker | undefined;
  /** Not ready, drain in-flight requests, stop watches, close the socket. */
  close(): Promise<void>;
}

export class DaemonConfigError extends NetplumbError {
  override readonly name = 'DaemonConfigError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super('DAEMON_CONFIG_INVALID', message, options);
  }
}

export async function readDaemonConfig(file: string): Promise<JsonObject> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new DaemonConfigError(
      `--daemon-config ${file}: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
      },
    );
  }
  if (!isJsonObject(raw)) throw new DaemonConfigError(`--daemon-config ${file}: must be a JSON object`);
  for (const forbidden of ['type', 'name', 'cniVersion', 'daemonSocket', 'clusterNetwork']) {
    if (forbidden in raw) {
      throw new DaemonConfigError(`--daemon-config ${file}: "${forbidden}" is set by the daemon; remove it`);
    }
  }
  const problems = daemonConfigProblems(raw);
  if (problems.length > 0) {
    throw new DaemonConfigError(`--daemon-config ${file}: ${problems.join('; ')}`, {
      exitCode: ExitCode.USAGE,
    });
  }
  return raw;
}

/** Most binDirs whose runner is kept (configs name one or two; the rest are built per call). */
const MAX_RUNNERS = 16;

/**
 * `sriov` runs in this process; every other delegate is exec'd from binDir, then CNI_PATH. One
 * runner per binDir, kept: it snapshots the daemon's environment once instead of per delegate.
 */
function runnersByBinDir(
  plugins: Readonly<Record<string, CniPluginFn>>,
  lookup: PluginLookup,
  spawner: ProcessSpawner | undefined,
): (binDir: string) => PluginRunner {
  const runners = new Map<string, PluginRunner>();
  return (binDir) => {
    const hit = runners.get(binDir);
    if (hit !== undefined) return hit;
    const exec = createExecRunner({
      binDirs: [binDir],
      baseEnv: process.env,
      lookup,
      ...(spawner && { spawner }),
    });
    const runner = createInProcessRunner(plugins, exec);
    if (runners.size < MAX_RUNNERS) runners.set(binDir, runner);
    return runner;
  };
}

export async function startCniDaemon(o: CniDaemonOptions): Promise<RunningDaemon> {
  const log = o.logger;
  const readiness = createReadiness();
  const metrics = createDaemonMetrics();

  let cached: CachedKube | undefined;
  let live: KubeClient | undefined;
  let events: BackgroundEventsClient | undefined;
  const kc =
    o.kube === undefined
      ? undefined
      : loadKubeConfig(o.kube === 'in-cluster' ? undefined : o.kube.kubeconfig);
  if (kc !== undefined) {
    // One API access (one keep-alive agent) for the informers, the status writes and the events.
    events = withBackgroundEvents(createKubeClient(kc), { logger: log.child({ component: 'events' }) });
    live = events;
    if (o.nodeName === undefined || o.nodeName === '') {
      throw new DaemonConfigError('--node-name (or env NODE_NAME) is required with Kubernetes access');
    }
    readiness.set('pod-cache', false, `pods of node ${o.nodeName} not listed yet`);
    readiness.set('nad-cache', false, 'NetworkAttachmentDefinitions not listed yet');
    cached = createCachedKube({
      live,
      pods: createPodWatch(kc, o.nodeName),
      nads: createNadWatch(kc),
      onLookup: (kind, result) => {
        metrics.cacheLookup(kind, result);
      },
      onSynced: (kind) => {
        readiness.set(`${kind}-cache`, true);
        log.info({ kind }, 'informer cache synced');
      },
      onError: (kind, err) => {
        log.warn({ kind, err }, 'watch broke; restarting it (lookups fall back to the API meanwhile)');
      },
    });
  }

  const sriov = createSriovPlugin(
    createSriovDeps({
      sysfsRoot: o.sysfsRoot,
      ...(o.sriovStateDir === undefined ? {} : { stateDir: o.sriovStateDir }),
      ...(o.delegateLogDir === undefined ? {} : { delegateLogDir: o.delegateLogDir }),
      ...(o.sriovPf === undefined ? {} : { pf: o.sriovPf }),
    }),
  );
  // Delegates (and the daemon's own nsenter/ip calls) are started by one long-lived helper
  // (posix_spawn), never by forking the daemon.
  const spawner = o.spawnerPath === undefined ? undefined : createHelperSpawner({ helper: o.spawnerPath });
  const lookup = createPluginLookup();
  const commands = spawner && createSpawnerCommandRunner(spawner, lookup);
  const runnerFor = runnersByBinDir({ sriov }, lookup, spawner);
  const handle: CniPluginFn = createMetaPlugin({
    logger: log.child({ component: 'meta' }),
    clock: systemClock,
    kubeFor: (conf) =>
      o.kubeClient ??
      cached ??
      (conf.kubeconfig === undefined ? undefined : createKubeClient(conf.kubeconfig)),
    podResourcesFor: lazyPodResources,
    runnerFor: (conf) => runnerFor(conf.binDir),
    // Posted in the background after the answer (background-events.ts), not during the ADD.
    eventTiming: 'after-status',
    ...(commands && {
      podNetns: createIproute2PodNetns(commands),
      routes: createIproute2PodRoutes(commands),
    }),
  });

  const limiter = createLimiter({ maxConcurrent: o.maxConcurrent, maxQueued: o.maxQueued });
  const server: DaemonServer = createDaemonServer({
    handle,
    logger: log.child({ component: 'server' }),
    metrics,
    limiter,
    readiness,
    readyWaitMs: o.readyWaitMs,
    maxBodyBytes: 4 << 20,
  });

  let confWriter: ConfWriter | undefined;
  if (o.cniConfDir !== undefined) {
    const indicator = o.daemonConfig?.['readinessindicatorfile'];
    confWriter = createConfWriter({
      confDir: o.cniConfDir,
      socketPath: o.socketPath,
      ...(o.daemonConfig === undefined ? {} : { extra: o.daemonConfig }),
      readinessIndicator: typeof indicator === 'string' && indicator !== '' ? indicator : undefined,
      readiness,
      logger: log.child({ component: 'conf' }),
    });
  }

  // Serve first (DEL works at once, from the on-disk cache), then bring up the config.
  await server.listenUnix(o.socketPath);
  let metricsPort: number | undefined;
  if (o.metricsAddress !== undefined) {
    metricsPort = (await server.listenTcp(o.metricsAddress.host, o.metricsAddress.port)).port;
  }
  await confWriter?.start();
  log.info(
    { socket: o.socketPath, metricsPort, kube: kc !== undefined, node: o.nodeName },
    'CNI daemon serving',
  );

  return {
    readiness,
    metrics,
    confWriter,
    metricsPort,
    trackDaemonSet(namespace, name) {
      return kc === undefined ? undefined : trackDaemonSet(kc, namespace, name, log);
    },
    async close() {
      readiness.set('shutdown', false, 'shutting down');
      confWriter?.stop();
      await server.close();
      await cached?.stop();
      await events?.drain();
      await spawner?.close();
    },
  };
}
