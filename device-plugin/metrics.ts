// The device plugin's metrics as ports, and the /healthz + /metrics HTTP endpoint. The Prometheus
// implementation (metrics-prom.ts, prom-client) is loaded only with --metrics-address: without it
// nothing can read the metrics, so the plugin counts into noMetrics() and never loads prom-client.
import { createServer } from 'node:http';
import type { Server } from 'node:http';

type Labels<L extends string> = Partial<Record<L, string>>;

export interface CounterPort<L extends string = never> {
  inc(labels: Labels<L>, value?: number): void;
  inc(value?: number): void;
}

export interface GaugePort<L extends string = never> {
  set(labels: Labels<L>, value: number): void;
  set(value: number): void;
}

export interface DevicePluginMetrics {
  readonly devices: GaugePort<'resource' | 'health'>;
  readonly allocations: CounterPort<'resource'>;
  readonly registrations: CounterPort<'resource' | 'mode' | 'result'>;
  readonly configErrors: GaugePort;
  /** Config entries accepted but ignored, as SRIOV-DP ignores them (logged with their JSON path). */
  readonly configWarnings: CounterPort;
  /** Pools of the loaded config that are not served (each logged with its JSON path and why). */
  readonly configPoolErrors: GaugePort;
}

const ignore = (): void => undefined;

/** Metrics nobody reads (no --metrics-address): every update is dropped. */
export function noMetrics(): DevicePluginMetrics {
  const counter = { inc: ignore };
  const gauge = { set: ignore };
  return {
    devices: gauge,
    allocations: counter,
    registrations: counter,
    configErrors: gauge,
    configWarnings: counter,
    configPoolErrors: gauge,
  };
}

/** What /metrics serves (a prom-client Registry). */
export interface MetricsText {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface HealthReport {
  readonly ok: boolean;
  readonly [key: string]: unknown;
}

/** Serves GET /metrics and GET /healthz on `host:port`; resolves once listening. */
export async function serveMetrics(
  address: string,
  metrics: MetricsText,
  health: () => HealthReport,
): Promise<Server> {
  const idx = address.lastIndexOf(':');
  const host = idx > 0 ? address.slice(0, idx) : '0.0.0.0';
  const port = Number(address.slice(idx + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--metrics-address ${address}: expected HOST:PORT, e.g. 127.0.0.1:9099`);
  const server = createServer((req, res) => {
    if (req.url === '/healthz') {
      const h = health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify(h));
      return;
    }
    if (req.url === '/metrics') {
      metrics.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
