// Events off the CNI critical path: in the daemon, recordEvent queues the event and returns at once;
// a few workers post the queue to the API, starting on the next turn of the event loop (building and
// writing an HTTPS request is CPU the ADD's answer would otherwise wait for). Events are informational (Multus's AddedInterface), so
// a full queue drops new ones (counted and logged) instead of growing memory or delaying an ADD.
import type { Logger } from 'pino';
import type { KubeClient, PodEvent, PodInfo } from '../meta/kube.js';

export interface BackgroundEventsOptions {
  readonly logger: Logger;
  /** Events waiting to be posted before new ones are dropped (default 1024). */
  readonly maxQueued?: number;
  /** Posts in flight at once (default 4). */
  readonly concurrency?: number;
}

export interface BackgroundEventsClient extends KubeClient {
  /** Events dropped because the queue was full. */
  dropped(): number;
  /** Resolves when every queued event has been posted (or failed). */
  drain(): Promise<void>;
}

/** Wraps `kube`: everything passes through, except recordEvent, which only queues. */
export function withBackgroundEvents(
  kube: KubeClient,
  opts: BackgroundEventsOptions,
): BackgroundEventsClient {
  const max = opts.maxQueued ?? 1024;
  const concurrency = opts.concurrency ?? 4;
  const queue: { pod: PodInfo; event: PodEvent }[] = [];
  let active = 0;
  let dropped = 0;
  let idle: (() => void)[] = [];
  let scheduled = false;

  function pump(): void {
    while (active < concurrency && queue.length > 0) {
      const next = queue.shift();
      if (next === undefined) break;
      active++;
      void (kube.recordEvent?.(next.pod, next.event) ?? Promise.resolve())
        .catch((err: unknown) => {
          opts.logger.warn({ err, pod: `${next.pod.namespace}/${next.pod.name}` }, 'cannot record event');
        })
        .finally(() => {
          active--;
          pump();
        });
    }
    if (active === 0 && queue.length === 0 && !scheduled) {
      const waiting = idle;
      idle = [];
      for (const w of waiting) w();
    }
  }

  /** pump() once the current callbacks (the CNI answer) are done, not inside recordEvent. */
  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      pump();
    });
  }

  return {
    getPod: (ns, name) => kube.getPod(ns, name),
    getNad: (ns, name) => kube.getNad(ns, name),
    updatePodStatusAnnotations: (pod, annotations) => kube.updatePodStatusAnnotations(pod, annotations),
    ...(kube.recordEvent !== undefined && {
      recordEvent(pod: PodInfo, event: PodEvent): Promise<void> {
        if (queue.length >= max) {
          dropped++;
          if (dropped === 1 || dropped % 100 === 0)
            opts.logger.warn({ dropped }, 'event queue full: dropping events');
        } else {
          queue.push({ pod, event });
          schedule();
        }
        return Promise.resolve();
      },
    }),
    dropped: () => dropped,
    drain() {
      if (active === 0 && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
