// recordEvent in the daemon returns before the API has answered; the queue is bounded.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { KubeClient, PodEvent, PodInfo } from '../meta/kube.js';
import { withBackgroundEvents } from './background-events.js';

const pod: PodInfo = {
  namespace: 'ns',
  name: 'p',
  uid: 'u',
  resourceVersion: '1',
  annotations: {},
  containerNames: [],
};
const ev = (message: string): PodEvent => ({ type: 'Normal', reason: 'AddedInterface', message });

/** A KubeClient whose event posts wait until released (an API server that is slow to answer). */
function slowApi(): { kube: KubeClient; posted: string[]; release(): void } {
  const posted: string[] = [];
  let gate: () => void = () => undefined;
  const open = new Promise<void>((r) => (gate = r));
  const kube: KubeClient = {
    getPod: () => Promise.resolve(pod),
    getNad: () => Promise.reject(new Error('unused')),
    updatePodStatusAnnotations: () => Promise.resolve(),
    async recordEvent(_p, e) {
      await open;
      posted.push(e.message);
    },
  };
  return {
    kube,
    posted,
    release: () => {
      gate();
    },
  };
}

describe('withBackgroundEvents', () => {
  it('returns from recordEvent before the API answers, and posts every event afterwards', async () => {
    const api = slowApi();
    const kube = withBackgroundEvents(api.kube, { logger: pino({ level: 'silent' }) });
    let returned = 0;
    for (const m of ['a', 'b', 'c', 'd', 'e', 'f']) {
      await kube.recordEvent?.(pod, ev(m));
      returned++;
    }
    expect(returned).toBe(6);
    expect(api.posted).toEqual([]);
    api.release();
    await kube.drain();
    expect([...api.posted].sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('drops events beyond the queue bound instead of growing', async () => {
    const api = slowApi();
    const kube = withBackgroundEvents(api.kube, {
      logger: pino({ level: 'silent' }),
      maxQueued: 2,
      concurrency: 1,
    });
    for (let i = 0; i < 10; i++) await kube.recordEvent?.(pod, ev(String(i)));
    expect(kube.dropped()).toBe(8);
    api.release();
    await kube.drain();
    expect(api.posted).toEqual(['0', '1']);
  });

  it('starts no post inside recordEvent: the caller (the ADD answer) runs first, the post on the next loop turn', async () => {
    let calls = 0;
    const api: KubeClient = {
      getPod: () => Promise.resolve(pod),
      getNad: () => Promise.reject(new Error('unused')),
      updatePodStatusAnnotations: () => Promise.resolve(),
      recordEvent: () => {
        calls++;
        return Promise.resolve();
      },
    };
    const kube = withBackgroundEvents(api, { logger: pino({ level: 'silent' }) });
    await kube.recordEvent?.(pod, ev('a'));
    await kube.recordEvent?.(pod, ev('b'));
    await Promise.resolve();
    expect(calls).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(2);
    await kube.drain();
  });
});
