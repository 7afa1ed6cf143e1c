// deployments/webhook.yaml grants the webhook's ServiceAccount exactly what it calls: the real
// NAD informer and live lookups run against the fake API server, which records every request.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createNadWatch, loadKubeConfig } from '../cni/daemon/kube-informers.js';
import { createKubeClient } from '../cni/meta/kube-client-node.js';
import { startFakeApiServer } from '../sim/apiserver.js';
import { httpsRequest, permissionOf, webhookGrants, writeSecretDir } from '../test/support/webhook.js';
import { createCertificates } from './certs.js';
import { startWebhook } from './webhook.js';

const SNI = 'netplumb-webhook.netplumb.svc';

describe('deployments/webhook.yaml RBAC', () => {
  it('gives the webhook exactly the NAD get/list/watch its informer and cache misses make', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'netplumb-webhook-rbac-'));
    const api = await startFakeApiServer();
    const bundle = createCertificates({
      service: 'netplumb-webhook',
      namespace: 'netplumb',
      days: 1,
      now: new Date(),
    });
    try {
      api.addNad('default', 'cached', {}, { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/a' });
      const kubeconfig = await api.writeKubeconfig(path.join(dir, 'kubeconfig'));
      const hook = await startWebhook({
        logger: pino({ level: 'silent' }),
        tls: { ...(await writeSecretDir(dir, bundle)), minVersion: 'TLSv1.2', ciphers: undefined },
        listen: { host: '127.0.0.1', port: 0 },
        nads: createNadWatch(loadKubeConfig(kubeconfig)),
        live: createKubeClient(kubeconfig),
        options: { downwardApi: false, namespaceIsolation: false, globalNamespaces: [] },
        defaultMetrics: false,
      });
      try {
        const get = (p: string, body?: string) =>
          httpsRequest(hook.port, {
            ca: bundle.caCert,
            servername: SNI,
            path: p,
            ...(body !== undefined && { body }),
          });
        // Up to 20 s by the clock (was 200 tries, ~10 s), and asserted: the informer must be synced.
        for (const end = Date.now() + 20_000; (await get('/readyz')).status !== 200 && Date.now() < end;)
          await new Promise((r) => setTimeout(r, 50));
        expect((await get('/readyz')).status).toBe(200);
        const review = {
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: {
            uid: 'u1',
            kind: { group: '', version: 'v1', kind: 'Pod' },
            operation: 'CREATE',
            namespace: 'default',
            object: {
              metadata: { annotations: { 'k8s.v1.cni.cncf.io/networks': 'cached,not-there' } },
              spec: { containers: [{ name: 'c' }] },
            },
          },
        };
        expect((await get('/mutate', JSON.stringify(review))).status).toBe(200);
      } finally {
        await hook.stop();
      }
      const used = new Set(api.requests.map((r) => permissionOf(r.method, r.path)));
      // The fake records paths without the query: the informer's list and its watch are both GETs of
      // the collection (the second one is the watch).
      const collection = api.requests.filter((r) => permissionOf(r.method, r.path).endsWith(':list')).length;
      expect(collection).toBeGreaterThanOrEqual(2);
      used.add('k8s.cni.cncf.io/network-attachment-definitions:watch');
      expect([...used].sort()).toEqual([
        'k8s.cni.cncf.io/network-attachment-definitions:get',
        'k8s.cni.cncf.io/network-attachment-definitions:list',
        'k8s.cni.cncf.io/network-attachment-definitions:watch',
      ]);
      // Its other grant, the control-switches ConfigMap, is checked in control-switches.test.ts.
      const grants = [...(await webhookGrants('netplumb-webhook'))].filter(
        (g) => !g.startsWith('/configmaps:'),
      );
      expect(grants.sort()).toEqual([...used].sort());
    } finally {
      await api.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
