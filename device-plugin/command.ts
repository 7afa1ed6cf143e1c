// `netplumb device-plugin`: the composition root of the kubelet device plugin. Reads flags, builds
// the logger, metrics and ports, and runs until SIGTERM/SIGINT; SIGHUP reloads config and node.
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { discoverNode } from '../sriov/discover.js';
import { SIMULATED_NODE_ENV, simulatedNodePaths } from '../sriov/simulated-node-port.js';
import { resolveSysfsRoot } from '../sriov/sysfs.js';
import { resolveVfStateSource } from '../sriov/vf-state.js';
import { ConfigError } from './config.js';
import { ipMonitorLinkEvents } from './link-events.js';
import { fileDefaultRoutes, iproute2DefaultRoutes } from '../sriov/link/default-route.js';
import { sysfsRdmaCharDevices } from './rdma.js';
import { noMetrics, serveMetrics } from './metrics.js';
import type { PromDevicePluginMetrics } from './metrics-prom.js';
import type { NodeCheckOptions } from './node-checks.js';
import type { Logger } from 'pino';
import { createDevicePlugin, loadConfig } from './plugin.js';
import { nodeRescanProbe } from './rescan-probe.js';
import type { RegistrationMode } from './pool-server.js';

export interface DevicePluginCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly stderr: Pick<NodeJS.WritableStream, 'write'>;
  readonly on: (signal: NodeJS.Signals, listener: () => void) => unknown;
}

interface Flags {
  readonly config: string;
  readonly sysfsRoot?: string;
  readonly simulatedNode?: string;
  readonly kubeletRoot: string;
  readonly registration: RegistrationMode | 'auto';
  readonly devinfoDir: string;
  readonly cdi?: boolean;
  readonly cdiDir: string;
  readonly resourcePrefix: string;
  readonly metricsAddress?: string;
  readonly logLevel: string;
  readonly rescanInterval: string;
  readonly checkConfig?: string;
  readonly strict?: boolean;
}

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

/** `--check-config FILE`: the start-up validation alone, for CI pipelines. */
async function checkConfig(
  file: string,
  resourcePrefix: string,
  stderr: Pick<NodeJS.WritableStream, 'write'>,
  cmd: Command,
): Promise<void> {
  try {
    const config = await loadConfig(path.resolve(file), resourcePrefix, true);
    stderr.write(`${file}: valid, ${String(config.pools.length)} pool(s)\n`);
  } catch (err) {
    if (err instanceof ConfigError)
      cmd.error(`error: ${file}:\n${err.message}`, { exitCode: 2, code: err.code });
    throw err;
  }
}

/** The node checks behind /metrics; the doctor's modules are loaded only here. */
async function startNodeChecks(
  registry: PromDevicePluginMetrics['registry'],
  log: Logger,
  o: Omit<NodeCheckOptions, 'host'>,
): Promise<{ stop(): void }> {
  const [{ runNodeChecks, startNodeCheckMetrics }, { sysfsLinkSpeeds }] = await Promise.all([
    import('./node-checks.js'),
    import('../sriov/node-info.js'),
  ]);
  return startNodeCheckMetrics({
    registry,
    log,
    run: () => runNodeChecks({ ...o, host: { linkSpeeds: sysfsLinkSpeeds(o.sysfsRoot) } }),
  });
}

