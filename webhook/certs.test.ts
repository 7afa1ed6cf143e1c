import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClientNodeConfig } from '../cni/daemon/kube-config.js';
import { createCertificates, renewalReason, serviceDnsNames } from './certs.js';
import { ensureCertificates, fileCertStore, kubeCertStore } from './cert-store.js';
import { permissionOf, webhookGrants } from '../test/support/webhook.js';

const REQ = { service: 'netplumb-webhook', namespace: 'netplumb', days: 365, now: new Date() };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'netplumb-certs-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('createCertificates', () => {
  it('makes a CA and a serving certificate for the Service names, signed by it', () => {
    const b = createCertificates(REQ);
    const ca = new X509Certificate(b.caCert);
    const cert = new X509Certificate(b.cert);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    for (const n of serviceDnsNames('netplumb-webhook', 'netplumb')) expect(cert.checkHost(n)).toBe(n);
    expect(cert.checkHost('other.netplumb.svc')).toBeUndefined();
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
    expect(renewalReason(b, REQ, 30)).toBeUndefined();
  });

  it('encodes subjects Go can parse: PrintableString values without "@" (the API server and kubelet are Go)', () => {
    const b = createCertificates(REQ);
    for (const pem of [b.caCert, b.cert]) {
      for (const a of forge.pki.certificateFromPem(pem).subject.attributes) {
        expect(a.valueTagClass).toBe(forge.asn1.Type.PRINTABLESTRING);
        expect(String(a.value)).toMatch(/^[A-Za-z0-9 '()+,\-./:=?]+$/);
      }
    }
  });

  it('replaces a bundle of an earlier version whose CA was named netplumb-webhook-ca@<time>', () => {
    // Such a bundle, built as that version did (node-forge, the CN as a PrintableString).
    const keys = () => forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
    const ca = keys();
    const server = keys();
    const make = (publicKey: forge.pki.PublicKey, cn: string) => {
      const c = forge.pki.createCertificate();
      c.publicKey = publicKey;
      c.serialNumber = '01';
      c.validity.notBefore = new Date(REQ.now.getTime() - 60_000);
      c.validity.notAfter = new Date(REQ.now.getTime() + 365 * 86_400_000);
      c.setSubject([{ name: 'commonName', value: cn }]);
      return c;
    };
    const caCert = make(ca.publicKey, 'netplumb-webhook-ca@1764619200');
    caCert.setIssuer(caCert.subject.attributes);
    caCert.setExtensions([{ name: 'basicConstraints', cA: true }]);
    caCert.sign(ca.privateKey, forge.md.sha256.create());
    const cert = make(server.publicKey, 'netplumb-webhook.netplumb.svc');
    cert.setIssuer(caCert.subject.attributes);
    const altNames = serviceDnsNames('netplumb-webhook', 'netplumb').map((value) => ({ type: 2, value }));
    cert.setExtensions([{ name: 'subjectAltName', altNames }]);
    cert.sign(ca.privateKey, forge.md.sha256.create());
    const old = {
      caCert: forge.pki.certificateToPem(caCert),
      cert: forge.pki.certificateToPem(cert),
      key: forge.pki.privateKeyToPem(server.privateKey),
    };
    expect(renewalReason(old, REQ, 30)).toBe(
      'subject "CN=netplumb-webhook-ca@1764619200" is not a valid PrintableString (Go clients reject it)',
    );
  });

  it('says why a stored bundle must be replaced', () => {
    const b = createCertificates({ ...REQ, days: 10 });
    // A second later: notAfter holds whole seconds, so checked at REQ.now itself a bundle made when
    // REQ.now's milliseconds were 0 (1 run in 1000) has exactly 10 days left, not 9.something.
    const later = { ...REQ, now: new Date(REQ.now.getTime() + 1_000) };
    expect(renewalReason(b, later, 30)).toMatch(/expires in 9 days/);
    expect(renewalReason(b, { ...REQ, service: 'renamed' }, 1)).toMatch(/does not name renamed/);
    const other = createCertificates(REQ);
    expect(renewalReason({ ...b, caCert: other.caCert }, REQ, 1)).toBe('not signed by its CA');
    expect(renewalReason({ ...b, key: other.key }, REQ, 1)).toBe('key does not match the certificate');
    expect(renewalReason({ cert: b.cert }, REQ, 1)).toBe('no certificate yet');
  });
});

describe('ensureCertificates with files', () => {
  it('creates the files once (key 0600) and keeps them while valid', async () => {
    const out = path.join(dir, 'files');
    const store = fileCertStore(out);
    const first = await ensureCertificates(store, REQ, 30);
    expect(first).toMatchObject({ renewed: true, reason: 'no certificate yet', webhooksPatched: 0 });
    expect((await stat(path.join(out, 'tls.key'))).mode & 0o777).toBe(0o600);
    const second = await ensureCertificates(store, REQ, 30);
    expect(second).toMatchObject({ renewed: false, caCert: first.caCert });
    await writeFile(path.join(out, 'tls.crt'), 'garbage');
    expect((await ensureCertificates(store, REQ, 30)).reason).toMatch(/unreadable certificate/);
  });
});

