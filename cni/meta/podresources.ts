// The gRPC adapter (unix socket) of the PodResources port (podresources-port.ts).
import { Metadata, credentials, status as grpcStatus } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { PodResourcesListerClient } from '../../proto/gen/podresources/v1/api.js';
import type { PodResources } from '../../proto/gen/podresources/v1/api.js';
import { PodResourcesError, PodResourcesErrorCode } from './podresources-port.js';
import type { PodDevices, PodResourcesClient } from './podresources-port.js';

export { PodResourcesError, PodResourcesErrorCode } from './podresources-port.js';
export type {
  ContainerDeviceSet,
  PodContainerDevices,
  PodDevices,
  PodResourcesClient,
} from './podresources-port.js';

export const PODRESOURCES_TIMEOUT_MS = 10_000;
const MAX_MESSAGE = 16 * 1024 * 1024;

function toDevices(p: PodResources): PodDevices {
  return {
    namespace: p.namespace,
    name: p.name,
    containers: p.containers.map((c) => ({
      name: c.name,
      devices: c.devices.map((d) => ({ resourceName: d.resourceName, deviceIds: d.deviceIds })),
    })),
  };
}

function toError(err: ServiceError, what: string, socket: string): PodResourcesError {
  const code =
    err.code === grpcStatus.UNIMPLEMENTED
      ? PodResourcesErrorCode.Unimplemented
      : err.code === grpcStatus.NOT_FOUND
        ? PodResourcesErrorCode.NotFound
        : err.code === grpcStatus.UNAVAILABLE || err.code === grpcStatus.DEADLINE_EXCEEDED
          ? PodResourcesErrorCode.Unavailable
          : PodResourcesErrorCode.Failed;
  return new PodResourcesError(code, `PodResources ${what} on ${socket}: ${err.details || err.message}`, {
    cause: err,
  });
}

/** gRPC adapter on the kubelet's unix socket. */
export function createPodResourcesClient(
  socketPath: string,
  timeoutMs = PODRESOURCES_TIMEOUT_MS,
): PodResourcesClient {
  const client = new PodResourcesListerClient(`unix://${socketPath}`, credentials.createInsecure(), {
    'grpc.max_receive_message_length': MAX_MESSAGE,
  });
  const deadline = () => new Date(Date.now() + timeoutMs);
  return {
    get(namespace, name) {
      return new Promise((resolve, reject) => {
        client.get(
          { podNamespace: namespace, podName: name },
          new Metadata(),
          { deadline: deadline() },
          (err, res) => {
            if (err !== null) reject(toError(err, `Get ${namespace}/${name}`, socketPath));
            else if (res.podResources === undefined) {
              reject(
                new PodResourcesError(
                  PodResourcesErrorCode.NotFound,
                  `PodResources Get: no pod ${namespace}/${name}`,
                ),
              );
            } else resolve(toDevices(res.podResources));
          },
        );
      });
    },
    list() {
      return new Promise((resolve, reject) => {
        client.list({}, new Metadata(), { deadline: deadline() }, (err, res) => {
          if (err !== null) reject(toError(err, 'List', socketPath));
          else resolve(res.podResources.map(toDevices));
        });
      });
    },
    close() {
      client.close();
    },
  };
}
