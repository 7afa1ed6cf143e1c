// A small Kubernetes REST client: exactly what the CNI path uses (GET/PUT/POST of JSON, list and
// watch streams), over ONE keep-alive agent per API server, so TLS sessions and connections are
// reused across calls. It replaces @kubernetes/client-node here: loading client-node costs ~70 MiB
// of RSS (its generated models) and it makes a new agent, hence a new TLS handshake, per request.
// Credentials: in-cluster service account (token re-read as it rotates) or a kubeconfig's current
// context (server, CA, insecure-skip-tls-verify, tls-server-name, token/tokenFile, client cert/key,
// basic auth). exec and auth-provider plugins are refused with a clear error.
import { readFileSync, statSync } from 'node:fs';
import type http from 'node:http';
import type https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { NetplumbError } from '../../lib/errors.js';
import { parseKubeconfigText } from './kubeconfig-text.js';
import { createWireConnection } from './kube-wire.js';
import { httpModule, httpsModule } from '../../lib/lazy-builtins.js';
import type { WireConnection } from './kube-wire.js';
import { anchorAgent, anchoredConnector } from './tls-anchor.js';
import type { AnchorTls } from './tls-anchor.js';

export class KubeConfigError extends NetplumbError {
  override readonly name = 'KubeConfigError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('kubeconfig-invalid', message, { ...options, exitCode: 2 });
  }
}

/** A non-2xx answer; `code` is the HTTP status (what the adapters map to KubeErrorCode). */
export class KubeHttpError extends Error {
  override readonly name = 'KubeHttpError';
  readonly code: number;
  constructor(status: number, message: string) {
    super(message);
    this.code = status;
  }
}

