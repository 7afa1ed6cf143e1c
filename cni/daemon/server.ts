// The daemon's HTTP server: `POST /cni` from the shim (wire.ts), `/healthz`, `/readyz` and
// `/metrics`, on a root-only unix socket and optionally on a TCP address for probes and scraping.
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import http from 'node:http';
import net from 'node:net';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { CniError, CniErrorCode } from '../errors.js';
import type { CniRequest, CniResponse } from '../skel.js';
import type { Limiter } from './limiter.js';
import { OverloadError } from './limiter.js';
import type { DaemonMetrics, RequestResult } from './metrics.js';
import type { Readiness } from './readiness.js';
import { CNI_PATH, ENV_LENGTH_HEADER, EXIT_CODE_HEADER, WireError, decodeRequest } from './wire.js';

export interface DaemonServerDeps {
  /** The CNI entry (meta-plugin); never rejects, failures are CNI error responses. */
  readonly handle: (req: CniRequest) => Promise<CniResponse>;
  readonly logger: Logger;
  readonly metrics: DaemonMetrics;
  readonly limiter: Limiter;
  readonly readiness: Readiness;
  /** How long a request that needs readiness waits for it (within the runtime's CNI timeout). */
  readonly readyWaitMs: number;
  /** Largest request body accepted (env + config). */
  readonly maxBodyBytes: number;
}

export interface DaemonServer {
  /** Listens on a unix socket: parent directory 0700, socket 0600, stale socket replaced. */
  listenUnix(socketPath: string): Promise<void>;
  /** Listens on host:port for /healthz, /readyz and /metrics only (never /cni). */
  listenTcp(host: string, port: number): Promise<{ port: number }>;
  /** Stops accepting, waits for in-flight requests, removes the socket. */
  close(): Promise<void>;
}

export class SocketInUseError extends NetplumbError {
  override readonly name = 'SocketInUseError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super('SOCKET_IN_USE', message, options);
  }
}

/** DEL must work during a restart from the on-disk cache: it never waits for the API caches. */
const NEEDS_READINESS = new Set(['ADD', 'CHECK', 'STATUS', 'GC']);

function versionOf(stdin: string): string {
  const m = /"cniVersion"\s*:\s*"([^"]{1,16})"/.exec(stdin);
  return m?.[1] ?? '1.0.0';
}

function cniFailure(stdin: string, code: number, msg: string): CniResponse {
  return { exitCode: 1, stdout: `${JSON.stringify(new CniError(code, msg).toJson(versionOf(stdin)))}\n` };
}

async function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    const b = c as Buffer;
    size += b.length;
    if (size > max) return undefined;
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  const st = await lstat(socketPath).catch(() => undefined);
  if (st === undefined) return;
  if (!st.isSocket()) {
    throw new SocketInUseError(
      `${socketPath} exists and is not a socket: remove it or pick another --socket`,
    );
  }
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => {
      resolve(false);
    });
  });
  if (alive) throw new SocketInUseError(`another daemon is serving ${socketPath}: stop it first`);
  await unlink(socketPath);
}

function refreshGauges(deps: DaemonServerDeps): void {
  deps.metrics.setInFlight(deps.limiter.active);
  deps.metrics.setQueued(deps.limiter.queued);
}

interface Answer {
  readonly result: RequestResult;
  readonly response: CniResponse;
}

/** One decoded CNI request: the readiness gate (not for DEL), then the concurrency cap, then the plugin. */
async function answerCni(deps: DaemonServerDeps, cni: CniRequest, command: string): Promise<Answer> {
  if (NEEDS_READINESS.has(command) && !(await deps.readiness.waitReady(deps.readyWaitMs))) {
    const msg = `netplumb daemon not ready after ${deps.readyWaitMs} ms: ${deps.readiness.pending().join('; ')}`;
    return { result: 'not_ready', response: cniFailure(cni.stdin, CniErrorCode.TryAgainLater, msg) };
  }
  try {
    const response = await deps.limiter.run(async () => {
      refreshGauges(deps);
      return deps.handle(cni);
    });
    return { result: response.exitCode === 0 ? 'success' : 'error', response };
  } catch (err) {
    if (!(err instanceof OverloadError)) throw err;
    const msg = `netplumb daemon overloaded: ${err.message}`;
    return { result: 'overloaded', response: cniFailure(cni.stdin, CniErrorCode.TryAgainLater, msg) };
  }
}

