// `netplumb cni-daemon`, `netplumb install` and `netplumb uninstall`.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import type { Logger } from 'pino';
import { ExitCode, reportCliError } from '../../lib/errors.js';
import type { JsonObject } from '../../lib/json.js';
import type { PfVfSettings } from '../../sriov/link/vf-settings.js';
import type { OpenSimulatedNode } from '../../sriov/simulated-node-port.js';
import { daemonLogger } from './daemon-config.js';
import { DaemonConfigError, startCniDaemon, readDaemonConfig } from './daemon.js';
import type { RunningDaemon } from './daemon.js';
import type { DaemonSetTracker } from './uninstall-on-delete.js';
import { install, uninstall } from './install.js';
import type { InstallItem } from './install.js';
import { GENERATED_CONF } from './conf-gen.js';
import { buildShim, isStaticShim } from './shim-build.js';
import { buildLauncher, buildSpawner } from './spawner/build.js';
import { DEFAULT_SOCKET } from './wire.js';
import { unlink } from 'node:fs/promises';

export interface DaemonCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Pick<NodeJS.WritableStream, 'write'>;
  readonly stderr: Pick<NodeJS.WritableStream, 'write'>;
  readonly on: (signal: 'SIGTERM' | 'SIGINT', fn: () => void) => unknown;
  /** Wired by the composition root: opens `--simulated-node DIR`. */
  readonly openSimulatedNode?: OpenSimulatedNode;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be an integer >= 1');
  return n;
}

export function hostPort(v: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(v);
  if (!m) throw new InvalidArgumentError('must be HOST:PORT, e.g. 0.0.0.0:9092');
  const [, host = '', port = ''] = m;
  // `:PORT` stays on this host: /metrics is not for everyone who can reach the node.
  return { host: host === '' ? '127.0.0.1' : host, port: Number(port) };
}

interface DaemonFlags {
  socket: string;
  cniConfDir?: string;
  writeConfig: boolean;
  cniBinDir: string;
  daemonConfig?: string;
  kubeconfig?: string;
  nodeName?: string;
  metricsAddress?: { host: string; port: number };
  maxConcurrent: number;
  maxQueued: number;
  readyWaitMs: number;
  sysfsRoot?: string;
  simulatedNode?: string;
  uninstallOnDelete?: string;
  spawner: string;
  sriovStateDir: string;
  delegateLogDir: string;
  logLevel?: string;
}

async function sriovNode(
  f: DaemonFlags,
  deps: DaemonCommandDeps,
): Promise<{ sysfsRoot: string; sriovPf?: PfVfSettings }> {
  if (f.simulatedNode === undefined) return { sysfsRoot: f.sysfsRoot ?? '/sys' };
  if (f.sysfsRoot !== undefined) {
    throw new InvalidArgumentError('--sysfs-root and --simulated-node exclude each other: give one');
  }
  if (deps.openSimulatedNode === undefined) {
    throw new InvalidArgumentError('--simulated-node: this build of netplumb has no simulator');
  }
  const sim = await deps.openSimulatedNode(f.simulatedNode);
  return { sysfsRoot: sim.sysfsRoot, sriovPf: sim.vfSettings };
}

/** The checked --daemon-config and the logger it asks for; bad input is a DaemonConfigError (exit 2). */
async function configAndLogger(
  f: DaemonFlags,
): Promise<{ daemonConfig: JsonObject | undefined; logger: Logger }> {
  const daemonConfig = f.daemonConfig === undefined ? undefined : await readDaemonConfig(f.daemonConfig);
  try {
    return { daemonConfig, logger: daemonLogger(f.logLevel, daemonConfig) };
  } catch (err) {
    throw new DaemonConfigError(
      `--daemon-config ${f.daemonConfig ?? ''}: logFile: ${(err as Error).message}`,
      {
        cause: err,
        exitCode: ExitCode.USAGE,
      },
    );
  }
}

