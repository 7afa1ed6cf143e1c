import { readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../lib/json.js';
import { createKubeClient } from '../cni/meta/kube-client-node.js';
import { startFakeApiServer } from '../sim/apiserver.js';
import type { FakeApiServer } from '../sim/apiserver.js';
import { httpsRequest, memoryNadWatch, writeSecretDir } from '../test/support/webhook.js';
import { createCertificates } from './certs.js';
import type { CertBundle } from './certs.js';
import { startWebhook } from './webhook.js';
import type { RunningWebhook } from './webhook.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SNI = 'netplumb-webhook.netplumb.svc';
const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';

let dir: string;
let bundle: CertBundle;
let api: FakeApiServer;
let hook: RunningWebhook;
let review: JsonObject;

const post = (body: string, ca = bundle.caCert) => httpsRequest(hook.port, { ca, servername: SNI, body });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'netplumb-webhook-'));
  bundle = createCertificates({
    service: 'netplumb-webhook',
    namespace: 'netplumb',
    days: 30,
    now: new Date(),
  });
  const files = await writeSecretDir(dir, bundle);
  api = await startFakeApiServer();
  // Only in the live API (a NAD the watch has not delivered yet): the cache miss path.
  api.addNad('default', 'late-nad', {}, { [RESOURCE]: 'example.com/late' });
  const live = createKubeClient(await api.writeKubeconfig(path.join(dir, 'kubeconfig')));
  hook = await startWebhook({
    logger: pino({ level: 'silent' }),
    tls: { ...files, minVersion: 'TLSv1.2', ciphers: undefined },
    listen: { host: '127.0.0.1', port: 0 },
    nads: memoryNadWatch([
      {
        namespace: 'default',
        name: 'sriov-vlan210',
        config: '{}',
        annotations: { [RESOURCE]: 'intel.com/intel_sriov_netdevice' },
      },
    ]),
    live,
    options: { downwardApi: true, namespaceIsolation: false, globalNamespaces: ['default'] },
    timing: { tlsPollMs: 200 },
    defaultMetrics: false,
  });
  review = JSON.parse(
    await readFile(path.join(here, 'testdata', 'admission-review-v1.json'), 'utf8'),
  ) as JsonObject;
});

afterAll(async () => {
  await hook.stop();
  await api.stop();
  await rm(dir, { recursive: true, force: true });
});

function withNetworks(networks: string): string {
  const r = structuredClone(review) as {
    request: { object: { metadata: { annotations: Record<string, string> } } };
  };
  r.request.object.metadata.annotations['k8s.v1.cni.cncf.io/networks'] = networks;
  return JSON.stringify(r);
}

function patchedPod(answer: string) {
  const out = JSON.parse(answer) as {
    apiVersion: string;
    kind: string;
    response: { uid: string; allowed: boolean; patchType?: string; patch?: string; warnings?: string[] };
  };
  const ops: jsonpatch.Operation[] =
    out.response.patch === undefined
      ? []
      : (JSON.parse(Buffer.from(out.response.patch, 'base64').toString()) as jsonpatch.Operation[]);
  const request = review['request'] as JsonObject;
  const pod = jsonpatch.applyPatch(structuredClone(request['object']), ops, true, false).newDocument as {
    spec: { containers: { resources: JsonObject; volumeMounts: JsonObject[] }[]; volumes: JsonObject[] };
  };
  return { out, pod };
}

