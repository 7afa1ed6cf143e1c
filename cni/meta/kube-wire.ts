// HTTP/1.1 over one connection, for a process that makes a handful of API requests and exits (the
// thin netplumb-cni: pod and NAD reads, the status write, events). Node's http client costs such a
// process more than the requests do: the first request through an https.Agent runs its agent,
// ClientRequest, OutgoingMessage and IncomingMessage code for the first time (compiled on first
// call, in every process), ~8 ms of a thin ADD's three reads against ~2 ms over a plain TLS
// socket (measured in one run, same server). This is the client side of RFC 9112 that those
// requests need: requests one at a time on a kept-alive connection, responses framed by
// Content-Length, chunked transfer coding or the connection's close, 1xx answers skipped.
import type { Duplex } from 'node:stream';

/** One answer: status and the whole body. */
export interface WireResponse {
  readonly status: number;
  readonly body: Buffer;
}

export interface WireOptions {
  /** Opens the connection (TCP or TLS, trusted already): called again after the server closed it. */
  readonly connect: () => Promise<Duplex>;
  /** The Host header (host, and port when it is not the scheme's default). */
  readonly host: string;
  /** A response whose body is larger fails (and the connection is dropped). */
  readonly maxBody: number;
  readonly timeoutMs: number;
}

export interface WireConnection {
  /** Sends one request when the ones before it are answered; `headers` are sent as given. */
  request(
    method: string,
    path: string,
    headers: Readonly<Record<string, string>>,
    body?: string,
  ): Promise<WireResponse>;
  /** Closes the connection (requests still queued fail). */
  close(): void;
}

/** A response that does not follow HTTP/1.1 (the connection is dropped). */
export class WireProtocolError extends Error {
  override readonly name = 'WireProtocolError';
  readonly code = 'EPROTO';
}

const MAX_HEAD = 64 << 10;
const CRLF = Buffer.from('\r\n');

