// `netplumb inspect`: discover the node and print it (human table, or --json for machines).
// Warnings about the tree go to stderr, so `--json` stdout stays parseable.
import { Command } from 'commander';
import { discoverNode } from './discover.js';
import { InspectError, inspectDocument, renderInspect, selectPf } from './inspect.js';
import { resolveSysfsRoot } from './sysfs.js';
import { resolveVfStateSource } from './vf-state.js';

export interface InspectCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Pick<NodeJS.WritableStream, 'write'>;
  readonly stderr: Pick<NodeJS.WritableStream, 'write'>;
}

interface InspectFlags {
  readonly json?: boolean;
  readonly pf?: string;
  readonly all?: boolean;
  readonly sysfsRoot?: string;
  readonly linksFile?: string;
}

export function inspectCommand(deps: InspectCommandDeps): Command {
  return new Command('inspect')
    .description('Show the SR-IOV PFs with their VFs (DPDK-bound VFs marked) and the host NICs')
    .option('--json', 'print JSON for machines instead of the table')
    .option('--pf <name|bdf>', 'only this PF (netdev name or PCI address) and its VFs')
    .option('--all', 'also SR-IOV capable PCI devices that are not network devices')
    .option('--sysfs-root <dir>', 'sysfs to read (env NETPLUMB_SYSFS_ROOT; default /sys)')
    .option(
      '--links-file <file>',
      'saved `ip -json -details link show` output instead of running ip (env NETPLUMB_LINKS_FILE)',
    )
    .action(async (flags: InspectFlags, cmd: Command) => {
      const model = await discoverNode({
        sysfsRoot: resolveSysfsRoot(flags.sysfsRoot, deps.env),
        vfState: resolveVfStateSource(flags.linksFile, deps.env),
        all: flags.all === true,
      });
      for (const w of model.warnings) deps.stderr.write(`warning: ${w}\n`);
      let shown = model;
      if (flags.pf !== undefined) {
        try {
          shown = selectPf(model, flags.pf);
        } catch (err) {
          if (err instanceof InspectError)
            cmd.error(`error: ${err.message}`, { exitCode: 1, code: err.code });
          throw err;
        }
      }
      deps.stdout.write(
        flags.json === true ? `${JSON.stringify(inspectDocument(shown), null, 2)}\n` : renderInspect(shown),
      );
    });
}
