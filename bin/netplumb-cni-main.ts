// The CNI call of the `netplumb-cni` meta-plugin executable (config `"type": "netplumb"`), loaded by
// bin/netplumb-cni.ts only when the call needs the plugin (not for VERSION or the about line). The
// only place besides that entry that reads process.env, and the one that builds the logger. Logs go
// to stderr and/or `logFile`, never to stdout (stdout is the CNI result).
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { lazyPodResources } from '../cni/meta/podresources-lazy.js';
import pino from 'pino';
import type { DestinationStream, Level } from 'pino';
import { existsSync } from 'node:fs';
import {
  createHelperSpawner,
  createSpawnerCommandRunner,
  inheritedHelper,
} from '../cni/daemon/spawner/client.js';
import type { HelperSpawner } from '../cni/daemon/spawner/client.js';
import { createExecRunner, createPluginLookup } from '../cni/exec.js';
import { createIproute2PodRoutes } from '../cni/meta/default-route.js';
import { createIproute2PodNetns } from '../cni/meta/pod-netns.js';
import type { CommandRunner } from '../lib/command.js';
import type { ProcessSpawner } from '../cni/exec.js';
import { isJsonObject } from '../lib/json.js';
import { systemClock } from '../lib/clock.js';
import type { KubeClient } from '../cni/meta/kube.js';
import type { KubeAccess } from '../cni/meta/kube-rest.js';
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
    ]).then(([c, rest]) =>
      c.createKubeClient(rest.loadKubeAccess(kubeconfig, process.env, { shortLived: true })),
    ));
  return {
    getPod: async (ns, name) => (await get()).getPod(ns, name),
    getNad: async (ns, name) => (await get()).getNad(ns, name),
    updatePodStatusAnnotations: async (pod, annotations) =>
      (await get()).updatePodStatusAnnotations(pod, annotations),
    recordEvent: async (pod, event) => (await get()).recordEvent?.(pod, event),
  };
}

/**
 * netplumb-spawner next to this executable (`netplumb install` puts both in the CNI bin dir): the
 * delegates and the `ip` calls start through it (vfork + execve) instead of Node forking this
 * process for each (~2 ms of a blocked fork per process started, 5 on an ADD of 4 networks). The
 * `netplumb-cni` launcher has usually started it already and names its pipes in
 * NETPLUMB_SPAWNER_FDS (netplumb-cni-launcher.c): then this process does not fork at all. Otherwise
 * the helper starts with the first call that needs it. Either way it exits when this process does
 * (its stdin closes). Without the file, Node's child_process.
 */
function helperSpawner():
  { spawner: HelperSpawner; commands: CommandRunner; from: 'launcher' | 'spawned' } | undefined {
  const inherited = inheritedHelper(process.env['NETPLUMB_SPAWNER_FDS']);
  // The delegates get this process's environment: not the launcher's note to it.
  delete process.env['NETPLUMB_SPAWNER_FDS'];
  const file = path.join(path.dirname(process.execPath), 'netplumb-spawner');
  if (inherited === undefined && !existsSync(file)) return undefined;
  const spawner = createHelperSpawner({ helper: file, stderr: 'ignore', ...(inherited && { inherited }) });
  return {
    spawner,
    commands: createSpawnerCommandRunner(spawner, createPluginLookup()),
    from: inherited !== undefined ? 'launcher' : 'spawned',
  };
}

/** Reads the call from stdin and the environment, runs the meta-plugin, prints its answer. */
export async function main(): Promise<void> {
  // Every call runs a delegate or `ip`: the helper starts while the request is read and planned.
  const helper = helperSpawner();
  helper?.spawner.start();
  const req = await readProcessRequest();
  const inCluster =
    (process.env['KUBERNETES_SERVICE_HOST'] ?? '') !== '' &&
    (process.env['KUBERNETES_SERVICE_PORT'] ?? '') !== '';
  const logger = loggerFor(req.stdin);
  if (helper !== undefined)
    logger.debug({ helperPid: helper.spawner.helperPid(), from: helper.from }, 'delegate helper');
  const plugin = createMetaPlugin({
    logger,
    clock: systemClock,
    kubeFor: (conf) =>
      conf.kubeconfig !== undefined ? lazyKube(conf.kubeconfig) : inCluster ? lazyKube(undefined) : undefined,
    podResourcesFor: lazyPodResources,
    runnerFor: (conf) =>
      createExecRunner({
        binDirs: [conf.binDir],
        baseEnv: process.env,
        ...(helper && { spawner: helper.spawner }),
      }),
    ...(helper && {
      podNetns: createIproute2PodNetns(helper.commands),
      routes: createIproute2PodRoutes(helper.commands),
    }),
  });
  await writeProcessResponse(await plugin(req));
}

