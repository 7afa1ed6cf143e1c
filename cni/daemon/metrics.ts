// The daemon's Prometheus metrics, on a registry of its own (no global state).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type RequestResult = 'success' | 'error' | 'overloaded' | 'not_ready' | 'bad_request';
export type CacheResult = 'hit' | 'miss';

export interface DaemonMetrics {
  readonly registry: Registry;
  observeRequest(command: string, result: RequestResult, seconds: number): void;
  setInFlight(n: number): void;
  setQueued(n: number): void;
  cacheLookup(kind: 'pod' | 'nad', result: CacheResult): void;
}

const COMMANDS = new Set(['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION']);

export function createDaemonMetrics(opts: { defaultMetrics?: boolean } = {}): DaemonMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'netplumb_' });
  const latency = new Histogram({
    name: 'netplumb_cni_request_duration_seconds',
    help: 'Time from receiving a CNI request to answering it, by CNI command and result',
    labelNames: ['command', 'result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'netplumb_cni_requests_in_flight',
    help: 'CNI requests being served now',
    registers: [registry],
  });
  const queued = new Gauge({
    name: 'netplumb_cni_requests_queued',
    help: 'CNI requests waiting for a free slot (--max-concurrent)',
    registers: [registry],
  });
  const cache = new Counter({
    name: 'netplumb_kube_cache_lookups_total',
    help: 'Pod and NetworkAttachmentDefinition lookups answered from the informer cache (hit) or the API (miss)',
    labelNames: ['kind', 'result'] as const,
    registers: [registry],
  });
  return {
    registry,
    observeRequest(command, result, seconds) {
      // Bounded label values: an unknown command is reported as "other".
      latency.observe({ command: COMMANDS.has(command) ? command : 'other', result }, seconds);
    },
    setInFlight(n) {
      inFlight.set(n);
    },
    setQueued(n) {
      queued.set(n);
    },
    cacheLookup(kind, result) {
      cache.inc({ kind, result });
    },
  };
}
