// `netplumb …` as a real process in the guest (from the hack/vm-e2e bundle).
import { execFile } from 'node:child_process';
import path from 'node:path';

export interface CliOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function netplumb(args: readonly string[]): Promise<CliOutcome> {
  const bundles = process.env.NETPLUMB_VM_BIN;
  if (bundles === undefined) throw new Error('NETPLUMB_VM_BIN is not set: run the suite with hack/vm-e2e');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(bundles, 'netplumb.mjs'), ...args],
      { encoding: 'utf8' },
      (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1,
          stdout,
          stderr,
        });
      },
    );
  });
}

/** Runs `netplumb …`; fails with its output unless it exited 0. */
export async function netplumbOk(args: readonly string[]): Promise<string> {
  const r = await netplumb(args);
  if (r.code !== 0) throw new Error(`netplumb ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
