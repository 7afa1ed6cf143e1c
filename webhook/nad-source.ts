// NetworkAttachmentDefinitions for admission, from an informer cache (the WatchSource port of the CNI
// daemon, cni/daemon/kube-cache.ts): a hit costs no API round trip. A miss (a NAD the watch has not
// delivered yet, or none at all) asks the live API once, within a deadline shorter than the
// webhook's timeoutSeconds, and at most `maxLivePerReview` times per admission.
import type { KubeClient, NadInfo } from '../cni/meta/kube.js';
import { KubeErrorCode, isKubeError } from '../cni/meta/kube.js';
import type { WatchSource } from '../cni/daemon/kube-cache.js';
import type { NadLookup } from './mutate.js';

export interface NadSource {
  /**
   * One admission's lookups: the live-miss budget is per call of `session()`. A cache hit is
   * answered synchronously (no promise per network on the common path).
   */
  session(): (namespace: string, name: string) => NadLookup | Promise<NadLookup>;
  synced(): boolean;
  size(): number;
  stop(): Promise<void>;
}

export interface NadSourceDeps {
  readonly watch: WatchSource<NadInfo>;
  /** Live API for misses; undefined: a miss is "missing". */
  readonly live: Pick<KubeClient, 'getNad'> | undefined;
  readonly liveTimeoutMs: number;
  readonly maxLivePerReview: number;
  readonly onLookup?: (result: 'hit' | 'miss') => void;
  readonly onError?: (err: unknown) => void;
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function liveLookup(deps: NadSourceDeps, namespace: string, name: string): Promise<NadLookup> {
  if (deps.live === undefined) return { kind: 'missing' };
  try {
    return { kind: 'found', nad: await withTimeout(deps.live.getNad(namespace, name), deps.liveTimeoutMs) };
  } catch (err) {
    if (isKubeError(err, KubeErrorCode.NotFound)) return { kind: 'missing' };
    return { kind: 'unavailable', reason: (err as Error).message.slice(0, 120) };
  }
}

export function createNadSource(deps: NadSourceDeps): NadSource {
  const nads = new Map<string, NadInfo>();
  let isSynced = false;
  const key = (namespace: string, name: string): string => `${namespace}/${name}`;
  deps.watch.start({
    upsert: (n) => nads.set(key(n.namespace, n.name), n),
    remove: (n) => nads.delete(key(n.namespace, n.name)),
    synced: () => {
      isSynced = true;
    },
    error: (err) => deps.onError?.(err),
  });
  return {
    session() {
      let liveLeft = deps.maxLivePerReview;
      return (namespace, name) => {
        const hit = nads.get(key(namespace, name));
        deps.onLookup?.(hit ? 'hit' : 'miss');
        if (hit) return { kind: 'found', nad: hit };
        if (liveLeft <= 0) return { kind: 'unavailable', reason: 'too many networks missing from the cache' };
        liveLeft--;
        return liveLookup(deps, namespace, name);
      };
    },
    synced: () => isSynced,
    size: () => nads.size,
    stop: () => deps.watch.stop(),
  };
}
