// The ports of the meta-plugin: everything it does to the outside world goes through these. The
// executable (bin/netplumb-cni.ts) and the daemon build them; tests pass real adapters.
import type { Logger } from 'pino';
import type { Clock } from '../../lib/clock.js';
import type { PluginRunner } from '../exec.js';
import type { MetaConf } from './config.js';
import type { PodRoutes } from './default-route.js';
import type { KubeClient } from './kube.js';
import type { PodNetns } from './pod-netns.js';
import type { PodResourcesClient } from './podresources-port.js';

/** When the AddedInterface events go out (MetaPluginDeps.eventTiming). */
export type EventTiming = 'per-attachment' | 'after-status';

export interface MetaPluginDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Kubernetes access for this config; undefined = delegates-only mode (no annotations read). */
  kubeFor(conf: MetaConf): KubeClient | undefined;
  /** PodResources client on the config's socket; closed after use. */
  podResourcesFor(socketPath: string): PodResourcesClient;
  /** Runs delegate plugins for this config (binDir, then CNI_PATH). */
  runnerFor(conf: MetaConf): PluginRunner;
  /** Default-route changes in the pod netns (annotation `default-route`); iproute2 when absent. */
  readonly routes?: PodRoutes;
  /** Looks into the pod netns before ADD (exists, interface names taken); iproute2 when absent. */
  readonly podNetns?: PodNetns;
  /**
   * When the AddedInterface events go out: 'per-attachment' (default), as each delegate's ADD
   * succeeds, as Multus posts them (a thin call's round trips then overlap its next delegates);
   * 'after-status', once the ADD has succeeded (the daemon: it posts events in the background, and
   * posted during an ADD they would take CPU from the delegates still to run).
   */
  readonly eventTiming?: EventTiming;
}
