// `netplumb inspect`: discover the node and print it (human table, or --json for machines).
// Warnings about the tree go to stderr, so `--json` stdout stays parseable.
import path from 'node:path';
import { Command } from 'commander';
import { discoverNode } from './discover.js';
import { InspectError, inspectDocument, renderInspect, selectPf } from './inspect.js';
import { readNodeHeader, renderNodeHeader } from './node-header.js';
import { simulatedHost, systeminformationHost } from './node-info.js';
import { SIMULATED_NODE_ENV, simulatedNodePaths } from './simulated-node-port.js';
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
  readonly simulatedNode?: string;
}

export function inspectCommand(deps: InspectCommandDeps): Command {
  return new Command('inspect')
    .description('Show the SR-IOV PFs with their VFs (DPDK-bound VFs marked) and the host NICs')
    .option('--json', 'print JSON for machines instead of the table')
    .option('--pf <name|bdf>', 'only this PF (netdev name or PCI address) and its VFs')
    .option('--all', 'also SR-IOV capable PCI devices that are not network devices')
    .option('--sysfs-root <dir>', 'sysfs to read, e.g. /host/sys (env NETPLUMB_SYSFS_ROOT; default /sys)')
    .option(
      '--links-file <file>',
      'VF state from a saved `ip -json -details link show` dump instead of running ip',
    )
    .option(
      '--simulated-node <dir>',
      'inspect a simulated node from hack/mknode (its sys/ and links.json; env NETPLUMB_SIMULATED_NODE)',
    )
    .action(async (flags: InspectFlags, cmd: Command) => {
      const simulatedDir = flags.simulatedNode ?? (deps.env[SIMULATED_NODE_ENV] || undefined);
      if (simulatedDir !== undefined && (flags.sysfsRoot !== undefined || flags.linksFile !== undefined))
        cmd.error('error: --simulated-node excludes --sysfs-root and --links-file: give one', {
          exitCode: 2,
        });
      const sim = simulatedDir === undefined ? null : simulatedNodePaths(simulatedDir);
      const sysfsRoot = sim?.sysfsRoot ?? resolveSysfsRoot(flags.sysfsRoot, deps.env);
      // The node header: host facts from systeminformation, or the simulated node's host.json.
      const host =
        simulatedDir === undefined ? systeminformationHost() : simulatedHost(path.resolve(simulatedDir));
      const [model, header] = await Promise.all([
        discoverNode({
          sysfsRoot,
          vfState: resolveVfStateSource(sim?.linksFile ?? flags.linksFile),
          all: flags.all === true,
        }),
        readNodeHeader(host, sysfsRoot),
      ]);
      for (const w of model.warnings) deps.stderr.write(`warning: ${w}\n`);
      let shown = model;
      if (flags.pf !== undefined) {
        try {
          shown = selectPf(model, flags.pf);
        } catch (err) {
          if (err instanceof InspectError)
            cmd.error(`error: ${err.message}`, { exitCode: 1, code: String(err.code) });
          throw err;
        }
      }
      deps.stdout.write(
        flags.json === true
          ? `${JSON.stringify({ node: header, ...inspectDocument(shown) }, null, 2)}\n`
          : renderNodeHeader(header) + renderInspect(shown),
      );
    });
}
