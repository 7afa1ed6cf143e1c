// Time as a port: injected wherever there is polling, backoff or a deadline, so tests drive it.
// Lives in sriov/ (the lowest layer) because device-plugin/ and cni/ both depend on it.
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) =>
    new Promise((resolve) => {
      setTimeout(resolve, ms);
    }),
};
