// `cni-daemon --uninstall-on-delete <daemonset>`: at SIGTERM, tell an uninstall (the DaemonSet is
// being deleted: remove the CNI config and executables from the node) from a restart (a rollout, a
// deleted pod, a node drain: keep them, or the node loses pod networking).
//
// A GET at SIGTERM alone cannot tell: `kubectl delete -k deployments/` (or deleting the namespace)
// removes the ServiceAccount, its token and the RBAC objects in the same second as the DaemonSet, so
// that GET answers 401 or 403, never 404. The daemon therefore watches its own DaemonSet from start
// (list + watch with `fieldSelector=metadata.name=<name>`, which RBAC `resourceNames` allows): an
// open watch keeps delivering after the credentials that opened it are revoked, and the DaemonSet's
// deletion is committed before the garbage collector deletes its pods, so the watch sees it before
// the kubelet sends SIGTERM. At SIGTERM: what the watch saw decides; otherwise a bounded GET; a
// refused GET waits briefly for the watch. Without evidence of a deletion the answer is "restart".
import type { Logger } from 'pino';
import type { KubeAccess } from '../meta/kube-rest.js';
import { createDaemonSetWatch, daemonSetInfoOf } from './kube-informers.js';

/** What is known of the DaemonSet: it exists, it has a deletionTimestamp, or it is gone. */
export type DaemonSetState = 'present' | 'deleting' | 'gone';

/** The answer of the GET at SIGTERM. */
export type GetAnswer =
  | { readonly kind: 'ok'; readonly state: DaemonSetState }
  /** 401/403: the ServiceAccount, its token or the Role went first. */
  | { readonly kind: 'refused'; readonly status: number }
  | { readonly kind: 'failed'; readonly detail: string };

export interface UninstallDecision {
  readonly uninstall: boolean;
  readonly reason: string;
}

/**
 * The decision from what the watch saw (undefined: nothing yet) and, when that is not a deletion,
 * the GET's answer. Pure. Only a deletion seen by either uninstalls.
 */
export function decideUninstall(
  watched: DaemonSetState | undefined,
  get: GetAnswer | undefined,
): UninstallDecision {
  if (watched === 'deleting' || watched === 'gone')
    return {
      uninstall: true,
      reason: `the watch saw the DaemonSet ${watched === 'gone' ? 'deleted' : 'being deleted'}`,
    };
  if (get === undefined) return { uninstall: false, reason: 'no answer about the DaemonSet' };
  if (get.kind === 'ok') {
    return get.state === 'present'
      ? { uninstall: false, reason: 'the DaemonSet exists (rollout, pod deletion or drain): a restart' }
      : {
          uninstall: true,
          reason: `GET: the DaemonSet is ${get.state === 'gone' ? 'gone (404)' : 'being deleted'}`,
        };
  }
  if (get.kind === 'refused')
    return {
      uninstall: false,
      reason: `GET refused (${String(get.status)}) and the watch saw no deletion: keeping the CNI config`,
    };
  return { uninstall: false, reason: `GET failed (${get.detail}): keeping the CNI config` };
}

export interface DaemonSetTracker {
  /** The state the watch last saw (undefined before its first list). */
  watched(): DaemonSetState | undefined;
  /** The decision at SIGTERM: the watch, else a GET (≤ getTimeoutMs), else waits ≤ refusedWaitMs for the watch. */
  decide(): Promise<UninstallDecision>;
  stop(): Promise<void>;
}

export interface TrackerOptions {
  readonly getTimeoutMs?: number;
  readonly refusedWaitMs?: number;
  readonly retryMs?: number;
}

async function getState(
  api: KubeAccess,
  namespace: string,
  name: string,
  timeoutMs: number,
): Promise<GetAnswer> {
  const url = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets/${encodeURIComponent(name)}`;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<GetAnswer>((resolve) => {
    timer = setTimeout(() => {
      resolve({ kind: 'failed', detail: `no answer in ${String(timeoutMs)} ms` });
    }, timeoutMs);
  });
  const answer = api.request('GET', url).then(
    (body): GetAnswer => ({ kind: 'ok', state: daemonSetInfoOf(body).deleting ? 'deleting' : 'present' }),
    (err: unknown): GetAnswer => {
      const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
      if (code === 404) return { kind: 'ok', state: 'gone' };
      if (code === 401 || code === 403) return { kind: 'refused', status: code };
      return { kind: 'failed', detail: err instanceof Error ? err.message : String(err) };
    },
  );
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts watching DaemonSet `name` in `namespace` at once (call it when the daemon starts). */
export function trackDaemonSet(
  api: KubeAccess,
  namespace: string,
  name: string,
  logger: Logger,
  o: TrackerOptions = {},
): DaemonSetTracker {
  let state: DaemonSetState | undefined;
  let listed = false;
  const source = createDaemonSetWatch(api, namespace, name, o.retryMs ?? 5000);
  source.start({
    upsert(ds) {
      state = ds.deleting ? 'deleting' : 'present';
    },
    remove() {
      state = 'gone';
    },
    synced() {
      listed = true;
      // An empty first list: the DaemonSet does not exist (404 for the GET).
      state ??= 'gone';
    },
    error(err) {
      logger.warn({ err, daemonSet: `${namespace}/${name}` }, 'DaemonSet watch broke; retrying');
    },
  });
  const watched = (): DaemonSetState | undefined => (listed ? state : undefined);
  return {
    watched,
    async decide() {
      const seen = decideUninstall(watched(), undefined);
      if (seen.uninstall) return seen;
      const get = await getState(api, namespace, name, o.getTimeoutMs ?? 5000);
      if (get.kind !== 'ok') {
        // Revoked credentials or a slow API: give the watch a moment to deliver a pending deletion.
        const until = performance.now() + (o.refusedWaitMs ?? 3000);
        while (performance.now() < until && !decideUninstall(watched(), undefined).uninstall)
          await sleep(100);
      }
      return decideUninstall(watched(), get);
    },
    stop: () => source.stop(),
  };
}