export function cniDaemonCommand(deps: DaemonCommandDeps): Command {
  return new Command('cni-daemon')
    .description(
      'Serve the node’s CNI calls over a unix socket (thick mode): informer caches, in-process sriov, metrics',
    )
    .option('--socket <path>', 'unix socket (its directory is made 0700, the socket 0600)', DEFAULT_SOCKET)
    .option(
      '--cni-conf-dir <dir>',
      `write ${GENERATED_CONF} here from the node's primary config`,
      '/etc/cni/net.d',
    )
    .option('--no-write-config', 'do not write a CNI config (the daemon only serves the socket)')
    .option(
      '--cni-bin-dir <dir>',
      'where `netplumb install` put the executables (removed on uninstall)',
      '/opt/cni/bin',
    )
    .option(
      '--daemon-config <file>',
      'JSON object of Multus keys for the generated config (confDir, cniDir, readinessindicatorfile, ...)',
    )
    .option(
      '--kubeconfig <file>',
      'kubeconfig (default: in-cluster when KUBERNETES_SERVICE_HOST is set, else no API access)',
    )
    .option('--node-name <name>', 'this node (default env NODE_NAME): the pod informer watches only its pods')
    .option(
      '--metrics-address <host:port>',
      'serve /healthz /readyz /metrics on TCP too (":PORT" = 127.0.0.1:PORT; give 0.0.0.0:PORT to expose them)',
      hostPort,
    )
    .option('--max-concurrent <n>', 'CNI requests served at once', positiveInt, 16)
    .option(
      '--max-queued <n>',
      'requests waiting for a slot before error 11 (bounds memory)',
      positiveInt,
      256,
    )
    .option('--ready-wait-ms <ms>', 'how long ADD waits for readiness before error 11', positiveInt, 55_000)
    .option('--sysfs-root <dir>', 'sysfs for the in-process sriov plugin, e.g. /host/sys (default /sys)')
    .option(
      '--simulated-node <dir>',
      'run the in-process sriov plugin on a simulated node from hack/mknode (its sysfs tree, PF settings recorded)',
    )
    .option(
      '--uninstall-on-delete <daemonset>',
      'on SIGTERM, if this DaemonSet (in env POD_NAMESPACE) is being deleted, remove the config and the installed executables',
    )
    .option(
      '--spawner <path>',
      'netplumb-spawner helper that starts the delegates without forking the daemon ("none": Node child_process)',
      defaultSpawner(),
    )
    .option('--sriov-state-dir <dir>', 'state of the in-process sriov plugin', '/var/lib/cni/sriov')
    .option(
      '--delegate-log-dir <dir>',
      'the only directory a NAD\'s sriov "logFile" may write into ("" = ignore logFile from NADs)',
      '/var/log/netplumb',
    )
    .option('--log-level <level>', 'pino level (default: logLevel of --daemon-config, else info)')
    .action(async (f: DaemonFlags) => {
      const started = await configAndLogger(f).catch((err: unknown) => {
        process.exitCode = reportCliError(err, deps.stderr);
        return undefined;
      });
      if (started === undefined) return;
      const { daemonConfig, logger } = started;
      const inCluster = (deps.env['KUBERNETES_SERVICE_HOST'] ?? '') !== '';
      const daemon = await startCniDaemon({
        socketPath: f.socket,
        cniConfDir: f.writeConfig ? f.cniConfDir : undefined,
        ...(daemonConfig === undefined ? {} : { daemonConfig }),
        kube:
          f.kubeconfig !== undefined ? { kubeconfig: f.kubeconfig } : inCluster ? 'in-cluster' : undefined,
        nodeName: f.nodeName ?? deps.env['NODE_NAME'],
        metricsAddress: f.metricsAddress,
        maxConcurrent: f.maxConcurrent,
        maxQueued: f.maxQueued,
        readyWaitMs: f.readyWaitMs,
        sriovStateDir: f.sriovStateDir,
        delegateLogDir: f.delegateLogDir,
        ...(await sriovNode(f, deps)),
        spawnerPath: f.spawner === 'none' ? undefined : f.spawner,
        logger,
      });
      const ns = deps.env['POD_NAMESPACE'] ?? '';
      // Watched from start: at SIGTERM the ServiceAccount and RBAC may already be gone (see uninstall-on-delete.ts).
      const tracker =
        f.uninstallOnDelete !== undefined && ns !== ''
          ? daemon.trackDaemonSet(ns, f.uninstallOnDelete)
          : undefined;
      await new Promise<void>((resolve) => {
        deps.on('SIGTERM', resolve);
        deps.on('SIGINT', resolve);
      });
      logger.info('stopping');
      await stopDaemon(daemon, tracker, f, logger);
      process.exitCode = 0;
    });
}

/**
 * Uninstall (the DaemonSet is being deleted): the config goes first, so that the runtime sends the
 * node's other pods straight to the cluster network instead of to a daemon that is leaving, then
 * the daemon drains, then the executables go. Restart: the daemon drains and everything stays.
 */
