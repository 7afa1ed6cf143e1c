// startWebhook's own lifecycle: a webhook that cannot listen stops the watches it started, so a
// failed `netplumb webhook serve` exits instead of retrying its informers forever.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { WatchSource } from '../cni/daemon/kube-cache.js';
import { writeSecretDir } from '../test/support/webhook.js';
import { createCertificates } from './certs.js';
import { startWebhook } from './webhook.js';

/** A watch that records its lifecycle (and never delivers anything). */
function recordingWatch<T>(log: string[], name: string): WatchSource<T> {
  return {
    start: () => log.push(`${name} start`),
    stop: () => {
      log.push(`${name} stop`);
      return Promise.resolve();
    },
  };
}

describe('startWebhook', () => {
  it('stops the NAD and ConfigMap watches when its port is taken', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'netplumb-webhook-life-'));
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const bundle = createCertificates({
        service: 'netplumb-webhook',
        namespace: 'netplumb',
        days: 1,
        now: new Date(),
      });
      const log: string[] = [];
      await expect(
        startWebhook({
          logger: pino({ level: 'silent' }),
          tls: { ...(await writeSecretDir(dir, bundle)), minVersion: 'TLSv1.2', ciphers: undefined },
          listen: { host: '127.0.0.1', port: (taken.address() as AddressInfo).port },
          nads: recordingWatch(log, 'nads'),
          switches: recordingWatch(log, 'switches'),
          live: undefined,
          options: { downwardApi: false, namespaceIsolation: false, globalNamespaces: [] },
          defaultMetrics: false,
        }),
      ).rejects.toThrow(/EADDRINUSE/);
      expect(log.sort()).toEqual(['nads start', 'nads stop', 'switches start', 'switches stop']);
    } finally {
      taken.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
