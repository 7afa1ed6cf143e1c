// What a slow or hostile client can do to the webhook's HTTPS server, over real TLS sockets: a
// chunked body past the cap, a body that stops halfway, a client that hangs up mid-body. Each
// request slot is given back well before the apiserver's timeoutSeconds, and the server keeps
// answering.
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsRequest } from '../test/support/webhook.js';
import { createCertificates } from './certs.js';
import type { CertBundle } from './certs.js';
import { createWebhookMetrics } from './metrics.js';
import { startWebhookServer } from './server.js';
import type { WebhookServer } from './server.js';

const SNI = 'netplumb-webhook.netplumb.svc';
/** Far below the 5 s timeoutSeconds; what matters is that it is enforced at all (see below). */
const REQUEST_TIMEOUT_MS = 300;

let bundle: CertBundle;
let server: WebhookServer;

beforeAll(async () => {
  bundle = createCertificates({
    service: 'netplumb-webhook',
    namespace: 'netplumb',
    days: 1,
    now: new Date(),
  });
  server = await startWebhookServer(
    {
      tls: { key: bundle.key, cert: bundle.cert },
      metrics: createWebhookMetrics({ defaultMetrics: false }),
      logger: pino({ level: 'silent' }),
      ready: () => true,
      review: {
        options: { downwardApi: false, namespaceIsolation: false, globalNamespaces: [] },
        lookups: () => () => ({ kind: 'missing' }),
      },
      maxBodyBytes: 64 * 1024,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    },
    { host: '127.0.0.1', port: 0 },
  );
});

afterAll(async () => {
  await server.close();
});

function open(): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.port, ca: bundle.caCert, servername: SNI }, () => {
      resolve(s);
    });
    s.on('error', reject);
  });
}

/** Everything the server sends until it closes the connection. */
function untilClosed(s: TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (c: Buffer) => (text += c.toString()));
    s.on('error', () => undefined);
    s.on('close', () => {
      resolve(text);
    });
  });
}

const healthy = async () =>
  (await httpsRequest(server.port, { ca: bundle.caCert, servername: SNI, path: '/healthz' })).status;

describe('webhook server limits', () => {
  it('answers 413 to a chunked body (no content-length) past the cap, and keeps serving', async () => {
    const s = await open();
    const closed = untilClosed(s);
    s.write(
      'POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    const chunk = 'x'.repeat(16 * 1024);
    for (let i = 0; i < 8; i++) s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    s.end('0\r\n\r\n');
    expect(await closed).toMatch(/^HTTP\/1\.1 413 /);
    expect(await healthy()).toBe(200);
  });

  it('gives the slot back when a body stops halfway, within the request timeout', async () => {
    const s = await open();
    const closed = untilClosed(s);
    s.write(
      'POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":',
    );
    // Node checks request timeouts every connectionsCheckingInterval (30 s by default): without a
    // shorter interval this connection stays open ~30 s, far past the apiserver's 5 s.
    expect(await closed).toMatch(/^HTTP\/1\.1 408 /);
    expect(await healthy()).toBe(200);
  }, 10_000);

  it('survives clients that hang up mid-body', async () => {
    for (let i = 0; i < 20; i++) {
      const s = await open();
      s.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{"apiVersion":');
      s.destroy();
    }
    expect(await healthy()).toBe(200);
  });
});