/** The body as a CNI request and its answer; wire errors are answered with code 6. */
async function answerBody(
  deps: DaemonServerDeps,
  req: http.IncomingMessage,
  started: number,
): Promise<Answer & { command: string }> {
  const body = await readBody(req, deps.maxBodyBytes);
  if (body === undefined) {
    const msg = `CNI request larger than ${deps.maxBodyBytes} bytes`;
    return {
      command: 'unknown',
      result: 'bad_request',
      response: cniFailure('', CniErrorCode.IoFailure, msg),
    };
  }
  let cni: CniRequest;
  try {
    cni = decodeRequest(body, Number(req.headers[ENV_LENGTH_HEADER] ?? 0));
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    deps.logger.warn({ err }, 'malformed request on the daemon socket');
    const response = cniFailure(body.toString('utf8'), CniErrorCode.DecodingFailure, err.message);
    return { command: 'unknown', result: 'bad_request', response };
  }
  const command = cni.env['CNI_COMMAND'] ?? 'unknown';
  const answer = await answerCni(deps, cni, command);
  const log = deps.logger.child({
    command,
    containerId: cni.env['CNI_CONTAINERID'],
    ifname: cni.env['CNI_IFNAME'],
  });
  const ms = performance.now() - started;
  if (answer.result === 'success') log.debug({ ms }, 'CNI request served');
  else
    log.warn(
      { ms, result: answer.result, stdout: answer.response.stdout.slice(0, 2000) },
      'CNI request failed',
    );
  return { command, ...answer };
}

async function serveCni(
  deps: DaemonServerDeps,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const started = performance.now();
  let answer: Answer & { command: string };
  try {
    answer = await answerBody(deps, req, started);
  } finally {
    refreshGauges(deps);
  }
  deps.metrics.observeRequest(answer.command, answer.result, (performance.now() - started) / 1000);
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(answer.response.stdout),
    [EXIT_CODE_HEADER]: String(answer.response.exitCode),
  });
  res.end(answer.response.stdout);
}

async function serveProbe(
  deps: DaemonServerDeps,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<boolean> {
  if (req.method !== 'GET') return false;
  switch (req.url ?? '') {
    case '/healthz':
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return true;
    case '/readyz': {
      const pending = deps.readiness.pending();
      res
        .writeHead(pending.length === 0 ? 200 : 503, { 'content-type': 'text/plain' })
        .end(pending.length === 0 ? 'ready\n' : `not ready: ${pending.join('; ')}\n`);
      return true;
    }
    case '/metrics': {
      const text = await deps.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType }).end(text);
      return true;
    }
    default:
      return false;
  }
}

function makeServer(deps: DaemonServerDeps, withCni: boolean): http.Server {
  const server = http.createServer((req, res) => {
    const route = async (): Promise<void> => {
      if (withCni && req.method === 'POST' && req.url === CNI_PATH) return serveCni(deps, req, res);
      if (await serveProbe(deps, req, res)) return;
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    };
    route().catch((err: unknown) => {
      deps.logger.error({ err }, 'daemon request handler failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  server.keepAliveTimeout = 1000;
  return server;
}

function listen(server: http.Server, ...args: [string] | [number, string]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (args.length === 1) server.listen(args[0], done);
    else server.listen(args[0], args[1], done);
  });
}

function closeServer(s: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    s.close(() => {
      resolve();
    });
    s.closeIdleConnections();
  });
}

export function createDaemonServer(deps: DaemonServerDeps): DaemonServer {
  const servers: http.Server[] = [];
  let socketFile: string | undefined;
  return {
    async listenUnix(socketPath) {
      const dir = path.dirname(socketPath);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
      await removeStaleSocket(socketPath);
      const server = makeServer(deps, true);
      servers.push(server);
      await listen(server, socketPath);
      await chmod(socketPath, 0o600);
      socketFile = socketPath;
    },
    async listenTcp(host, port) {
      const server = makeServer(deps, false);
      servers.push(server);
      await listen(server, port, host);
      const addr = server.address();
      return { port: typeof addr === 'object' && addr !== null ? addr.port : port };
    },
    async close() {
      await Promise.all(servers.map(closeServer));
      servers.length = 0;
      if (socketFile !== undefined) await unlink(socketFile).catch(() => undefined);
      socketFile = undefined;
    },
  };
}
