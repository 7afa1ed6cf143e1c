// The HTTPS server: POST /mutate (AdmissionReview v1), GET /healthz (alive), /readyz (NAD cache
// synced), /metrics (Prometheus). Bodies are capped and requests time out before the apiserver's
// timeoutSeconds, so a slow or hostile client cannot hold memory or a request slot.
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { WebhookMetrics } from './metrics.js';
import { handleReview } from './review.js';
import type { ReviewDeps } from './review.js';

export const WEBHOOK_DEFAULTS = {
  port: 8443,
  /** The apiserver sends at most the object (≤ 1.5 MiB in etcd) plus the envelope. */
  maxBodyBytes: 3 * 1024 * 1024,
  /** Below the 5 s timeoutSeconds of deployments/webhook.yaml. */
  requestTimeoutMs: 4000,
} as const;

export interface WebhookServerDeps {
  readonly tls: SecureContextOptions;
  readonly review: ReviewDeps;
  readonly metrics: WebhookMetrics;
  readonly logger: Logger;
  readonly ready: () => boolean;
  readonly maxBodyBytes?: number;
  readonly requestTimeoutMs?: number;
}

export interface WebhookServer {
  readonly port: number;
  /** Swaps the serving certificate for new connections. */
  setSecureContext(options: SecureContextOptions): void;
  close(): Promise<void>;
}

class BodyTooLarge extends Error {}

/** The body as text; rejects with BodyTooLarge past `max` bytes (declared or streamed). */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > max) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      resolve(
        chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'),
      );
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('request aborted before its body ended'));
    });
  });
}

function send(res: ServerResponse, status: number, body: string, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function mutate(deps: WebhookServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = process.hrtime.bigint();
  let text: string;
  try {
    text = await readBody(req, deps.maxBodyBytes ?? WEBHOOK_DEFAULTS.maxBodyBytes);
  } catch (err) {
    if (err instanceof BodyTooLarge) send(res, 413, JSON.stringify({ error: 'request body too large' }));
    else req.destroy();
    return;
  }
  const result = await handleReview(text, deps.review);
  send(res, result.status, JSON.stringify(result.body));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  deps.metrics.observeAdmission(result.outcome, seconds);
  if (result.mutation) {
    deps.metrics.nadProblems(result.mutation.missingNads, result.mutation.unavailableNads);
    deps.metrics.warnings(result.mutation.warnings.length);
  }
  // A denial is logged (rare, and the user sees it); every other admission is only counted in the
  // metrics: a log line per pod is a blocking write to the container log pipe on the request path.
  if (result.outcome === 'denied' || deps.logger.isLevelEnabled('debug')) {
    deps.logger[result.outcome === 'denied' ? 'info' : 'debug'](
      { outcome: result.outcome, ms: seconds * 1000, warnings: result.mutation?.warnings },
      'admission',
    );
  }
}

/** The answer to a GET, or undefined for an unknown path. */
async function getAnswer(
  deps: WebhookServerDeps,
  path: string | undefined,
): Promise<{ status: number; body: string; type: string } | undefined> {
  const text = 'text/plain';
  if (path === '/healthz') return { status: 200, body: 'ok\n', type: text };
  if (path === '/readyz') {
    return deps.ready()
      ? { status: 200, body: 'ok\n', type: text }
      : { status: 503, body: 'NAD cache not synced\n', type: text };
  }
  if (path === '/metrics') {
    return {
      status: 200,
      body: await deps.metrics.registry.metrics(),
      type: deps.metrics.registry.contentType,
    };
  }
  return undefined;
}

async function route(deps: WebhookServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/mutate' && req.method === 'POST') {
    await mutate(deps, req, res);
    return;
  }
  if (req.method !== 'GET') {
    send(res, 405, JSON.stringify({ error: `${req.method ?? ''} not allowed` }));
    return;
  }
  const answer = await getAnswer(deps, path);
  if (answer !== undefined) send(res, answer.status, answer.body, answer.type);
  else
    send(
      res,
      404,
      JSON.stringify({ error: 'not found: use POST /mutate, GET /healthz, /readyz or /metrics' }),
    );
}

export async function startWebhookServer(
  deps: WebhookServerDeps,
  listen: { host: string; port: number },
): Promise<WebhookServer> {
  const timeout = deps.requestTimeoutMs ?? WEBHOOK_DEFAULTS.requestTimeoutMs;
  const server: Server = createServer(
    {
      ...deps.tls,
      requestTimeout: timeout,
      headersTimeout: timeout,
      // Node enforces both timeouts only when it checks, every 30 s by default: a stalled body
      // would hold its slot ~30 s, far past the apiserver's timeoutSeconds.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(timeout / 4))),
    },
    (req, res) => {
      route(deps, req, res).catch((err: unknown) => {
        deps.metrics.observeAdmission('error', 0);
        deps.logger.error({ err }, 'request failed');
        if (!res.headersSent) send(res, 500, JSON.stringify({ error: 'internal error' }));
        else res.destroy();
      });
    },
  );
  server.on('tlsClientError', (err) => {
    deps.logger.debug({ err: err.message }, 'TLS handshake failed');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    setSecureContext: (options) => {
      server.setSecureContext(options);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
