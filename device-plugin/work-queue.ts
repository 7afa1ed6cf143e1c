// The device plugin's one queue: every change (config reload, rediscovery, kubelet reconcile) runs
// through it in order, so two of them never interleave.
import type { Logger } from 'pino';

export interface WorkQueue {
  /** Runs `fn` after everything queued before it; its result or error goes to the caller. */
  readonly serial: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Event-driven work: queued like serial(), a failure is logged once (the next event retries). */
  readonly background: (what: string, fn: () => Promise<unknown>) => void;
}

export function createWorkQueue(log: Logger): WorkQueue {
  let queue: Promise<void> = Promise.resolve();
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn);
    queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
  return {
    serial,
    background(what, fn) {
      serial(fn).catch((err: unknown) => {
        log.error({ err }, `${what} failed`);
      });
    },
  };
}
