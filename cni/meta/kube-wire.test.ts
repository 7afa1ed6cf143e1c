// kube-wire.ts against real TCP servers that answer with scripted bytes (framings Node's http server
// would not produce on demand: chunk extensions and trailers, 1xx, close-delimited bodies, closes
// racing a request), and frameResponse on every split of a byte stream.
import net from 'node:net';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { WireProtocolError, createWireConnection, frameResponse } from './kube-wire.js';
import type { WireConnection } from './kube-wire.js';

interface Scripted {
  readonly port: number;
  /** Requests received, as text, in order. */
  readonly requests: string[];
  connections(): number;
  close(): Promise<void>;
}

/** A server that answers the n-th request (over all connections) with `answer(n, socket)`. */
async function scripted(answer: (n: number, socket: net.Socket, request: string) => void): Promise<Scripted> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const request = buf.slice(0, end + 4 + len);
        buf = buf.slice(end + 4 + len);
        requests.push(request);
        answer(requests.length, socket, request);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

const ok = (body: string, extra = ''): string =>
  `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

let open: { server?: Scripted; wire?: WireConnection }[] = [];
afterEach(async () => {
  for (const o of open) {
    o.wire?.close();
    await o.server?.close();
  }
  open = [];
});

function wireTo(server: Scripted, opts: { maxBody?: number; timeoutMs?: number } = {}): WireConnection {
  const wire = createWireConnection({
    connect: () =>
      new Promise((resolve, reject) => {
        const s = net.connect(server.port, '127.0.0.1', () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      }),
    host: `127.0.0.1:${String(server.port)}`,
    maxBody: opts.maxBody ?? 1 << 20,
    timeoutMs: opts.timeoutMs ?? 5_000,
  });
  open.push({ server, wire });
  return wire;
}

const text = async (p: Promise<{ status: number; body: Buffer }>) => {
  const r = await p;
  return `${String(r.status)} ${r.body.toString()}`;
};

describe('createWireConnection', () => {
  it('sends requests one at a time on one kept-alive connection, with Host, the headers given and the body length', async () => {
    const server = await scripted((n, s) => s.write(ok(`{"n":${String(n)}}`)));
    const wire = wireTo(server);
    const answers = await Promise.all([
      text(wire.request('GET', '/api/v1/namespaces/a/pods/p', { accept: 'application/json' })),
      text(wire.request('PUT', '/x', { 'content-type': 'application/json' }, '{"é":1}')),
      text(wire.request('POST', '/y', {}, '')),
    ]);
    expect(answers).toEqual(['200 {"n":1}', '200 {"n":2}', '200 {"n":3}']);
    expect(server.connections()).toBe(1);
    expect(server.requests[0]).toBe(
      `GET /api/v1/namespaces/a/pods/p HTTP/1.1\r\nHost: 127.0.0.1:${String(server.port)}\r\naccept: application/json\r\n\r\n`,
    );
    // 8 bytes: é is two in UTF-8 (the server reads latin1).
    expect(server.requests[1]).toMatch(/^PUT \/x HTTP\/1\.1\r\n[\s\S]*Content-Length: 8\r\n\r\n\{"..":1\}$/);
    expect(server.requests[2]).toMatch(/Content-Length: 0\r\n\r\n$/);
  });

  it('reads chunked bodies (extensions, trailers, chunks split across writes) and skips 1xx answers', async () => {
    const server = await scripted((n, s) => {
      if (n === 1) {
        s.write(
          'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{"a"',
        );
        setTimeout(() => s.write(':\r\n3\r\n12}\r\n0\r\nX-Trailer: t\r\n\r\n'), 20);
      } else s.write('HTTP/1.1 204 No Content\r\n\r\n');
    });
    const wire = wireTo(server);
    expect(await text(wire.request('GET', '/c', {}))).toBe('200 {"a":12}');
    expect(await text(wire.request('DELETE', '/d', {}))).toBe('204 ');
    expect(server.connections()).toBe(1);
  });

  it('opens a new connection after "Connection: close", a close-delimited body, or an idle close by the server', async () => {
    const server = await scripted((n, s) => {
      if (n === 1) s.end(ok('{"close":1}', 'Connection: close\r\n'));
      else if (n === 2) s.end('HTTP/1.1 200 OK\r\n\r\n{"until":"close"}');
      else if (n === 3) {
        s.write(ok('{"then":"idle close"}'));
        setTimeout(() => s.end(), 10);
      } else s.write(ok('{"last":4}'));
    });
    const wire = wireTo(server);
    expect(await text(wire.request('GET', '/1', {}))).toBe('200 {"close":1}');
    expect(await text(wire.request('GET', '/2', {}))).toBe('200 {"until":"close"}');
    expect(await text(wire.request('GET', '/3', {}))).toBe('200 {"then":"idle close"}');
    await new Promise((r) => setTimeout(r, 50));
    expect(await text(wire.request('GET', '/4', {}))).toBe('200 {"last":4}');
    expect(server.connections()).toBe(4);
  });

  it('sends a GET again on a new connection when a reused one closes before any answer byte; not a POST', async () => {
    // Requests 2 and 4 are dropped unanswered on a connection that already served one.
    const server = await scripted((n, s) => {
      if (n === 2 || n === 4) s.destroy();
      else s.write(ok(`{"n":${String(n)}}`));
    });
    const wire = wireTo(server);
    expect(await text(wire.request('GET', '/a', {}))).toBe('200 {"n":1}');
    expect(await text(wire.request('GET', '/b', {}))).toBe('200 {"n":3}');
    const post = await wire.request('POST', '/c', {}, '{}').catch((e: unknown) => e);
    expect(post).toMatchObject({ code: 'ECONNRESET' });
    expect(server.requests.map((r) => r.split(' ').slice(0, 2).join(' '))).toEqual([
      'GET /a',
      'GET /b',
      'GET /b',
      'POST /c',
    ]);
  });

  it('fails, naming the problem, on a response that breaks HTTP/1.1, one over the size limit, or no answer in time', async () => {
    const server = await scripted((n, s, req) => {
      if (req.startsWith('GET /garbage')) s.write('SSH-2.0-OpenSSH\r\n\r\n');
      else if (req.startsWith('GET /big')) s.write(ok('x'.repeat(2000)));
      else if (req.startsWith('GET /bad-chunk'))
        s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
      else if (req.startsWith('GET /slow')) return;
      else s.write(ok(`{"n":${String(n)}}`));
    });
    // The timeout runs from the write to the whole answer, from a server in this very process: 300 ms
    // let a pause of a loaded machine turn the answers below into ETIMEDOUT too. Only /slow waits it out.
    const wire = wireTo(server, { maxBody: 1000, timeoutMs: 2_000 });
    await expect(wire.request('GET', '/garbage', {})).rejects.toThrow(WireProtocolError);
    await expect(wire.request('GET', '/big', {})).rejects.toThrow(/larger than 1000 bytes/);
    await expect(wire.request('GET', '/bad-chunk', {})).rejects.toThrow(/bad chunk size line/);
    await expect(wire.request('GET', '/slow', {})).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    // The connection is dropped after each failure; the next request gets a fresh one.
    expect(await text(wire.request('GET', '/fine', {}))).toMatch(/^200 /);
    await expect(wire.request('GET', '/x', { 'x-a': 'b\r\nInjected: 1' })).rejects.toThrow(/line break/);
  });

  it('reports a refused connection as the connect error, and later requests try again', async () => {
    const server = await scripted((_n, s) => s.write(ok('{}')));
    const port = server.port;
    await server.close();
    const wire = createWireConnection({
      connect: () =>
        new Promise((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => {
            resolve(s);
          });
          s.once('error', reject);
        }),
      host: `127.0.0.1:${String(port)}`,
      maxBody: 1000,
      timeoutMs: 1000,
    });
    open.push({ wire });
    await expect(wire.request('GET', '/', {})).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(wire.request('GET', '/', {})).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it("talks to Node's own HTTP server (its keep-alive, its chunked answers) as its client does", async () => {
    const srv = createServer((req, res) => {
      if (req.url === '/chunked') {
        res.write('{"part":');
        res.end('1}');
      } else res.end(JSON.stringify({ url: req.url, method: req.method }));
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as AddressInfo).port;
    let connections = 0;
    srv.on('connection', () => connections++);
    const wire = createWireConnection({
      connect: () =>
        new Promise((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => {
            resolve(s);
          });
        }),
      host: `127.0.0.1:${String(port)}`,
      maxBody: 1000,
      timeoutMs: 2000,
    });
    try {
      expect(await text(wire.request('GET', '/chunked', {}))).toBe('200 {"part":1}');
      expect(await text(wire.request('PATCH', '/p', {}, '{}'))).toBe('200 {"url":"/p","method":"PATCH"}');
      expect(connections).toBe(1);
    } finally {
      wire.close();
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });
});

describe('frameResponse', () => {
  const stream = Buffer.from(
    'HTTP/1.1 100 Continue\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive\r\n\r\n' +
      '5\r\nhello\r\n1;x=y\r\n!\r\n0\r\nT: v\r\n\r\n',
  );

  it('frames the same answer whatever the bytes received so far, and asks for more until then', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: stream.length }), (cut) => {
        const got = frameResponse(stream.subarray(0, cut), 'GET', 1000, false);
        if (cut < stream.length) expect(got).toBeUndefined();
        else
          expect(got).toEqual({ status: 200, body: Buffer.from('hello!'), end: stream.length, close: false });
      }),
    );
  });

  it('ends a body without length at the close, and knows HEAD, 204 and 304 have none', () => {
    const open = Buffer.from('HTTP/1.0 200 OK\r\n\r\nabc');
    expect(frameResponse(open, 'GET', 1000, false)).toBeUndefined();
    expect(frameResponse(open, 'GET', 1000, true)).toMatchObject({ body: Buffer.from('abc'), close: true });
    const head = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n');
    expect(frameResponse(head, 'HEAD', 1000, false)).toMatchObject({
      body: Buffer.alloc(0),
      end: head.length,
    });
    expect(frameResponse(Buffer.from('HTTP/1.1 304 Not Modified\r\n\r\n'), 'GET', 10, false)).toMatchObject({
      status: 304,
    });
  });

  it('refuses conflicting lengths, a transfer coding that is not chunked last, and a protocol switch', () => {
    for (const head of [
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
      'HTTP/1.1 101 Switching Protocols\r\n\r\n',
      'HTTP/2 200\r\n\r\n',
      'HTTP/1.1 200 OK\r\nno colon\r\n\r\n',
    ]) {
      expect(() => frameResponse(Buffer.from(head), 'GET', 1000, false), head).toThrow(WireProtocolError);
    }
  });
});
