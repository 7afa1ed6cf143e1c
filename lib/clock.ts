// Time as one port: injected wherever there is polling, backoff, a timer or a deadline, so tests
// drive it. Timers return a cancel function; they do not keep the process alive on their own
// (a daemon's servers do that), so a forgotten timer never blocks an exit.
export type CancelTimer = () => void;

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
  setTimeout(fn: () => void, ms: number): CancelTimer;
  setInterval(fn: () => void, ms: number): CancelTimer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) =>
    new Promise((resolve) => {
      setTimeout(resolve, ms);
    }),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => {
      clearTimeout(t);
    };
  },
  setInterval: (fn, ms) => {
    const t = setInterval(fn, ms);
    t.unref();
    return () => {
      clearInterval(t);
    };
  },
};
