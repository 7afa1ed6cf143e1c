#!/usr/bin/env node
// Composition root of the `netplumb` CLI: the only place that reads argv and env for it.
// Each subcommand lives next to its domain and is registered here. Only the invoked subcommand's
// module is loaded: the long-running ones (device-plugin, cni-daemon) then carry no other
// subcommand's dependencies in memory, and a short one starts fast.
import { Command } from 'commander';
import { reportCliError } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';
import type { OpenSimulatedNode } from '../sriov/simulated-node-port.js';

type Loader = () => Promise<Command>;

// `--simulated-node DIR`: the simulator is loaded only when a command is given one.
const openSimulatedNode: OpenSimulatedNode = async (dir) =>
  (await import('./demo/simulation.js')).openSimulatedNode(dir);
const io = {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  on: (signal: NodeJS.Signals, fn: () => void) => process.on(signal, fn),
  openSimulatedNode,
};

// Subcommands (one line each; keep this list sorted):
const subcommands: Readonly<Record<string, Loader>> = {
  'cni-daemon': async () => (await import('../cni/daemon/command.js')).cniDaemonCommand(io),
  demo: async () => (await import('./demo/command.js')).demoCommand(process),
  'device-plugin': async () => (await import('../device-plugin/command.js')).devicePluginCommand(process),
  doctor: async () =>
    (await import('../device-plugin/doctor-command.js')).doctorCommand({
      ...io,
      setExitCode: (c) => (process.exitCode = c),
    }),
  inspect: async () => (await import('../sriov/inspect-command.js')).inspectCommand(process),
  install: async () => (await import('../cni/daemon/command.js')).installCommand(process),
  uninstall: async () => (await import('../cni/daemon/command.js')).uninstallCommand(process),
  vf: async () => (await import('../sriov/provision/command.js')).vfCommand(io),
  webhook: async () =>
    (await import('../webhook/command.js')).webhookCommand({
      ...io,
      setExitCode: (c) => (process.exitCode = c),
    }),
};

const program = new Command('netplumb')
  .description('SR-IOV VFs, DPDK VFs and VLAN NICs as Kubernetes resources, plumbed into pods')
  .version(VERSION, '-V, --version', 'print the version')
  .showHelpAfterError();

const invoked = process.argv[2];
const load = invoked === undefined ? undefined : subcommands[invoked];
const versionOnly = invoked === '--version' || invoked === '-V';
// An unknown name, `help` or `--help` needs every subcommand for the listing.
for (const loader of versionOnly ? [] : load ? [load] : Object.values(subcommands))
  program.addCommand(await loader());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Every command's errors end here: ours by their message and exit code (2 = fix your input),
  // anything else as an internal error with its stack.
  process.exitCode = reportCliError(err, process.stderr, process.argv.includes('--json'));
}