export interface KubeAccess {
  readonly server: string;
  /** JSON request; resolves with the parsed body of a 2xx answer, rejects with KubeHttpError otherwise. */
  request(method: string, urlPath: string, body?: unknown): Promise<unknown>;
  /** A watch stream: `onLine` gets each newline-delimited JSON event; `done` settles when it ends. */
  stream(urlPath: string, onLine: (line: string) => void): { done: Promise<void>; abort(): void };
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_BODY = 64 << 20;
const TOKEN_REFRESH_MS = 60_000;

interface Credentials {
  readonly server: string;
  readonly agentOptions: https.AgentOptions;
  readonly token?: () => string | undefined;
  readonly basic?: string;
}

/** A token read from a file, re-read at most every minute (bound service-account tokens rotate). */
function fileToken(file: string): () => string | undefined {
  let value: string | undefined;
  let at = -Infinity;
  let mtime = 0;
  return () => {
    const now = performance.now();
    if (now - at < TOKEN_REFRESH_MS && value !== undefined) return value;
    at = now;
    const m = statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (value === undefined || m !== mtime) {
      value = readFileSync(file, 'utf8').trim();
      mtime = m;
    }
    return value;
  };
}

function inCluster(env: NodeJS.ProcessEnv): Credentials {
  const host = env['KUBERNETES_SERVICE_HOST'] ?? '';
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
  if (host === '') throw new KubeConfigError('in-cluster config: KUBERNETES_SERVICE_HOST is not set');
  const h = host.includes(':') ? `[${host}]` : host;
  return {
    server: `https://${h}:${port}`,
    agentOptions: { ca: readFileSync(path.join(SA_DIR, 'ca.crt')) },
    token: fileToken(path.join(SA_DIR, 'token')),
  };
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function named(doc: Obj, list: string, name: string | undefined, file: string): Obj {
  const items = Array.isArray(doc[list]) ? (doc[list] as unknown[]) : [];
  const found = items.map(obj).find((i) => i['name'] === name);
  if (found === undefined) throw new KubeConfigError(`${file}: ${list} has no entry named "${name ?? ''}"`);
  return found;
}

/** Inline base64 data, or the file it names (relative to the kubeconfig's directory). */
function material(o: Obj, key: string, dir: string): Buffer | undefined {
  const data = str(o[`${key}-data`]);
  if (data !== undefined) return Buffer.from(data, 'base64');
  const file = str(o[key]);
  return file === undefined ? undefined : readFileSync(path.resolve(dir, file));
}

function fromKubeconfig(file: string): Credentials {
  let doc: Obj;
  try {
    const text = readFileSync(file, 'utf8');
    doc = obj(parseKubeconfigText(text) ?? parseYaml(text));
  } catch (err) {
    throw new KubeConfigError(`cannot read kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
  const dir = path.dirname(file);
  const ctx = obj(named(doc, 'contexts', str(doc['current-context']), file)['context']);
  const cluster = obj(named(doc, 'clusters', str(ctx['cluster']), file)['cluster']);
  const user = obj(named(doc, 'users', str(ctx['user']), file)['user']);
  if (user['exec'] !== undefined || user['auth-provider'] !== undefined) {
    throw new KubeConfigError(
      `${file}: exec and auth-provider credentials are not supported; use a token or a client certificate`,
    );
  }
  const server = str(cluster['server']);
  if (server === undefined) throw new KubeConfigError(`${file}: clusters[].cluster.server is not set`);
  const skip = cluster['insecure-skip-tls-verify'] === true;
  if (server.startsWith('http:') && !skip) {
    throw new KubeConfigError(`${file}: plain http needs insecure-skip-tls-verify: true`);
  }
  const token = str(user['token']);
  const tokenFile = str(user['tokenFile']);
  const username = str(user['username']);
  const servername = str(cluster['tls-server-name']);
  return {
    server: server.replace(/\/+$/, ''),
    agentOptions: {
      ...(material(cluster, 'certificate-authority', dir) !== undefined && {
        ca: material(cluster, 'certificate-authority', dir),
      }),
      ...(material(user, 'client-certificate', dir) !== undefined && {
        cert: material(user, 'client-certificate', dir),
      }),
      ...(material(user, 'client-key', dir) !== undefined && { key: material(user, 'client-key', dir) }),
      ...(skip && { rejectUnauthorized: false }),
      ...(servername !== undefined && { servername }),
    },
    ...(token !== undefined
      ? { token: () => token }
      : tokenFile !== undefined && { token: fileToken(path.resolve(dir, tokenFile)) }),
    ...(username !== undefined && {
      basic: Buffer.from(`${username}:${str(user['password']) ?? ''}`).toString('base64'),
    }),
  };
}

/** Accept, authorization and content type (the transport adds the body's length). */
function headersOf(c: Credentials, body: string | undefined): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json' };
  const token = c.token?.();
  if (token !== undefined) h['authorization'] = `Bearer ${token}`;
  else if (c.basic !== undefined) h['authorization'] = `Basic ${c.basic}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  return h;
}

function statusMessage(status: number, text: string): string {
  try {
    const m = obj(JSON.parse(text))['message'];
    if (typeof m === 'string') return `HTTP ${status}: ${m}`;
  } catch {
    // not a Status object
  }
  return `HTTP ${status}`;
}

/** The parsed body of a 2xx answer; KubeHttpError otherwise. */
function answerOf(status: number, text: string): unknown {
  if (status < 200 || status >= 300) throw new KubeHttpError(status, statusMessage(status, text));
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}

/**
 * The CA, client cert and key parsed once into one SecureContext: given as `ca`/`cert`/`key`,
 * tls.connect parses them again for every new connection (each pod burst opens several).
 */
function tlsOptions(o: https.AgentOptions): https.AgentOptions {
  const { ca, cert, key, ...rest } = o;
  if (ca === undefined && cert === undefined && key === undefined) return rest;
  return {
    ...rest,
    secureContext: tls.createSecureContext({
      ...(ca !== undefined && { ca }),
      ...(cert !== undefined && { cert }),
      ...(key !== undefined && { key }),
    }),
  };
}

/** How the client is used: `shortLived` for a process that makes one CNI call (the thin netplumb-cni). */
export interface AccessOptions {
  /**
   * One connection (concurrent requests queue on it: one TLS handshake), and the server trusted
   * through tls-anchor.ts (no parse of Node's bundled roots when the kubeconfig's CA signed the
   * server's certificate directly). Otherwise up to 32 connections and Node's own verification.
   */
  readonly shortLived?: boolean;
}

/** The kubeconfig's CA, cert and key as tls-anchor takes them, when the server is verified against that CA. */
function anchorTls(creds: Credentials): AnchorTls | undefined {
  const { ca, cert, key, servername, rejectUnauthorized } = creds.agentOptions;
  if (!Buffer.isBuffer(ca) || rejectUnauthorized === false) return undefined;
  return {
    ca,
    ...(Buffer.isBuffer(cert) && { cert }),
    ...(Buffer.isBuffer(key) && { key }),
    ...(servername !== undefined && { servername }),
  };
}

/** `anchor`: a short-lived process's CA-verified server (anchorTls), trusted through tls-anchor. */
function agentFor(
  creds: Credentials,
  secure: boolean,
  shortLived: boolean,
  anchor: AnchorTls | undefined,
): http.Agent {
  const maxSockets = shortLived ? 1 : 32;
  if (!secure) return new (httpModule().Agent)({ keepAlive: true, maxSockets });
  if (anchor !== undefined) return anchorAgent(anchor, { keepAlive: true, maxSockets });
  return new (httpsModule().Agent)({ ...tlsOptions(creds.agentOptions), keepAlive: true, maxSockets });
}

/**
 * The requests of a short-lived process to an API server verified against the kubeconfig's CA:
 * one connection opened by tls-anchor, HTTP/1.1 spoken by kube-wire.ts instead of Node's http
 * client (whose first request costs such a process more than the API does).
 */
function wireFor(creds: Credentials, anchor: AnchorTls): WireConnection {
  const url = new URL(creds.server);
  const port = url.port === '' ? 443 : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const open = anchoredConnector(anchor);
  return createWireConnection({
    connect: () => open({ host, port }),
    host: url.host,
    maxBody: MAX_BODY,
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
}

/** Builds the client from a kubeconfig file, or the in-cluster service account when undefined. */
export function loadKubeAccess(
  kubeconfig: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  options: AccessOptions = {},
): KubeAccess {
  const creds = kubeconfig === undefined ? inCluster(env) : fromKubeconfig(kubeconfig);
  const secure = creds.server.startsWith('https:');
  const shortLived = options.shortLived === true;
  const anchor = shortLived && secure ? anchorTls(creds) : undefined;
  let agent: http.Agent | undefined;
  const agentOnce = (): http.Agent => (agent ??= agentFor(creds, secure, shortLived, anchor));
  const wire = anchor === undefined ? undefined : wireFor(creds, anchor);

  function open(
    method: string,
    urlPath: string,
    body: string | undefined,
    timeoutMs: number,
  ): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = (secure ? httpsModule().request : httpModule().request)(
        `${creds.server}${urlPath}`,
        {
          method,
          agent: agentOnce(),
          headers: {
            ...headersOf(creds, body),
            ...(body !== undefined && { 'content-length': Buffer.byteLength(body) }),
          },
        },
        resolve,
      );
      req.on('error', reject);
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () =>
          req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })),
        );
      }
      req.end(body);
    });
  }

  return {
    server: creds.server,
    async request(method, urlPath, body) {
      const text = body === undefined ? undefined : JSON.stringify(body);
      if (wire !== undefined) {
        const res = await wire.request(method, urlPath, headersOf(creds, text), text);
        return answerOf(res.status, res.body.toString('utf8'));
      }
      const res = await open(method, urlPath, text, REQUEST_TIMEOUT_MS);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of res) {
        size += (c as Buffer).length;
        if (size > MAX_BODY) {
          res.destroy();
          throw new KubeHttpError(res.statusCode ?? 0, `response larger than ${MAX_BODY} bytes`);
        }
        chunks.push(c as Buffer);
      }
      return answerOf(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
    },
    stream(urlPath, onLine) {
      let res: http.IncomingMessage | undefined;
      const state = { aborted: false };
      const done = (async () => {
        res = await open('GET', urlPath, undefined, 0);
        if (state.aborted) res.destroy();
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          res.resume();
          throw new KubeHttpError(status, `watch ${urlPath}: HTTP ${status}`);
        }
        let rest = '';
        for await (const c of res) {
          rest += (c as Buffer).toString('utf8');
          if (rest.length > MAX_BODY) throw new KubeHttpError(status, 'watch event larger than the limit');
          let nl: number;
          while ((nl = rest.indexOf('\n')) >= 0) {
            const line = rest.slice(0, nl).trim();
            rest = rest.slice(nl + 1);
            if (line !== '') onLine(line);
          }
        }
      })();
      return {
        done,
        abort() {
          state.aborted = true;
          res?.destroy();
        },
      };
    },
  };
}
