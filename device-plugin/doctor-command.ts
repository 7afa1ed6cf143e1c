// `netplumb doctor`: is this node ready for SR-IOV and DPDK? Every check (sriov/doctor for the
// hardware and kernel, device-plugin/node-checks for the config and the kubelet) as a table or
// `--json`; exit 0 all passed, 1 warnings, 2 a failure (or bad flags).
import path from 'node:path';
import { Command } from 'commander';
import { InspectError } from '../sriov/inspect.js';
import { simulatedHost, systeminformationHost, UNKNOWN_HOST } from '../sriov/node-info.js';
import type { HostSource } from '../sriov/node-info.js';
import { doctorDocument, renderDoctor } from '../sriov/doctor/render.js';
import { SIMULATED_NODE_ENV, simulatedNodePaths } from '../sriov/simulated-node-port.js';
import { resolveSysfsRoot } from '../sriov/sysfs.js';
import { resolveVfStateSource } from '../sriov/vf-state.js';
import { runNodeChecks } from './node-checks.js';

export interface DoctorCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Pick<NodeJS.WritableStream, 'write'>;
  readonly stderr: Pick<NodeJS.WritableStream, 'write'>;
  /** The verdict is the exit code: 0 ready, 1 warnings, 2 not ready. */
  readonly setExitCode: (code: number) => void;
}

interface Flags {
  readonly json?: boolean;
  readonly pf?: string;
  readonly all?: boolean;
  readonly sysfsRoot?: string;
  readonly procRoot: string;
  readonly linksFile?: string;
  readonly simulatedNode?: string;
  readonly config: string;
  readonly resourcePrefix: string;
  readonly kubeletRoot: string;
}

interface Sources {
  readonly sysfsRoot: string;
  readonly procRoot: string;
  readonly linksFile: string | undefined;
  readonly host: HostSource;
}

function sources(flags: Flags, env: NodeJS.ProcessEnv, cmd: Command): Sources {
  const dir = flags.simulatedNode ?? (env[SIMULATED_NODE_ENV] || undefined);
  if (dir === undefined) {
    return {
      sysfsRoot: resolveSysfsRoot(flags.sysfsRoot, env),
      procRoot: path.resolve(flags.procRoot),
      linksFile: flags.linksFile,
      host: systeminformationHost(),
    };
  }
  if (flags.sysfsRoot !== undefined || flags.linksFile !== undefined)
    cmd.error('error: --simulated-node excludes --sysfs-root and --links-file: give one', { exitCode: 2 });
  const sim = simulatedNodePaths(dir);
  return {
    sysfsRoot: sim.sysfsRoot,
    procRoot: path.join(path.resolve(dir), 'proc'),
    linksFile: sim.linksFile,
    host: simulatedHost(path.resolve(dir)),
  };
}

export function doctorCommand(deps: DoctorCommandDeps): Command {
  return new Command('doctor')
    .description('Check that the node is ready for SR-IOV and DPDK (exit 0 ready, 1 warnings, 2 not ready)')
    .option('--json', 'print JSON for machines instead of the table')
    .option('--pf <name|bdf>', 'only this PF (netdev name or PCI address); node-wide checks still run')
    .option('--all', 'also SR-IOV capable PCI devices that are not network devices')
    .option('--sysfs-root <dir>', 'sysfs to read, e.g. /host/sys (env NETPLUMB_SYSFS_ROOT; default /sys)')
    .option('--proc-root <dir>', 'proc to read the kernel command line from, e.g. /host/proc', '/proc')
    .option(
      '--links-file <file>',
      'VF state from a saved `ip -json -details link show` dump instead of running ip',
    )
    .option(
      '--simulated-node <dir>',
      'check a simulated node from hack/mknode (its sys/, proc/, links.json, host.json; env NETPLUMB_SIMULATED_NODE)',
    )
    .option(
      '--config <file>',
      'the device plugin config.json to check against the node',
      '/etc/pcidp/config.json',
    )
    .option('--resource-prefix <prefix>', 'default resource prefix (as the device plugin)', 'intel.com')
    .option('--kubelet-root <dir>', 'kubelet state dir holding the kubelet sockets', '/var/lib/kubelet')
    .action(async (flags: Flags, cmd: Command) => {
      const src = sources(flags, deps.env, cmd);
      const checking = runNodeChecks({
        sysfsRoot: src.sysfsRoot,
        procRoot: src.procRoot,
        vfState: resolveVfStateSource(src.linksFile),
        host: src.host,
        configFile: path.resolve(flags.config),
        resourcePrefix: flags.resourcePrefix,
        kubeletRoot: flags.kubeletRoot,
        all: flags.all === true,
        ...(flags.pf === undefined ? {} : { pf: flags.pf }),
      });
      const [run, info] = await Promise.all([
        checking.catch((err: unknown) => {
          if (err instanceof InspectError)
            cmd.error(`error: ${err.message}`, { exitCode: 2, code: String(err.code) });
          throw err;
        }),
        src.host.info().catch(() => UNKNOWN_HOST),
      ]);
      for (const w of run.warnings) deps.stderr.write(`warning: ${w}\n`);
      const doc = doctorDocument({ ...info, origin: src.host.origin }, run.checks);
      deps.stdout.write(flags.json === true ? `${JSON.stringify(doc, null, 2)}\n` : renderDoctor(doc));
      deps.setExitCode(doc.exitCode);
    });
}
