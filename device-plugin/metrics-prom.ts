// The device plugin's metrics in Prometheus form (prom-client), one fresh registry per instance.
// Loaded only with --metrics-address (see metrics.ts).
import { Counter, Gauge, Registry } from 'prom-client';
import type { DevicePluginMetrics } from './metrics.js';

export interface PromDevicePluginMetrics extends DevicePluginMetrics {
  readonly registry: Registry;
}

export function createMetrics(): PromDevicePluginMetrics {
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
