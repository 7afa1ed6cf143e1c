// The shim ↔ daemon wire format: HTTP/1.1 over the daemon's unix socket, kept trivial so the C
// launcher (shim/netplumb-shim.c) can speak it without a JSON or HTTP library.
//   request:  POST /cni, header X-Env-Length: E, body = E bytes of NUL-terminated KEY=VALUE
//             entries (the caller's CNI_* variables), then the network config from stdin.
//   response: 200, header X-Cni-Exit-Code: N, body = the plugin's stdout.
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import http from 'node:http';
import type { CniRequest, CniResponse } from '../skel.js';

export const CNI_PATH = '/cni';
export const ENV_LENGTH_HEADER = 'x-env-length';
export const EXIT_CODE_HEADER = 'x-cni-exit-code';
export const DEFAULT_SOCKET = '/run/netplumb/cni.sock';
/** Config key that sends the shim's calls to the daemon (same role as Multus' daemonSocketDir). */
export const DAEMON_SOCKET_KEY = 'daemonSocket';

/** Only the CNI_* variables cross the socket: the daemon must not inherit the caller's PATH etc. */
export function encodeRequest(req: CniRequest): { envLength: number; body: Buffer } {
  const env = Buffer.from(
    Object.entries(req.env)
      .filter((e): e is [string, string] => e[0].startsWith('CNI_') && e[1] !== undefined)
      .map(([k, v]) => `${k}=${v}\0`)
      .join(''),
  );
  return { envLength: env.length, body: Buffer.concat([env, Buffer.from(req.stdin)]) };
}

export class WireError extends NetplumbError {
  override readonly name = 'WireError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super('BAD_REQUEST', message, options);
  }
}

export function decodeRequest(body: Buffer, envLength: number): CniRequest {
  if (!Number.isInteger(envLength) || envLength < 0 || envLength > body.length) {
    throw new WireError(`X-Env-Length ${envLength} does not fit a body of ${body.length} bytes`);
  }
  const env: Record<string, string> = {};
  for (const entry of body.subarray(0, envLength).toString('utf8').split('\0')) {
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new WireError(`environment entry "${entry.slice(0, 40)}" is not KEY=VALUE`);
    const key = entry.slice(0, eq);
    if (!key.startsWith('CNI_')) throw new WireError(`environment entry ${key} is not a CNI_ variable`);
    env[key] = entry.slice(eq + 1);
  }
  return { env, stdin: body.subarray(envLength).toString('utf8') };
}

/** The `daemonSocket` of a network config, or undefined when the config runs thin. */
export function daemonSocketOf(stdin: string): string | undefined {
  if (!stdin.includes(DAEMON_SOCKET_KEY)) return undefined;
  try {
    const conf: unknown = JSON.parse(stdin);
    if (typeof conf !== 'object' || conf === null) return undefined;
    const v = (conf as Record<string, unknown>)[DAEMON_SOCKET_KEY];
    return typeof v === 'string' && v !== '' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sends one CNI call to the daemon (the TypeScript twin of the C shim: used by netplumb-cni when
 * its config names a daemonSocket, and by tests/benchmarks). Rejects on transport failure only.
 */
export function forwardToDaemon(socketPath: string, req: CniRequest): Promise<CniResponse> {
  const { envLength, body } = encodeRequest(req);
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        socketPath,
        path: CNI_PATH,
        method: 'POST',
        agent: false,
        headers: {
          connection: 'close',
          'content-type': 'application/x-netplumb-cni',
          [ENV_LENGTH_HEADER]: String(envLength),
          'content-length': String(body.length),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const header = res.headers[EXIT_CODE_HEADER];
          const code = typeof header === 'string' ? Number(header) : res.statusCode === 200 ? 0 : 1;
          resolve({
            exitCode: Number.isInteger(code) ? code : 1,
            stdout: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}