describe('netplumb webhook over HTTPS', () => {
  it('answers the apiserver’s AdmissionReview v1 with a JSONPatch giving the pod its VFs', async () => {
    const answer = await post(JSON.stringify(review));
    expect(answer.status).toBe(200);
    const { out, pod } = patchedPod(answer.body);
    expect(out.apiVersion).toBe('admission.k8s.io/v1');
    expect(out.kind).toBe('AdmissionReview');
    expect(out.response.uid).toBe('5d2f6a1e-7c4b-4a51-9d7e-2b1f0c9a8e31');
    expect(out.response.allowed).toBe(true);
    expect(out.response.patchType).toBe('JSONPatch');
    expect(pod.spec.containers[0]?.resources).toEqual({
      requests: { 'intel.com/intel_sriov_netdevice': '2' },
      limits: { 'intel.com/intel_sriov_netdevice': '2' },
    });
    expect(pod.spec.volumes.map((v) => v['name'])).toEqual(['default-token-8xk2p', 'podnetinfo']);
    expect(pod.spec.containers[0]?.volumeMounts.at(-1)).toMatchObject({ mountPath: '/etc/podnetinfo' });
  });

  it('reads a NAD missing from the cache from the live API, and warns about one that does not exist', async () => {
    const { out, pod } = patchedPod((await post(withNetworks('late-nad,no-such-nad'))).body);
    expect(out.response.allowed).toBe(true);
    expect(pod.spec.containers[0]?.resources).toEqual({
      requests: { 'example.com/late': '1' },
      limits: { 'example.com/late': '1' },
    });
    expect(out.response.warnings).toEqual([
      'netplumb-webhook: network default/no-such-nad: no such NetworkAttachmentDefinition; the pod will fail to start until it exists',
    ]);
    const metrics = (await httpsRequest(hook.port, { ca: bundle.caCert, servername: SNI, path: '/metrics' }))
      .body;
    expect(metrics).toMatch(/netplumb_webhook_nad_problems_total\{problem="missing"\} 1/);
    expect(metrics).toMatch(/netplumb_webhook_nad_lookups_total\{result="miss"\} 2/);
  });

  it('denies a pod whose networks annotation the CNI would refuse, naming the item', async () => {
    const out = JSON.parse((await post(withNetworks('a@b@c'))).body) as {
      response: { allowed: boolean; status: { message: string } };
    };
    expect(out.response.allowed).toBe(false);
    expect(out.response.status.message).toMatch(/item 1 "a@b@c": more than one "@"/);
  });

  it('answers 400 to a body that is not an AdmissionReview v1, and 413 to an oversized one', async () => {
    const v1beta1 = JSON.stringify({ ...review, apiVersion: 'admission.k8s.io/v1beta1' });
    expect(await post(v1beta1)).toMatchObject({ status: 400 });
    expect(await post('{"apiVersion":')).toMatchObject({ status: 400 });
    expect((await post('x'.repeat(4 * 1024 * 1024))).status).toBe(413);
  });

  it('serves /healthz and /readyz', async () => {
    for (const p of ['/healthz', '/readyz']) {
      expect(await httpsRequest(hook.port, { ca: bundle.caCert, servername: SNI, path: p })).toEqual({
        status: 200,
        body: 'ok\n',
      });
    }
  });

  it('refuses TLS below its minimum version and a name the certificate does not carry', async () => {
    await expect(
      httpsRequest(hook.port, {
        ca: bundle.caCert,
        servername: SNI,
        path: '/healthz',
        tls: { maxVersion: 'TLSv1.1' },
      }),
    ).rejects.toThrow();
    await expect(
      httpsRequest(hook.port, { ca: bundle.caCert, servername: 'evil.example', path: '/healthz' }),
    ).rejects.toThrow(/altnames/i);
  });

  it('never crashes on any body (fuzz) and keeps answering', async () => {
    const request = review['request'] as JsonObject;
    const bodies = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .record({
          object: fc.jsonValue(),
          namespace: fc.string({ maxLength: 20 }),
          operation: fc.constantFrom('CREATE', 'UPDATE', ''),
        })
        .map((r) => JSON.stringify({ ...review, request: { ...request, ...r } })),
      fc
        .record({
          networks: fc.string({ maxLength: 80 }),
          container: fc.string({ maxLength: 10 }),
          resources: fc.jsonValue(),
        })
        .map((r) => {
          const pod = structuredClone(request['object']) as {
            metadata: JsonObject;
            spec: { containers: JsonObject[] };
          };
          pod.metadata['annotations'] = {
            'k8s.v1.cni.cncf.io/networks': r.networks,
            'netplumb.io/resources-container': r.container,
          };
          (pod.spec.containers[0] as JsonObject)['resources'] = r.resources as JsonObject;
          return JSON.stringify({ ...review, request: { ...request, object: pod } });
        }),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const answer = await post(body);
        expect([200, 400]).toContain(answer.status);
        expect(() => JSON.parse(answer.body) as unknown).not.toThrow();
      }),
      { numRuns: 150 },
    );
    expect(
      (await httpsRequest(hook.port, { ca: bundle.caCert, servername: SNI, path: '/healthz' })).status,
    ).toBe(200);
  });

  it('reloads a renewed certificate from the Secret volume without a restart', async () => {
    const renewed = createCertificates({
      service: 'netplumb-webhook',
      namespace: 'netplumb',
      days: 30,
      now: new Date(),
    });
    await writeSecretDir(dir, renewed);
    // Poll (bounded: 20 s by the clock, was 100 tries, ~10 s) until new connections present the
    // renewed certificate.
    let ok = false;
    for (const end = Date.now() + 20_000; !ok && Date.now() < end;) {
      ok = await httpsRequest(hook.port, { ca: renewed.caCert, servername: SNI, path: '/healthz' }).then(
        () => true,
        () => false,
      );
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ok).toBe(true);
    await expect(
      httpsRequest(hook.port, { ca: bundle.caCert, servername: SNI, path: '/healthz' }),
    ).rejects.toThrow();
    bundle = renewed;
  });
});

describe('TLS settings', () => {
  it('serves only the configured minimum version and ciphers', async () => {
    const d = await mkdtemp(path.join(os.tmpdir(), 'netplumb-webhook-tls-'));
    const b = createCertificates({
      service: 'netplumb-webhook',
      namespace: 'netplumb',
      days: 1,
      now: new Date(),
    });
    const files = await writeSecretDir(d, b);
    const start = (minVersion: 'TLSv1.2' | 'TLSv1.3', ciphers: string | undefined) =>
      startWebhook({
        logger: pino({ level: 'silent' }),
        tls: { ...files, minVersion, ciphers },
        listen: { host: '127.0.0.1', port: 0 },
        nads: memoryNadWatch(),
        live: undefined,
        options: { downwardApi: false, namespaceIsolation: false, globalNamespaces: [] },
        defaultMetrics: false,
      });
    const only13 = await start('TLSv1.3', undefined);
    const get = (port: number, tls: NonNullable<Parameters<typeof httpsRequest>[1]['tls']>) =>
      httpsRequest(port, { ca: b.caCert, servername: SNI, path: '/healthz', tls });
    try {
      await expect(get(only13.port, { maxVersion: 'TLSv1.2' })).rejects.toThrow();
      expect((await get(only13.port, { minVersion: 'TLSv1.3' })).status).toBe(200);
      const gcm = await start('TLSv1.2', 'ECDHE-RSA-AES256-GCM-SHA384');
      try {
        const tls12 = { maxVersion: 'TLSv1.2' as const };
        expect((await get(gcm.port, { ...tls12, ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' })).status).toBe(200);
        await expect(get(gcm.port, { ...tls12, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).rejects.toThrow();
      } finally {
        await gcm.stop();
      }
    } finally {
      await only13.stop();
      await rm(d, { recursive: true, force: true });
    }
  });
});
