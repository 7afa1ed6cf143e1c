// `netplumb device-plugin` as a real process in the guest (from the hack/vm-e2e bundle).
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeGuestExecutable } from './guest.js';

export interface RunningDevicePlugin {
  /** What it printed on stderr so far (pino JSON lines). */
  stderr(): string;
  /** SIGTERM, then waits for the exit; returns the exit code. */
  stop(): Promise<number | null>;
}

export async function startDevicePlugin(args: readonly string[]): Promise<RunningDevicePlugin> {
  const bin = await writeGuestExecutable(
    await mkdtemp(path.join(os.tmpdir(), 'np-vm-dp-')),
    'netplumb',
    'netplumb',
  );
  const child = spawn(bin, ['device-plugin', '--rescan-interval', '0', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      resolve(code);
    });
  });
  return {
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
