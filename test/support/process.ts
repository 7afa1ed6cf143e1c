// Runs an executable as a CNI runtime does: the given env only, stdin written and closed, stdout,
// stderr and the exit code back once both streams are at EOF ('close': a child still holding
// either, such as a helper that should not have them, would hold the answer back too).
import { spawn } from 'node:child_process';

export interface ProcessOutput {
  /** The exit code; null when a signal ended it. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runProcess(
  file: string,
  env: Readonly<Record<string, string>>,
  stdin: string,
  args: readonly string[] = [],
): Promise<ProcessOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
    // A child that exits without reading its stdin (a failed start) must not fail the caller.
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}
