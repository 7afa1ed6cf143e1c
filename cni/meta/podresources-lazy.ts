// A PodResources client that loads grpc-js (~14 MiB of RSS, and slow to import) on the first pod
// that asks for a device, not at start: used by the daemon and by the thin executable.
import type { PodResourcesClient } from './podresources-port.js';

export function lazyPodResources(socket: string): PodResourcesClient {
  let client: Promise<PodResourcesClient> | undefined;
  const get = () => (client ??= import('./podresources.js').then((m) => m.createPodResourcesClient(socket)));
  return {
    get: async (ns, name) => (await get()).get(ns, name),
    list: async () => (await get()).list(),
    close: () => {
      void client?.then((c) => {
        c.close();
      });
    },
  };
}