// A REST stand-in for the two objects `webhook certs` touches, spoken to by the real client-node.
function fakeApi() {
  const objects = new Map<string, Record<string, unknown>>();
  objects.set('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/netplumb-webhook', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'netplumb-webhook', resourceVersion: '1' },
    webhooks: [
      {
        name: 'resources.netplumb.io',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        clientConfig: { service: { namespace: 'netplumb', name: 'netplumb-webhook', path: '/mutate' } },
      },
    ],
  });
  const calls: string[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = (req.url ?? '').split('?')[0] ?? '';
    calls.push(`${req.method ?? ''} ${url}`);
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' || req.method === 'PUT') {
      const current = objects.get(url);
      if (current === undefined) {
        send(404, { kind: 'Status', code: 404, reason: 'NotFound' });
        return;
      }
      if (req.method === 'GET') {
        send(200, current);
        return;
      }
      objects.set(url, JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
      send(200, objects.get(url));
      return;
    }
    if (req.method === 'POST' && url === '/api/v1/namespaces/netplumb/secrets') {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { metadata: { name: string } };
      objects.set(`${url}/${body.metadata.name}`, body);
      send(201, body);
      return;
    }
    send(405, {});
  };
  const server = createServer((req, res) => void handle(req, res));
  return { server, objects, calls };
}

async function writeKubeconfig(port: number): Promise<string> {
  const kubeconfig = path.join(dir, `kubeconfig-${port}`);
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'c', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } },
      ],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  return kubeconfig;
}

describe('ensureCertificates with the API (client-node over HTTP)', () => {
  it('creates the Secret, sets the caBundle on every webhook, and replaces nothing while valid', async () => {
    const api = fakeApi();
    await new Promise<void>((r) => api.server.listen(0, '127.0.0.1', r));
    try {
      const port = (api.server.address() as AddressInfo).port;
      const kubeconfig = path.join(dir, 'kubeconfig');
      await writeFile(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            { name: 'c', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } },
          ],
          users: [{ name: 'u', user: { token: 't' } }],
          contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'x',
        }),
      );
      const store = kubeCertStore(loadClientNodeConfig(kubeconfig), {
        namespace: 'netplumb',
        secret: 'netplumb-webhook-tls',
        webhookConfig: 'netplumb-webhook',
      });
      const first = await ensureCertificates(store, REQ, 30);
      expect(first).toMatchObject({ renewed: true, webhooksPatched: 1 });
      const secret = api.objects.get('/api/v1/namespaces/netplumb/secrets/netplumb-webhook-tls') as {
        type: string;
        data: Record<string, string>;
      };
      expect(secret.type).toBe('kubernetes.io/tls');
      expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
      const config = api.objects.get(
        '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/netplumb-webhook',
      ) as { webhooks: { clientConfig: { caBundle: string } }[] };
      expect(Buffer.from(config.webhooks[0]!.clientConfig.caBundle, 'base64').toString()).toBe(first.caCert);

      api.calls.length = 0;
      const second = await ensureCertificates(store, REQ, 30);
      expect(second).toMatchObject({ renewed: false, caCert: first.caCert });
      expect(api.calls.filter((c) => c.includes('/secrets/') && !c.startsWith('GET'))).toEqual([]);
    } finally {
      api.server.closeAllConnections();
      await new Promise((r) => api.server.close(r));
    }
  });

  it('is granted by deployments/webhook.yaml exactly what it calls (least privilege)', async () => {
    const api = fakeApi();
    await new Promise<void>((r) => api.server.listen(0, '127.0.0.1', r));
    try {
      const port = (api.server.address() as AddressInfo).port;
      const store = kubeCertStore(loadClientNodeConfig(await writeKubeconfig(port)), {
        namespace: 'netplumb',
        secret: 'netplumb-webhook-tls',
        webhookConfig: 'netplumb-webhook',
      });
      await ensureCertificates(store, REQ, 30); // creates the Secret
      await ensureCertificates(store, { ...REQ, service: 'renamed' }, 30); // replaces it
      const used = new Set(api.calls.map((c) => permissionOf(...(c.split(' ') as [string, string]))));
      expect([...used].sort()).toEqual([
        '/secrets:create',
        '/secrets:get',
        '/secrets:update',
        'admissionregistration.k8s.io/mutatingwebhookconfigurations:get',
        'admissionregistration.k8s.io/mutatingwebhookconfigurations:update',
      ]);
      expect([...(await webhookGrants('netplumb-webhook-certs'))].sort()).toEqual([...used].sort());
    } finally {
      api.server.closeAllConnections();
      await new Promise((r) => api.server.close(r));
    }
  });
});