export function devicePluginCommand(deps: DevicePluginCommandDeps): Command {
  return new Command('device-plugin')
    .description('Advertise SR-IOV VFs, DPDK VFs and VLAN NICs to the kubelet (SRIOV-DP compatible config)')
    .option('--config <file>', 'SRIOV-DP config.json', '/etc/pcidp/config.json')
    .option('--sysfs-root <dir>', 'sysfs to read, e.g. /host/sys (env NETPLUMB_SYSFS_ROOT; default /sys)')
    .option(
      '--simulated-node <dir>',
      'serve a simulated node from hack/mknode: its sys/ tree and links.json instead of the kernel (env NETPLUMB_SIMULATED_NODE)',
    )
    .option(
      '--kubelet-root <dir>',
      'kubelet state dir (device-plugins/, plugins_registry/)',
      '/var/lib/kubelet',
    )
    .addOption(
      new Option('--registration <mode>', 'auto = plugin watcher if <kubelet-root>/plugins_registry exists')
        .choices(['auto', 'legacy', 'watcher'])
        .default('auto'),
    )
    .option('--devinfo-dir <dir>', 'Device Information Spec files', '/var/run/k8s.cni.cncf.io/devinfo/dp')
    .option(
      '--cdi',
      'write CDI specs; Allocate then also names the devices for CDI, as the cdi.k8s.io/<prefix>_<kind> annotation (as SRIOV-DP) and as cdi_devices (kubelet 1.29+, DevicePluginCDIDevices). Device specs are always returned, so kubelet 1.20 (neither field) still gets its device nodes',
    )
    .option('--cdi-dir <dir>', 'CDI spec dir (with --cdi)', '/var/run/cdi')
    .option('--resource-prefix <prefix>', 'default resource prefix', 'intel.com')
    .option('--metrics-address <host:port>', 'serve /metrics and /healthz, e.g. 0.0.0.0:9099')
    .addOption(
      new Option('--log-level <level>', 'pino log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
        .default('info'),
    )
    .option('--rescan-interval <ms>', 'rediscover the node every N ms (0 = only on events)', '10000')
    .option(
      '--strict',
      'refuse a config with anything SRIOV-DP would ignore or serve differently (exit 2 at start; a reload keeps the last config). Without it such entries are warnings (netplumb_dp_config_warnings) and only the pools they break are left out (netplumb_dp_config_pool_errors)',
    )
    .option(
      '--check-config <file>',
      'only validate a config.json, as strictly as --strict, and exit: 0 valid, 2 invalid',
    )
    .action(async (flags: Flags, cmd: Command) => {
      if (flags.checkConfig !== undefined) {
        await checkConfig(flags.checkConfig, flags.resourcePrefix, deps.stderr, cmd);
        return;
      }
      // Logs are pino JSON on stderr, as for every netplumb command (stdout is for command output).
      const log = pino({ level: flags.logLevel, base: { cmd: 'device-plugin' } }, pino.destination(2));
      grpc.setLogger({
        error: (...args: unknown[]) => {
          log.warn({ grpc: args.map(String).join(' ') }, 'grpc');
        },
        info: () => undefined,
        debug: () => undefined,
      });
      grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
      const rescanIntervalMs = Number(flags.rescanInterval);
      if (!Number.isInteger(rescanIntervalMs) || rescanIntervalMs < 0)
        cmd.error(`error: --rescan-interval ${flags.rescanInterval}: expected milliseconds (0 or more)`);
      const simulatedDir = flags.simulatedNode ?? nonEmpty(deps.env[SIMULATED_NODE_ENV]);
      if (simulatedDir !== undefined && flags.sysfsRoot !== undefined)
        cmd.error('error: --sysfs-root and --simulated-node exclude each other: give one', { exitCode: 2 });
      const sim = simulatedDir === undefined ? null : simulatedNodePaths(simulatedDir);
      const sysfsRoot = sim?.sysfsRoot ?? resolveSysfsRoot(flags.sysfsRoot, deps.env);
      const vfState = resolveVfStateSource(sim?.linksFile);
      const simulated = sim !== null;
      // prom-client only when something can read it (see metrics.ts).
      const prom: PromDevicePluginMetrics | null =
        flags.metricsAddress === undefined ? null : (await import('./metrics-prom.js')).createMetrics();
      const metrics = prom ?? noMetrics();
      const defaultRoutes =
        simulatedDir === undefined
          ? iproute2DefaultRoutes()
          : fileDefaultRoutes(path.join(path.resolve(simulatedDir), 'routes.json'));
      const plugin = createDevicePlugin({
        configFile: path.resolve(flags.config),
        resourcePrefix: flags.resourcePrefix,
        strict: flags.strict === true,
        discover: () => discoverNode({ sysfsRoot, vfState, log, accelerators: true }),
        defaultRoutes,
        kubeletRoot: flags.kubeletRoot,
        registration: flags.registration,
        devinfoDir: flags.devinfoDir,
        cdiDir: flags.cdi === true ? flags.cdiDir : null,
        host: { vhostNet: existsSync('/dev/vhost-net') && existsSync('/dev/net/tun') },
        rdmaCharDevices: sysfsRdmaCharDevices(sysfsRoot),
        log,
        metrics,
        rescanIntervalMs,
        rescanProbe: nodeRescanProbe({ sysfsRoot, vfState, defaultRoutes }),
        ...(simulated ? {} : { linkEvents: ipMonitorLinkEvents(log) }),
      });
      try {
        await plugin.start();
      } catch (err) {
        if (err instanceof ConfigError) {
          cmd.error(`error: ${flags.config}:\n${err.message}`, { exitCode: 2, code: err.code });
        }
        throw err;
      }
      const http =
        flags.metricsAddress === undefined || prom === null
          ? null
          : await serveMetrics(flags.metricsAddress, prom.registry, () => {
              const s = plugin.status();
              return { ok: s.registered, ...s };
            });
      // netplumb_node_check{check,pf}: the `netplumb doctor` verdicts, for dashboards.
      const nodeChecks =
        http === null || prom === null
          ? null
          : await startNodeChecks(prom.registry, log, {
              sysfsRoot,
              procRoot: simulatedDir === undefined ? '/proc' : path.join(path.resolve(simulatedDir), 'proc'),
              vfState,
              configFile: path.resolve(flags.config),
              resourcePrefix: flags.resourcePrefix,
              kubeletRoot: flags.kubeletRoot,
            });
      // Signal listeners do not keep Node's event loop alive: with no pool served and no rescan
      // timer nothing else would, and the pending await would end the process with code 13.
      const keepAlive = setInterval(() => undefined, 2 ** 30);
      await new Promise<void>((resolve) => {
        deps.on('SIGHUP', () => {
          log.info('SIGHUP: reloading config and rediscovering');
          plugin.reload().catch((err: unknown) => {
            log.error({ err }, 'reload after SIGHUP failed');
          });
        });
        deps.on('SIGTERM', resolve);
        deps.on('SIGINT', resolve);
      });
      clearInterval(keepAlive);
      log.info('stopping');
      nodeChecks?.stop();
      http?.close();
      await plugin.stop();
    });
}
