// `netplumb vf`: VF provisioning — set-count, bind, apply. Human output by default, --json for
// machines; a progress bar on stderr for long runs when stderr is a terminal.
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { NetplumbError } from '../../lib/errors.js';
import { createStateStore, DEFAULT_STATE_DIR } from '../records/state.js';
import { netnsAlive } from '../link/netns.js';
import { createIproute2VfSettings } from '../link/vf-settings-iproute2.js';
import type { OpenSimulatedNode, SimulatedNodePorts } from '../simulated-node-port.js';
import { resolveSysfsRoot } from '../sysfs.js';
import type { Change, ProvisionDeps } from './operations.js';
import { bindVfs, describeChange, setVfCount } from './operations.js';
import { createKernelPciControl } from './pci-control.js';
import { ProvisionError } from './pf-tree.js';
import { applyPolicy, loadPolicy } from './policy.js';

export interface VfCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Pick<NodeJS.WritableStream, 'write'>;
  readonly stderr: Pick<NodeJS.WritableStream, 'write'> & { readonly isTTY?: boolean };
  /** Wired by the composition root: opens `--simulated-node DIR`. */
  readonly openSimulatedNode?: OpenSimulatedNode;
}

interface CommonFlags {
  readonly json?: boolean;
  readonly force?: boolean;
  readonly sysfsRoot?: string;
  readonly stateDir?: string;
  readonly simulatedNode?: string;
}

function withCommon(cmd: Command): Command {
  return cmd
    .option('--json', 'print the changes as JSON for machines')
    .option('--force', 'also change VFs that pods are using')
    .option(
      '--sysfs-root <dir>',
      'the real sysfs to change, e.g. /host/sys in a container (env NETPLUMB_SYSFS_ROOT; default /sys)',
    )
    .option(
      '--state-dir <dir>',
      'SR-IOV CNI state, to find VFs in use (env NETPLUMB_SRIOV_STATE_DIR; default /var/lib/cni/sriov)',
    )
    .option(
      '--simulated-node <dir>',
      'change a simulated node written by hack/mknode instead of the kernel (env NETPLUMB_SIMULATED_NODE)',
    );
}

/** The `<n>` argument as the user typed it: "abc", "1.5" or "-1" are refused with their own text. */
export function parseVfCount(raw: string): number {
  const text = raw.trim();
  if (!/^\d+$/.test(text)) {
    throw new ProvisionError('BAD_COUNT', `VF count "${raw}" must be a whole number ≥ 0`);
  }
  return Number(text);
}

export function vfCommand(deps: VfCommandDeps): Command {
  const env = deps.env;
  const nonEmpty = (v: string | undefined): string | undefined =>
    v === undefined || v === '' ? undefined : v;

  async function simulation(flags: CommonFlags): Promise<SimulatedNodePorts | null> {
    const dir = flags.simulatedNode ?? nonEmpty(env.NETPLUMB_SIMULATED_NODE);
    if (dir === undefined) return null;
    if (flags.sysfsRoot !== undefined) {
      throw new ProvisionError('USAGE', '--sysfs-root and --simulated-node exclude each other: give one');
    }
    if (deps.openSimulatedNode === undefined) {
      throw new ProvisionError('USAGE', '--simulated-node: this build of netplumb has no simulator');
    }
    return deps.openSimulatedNode(dir);
  }

  async function build(flags: CommonFlags): Promise<{ pdeps: ProvisionDeps; finish: () => void }> {
    const sim = await simulation(flags);
    const sysfsRoot = sim?.sysfsRoot ?? resolveSysfsRoot(flags.sysfsRoot, env);
    const showBar = flags.json !== true && deps.stderr.isTTY === true;
    let bar: cliProgress.SingleBar | null = null;
    const pdeps: ProvisionDeps = {
      sysfsRoot,
      control: sim?.pciControl ?? createKernelPciControl(sysfsRoot),
      settings: sim?.vfSettings ?? createIproute2VfSettings(),
      cniState: createStateStore(
        flags.stateDir ?? nonEmpty(env.NETPLUMB_SRIOV_STATE_DIR) ?? DEFAULT_STATE_DIR,
      ),
      netnsAlive,
      onProgress: (done, total) => {
        if (!showBar || total < 8) return;
        if (bar === null) {
          bar = new cliProgress.SingleBar(
            {
              stream: deps.stderr as NodeJS.WritableStream,
              format: 'netplumb vf [{bar}] {value}/{total} steps',
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(total, 0);
        }
        bar.update(done);
      },
    };
    return {
      pdeps,
      finish: () => {
        bar?.stop();
      },
    };
  }

  async function run(
    flags: CommonFlags,
    cmd: Command,
    work: (d: ProvisionDeps) => Promise<Change[]>,
  ): Promise<void> {
    let changes: Change[];
    let finish = (): void => undefined;
    try {
      const built = await build(flags);
      finish = built.finish;
      changes = await work(built.pdeps);
    } catch (error) {
      finish();
      if (error instanceof NetplumbError)
        cmd.error(`error: ${error.message}`, { exitCode: error.exitCode, code: String(error.code) });
      throw error;
    }
    finish();
    if (flags.json === true) {
      deps.stdout.write(`${JSON.stringify({ changed: changes.length > 0, changes }, null, 2)}\n`);
    } else if (changes.length === 0) {
      deps.stdout.write('nothing to change\n');
    } else {
      for (const c of changes) deps.stdout.write(`${describeChange(c)}\n`);
    }
  }

  const vf = new Command('vf').description(
    'Provision SR-IOV VFs: count, driver binding, declarative per-node policy',
  );

  vf.addCommand(
    withCommon(new Command('set-count'))
      .description('Set the number of VFs of a PF (goes through 0 when changing a non-zero count)')
      .argument('<pf>', 'PF netdev name or PCI address')
      .argument('<n>', 'number of VFs')
      .action(async (pf: string, n: string, flags: CommonFlags, cmd: Command) => {
        await run(flags, cmd, (d) => setVfCount(d, pf, parseVfCount(n), flags.force === true));
      }),
  );

  vf.addCommand(
    withCommon(new Command('bind'))
      .description('Bind VFs to a driver (driver_override, unbind, probe)')
      .argument('<vf...>', 'VF PCI addresses')
      .requiredOption('--driver <name>', 'vfio-pci, uio_pci_generic, or a kernel driver such as iavf')
      .action(async (vfs: string[], flags: CommonFlags & { driver: string }, cmd: Command) => {
        await run(flags, cmd, (d) => bindVfs(d, vfs, flags.driver, flags.force === true));
      }),
  );

  vf.addCommand(
    withCommon(new Command('apply'))
      .description(
        'Apply a per-node VF policy (JSON or YAML): PF → count, driver and VLAN/trust/spoofchk per VF range; idempotent',
      )
      .argument('<file>', 'policy file')
      .action(async (file: string, flags: CommonFlags, cmd: Command) => {
        await run(flags, cmd, async (d) => applyPolicy(d, await loadPolicy(file), flags.force === true));
      }),
  );
  return vf;
}
