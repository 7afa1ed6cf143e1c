// gRPC on a kubelet-facing unix socket, for every kubelet still in use. Kubelets before v1.26
// (kubernetes/kubernetes#112597) dial with grpc-go, which sends `:authority` = the socket path;
// Node's HTTP/2 (nghttp2, under grpc-js) answers such a stream with RST_STREAM PROTOCOL_ERROR before
// grpc-js sees it. So the socket is ours, not grpc-js's: each connection passes through a frame
// filter that decodes every request header block with the client's HPACK context, replaces an
// authority that is not a valid URI authority by `localhost`, and re-encodes the block without
// indexing (so the server's HPACK table stays empty and cannot diverge). Every other frame is
// forwarded byte for byte; the server's frames go back untouched. Then grpc-js gets the connection
// through its connection injector, in this process.
import { NetplumbError } from '../lib/errors.js';
import { createServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import hpack from 'hpack.js';
import type { Decompressor } from 'hpack.js';

const PREFACE_LENGTH = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
const FRAME_HEADER = 9;
const TYPE = { headers: 0x1, continuation: 0x9 } as const;
const FLAG = { endStream: 0x1, endHeaders: 0x4, padded: 0x8, priority: 0x20 } as const;
/** The server's SETTINGS_MAX_FRAME_SIZE: grpc-js keeps HTTP/2's initial value. */
const MAX_OUT_FRAME = 16_384;
/** HPACK's initial SETTINGS_HEADER_TABLE_SIZE, which grpc-js keeps. */
const HEADER_TABLE_SIZE = 4_096;
/** A header block larger than this ends the connection (grpc-js accepts far less). */
const MAX_HEADER_BLOCK = 1 << 20;
const EMPTY = Buffer.alloc(0);
const REPLACEMENT_AUTHORITY = 'localhost';
// RFC 3986 authority characters (unreserved, sub-delims, ':', '@', '[', ']', pct-encoding).
const VALID_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

export class Http2FrameError extends NetplumbError {
  constructor(message: string) {
    super('ERR_DP_HTTP2_FRAME', message);
    this.name = 'Http2FrameError';
  }
}

interface OpenBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly priority: Buffer | null;
  readonly parts: Buffer[];
  size: number;
}

function encodeInt(out: number[], value: number, prefixBits: number, first: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(first | value);
    return;
  }
  out.push(first | max);
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

function encodeString(out: number[], text: string): void {
  const bytes = Buffer.from(text, 'latin1');
  encodeInt(out, bytes.length, 7, 0);
  for (const b of bytes) out.push(b);
}

/** Literal header fields without indexing (never-indexed kept), new names, no Huffman: context-free. */
export function encodeHeaderBlock(
  headers: readonly { name: string; value: string; neverIndex: boolean }[],
): Buffer {
  const out: number[] = [];
  for (const h of headers) {
    encodeInt(out, 0, 4, h.neverIndex ? 0x10 : 0x00);
    encodeString(out, h.name);
    encodeString(out, h.value);
  }
  return Buffer.from(out);
}

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return h;
}

/** HEADERS (+ CONTINUATION) frames carrying `block`, each within the server's frame size. */
function headerFrames(block: Buffer, open: OpenBlock): Buffer[] {
  const out: Buffer[] = [];
  const prio = open.priority;
  let offset = 0;
  let first = true;
  do {
    const room = MAX_OUT_FRAME - (first && prio !== null ? prio.length : 0);
    const piece = block.subarray(offset, offset + room);
    offset += piece.length;
    const last = offset >= block.length;
    let flags = last ? FLAG.endHeaders : 0;
    if (first) {
      if (open.endStream) flags |= FLAG.endStream;
      if (prio !== null) flags |= FLAG.priority;
      const payload = prio === null ? piece : Buffer.concat([prio, piece]);
      out.push(frameHeader(payload.length, TYPE.headers, flags, open.streamId), payload);
    } else {
      out.push(frameHeader(piece.length, TYPE.continuation, flags, open.streamId), piece);
    }
    first = false;
  } while (offset < block.length);
  return out;
}