// A delegate that answers ADD with one interface and address, and everything else with nothing.
const warmDelegate: ProcessSpawner = {
  run: (_file, env) =>
    Promise.resolve({
      exitCode: 0,
      signal: null,
      timedOut: false,
      stderr: '',
      stdout:
        env['CNI_COMMAND'] === 'ADD'
          ? JSON.stringify({
              cniVersion: '1.0.0',
              interfaces: [{ name: env['CNI_IFNAME'], sandbox: env['CNI_NETNS'] }],
              ips: [{ address: '10.0.0.2/24', interface: 0 }],
              routes: [],
              dns: {},
            })
          : '',
    }),
};

// The API server of the warm-up: one pod naming one network, status writes and events accepted.
function warmApi(): KubeAccess {
  const pod = {
    metadata: {
      namespace: 'warm',
      name: 'p',
      uid: 'uid-p',
      resourceVersion: '1',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'net' },
    },
    spec: { containers: [{ name: 'c' }] },
  };
  const nad = {
    metadata: { namespace: 'warm', name: 'net' },
    spec: { config: JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'warm' }) },
  };
  return {
    server: 'https://127.0.0.1:1',
    request: (method, urlPath, body) =>
      Promise.resolve(
        method !== 'GET' ? body : urlPath.endsWith('/pods/p') ? pod : urlPath.endsWith('/net') ? nad : {},
      ),
    stream: () => ({ done: Promise.resolve(), abort: () => undefined }),
  };
}

/**
 * Build time only (cni/daemon/sea-build.ts, before it makes this module's V8 code cache): one ADD
 * and one DEL through the whole plugin against fakes (API, delegate, netns) in a temp dir, with the
 * kubeconfig parsed and every log line written to /dev/null. V8 compiles a function on its first
 * call; the code cache made afterwards holds what a real call runs (config and cache parsing,
 * planning, the network-status, the YAML kubeconfig, the logger), so a CNI call does not compile it.
 */
export async function warmUpCodeCache(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'netplumb-cni-warm-'));
  try {
    await writeFile(path.join(dir, 'warm'), '');
    await chmod(path.join(dir, 'warm'), 0o755);
    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      // As kubectl writes it (the shape kube-rest reads without the yaml package).
      [
        'apiVersion: v1',
        'clusters:',
        '- cluster:',
        '    insecure-skip-tls-verify: true',
        '    server: https://127.0.0.1:1',
        '  name: c',
        'contexts:',
        '- context:',
        '    cluster: c',
        '    user: u',
        '  name: x',
        'current-context: x',
        'kind: Config',
        'preferences: {}',
        'users:',
        '- name: u',
        '  user:',
        '    token: t',
        '',
      ].join('\n'),
    );
    const [client, rest] = await Promise.all([
      import('../cni/meta/kube-client-node.js'),
      import('../cni/meta/kube-rest.js'),
    ]);
    rest.loadKubeAccess(kubeconfig, {}, { shortLived: true });
    const kube = client.createKubeClient(warmApi());
    const stdin = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'warm',
      type: 'netplumb',
      binDir: dir,
      cniDir: path.join(dir, 'cache'),
      kubeconfig,
      logLevel: 'debug',
      logToStderr: false,
      logFile: '/dev/null',
      delegates: [{ cniVersion: '1.0.0', name: 'cluster', type: 'warm' }],
    });
    const plugin = createMetaPlugin({
      logger: loggerFor(stdin),
      clock: systemClock,
      kubeFor: () => kube,
      podResourcesFor: lazyPodResources,
      runnerFor: (conf) => createExecRunner({ binDirs: [conf.binDir], baseEnv: {}, spawner: warmDelegate }),
      podNetns: { linkNames: () => Promise.resolve(['lo']) },
    });
    for (const command of ['ADD', 'DEL']) {
      const res = await plugin({
        env: {
          CNI_COMMAND: command,
          CNI_CONTAINERID: 'warm',
          CNI_NETNS: '/run/netns/warm',
          CNI_IFNAME: 'eth0',
          CNI_PATH: dir,
          CNI_ARGS: 'IgnoreUnknown=true;K8S_POD_NAMESPACE=warm;K8S_POD_NAME=p;K8S_POD_UID=uid-p',
        },
        stdin,
      });
      if (res.exitCode !== 0) throw new Error(`the warm-up ${command} failed: ${res.stdout}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
