// The meta-plugin's narrow port to the Kubernetes API. The real adapter (kube-client-node.ts) is the
// only file that sees @kubernetes/client-node; the daemon may implement it over cached informers.
import { NetplumbError } from '../../lib/errors.js';
import type { Clock } from '../../lib/clock.js';
export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly annotations: Readonly<Record<string, string>>;
  /** spec.containers names in order (device hand-out follows it). */
  readonly containerNames: readonly string[];
  /** Adapter-private copy of the object, handed back to updatePodStatus. */
  readonly opaque?: unknown;
}

export interface NadInfo {
  readonly namespace: string;
  readonly name: string;
  /** `spec.config`; empty string when unset. */
  readonly config: string;
  readonly annotations: Readonly<Record<string, string>>;
}

export const KubeErrorCode = {
  NotFound: 'KUBE_NOT_FOUND',
  Conflict: 'KUBE_CONFLICT',
  /** 5xx, 429, connection refused/reset, timeouts: worth retrying. */
  Unavailable: 'KUBE_UNAVAILABLE',
  Forbidden: 'KUBE_FORBIDDEN',
  Failed: 'KUBE_FAILED',
} as const;
export type KubeErrorCode = (typeof KubeErrorCode)[keyof typeof KubeErrorCode];

export class KubeApiError extends NetplumbError {
  override readonly name = 'KubeApiError';
  declare readonly code: KubeErrorCode;
  readonly status: number | undefined;
  constructor(code: KubeErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
  }
}

export interface KubeClient {
  /** Throws KubeApiError (NotFound, Unavailable, ...). */
  getPod(namespace: string, name: string): Promise<PodInfo>;
  getNad(namespace: string, name: string): Promise<NadInfo>;
  /**
   * PUT pods/status of `pod` (at its resourceVersion) with `annotations` set (value null removes).
   * Throws KubeApiError Conflict when the pod changed since it was read.
   */
  updatePodStatusAnnotations(
    pod: PodInfo,
    annotations: Readonly<Record<string, string | null>>,
  ): Promise<void>;
  /** Records a Kubernetes Event on the pod (optional: adapters without it record nothing). */
  recordEvent?(pod: PodInfo, event: PodEvent): Promise<void>;
}

export interface PodEvent {
  readonly type: 'Normal' | 'Warning';
  /** e.g. `AddedInterface` (Multus's reason). */
  readonly reason: string;
  readonly message: string;
}

export function isKubeError(err: unknown, code: KubeErrorCode): boolean {
  return err instanceof KubeApiError && err.code === code;
}

/** Runs `fn` until it stops failing with a retryable error or `budgetMs` is spent. */
export async function retryTransient<T>(
  clock: Clock,
  fn: () => Promise<T>,
  opts: { intervalMs: number; budgetMs: number; retryable: (err: unknown) => boolean },
): Promise<T> {
  const deadline = clock.now() + opts.budgetMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!opts.retryable(err) || clock.now() + opts.intervalMs > deadline) throw err;
      await clock.sleep(opts.intervalMs);
    }
  }
}
