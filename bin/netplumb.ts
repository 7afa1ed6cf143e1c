#!/usr/bin/env node
// Composition root of the `netplumb` CLI: the only place that reads argv and env for it.
// Each subcommand lives next to its domain and is registered here.
import { Command } from 'commander';

const program = new Command('netplumb')
  .description('SR-IOV VFs, DPDK VFs and VLAN NICs as Kubernetes resources, plumbed into pods')
  .showHelpAfterError();

// Subcommands (one line each; keep this list sorted):
program.addCommand((await import('../cni/daemon/command.js')).cniDaemonCommand(process));
program.addCommand((await import('./demo/command.js')).demoCommand(process));
program.addCommand((await import('../device-plugin/command.js')).devicePluginCommand(process));
program.addCommand((await import('../sriov/inspect-command.js')).inspectCommand(process));
program.addCommand((await import('../cni/daemon/command.js')).installCommand(process));
program.addCommand((await import('../cni/daemon/command.js')).uninstallCommand(process));
program.addCommand((await import('../sriov/provision/command.js')).vfCommand(process));

await program.parseAsync(process.argv);