async function stopDaemon(
  daemon: RunningDaemon,
  tracker: DaemonSetTracker | undefined,
  f: DaemonFlags,
  logger: Logger,
): Promise<void> {
  const decision = tracker !== undefined ? await tracker.decide() : undefined;
  await tracker?.stop();
  if (decision !== undefined)
    logger.info({ uninstall: decision.uninstall, reason: decision.reason }, 'uninstall-on-delete');
  if (decision?.uninstall === true) await daemon.confWriter?.remove();
  await daemon.close();
  if (decision?.uninstall !== true) return;
  const r = await uninstall(f.cniBinDir);
  logger.info(
    { removed: r.removed, kept: r.kept },
    'DaemonSet deleted: removed the CNI config and executables',
  );
}

/** dist/spawner/netplumb-spawner of this install (built by hack/build-shim.sh), or "none" without it. */
function defaultSpawner(): string {
  const file = path.join(projectRoot(), 'dist', 'spawner', 'netplumb-spawner');
  return existsSync(file) ? file : 'none';
}

/** Where the built artifacts live: dist/shim and dist/sea under the project root. */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return dir;
}

interface InstallFlags {
  cniBinDir: string;
  json?: boolean;
}

export function installCommand(deps: DaemonCommandDeps): Command {
  return new Command('install')
    .description(
      'Install the CNI executables (netplumb-shim, netplumb-cni with its Node executable netplumb-cni-node and its netplumb-spawner) atomically',
    )
    .requiredOption('--cni-bin-dir <dir>', 'target directory, e.g. /host/opt/cni/bin in an init container')
    .option('--json', 'print JSON')
    .action(async (f: InstallFlags) => {
      const root = projectRoot();
      // An image ships the launcher prebuilt (npm run build:shim); a source checkout builds it here.
      const prebuilt = path.join(root, 'dist', 'shim', 'netplumb-shim');
      const shim = existsSync(prebuilt)
        ? { file: prebuilt, static: await isStaticShim(prebuilt) }
        : await buildShim(prebuilt);
      const items: InstallItem[] = [{ name: 'netplumb-shim', source: shim.file }];
      const sea = path.join(root, 'dist', 'sea', 'netplumb-cni-node');
      if (existsSync(sea)) {
        // The Node executable and the helper go first, the launcher that runs them last: a call
        // made during the install never finds `netplumb-cni` without what it starts.
        items.push({ name: 'netplumb-cni-node', source: sea });
        // Prebuilt in an image (npm run build:shim, build:sea); a source checkout builds them here.
        const helper = path.join(root, 'dist', 'spawner', 'netplumb-spawner');
        if (!existsSync(helper)) await buildSpawner(helper);
        items.push({ name: 'netplumb-spawner', source: helper });
        const launcher = path.join(root, 'dist', 'sea', 'netplumb-cni');
        if (!existsSync(launcher)) await buildLauncher(launcher);
        items.push({ name: 'netplumb-cni', source: launcher });
      } else
        deps.stderr.write(
          `warning: ${sea} not built (npm run build:sea): thin mode and the DEL fallback are unavailable on this host\n`,
        );
      const installed = await install(f.cniBinDir, items);
      deps.stdout.write(
        f.json === true
          ? `${JSON.stringify({ dir: f.cniBinDir, installed, staticShim: shim.static })}\n`
          : `installed into ${f.cniBinDir}: ${installed.join(', ')}${shim.static ? '' : ' (shim dynamically linked)'}\n`,
      );
    });
}

interface UninstallFlags {
  cniBinDir: string;
  cniConfDir?: string;
  json?: boolean;
}

export function uninstallCommand(deps: DaemonCommandDeps): Command {
  return new Command('uninstall')
    .description('Remove exactly what `netplumb install` installed (and the generated CNI config)')
    .requiredOption('--cni-bin-dir <dir>', 'directory given to `netplumb install`')
    .option('--cni-conf-dir <dir>', `also remove ${GENERATED_CONF} from this directory`)
    .option('--json', 'print JSON')
    .action(async (f: UninstallFlags) => {
      const r = await uninstall(f.cniBinDir);
      if (f.cniConfDir !== undefined) {
        await unlink(path.join(f.cniConfDir, GENERATED_CONF)).catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        });
      }
      deps.stdout.write(
        f.json === true
          ? `${JSON.stringify(r)}\n`
          : `removed: ${r.removed.join(', ') || 'nothing'}${r.kept.length ? `; kept (changed since install): ${r.kept.join(', ')}` : ''}\n`,
      );
    });
}
