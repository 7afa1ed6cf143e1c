// A fake kubelet PodResources v1 server: real gRPC on a unix socket, the generated service
// definition from proto/gen. `getUnimplemented` makes it behave like a kubelet without Get.
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { PodResourcesListerService } from '../proto/gen/podresources/v1/api.js';
import type {
  GetPodResourcesRequest,
  GetPodResourcesResponse,
  ListPodResourcesResponse,
  PodResources,
} from '../proto/gen/podresources/v1/api.js';

export interface FakePodDevices {
  readonly namespace: string;
  readonly name: string;
  /** container name → resourceName → device IDs (in the order the kubelet reports them). */
  readonly containers: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
}

export interface FakePodResourcesServer {
  readonly socket: string;
  /** Calls received, e.g. `Get default/pod-a`, `List`. */
  readonly calls: string[];
  setPod(pod: FakePodDevices): void;
  stop(): Promise<void>;
}

function toProto(p: FakePodDevices): PodResources {
  return {
    namespace: p.namespace,
    name: p.name,
    containers: Object.entries(p.containers).map(([name, res]) => ({
      name,
      devices: Object.entries(res).map(([resourceName, ids]) => ({
        resourceName,
        deviceIds: [...ids],
        topology: undefined,
      })),
      cpuIds: [],
      memory: [],
      dynamicResources: [],
    })),
  };
}

export async function startFakePodResources(
  socket: string,
  opts: { getUnimplemented?: boolean } = {},
): Promise<FakePodResourcesServer> {
  const pods = new Map<string, FakePodDevices>();
  const calls: string[] = [];
  const server = new Server();
  server.addService(PodResourcesListerService, {
    list(
      _call: ServerUnaryCall<unknown, ListPodResourcesResponse>,
      cb: sendUnaryData<ListPodResourcesResponse>,
    ) {
      calls.push('List');
      cb(null, { podResources: [...pods.values()].map(toProto) });
    },
    getAllocatableResources(_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) {
      calls.push('GetAllocatableResources');
      cb(null, { devices: [], cpuIds: [], memory: [] });
    },
    get(
      call: ServerUnaryCall<GetPodResourcesRequest, GetPodResourcesResponse>,
      cb: sendUnaryData<GetPodResourcesResponse>,
    ) {
      const { podNamespace, podName } = call.request;
      calls.push(`Get ${podNamespace}/${podName}`);
      if (opts.getUnimplemented === true) {
        cb({ code: status.UNIMPLEMENTED, details: 'unknown method Get' });
        return;
      }
      const pod = pods.get(`${podNamespace}/${podName}`);
      if (pod === undefined) {
        cb({ code: status.NOT_FOUND, details: `pod ${podName} in namespace ${podNamespace} not found` });
        return;
      }
      cb(null, { podResources: toProto(pod) });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (err) => {
      if (err === null) resolve();
      else reject(err);
    });
  });
  return {
    socket,
    calls,
    setPod(pod) {
      pods.set(`${pod.namespace}/${pod.name}`, pod);
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          resolve();
        });
      });
    },
  };
}