/**
 * The client-to-server half of one connection: feed it the bytes the client sent, forward what it
 * returns. Throws Http2FrameError on a malformed stream (the caller ends the connection).
 */
export class AuthorityRewriter {
  private prefaceLeft = PREFACE_LENGTH;
  private passLeft = 0;
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** The 9-byte header of the frame being read, once complete. */
  private header: Buffer | null = null;
  private block: OpenBlock | null = null;
  private readonly decoder: Decompressor;
  private decodeError: Error | null = null;
  /** Number of authorities replaced so far. */
  rewritten = 0;

  constructor() {
    this.decoder = hpack.decompressor.create({ table: { maxSize: HEADER_TABLE_SIZE } });
    this.decoder.on('error', (err) => {
      this.decodeError = err;
    });
  }

  feed(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let data = chunk;
    while (data.length > 0) {
      if (this.prefaceLeft > 0 || this.passLeft > 0) data = this.passThrough(data, out);
      else data = this.takeFrame(data, out);
    }
    return out;
  }

  private passThrough(data: Buffer, out: Buffer[]): Buffer {
    const n = Math.min(this.prefaceLeft > 0 ? this.prefaceLeft : this.passLeft, data.length);
    out.push(data.subarray(0, n));
    if (this.prefaceLeft > 0) this.prefaceLeft -= n;
    else this.passLeft -= n;
    return data.subarray(n);
  }

  /** Collects bytes until `need` are there: returns them joined and the rest, or null (all kept). */
  private gather(data: Buffer, need: number): { whole: Buffer; rest: Buffer } | null {
    if (this.pendingLength + data.length < need) {
      this.pending.push(data);
      this.pendingLength += data.length;
      return null;
    }
    const take = need - this.pendingLength;
    const whole =
      this.pendingLength === 0
        ? data.subarray(0, take)
        : Buffer.concat([...this.pending, data.subarray(0, take)]);
    this.pending = [];
    this.pendingLength = 0;
    return { whole, rest: data.subarray(take) };
  }

  private takeFrame(data: Buffer, out: Buffer[]): Buffer {
    let rest = data;
    if (this.header === null) {
      const got = this.gather(rest, FRAME_HEADER);
      if (got === null) return EMPTY;
      this.header = got.whole;
      rest = got.rest;
    }
    const header = this.header;
    const length = header.readUIntBE(0, 3);
    const type = header[3] ?? 0;
    if (type !== TYPE.headers && type !== TYPE.continuation) {
      if (this.block !== null)
        throw new Http2FrameError(
          `frame type ${type} inside the header block of stream ${this.block.streamId}`,
        );
      this.header = null;
      out.push(header);
      this.passLeft = length;
      return rest;
    }
    if (length > MAX_HEADER_BLOCK) throw new Http2FrameError(`header frame of ${length} bytes`);
    const got = this.gather(rest, length);
    if (got === null) return EMPTY;
    this.header = null;
    this.onHeaderFrame(header, got.whole, out);
    return got.rest;
  }

  private onHeaderFrame(header: Buffer, payload: Buffer, out: Buffer[]): void {
    const type = header[3] ?? 0;
    const flags = header[4] ?? 0;
    const streamId = header.readUInt32BE(5) & 0x7fffffff;
    if (type === TYPE.headers) {
      if (this.block !== null)
        throw new Http2FrameError(`HEADERS while stream ${this.block.streamId}'s block is open`);
      this.block = this.openBlock(flags, streamId, payload);
    } else {
      if (this.block?.streamId !== streamId)
        throw new Http2FrameError(`CONTINUATION on stream ${streamId} without HEADERS`);
      this.block.parts.push(payload);
      this.block.size += payload.length;
    }
    if (this.block.size > MAX_HEADER_BLOCK)
      throw new Http2FrameError(`header block over ${MAX_HEADER_BLOCK} bytes`);
    if ((flags & FLAG.endHeaders) === 0) return;
    const open = this.block;
    this.block = null;
    for (const b of headerFrames(this.rewrite(Buffer.concat(open.parts)), open)) out.push(b);
  }

