// The authority front on kubelet-facing sockets: a client that sends `:authority` = the socket path
// (what grpc-go in kubelets before v1.26 sends) is served, over real gRPC and real HTTP/2 on unix
// sockets. The first test shows that the same client is refused by grpc-js bound the usual way.
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuthorityRewriter, listenGrpcUnix, listenUnixFront } from '../device-plugin/authority-front.js';
import {
  DevicePluginClient,
  DevicePluginService,
  type DevicePluginServer,
  type Empty,
  type ListAndWatchResponse,
} from '../proto/gen/deviceplugin/v1beta1/api.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-authority-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const OPTIONS = { preStartRequired: false, getPreferredAllocationAvailable: true };

function plugin(streams: grpc.ServerWritableStream<Empty, ListAndWatchResponse>[]): DevicePluginServer {
  return {
    getDevicePluginOptions: (_c, cb) => {
      cb(null, OPTIONS);
    },
    listAndWatch: (call) => {
      streams.push(call);
      call.write({ devices: [{ ID: 'a', health: 'Healthy', topology: undefined }] });
    },
    getPreferredAllocation: (_c, cb) => {
      cb(null, { containerResponses: [] });
    },
    allocate: (call, cb) => {
      cb(null, {
        containerResponses: call.request.containerRequests.map((r) => ({
          envs: { IDS: r.devicesIds.join(',') },
          mounts: [],
          devices: [],
          annotations: {},
          cdiDevices: [],
        })),
      });
    },
    preStartContainer: (_c, cb) => {
      cb(null, {});
    },
  };
}

/** A client that dials like grpc-go in kubelets < 1.26: `:authority` is the socket path. */
function goLikeClient(socket: string): DevicePluginClient {
  return new DevicePluginClient(`unix:${socket}`, grpc.credentials.createInsecure(), {
    'grpc.default_authority': socket,
  });
}

function options(client: DevicePluginClient): Promise<unknown> {
  return new Promise((resolve, reject) => {
    client.getDevicePluginOptions({}, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (err, res) => {
      if (err) reject(err);
      else resolve(res);
    });
  });
}

describe('kubelet-facing gRPC sockets and the :authority of kubelets before v1.26', () => {
  it('grpc-js bound directly on the socket resets the call (the bug the front fixes)', async () => {
    const socket = path.join(dir, 'direct.sock');
    const server = new grpc.Server();
    server.addService(DevicePluginService, plugin([]));
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (e) => {
        if (e) reject(e);
        else resolve();
      });
    });
    const client = goLikeClient(socket);
    try {
      await expect(options(client)).rejects.toThrow(/RST_STREAM with code 1/);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });

  it('through the front: unary calls, Allocate and a ListAndWatch stream all work', async () => {
    const socket = path.join(dir, 'front.sock');
    const server = new grpc.Server();
    const streams: grpc.ServerWritableStream<Empty, ListAndWatchResponse>[] = [];
    server.addService(DevicePluginService, plugin(streams));
    const front = await listenGrpcUnix(server, socket);
    const client = goLikeClient(socket);
    try {
      expect(await options(client)).toEqual(OPTIONS);
      // Repeated calls on one connection: the client's HPACK encoder now indexes the authority.
      for (let i = 0; i < 20; i++) expect(await options(client)).toEqual(OPTIONS);
      const res = await new Promise<unknown>((resolve, reject) => {
        client.allocate({ containerRequests: [{ devicesIds: ['x', 'y'] }] }, (err, r) => {
          if (err) reject(err);
          else resolve(r.containerResponses[0]?.envs);
        });
      });
      expect(res).toEqual({ IDS: 'x,y' });
      const updates: number[] = [];
      const stream = client.listAndWatch({});
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (r: ListAndWatchResponse) => {
          updates.push(r.devices.length);
          if (updates.length === 1) streams[0]?.write({ devices: [] });
          if (updates.length === 2) resolve();
        });
        stream.on('error', reject);
      });
      expect(updates).toEqual([1, 0]);
      stream.cancel();
    } finally {
      client.close();
      front.close();
      server.forceShutdown();
    }
  });
});

describe('AuthorityRewriter on real HTTP/2 (Node client: Huffman, dynamic table, padding, CONTINUATION)', () => {
  async function echoServer(socket: string): Promise<{ close(): void }> {
    const h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify(headers));
    });
    const front = await listenUnixFront(socket, (c) => h2.emit('connection', c));
    return {
      close() {
        front.close();
        h2.close();
      },
    };
  }

  function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders) {
    return new Promise<Record<string, string>>((resolve, reject) => {
      const req = session.request(headers, { endStream: true });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        resolve(JSON.parse(body) as Record<string, string>);
      });
      req.on('error', reject);
    });
  }

  it('delivers every header intact and replaces only the invalid authority', async () => {
    const socket = path.join(dir, 'echo.sock');
    const server = await echoServer(socket);
    const session = http2.connect('http://localhost', {
      createConnection: () => connect(socket),
      paddingStrategy: http2.constants.PADDING_STRATEGY_MAX,
    });
    try {
      const big = 'v'.repeat(20_000); // one header block over one frame: HEADERS + CONTINUATION
      for (let i = 0; i < 5; i++) {
        const seen = await request(session, {
          ':method': 'POST',
          ':path': `/svc/Method${i}`,
          ':authority': socket,
          'x-repeated': 'same value each time, indexed after the first',
          'x-fresh': `value ${i} ${'é'.length}`,
          'x-big': i === 2 ? big : 'small',
        });
        expect(seen[':authority']).toBe('localhost');
        expect(seen[':path']).toBe(`/svc/Method${i}`);
        expect(seen['x-repeated']).toBe('same value each time, indexed after the first');
        expect(seen['x-fresh']).toBe(`value ${i} 1`);
        expect(seen['x-big']).toBe(i === 2 ? big : 'small');
      }
      const valid = await request(session, { ':path': '/', ':authority': 'node-a:10250' });
      expect(valid[':authority']).toBe('node-a:10250');
    } finally {
      session.close();
      server.close();
    }
  });

  it('ends the connection on a malformed header block instead of buffering it', () => {
    const r = new AuthorityRewriter();
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    expect(r.feed(preface)).toHaveLength(1);
    // CONTINUATION without a HEADERS frame first.
    const cont = Buffer.from([0, 0, 1, 0x9, 0x4, 0, 0, 0, 1, 0x82]);
    expect(() => r.feed(cont)).toThrow(/CONTINUATION on stream 1 without HEADERS/);
  });
});
