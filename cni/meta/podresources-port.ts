// The meta-plugin's port to the kubelet PodResources v1 API (no gRPC here: the adapter in
// podresources.ts loads grpc-js, which only ADD with devices needs).
import { NetplumbError } from '../../lib/errors.js';
export interface ContainerDeviceSet {
  readonly resourceName: string;
  readonly deviceIds: readonly string[];
}

export interface PodContainerDevices {
  readonly name: string;
  readonly devices: readonly ContainerDeviceSet[];
}

export interface PodDevices {
  readonly namespace: string;
  readonly name: string;
  readonly containers: readonly PodContainerDevices[];
}

export const PodResourcesErrorCode = {
  /** The kubelet does not implement the call (Get before 1.27 / feature gate off). */
  Unimplemented: 'PODRES_UNIMPLEMENTED',
  NotFound: 'PODRES_NOT_FOUND',
  Unavailable: 'PODRES_UNAVAILABLE',
  Failed: 'PODRES_FAILED',
} as const;
export type PodResourcesErrorCode = (typeof PodResourcesErrorCode)[keyof typeof PodResourcesErrorCode];

export class PodResourcesError extends NetplumbError {
  override readonly name = 'PodResourcesError';
  declare readonly code: PodResourcesErrorCode;
  constructor(code: PodResourcesErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

export interface PodResourcesClient {
  /** PodResourcesLister/Get for one pod. */
  get(namespace: string, name: string): Promise<PodDevices>;
  /** PodResourcesLister/List (every pod on the node). */
  list(): Promise<PodDevices[]>;
  close(): void;
}
