// `netplumb demo` (npm start): see demo.ts.
import { Command } from 'commander';
import { runDemo } from './demo.js';

export interface DemoCommandDeps {
  readonly stdout: Pick<NodeJS.WriteStream, 'write' | 'on'>;
  readonly on: (signal: 'SIGINT' | 'SIGTERM', fn: () => void) => unknown;
}

export function demoCommand(deps: DemoCommandDeps): Command {
  return new Command('demo')
    .description(
      'Run the whole product on a simulated SR-IOV node: device plugin, CNI daemon, a pod in a real netns',
    )
    .option(
      '--keep',
      'leave the netns, links and node tree up afterwards (to poke at with ip netns / netplumb inspect)',
    )
    .option('--json', 'print the report as JSON')
    .action(async (f: { keep?: boolean; json?: boolean }) => {
      // A closed pipe (`| head`) or Ctrl-C must not skip the clean-up of links and namespaces.
      deps.stdout.on('error', () => undefined);
      const state = { interrupted: false };
      const interrupt = (): void => {
        state.interrupted = true;
        process.stderr.write('interrupted: finishing and cleaning up\n');
      };
      deps.on('SIGINT', interrupt);
      deps.on('SIGTERM', interrupt);
      const quiet = { write: () => true };
      const report = await runDemo({
        keep: f.keep === true && !state.interrupted,
        out: f.json === true ? quiet : deps.stdout,
      });
      if (f.json === true) deps.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      if (state.interrupted) process.exitCode = 130;
    });
}
