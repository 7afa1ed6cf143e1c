// `netplumb webhook` assembled from its ports: the NAD watch (informer), the live API for misses,
// the certificate files. The composition root (command.ts) passes the real adapters; tests and the
// bench pass an in-memory watch and a temp certificate.
import type { Logger } from 'pino';
import type { NadInfo, KubeClient } from '../cni/meta/kube.js';
import type { WatchSource } from '../cni/daemon/kube-cache.js';
import type { ConfigMapInfo } from './configmap-watch.js';
import { NO_SWITCHES, parseControlSwitches } from './control-switches.js';
import type { ControlSwitches } from './control-switches.js';
import { createWebhookMetrics } from './metrics.js';
import type { WebhookMetrics } from './metrics.js';
import type { MutationOptions } from './mutate.js';
import { createNadSource } from './nad-source.js';
import { startWebhookServer } from './server.js';
import { loadTls, watchTls } from './tls.js';
import type { TlsSettings } from './tls.js';

export const WEBHOOK_TIMING = {
  /** A live NAD read (cache miss) gives up after this; below the server's request timeout. */
  liveTimeoutMs: 1500,
  maxLivePerReview: 8,
  tlsPollMs: 30_000,
} as const;

export interface WebhookDeps {
  readonly logger: Logger;
  readonly tls: TlsSettings;
  readonly listen: { readonly host: string; readonly port: number };
  readonly nads: WatchSource<NadInfo>;
  readonly live: Pick<KubeClient, 'getNad'> | undefined;
  readonly options: MutationOptions;
  /** network-resources-injector's ConfigMap `nri-control-switches`; undefined: command line only. */
  readonly switches?: WatchSource<ConfigMapInfo>;
  readonly timing?: { readonly [K in keyof typeof WEBHOOK_TIMING]?: number };
  readonly defaultMetrics?: boolean;
}

export interface RunningWebhook {
  readonly port: number;
  readonly metrics: WebhookMetrics;
  stop(): Promise<void>;
}

/** The switches as the ConfigMap watch last delivered them (each change logged). */
function watchSwitches(deps: WebhookDeps): { now: () => ControlSwitches; synced: () => boolean } {
  let current = NO_SWITCHES;
  let synced = deps.switches === undefined;
  const set = (next: ControlSwitches, cm: string): void => {
    current = next;
    const { hugepages, honorExistingResources, injections, problems } = next;
    deps.logger.info(
      {
        configMap: cm,
        hugepages,
        honorExistingResources,
        injections: injections.map((i) => i.label),
        problems,
      },
      'control switches',
    );
  };
  deps.switches?.start({
    upsert: (cm) => {
      set(parseControlSwitches(cm.data), `${cm.namespace}/${cm.name}`);
    },
    remove: (cm) => {
      set(NO_SWITCHES, `${cm.namespace}/${cm.name} (deleted)`);
    },
    synced: () => {
      synced = true;
    },
    error: (err) => {
      deps.logger.warn({ err }, 'control switches watch failed; restarting it');
    },
  });
  return { now: () => current, synced: () => synced };
}

export async function startWebhook(deps: WebhookDeps): Promise<RunningWebhook> {
  const timing = { ...WEBHOOK_TIMING, ...deps.timing };
  const metrics = createWebhookMetrics({ defaultMetrics: deps.defaultMetrics ?? true });
  const initial = await loadTls(deps.tls);
  const switches = watchSwitches(deps);
  const source = createNadSource({
    watch: deps.nads,
    live: deps.live,
    liveTimeoutMs: timing.liveTimeoutMs,
    maxLivePerReview: timing.maxLivePerReview,
    onLookup: (r) => {
      metrics.nadLookup(r);
    },
    onError: (err) => {
      deps.logger.warn({ err }, 'NAD watch failed; restarting it');
    },
  });
  const server = await startWebhookServer(
    {
      tls: initial,
      metrics,
      logger: deps.logger,
      ready: () => source.synced() && switches.synced(),
      review: { options: deps.options, switches: switches.now, lookups: () => source.session() },
    },
    deps.listen,
  ).catch(async (err: unknown) => {
    // The watches already run: stop them, or their retry timers keep a failed `serve` alive.
    await Promise.all([source.stop(), deps.switches?.stop()]);
    throw err;
  });
  const stopTls = watchTls({
    settings: deps.tls,
    current: initial,
    pollMs: timing.tlsPollMs,
    apply: (o) => {
      server.setSecureContext(o);
    },
    onReload: (result, err) => {
      metrics.tlsReload(result);
      if (result === 'success') deps.logger.info({ cert: deps.tls.certFile }, 'serving certificate reloaded');
      else deps.logger.error({ err }, 'serving certificate reload failed; the previous one stays');
    },
  });
  const gauge = setInterval(() => {
    metrics.setNadsCached(source.size());
  }, 5000);
  gauge.unref();
  deps.logger.info({ port: server.port }, 'webhook serving');
  return {
    port: server.port,
    metrics,
    async stop() {
      clearInterval(gauge);
      stopTls();
      await Promise.all([server.close(), source.stop(), deps.switches?.stop()]);
    },
  };
}
