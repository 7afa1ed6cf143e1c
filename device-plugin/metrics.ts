// Prometheus metrics of the device plugin and the /healthz + /metrics HTTP endpoint.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';

export interface DevicePluginMetrics {
  readonly registry: Registry;
  readonly devices: Gauge<'resource' | 'health'>;
  readonly allocations: Counter<'resource'>;
  readonly registrations: Counter<'resource' | 'mode' | 'result'>;
  readonly configErrors: Gauge;
  /** Config entries accepted but ignored, as SRIOV-DP ignores them (logged with their JSON path). */
  readonly configWarnings: Counter;
  /** Pools of the loaded config that are not served (each logged with its JSON path and why). */
  readonly configPoolErrors: Gauge;
}

/** A fresh registry per plugin instance (no global default registry). */
export function createMetrics(): DevicePluginMetrics {
  const registry = new Registry();
  return {
    registry,
    devices: new Gauge({
      name: 'netplumb_dp_devices',
      help: 'Devices advertised per resource and health',
      labelNames: ['resource', 'health'],
      registers: [registry],
    }),
    allocations: new Counter({
      name: 'netplumb_dp_allocations_total',
      help: 'Devices handed out by Allocate',
      labelNames: ['resource'],
      registers: [registry],
    }),
    registrations: new Counter({
      name: 'netplumb_dp_registrations_total',
      help: 'Registrations with the kubelet',
      labelNames: ['resource', 'mode', 'result'],
      registers: [registry],
    }),
    configErrors: new Gauge({
      name: 'netplumb_dp_config_error',
      help: '1 while the last config reload failed (the previous config is still served)',
      registers: [registry],
    }),
    configWarnings: new Counter({
      name: 'netplumb_dp_config_warnings',
      help: 'config entries ignored at load, as SRIOV-DP ignores them (each logged with its JSON path)',
      registers: [registry],
    }),
    configPoolErrors: new Gauge({
      name: 'netplumb_dp_config_pool_errors',
      help: 'pools of the loaded config that are not served (each logged with its JSON path and why)',
      registers: [registry],
    }),
  };
}

export interface HealthReport {
  readonly ok: boolean;
  readonly [key: string]: unknown;
}

/** Serves GET /metrics and GET /healthz on `host:port`; resolves once listening. */
export async function serveMetrics(
  address: string,
  metrics: DevicePluginMetrics,
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
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
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