  private openBlock(flags: number, streamId: number, payload: Buffer): OpenBlock {
    let start = 0;
    let padLength = 0;
    if ((flags & FLAG.padded) !== 0) {
      padLength = payload[0] ?? 0;
      start = 1;
    }
    let priority: Buffer | null = null;
    if ((flags & FLAG.priority) !== 0) {
      priority = payload.subarray(start, start + 5);
      start += 5;
    }
    const end = payload.length - padLength;
    if (end < start)
      throw new Http2FrameError(`HEADERS on stream ${streamId}: padding longer than the frame`);
    const fragment = payload.subarray(start, end);
    return {
      streamId,
      endStream: (flags & FLAG.endStream) !== 0,
      priority,
      parts: [fragment],
      size: fragment.length,
    };
  }

  private rewrite(block: Buffer): Buffer {
    this.decoder.write(block);
    this.decoder.execute();
    if (this.decodeError !== null) throw new Http2FrameError(`HPACK: ${this.decodeError.message}`);
    const headers: { name: string; value: string; neverIndex: boolean }[] = [];
    for (let h = this.decoder.read(); h !== null; h = this.decoder.read()) {
      if (h.name === ':authority' && !VALID_AUTHORITY.test(h.value)) {
        this.rewritten++;
        headers.push({ name: h.name, value: REPLACEMENT_AUTHORITY, neverIndex: h.neverIndex });
      } else headers.push({ name: h.name, value: h.value, neverIndex: h.neverIndex });
    }
    return encodeHeaderBlock(headers);
  }
}

/** The connection grpc-js sees: client bytes filtered, its own bytes written straight to the socket. */
function frontConnection(socket: Socket, onError: (err: Error) => void): Duplex {
  const rewriter = new AuthorityRewriter();
  const conn = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, cb) {
      socket.write(chunk, (err) => {
        cb(err ?? null);
      });
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    let pieces: Buffer[];
    try {
      pieces = rewriter.feed(chunk);
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)));
      socket.destroy();
      conn.destroy();
      return;
    }
    let more = true;
    for (const p of pieces) more = conn.push(p) && more;
    if (!more) socket.pause();
  });
  socket.on('end', () => conn.push(null));
  socket.on('close', () => {
    if (!conn.destroyed) conn.destroy();
  });
  socket.on('error', () => {
    conn.destroy();
  });
  return conn;
}

export interface GrpcUnixListener {
  readonly socketPath: string;
  /** Stops accepting, drops every connection (the gRPC server is shut down by its owner). */
  close(): void;
}

/**
 * Listens on the unix socket `socketPath` (which must not exist) and hands each connection,
 * filtered, to `inject`. `onFrameError` hears of connections ended for malformed HTTP/2.
 */
export async function listenUnixFront(
  socketPath: string,
  inject: (connection: Duplex) => void,
  onFrameError: (err: Error) => void = () => undefined,
): Promise<GrpcUnixListener> {
  const sockets = new Set<Socket>();
  const net: NetServer = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    inject(frontConnection(socket, onFrameError));
  });
  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen(socketPath, () => {
      net.off('error', reject);
      resolve();
    });
  });
  return {
    socketPath,
    close() {
      net.close();
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}

/** Serves the gRPC `server` on the unix socket `socketPath` through the authority front. */
export async function listenGrpcUnix(
  server: grpc.Server,
  socketPath: string,
  onFrameError?: (err: Error) => void,
): Promise<GrpcUnixListener> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const front = await listenUnixFront(
    socketPath,
    (c) => {
      injector.injectConnection(c);
    },
    onFrameError,
  );
  return {
    socketPath,
    close() {
      front.close();
      injector.destroy();
    },
  };
}
