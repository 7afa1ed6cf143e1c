// Link up/down events from the kernel via `ip -o monitor link`, so health changes reach the
// kubelet without waiting for the next rescan.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';

/** Starts `ip -o monitor link`; calls `onEvent` per reported change. Returns a stop function. */
export function ipMonitorLinkEvents(log: Logger, ipBinary = 'ip'): (onEvent: () => void) => () => void {
  return (onEvent) => {
    const child = spawn(ipBinary, ['-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.on('error', (err) => {
      log.warn({ err }, 'ip monitor link unavailable; link changes are seen at the next rescan');
    });
    createInterface({ input: child.stdout }).on('line', () => {
      onEvent();
    });
    return () => {
      child.kill();
    };
  };
}
