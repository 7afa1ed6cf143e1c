// Named readiness conditions ("caches synced", "primary network config written", …). The daemon is
// ready when all are met; requests that need readiness wait for it within a deadline instead of
// failing during a restart.
import { systemClock } from '../../lib/clock.js';
import type { Clock } from '../../lib/clock.js';
export interface Readiness {
  /** Declares or updates a condition; `reason` says what is missing when not met. */
  set(condition: string, met: boolean, reason?: string): void;
  readonly ready: boolean;
  /** Unmet conditions with their reasons, for /readyz and errors. */
  pending(): string[];
  /** Resolves true once ready, false when `ms` passes first. */
  waitReady(ms: number): Promise<boolean>;
}

export function createReadiness(clock: Clock = systemClock): Readiness {
  const unmet = new Map<string, string>();
  let waiters: (() => void)[] = [];
  const notify = (): void => {
    if (unmet.size > 0) return;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  return {
    set(condition, met, reason) {
      if (met) unmet.delete(condition);
      else unmet.set(condition, reason ?? condition);
      notify();
    },
    get ready() {
      return unmet.size === 0;
    },
    pending() {
      return [...unmet.entries()].map(([k, v]) => (k === v ? k : `${k}: ${v}`));
    },
    waitReady(ms) {
      if (unmet.size === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (): void => {
          cancel();
          resolve(true);
        };
        const cancel = clock.setTimeout(() => {
          waiters = waiters.filter((f) => f !== done);
          resolve(false);
        }, ms);
        waiters.push(done);
      });
    },
  };
}
