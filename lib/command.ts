// Runs an external program (iproute2, nsenter) and captures its output. The one place the link
// adapters touch child_process, so every failure becomes a CommandError with argv and stderr.
import { NetplumbError } from './errors.js';
import type { NetplumbErrorOptions } from './errors.js';
import { childProcessModule } from './lazy-builtins.js';

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs argv[0] with the rest as arguments (stdin = `input`); rejects with CommandError on a non-zero exit. */
export type CommandRunner = (argv: readonly string[], input?: string) => Promise<CommandResult>;

export class CommandError extends NetplumbError {
  override readonly name = 'CommandError';
  readonly argv: readonly string[];
  /** The program's exit status; null when a signal ended it. */
  readonly status: number | null;
  readonly stderr: string;

  constructor(
    argv: readonly string[],
    status: number | null,
    stderr: string,
    options?: NetplumbErrorOptions,
  ) {
    super(
      'COMMAND_FAILED',
      `${argv.join(' ')} failed (exit ${status ?? 'signal'}): ${stderr.trim() || 'no output'}`,
      options,
    );
    this.argv = argv;
    this.status = status;
    this.stderr = stderr;
  }
}

/** The real runner: execFile without a shell, 10 MiB of output, stdin = `input` (empty by default). */
export function createCommandRunner(options: { timeoutMs?: number } = {}): CommandRunner {
  const timeout = options.timeoutMs ?? 30_000;
  return (argv, input) =>
    new Promise<CommandResult>((resolve, reject) => {
      const [file, ...args] = argv;
      if (file === undefined) {
        reject(new CommandError(argv, null, 'empty argv'));
        return;
      }
      const child = childProcessModule().execFile(
        file,
        args,
        { encoding: 'utf8', maxBuffer: 10 * 1024 * 1024, timeout },
        (error, stdout, stderr) => {
          if (error) {
            const code = typeof error.code === 'number' ? error.code : null;
            reject(new CommandError(argv, code, stderr || error.message, { cause: error }));
            return;
          }
          resolve({ stdout, stderr });
        },
      );
      // A program that exits without reading stdin makes the write fail with EPIPE: its exit code tells.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input ?? '');
    });
}
