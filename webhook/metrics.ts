// The webhook's Prometheus metrics, on a registry of its own (no global state).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Outcome } from './review.js';

export interface WebhookMetrics {
  readonly registry: Registry;
  observeAdmission(outcome: Outcome | 'error', seconds: number): void;
  nadProblems(missing: number, unavailable: number): void;
  warnings(n: number): void;
  nadLookup(result: 'hit' | 'miss'): void;
  tlsReload(result: 'success' | 'error'): void;
  setNadsCached(n: number): void;
}

export function createWebhookMetrics(opts: { defaultMetrics?: boolean } = {}): WebhookMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'netplumb_' });
  const registers = [registry];
  const latency = new Histogram({
    name: 'netplumb_webhook_admission_duration_seconds',
    help: 'Time from the whole request body to the answer, by outcome (mutated, unchanged, skipped, denied, invalid, error)',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const problems = new Counter({
    name: 'netplumb_webhook_nad_problems_total',
    help: 'Network attachments whose NetworkAttachmentDefinition was missing or could not be read (pod allowed, warned)',
    labelNames: ['problem'] as const,
    registers,
  });
  const warned = new Counter({
    name: 'netplumb_webhook_warnings_total',
    help: 'AdmissionReview warnings returned',
    registers,
  });
  const lookups = new Counter({
    name: 'netplumb_webhook_nad_lookups_total',
    help: 'NAD lookups answered from the informer cache (hit) or sent to the API (miss)',
    labelNames: ['result'] as const,
    registers,
  });
  const reloads = new Counter({
    name: 'netplumb_webhook_tls_reloads_total',
    help: 'Serving certificate reloads from the mounted Secret (error: the old certificate stays)',
    labelNames: ['result'] as const,
    registers,
  });
  const cached = new Gauge({
    name: 'netplumb_webhook_nads_cached',
    help: 'NetworkAttachmentDefinitions held by the informer cache',
    registers,
  });
  return {
    registry,
    observeAdmission: (outcome, seconds) => {
      latency.observe({ outcome }, seconds);
    },
    nadProblems: (missing, unavailable) => {
      if (missing > 0) problems.inc({ problem: 'missing' }, missing);
      if (unavailable > 0) problems.inc({ problem: 'unavailable' }, unavailable);
    },
    warnings: (n) => {
      if (n > 0) warned.inc(n);
    },
    nadLookup: (result) => {
      lookups.inc({ result });
    },
    tlsReload: (result) => {
      reloads.inc({ result });
    },
    setNadsCached: (n) => {
      cached.set(n);
    },
  };
}
