// `netplumb vf`: VF provisioning — set-count, bind, apply. Human output by default, --json for
// machines; a progress bar on stderr for long runs when stderr is a terminal.
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { createStateStore, DEFAULT_STATE_DIR } from '../records/state.js';
import { simulatedLinksFile } from '../../cni/sriov/wiring.js';
import { netnsAlive } from '../link/netns.js';
import { createIproute2VfSettings } from '../link/vf-settings-iproute2.js';
import { createVfSettingsRecorder } from '../../sim/vf-settings-recorder.js';
import { DEFAULT_SYSFS_ROOT, resolveSysfsRoot } from '../sysfs.js';
import type { Change, ProvisionDeps } from './operations.js';
import { bindVfs, describeChange, setVfCount } from './operations.js';
import { createKernelPciControl, createSimulatedPciControl } from './pci-control.js';
import { ProvisionError } from './pf-tree.js';
import { applyPolicy, loadPolicy } from './policy.js';

export interface VfCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Pick<NodeJS.WritableStream, 'write'>;
  readonly stderr: Pick<NodeJS.WritableStream, 'write'> & { readonly isTTY?: boolean };
}

interface CommonFlags {
  readonly json?: boolean;
  readonly force?: boolean;
  readonly sysfsRoot?: string;
  readonly stateDir?: string;
  readonly pfRecorderDir?: string;
}

function withCommon(cmd: Command): Command {
  return cmd
    .option('--json', 'print the changes as JSON for machines')
    .option('--force', 'also change VFs that pods are using')
    .option(
      '--sysfs-root <dir>',
      'sysfs to change (env NETPLUMB_SYSFS_ROOT; anything but /sys is a simulated node)',
    )
    .option(
      '--state-dir <dir>',
      'SR-IOV CNI state, to find VFs in use (env NETPLUMB_SRIOV_STATE_DIR; default /var/lib/cni/sriov)',
    )
    .option(
      '--pf-recorder-dir <dir>',
      'simulated node: record PF VF settings here instead of running ip (env NETPLUMB_PF_RECORDER_DIR)',
    );
}

export function vfCommand(deps: VfCommandDeps): Command {
  const env = deps.env;
  const nonEmpty = (v: string | undefined): string | undefined =>
    v === undefined || v === '' ? undefined : v;

  function build(flags: CommonFlags): { pdeps: ProvisionDeps; finish: () => void } {
    const sysfsRoot = resolveSysfsRoot(flags.sysfsRoot, env);
    const recorder = flags.pfRecorderDir ?? nonEmpty(env.NETPLUMB_PF_RECORDER_DIR);
    const showBar = flags.json !== true && deps.stderr.isTTY === true;
    let bar: cliProgress.SingleBar | null = null;
    const pdeps: ProvisionDeps = {
      sysfsRoot,
      control:
        sysfsRoot === DEFAULT_SYSFS_ROOT
          ? createKernelPciControl(sysfsRoot)
          : createSimulatedPciControl(sysfsRoot),
      settings:
        recorder === undefined
          ? createIproute2VfSettings()
          : createVfSettingsRecorder({ dir: recorder, ...simulatedLinksFile(sysfsRoot) }),
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
    const { pdeps, finish } = build(flags);
    let changes: Change[];
    try {
      changes = await work(pdeps);
    } catch (error) {
      finish();
      if (error instanceof ProvisionError)
        cmd.error(`error: ${error.message}`, { exitCode: 1, code: error.code });
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
        const count = Number(n);
        await run(flags, cmd, (d) => setVfCount(d, pf, count, flags.force === true));
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
