// Caps concurrent CNI requests and bounds the queue behind them, so a burst of pod starts cannot
// grow the daemon's memory without limit (Multus' daemon is OOM-killed in bursts, #1346).
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
export class OverloadError extends NetplumbError {
  override readonly name = 'OverloadError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super('OVERLOADED', message, options);
  }
}

export interface Limiter {
  /** Runs fn when a slot is free; rejects with OverloadError at once when the queue is full. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  readonly active: number;
  readonly queued: number;
}

export function createLimiter(opts: { maxConcurrent: number; maxQueued: number }): Limiter {
  if (!Number.isInteger(opts.maxConcurrent) || opts.maxConcurrent < 1) {
    throw new RangeError(`maxConcurrent must be an integer >= 1, got ${opts.maxConcurrent}`);
  }
  let active = 0;
  const waiting: (() => void)[] = [];
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return {
    get active() {
      return active;
    },
    get queued() {
      return waiting.length;
    },
    async run<T>(fn: () => Promise<T>): Promise<T> {
      if (active >= opts.maxConcurrent) {
        if (waiting.length >= opts.maxQueued) {
          throw new OverloadError(
            `${active} CNI requests running and ${waiting.length} queued (limits --max-concurrent ${opts.maxConcurrent}, --max-queued ${opts.maxQueued})`,
          );
        }
        // The slot is handed over by release(): active stays counted.
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        active++;
      }
      try {
        return await fn();
      } finally {
        release();
      }
    },
  };
}
