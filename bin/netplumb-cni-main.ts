// The CNI call of the `netplumb-cni` meta-plugin executable (config `"type": "netplumb"`), loaded by
// bin/netplumb-cni.ts only when the call needs the plugin (not for VERSION or the about line). The
// only place besides that entry that reads process.env, and the one that builds the logger. Logs go
// to stderr and/or `logFile`, never to stdout (stdout is the CNI result).
import { lazyPodResources } from '../cni/meta/podresources-lazy.js';
import pino from 'pino';
import type { DestinationStream, Level } from 'pino';
import { createExecRunner } from '../cni/exec.js';
import { isJsonObject } from '../lib/json.js';
import { systemClock } from '../lib/clock.js';
import type { KubeClient } from '../cni/meta/kube.js';
import { createMetaPlugin } from '../cni/meta/plugin.js';
import { readProcessRequest, writeProcessResponse } from '../cni/skel.js';

// Multus levels (debug > verbose > error > panic) mapped onto pino's.
const LEVELS: Record<string, Level> = { debug: 'debug', verbose: 'info', error: 'error', panic: 'fatal' };

function loggerFor(stdin: string): pino.Logger {
  let conf: Record<string, unknown> = {};
  try {
    const v: unknown = JSON.parse(stdin);
    if (isJsonObject(v)) conf = v;
  } catch {
    // the plugin reports the bad config itself
  }
  const level = LEVELS[typeof conf['logLevel'] === 'string' ? conf['logLevel'] : ''] ?? 'error';
  const streams: DestinationStream[] = [];
  if (conf['logToStderr'] !== false) streams.push(pino.destination({ fd: 2, sync: true }));
  if (typeof conf['logFile'] === 'string' && conf['logFile'] !== '') {
    streams.push(pino.destination({ dest: conf['logFile'], append: true, mkdir: true, sync: true }));
  }
  if (streams.length === 0) return pino({ level: 'silent' });
  return pino(
    { level, base: { plugin: 'netplumb-cni' } },
    pino.multistream(streams.map((stream) => ({ stream, level }))),
  );
}

// The API client (https, tls, yaml) is loaded on first use: a DEL answered from the cache never
// needs it. One connection for the whole call: the requests queue on it (one TLS handshake).
function lazyKube(kubeconfig: string | undefined): KubeClient {
  let client: Promise<KubeClient> | undefined;
  const get = () =>
    (client ??= Promise.all([
      import('../cni/meta/kube-client-node.js'),
      import('../cni/meta/kube-rest.js'),
    ]).then(([c, rest]) => c.createKubeClient(rest.loadKubeAccess(kubeconfig, process.env, 1))));
  return {
    getPod: async (ns, name) => (await get()).getPod(ns, name),
    getNad: async (ns, name) => (await get()).getNad(ns, name),
    updatePodStatusAnnotations: async (pod, annotations) =>
      (await get()).updatePodStatusAnnotations(pod, annotations),
    recordEvent: async (pod, event) => (await get()).recordEvent?.(pod, event),
  };
}

/** Reads the call from stdin and the environment, runs the meta-plugin, prints its answer. */
export async function main(): Promise<void> {
  const req = await readProcessRequest();
  const inCluster =
    (process.env['KUBERNETES_SERVICE_HOST'] ?? '') !== '' &&
    (process.env['KUBERNETES_SERVICE_PORT'] ?? '') !== '';
  const plugin = createMetaPlugin({
    logger: loggerFor(req.stdin),
    clock: systemClock,
    kubeFor: (conf) =>
      conf.kubeconfig !== undefined ? lazyKube(conf.kubeconfig) : inCluster ? lazyKube(undefined) : undefined,
    podResourcesFor: lazyPodResources,
    runnerFor: (conf) => createExecRunner({ binDirs: [conf.binDir], baseEnv: process.env }),
  });
  await writeProcessResponse(await plugin(req));
}