interface Head {
  readonly status: number;
  readonly length: number | undefined;
  readonly chunked: boolean;
  readonly close: boolean;
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (m === null)
    throw new WireProtocolError(`not an HTTP/1.x status line: ${JSON.stringify(lines[0] ?? '')}`);
  let length: number | undefined;
  let chunked = false;
  let close = m[1] === '0';
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new WireProtocolError(`bad header line: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== Number(value)))
        throw new WireProtocolError(`bad Content-Length: ${JSON.stringify(value)}`);
      length = Number(value);
    } else if (name === 'transfer-encoding') {
      const codings = value
        .toLowerCase()
        .split(',')
        .map((c) => c.trim());
      if (codings.at(-1) !== 'chunked')
        throw new WireProtocolError(`unsupported Transfer-Encoding: ${JSON.stringify(value)}`);
      chunked = true;
    } else if (name === 'connection') {
      const tokens = value
        .toLowerCase()
        .split(',')
        .map((t) => t.trim());
      if (tokens.includes('close')) close = true;
      else if (tokens.includes('keep-alive')) close = false;
    }
  }
  return { status: Number(m[2]), length: chunked ? undefined : length, chunked, close };
}

/**
 * Decodes a chunked body from `buf` at `off`: the body and where the message ends, or undefined
 * when more bytes are needed.
 */
function chunkedBody(buf: Buffer, off: number, maxBody: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  let size = 0;
  let at = off;
  for (;;) {
    const eol = buf.indexOf(CRLF, at);
    if (eol < 0) {
      if (buf.length - at > 1024) throw new WireProtocolError('chunk size line too long');
      return undefined;
    }
    const line = buf.toString('latin1', at, eol);
    const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
    if (m === null) throw new WireProtocolError(`bad chunk size line: ${JSON.stringify(line)}`);
    const n = parseInt(m[1] ?? '', 16);
    at = eol + 2;
    if (n === 0) {
      // Trailer fields (ignored), then the empty line.
      for (;;) {
        const tEol = buf.indexOf(CRLF, at);
        if (tEol < 0) return undefined;
        const empty = tEol === at;
        at = tEol + 2;
        if (empty) return { body: Buffer.concat(parts, size), end: at };
      }
    }
    size += n;
    if (size > maxBody) throw new WireProtocolError(`response larger than ${maxBody} bytes`);
    if (buf.length < at + n + 2) return undefined;
    if (buf[at + n] !== 0x0d || buf[at + n + 1] !== 0x0a)
      throw new WireProtocolError('chunk not followed by CRLF');
    parts.push(buf.subarray(at, at + n));
    at += n + 2;
  }
}

/** A complete response at the start of a buffer: its status, body, and where it ends. */
interface Framed {
  readonly status: number;
  readonly body: Buffer;
  readonly end: number;
  /** The server closes the connection after it (or it was delimited by the close). */
  readonly close: boolean;
}

/**
 * The response to a `method` request at the start of `buf` (1xx answers before it skipped), or
 * undefined when more bytes are needed; `ended` when the connection has closed (a body without
 * length or chunking ends there). Throws WireProtocolError for what HTTP/1.1 does not allow.
 */
export function frameResponse(
  buf: Buffer,
  method: string,
  maxBody: number,
  ended: boolean,
): Framed | undefined {
  let at = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', at);
    if (headEnd < 0) {
      if (buf.length - at > MAX_HEAD) throw new WireProtocolError('response head too large');
      return undefined;
    }
    const head = parseHead(buf.toString('latin1', at, headEnd));
    const bodyAt = headEnd + 4;
    if (head.status === 101) throw new WireProtocolError('unexpected protocol switch');
    if (head.status < 200) {
      at = bodyAt;
      continue;
    }
    if (method === 'HEAD' || head.status === 204 || head.status === 304)
      return { status: head.status, body: Buffer.alloc(0), end: bodyAt, close: head.close };
    if (head.chunked) {
      const c = chunkedBody(buf, bodyAt, maxBody);
      return c === undefined
        ? undefined
        : { status: head.status, body: c.body, end: c.end, close: head.close };
    }
    const length = head.length ?? (ended ? buf.length - bodyAt : undefined);
    if ((length ?? buf.length - bodyAt) > maxBody)
      throw new WireProtocolError(`response larger than ${maxBody} bytes`);
    if (length === undefined || buf.length < bodyAt + length) return undefined;
    const body = Buffer.from(buf.subarray(bodyAt, bodyAt + length));
    return {
      status: head.status,
      body,
      end: bodyAt + length,
      close: head.close || head.length === undefined,
    };
  }
}

interface Job {
  readonly method: string;
  readonly data: Buffer;
  readonly resolve: (r: WireResponse) => void;
  readonly reject: (e: Error) => void;
  /** Sent once already, on a kept-alive connection the server closed before answering. */
  readonly again?: boolean;
}

export function createWireConnection(o: WireOptions): WireConnection {
  const queue: Job[] = [];
  let socket: Duplex | undefined;
  let opening: Promise<Duplex> | undefined;
  let active: Job | undefined;
  let buf: Buffer = Buffer.alloc(0);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  /** Requests sent on the current connection, and whether the active one got any answer byte. */
  let sent = 0;
  let answering = false;

  function drop(s: Duplex, err: Error | undefined): void {
    if (socket !== s) return;
    socket = undefined;
    buf = Buffer.alloc(0);
    clearTimeout(timer);
    s.destroy();
    const job = active;
    active = undefined;
    if (job !== undefined) {
      // A GET on a reused connection that the server closed meanwhile (an idle timeout racing the
      // request) is sent once more on a new one, as it is safe to repeat.
      if (
        job.method === 'GET' &&
        job.again !== true &&
        sent > 1 &&
        !answering &&
        !(err instanceof WireProtocolError)
      )
        queue.unshift({ ...job, again: true });
      else job.reject(err ?? Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    }
    pump();
  }

  function answer(s: Duplex, ended: boolean): void {
    const job = active;
    if (job === undefined) return;
    let framed: Framed | undefined;
    try {
      framed = frameResponse(buf, job.method, o.maxBody, ended);
    } catch (err) {
      drop(s, err as Error);
      return;
    }
    if (framed === undefined) {
      if (ended) drop(s, undefined);
      return;
    }
    active = undefined;
    clearTimeout(timer);
    const rest = buf.length - framed.end;
    buf = Buffer.alloc(0);
    // Bytes past the answer were not asked for (nothing is pipelined): the connection is not reused.
    if (framed.close || rest > 0 || ended) drop(s, undefined);
    job.resolve({ status: framed.status, body: framed.body });
    pump();
  }

  function attach(s: Duplex): void {
    s.on('data', (chunk: Buffer) => {
      if (socket !== s) return;
      if (active === undefined) {
        drop(s, undefined);
        return;
      }
      answering = true;
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      answer(s, false);
    });
    s.on('end', () => {
      if (socket === s && active !== undefined) answer(s, true);
      else drop(s, undefined);
    });
    s.on('close', () => {
      drop(s, undefined);
    });
    s.on('error', (err: Error) => {
      drop(s, err);
    });
  }

  function pump(): void {
    if (active !== undefined || closed) return;
    const job = queue[0];
    if (job === undefined) return;
    if (socket === undefined) {
      if (opening !== undefined) return;
      const p = o.connect();
      opening = p;
      p.then(
        (s) => {
          opening = undefined;
          if (closed) {
            s.destroy();
            return;
          }
          socket = s;
          sent = 0;
          attach(s);
          pump();
        },
        (err: unknown) => {
          opening = undefined;
          // The request that was to go first fails; the next one tries to connect again.
          const first = queue.shift();
          first?.reject(err instanceof Error ? err : new Error(String(err)));
          pump();
        },
      );
      return;
    }
    queue.shift();
    active = job;
    sent += 1;
    answering = false;
    const s = socket;
    timer = setTimeout(() => {
      drop(s, Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' }));
    }, o.timeoutMs);
    s.write(job.data);
  }

  return {
    request(method, path, headers, body) {
      if (closed) return Promise.reject(new Error('the API connection is closed'));
      let head = `${method} ${path} HTTP/1.1\r\nHost: ${o.host}\r\n`;
      for (const [k, v] of Object.entries(headers)) {
        if (/[\r\n]/.test(k) || /[\r\n]/.test(v))
          return Promise.reject(new Error(`header ${k} holds a line break`));
        head += `${k}: ${v}\r\n`;
      }
      if (body !== undefined) head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
      const data = Buffer.from(`${head}\r\n${body ?? ''}`);
      return new Promise<WireResponse>((resolve, reject) => {
        queue.push({ method, data, resolve, reject });
        pump();
      });
    },
    close() {
      closed = true;
      const err = new Error('the API connection is closed');
      for (const j of queue.splice(0)) j.reject(err);
      if (socket !== undefined) drop(socket, err);
    },
  };
}
