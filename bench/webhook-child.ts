// The webhook of bench/webhook.ts as its own process, as deployed: its heap holds only its own
// garbage (not the bench's client-node calls or fake API server), and it logs at info to a file
// descriptor as the Deployment does. Started by bench/webhook.ts with an IPC channel; no `run`
// export, and it does nothing unless NETPLUMB_BENCH_WEBHOOK_CHILD=1 (bench/run.ts imports every file).
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import type { NadInfo } from '../cni/meta/kube.js';
import { memoryNadWatch } from '../test/support/webhook.js';
import { startWebhook } from '../webhook/webhook.js';
import type { MutationOptions } from '../webhook/mutate.js';

export interface ChildStart {
  readonly certFile: string;
  readonly keyFile: string;
  readonly nads: readonly NadInfo[];
  readonly options: MutationOptions;
}

export interface ChildStats {
  readonly gcCount: number;
  readonly gcMaxMs: number;
  readonly gcTotalMs: number;
  readonly loopDelayMaxMs: number;
}

async function main(send: (m: unknown) => void): Promise<void> {
  const start = await new Promise<ChildStart>((resolve) =>
    process.once('message', (m) => {
      resolve(m as ChildStart);
    }),
  );
  const hook = await startWebhook({
    logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true })),
    tls: { certFile: start.certFile, keyFile: start.keyFile, minVersion: 'TLSv1.2', ciphers: undefined },
    listen: { host: '127.0.0.1', port: 0 },
    nads: memoryNadWatch(start.nads),
    live: undefined,
    options: start.options,
    defaultMetrics: true,
  });
  const gc = { count: 0, max: 0, total: 0 };
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.total += e.duration;
      gc.max = Math.max(gc.max, e.duration);
    }
  });
  process.on('message', (m) => {
    if (m === 'measure') {
      Object.assign(gc, { count: 0, max: 0, total: 0 });
      obs.observe({ entryTypes: ['gc'] });
      loop.enable();
      send('measuring');
    } else if (m === 'stop') {
      obs.disconnect();
      loop.disable();
      const stats: ChildStats = {
        gcCount: gc.count,
        gcMaxMs: gc.max,
        gcTotalMs: gc.total,
        loopDelayMaxMs: loop.max / 1e6,
      };
      send(stats);
      void hook.stop().then(() => process.exit(0));
    }
  });
  send({ port: hook.port });
}

if (process.env['NETPLUMB_BENCH_WEBHOOK_CHILD'] === '1' && process.send !== undefined) {
  const send = process.send.bind(process);
  await main((m) => send(m));
}
