// A hostile (or broken) HTTP/2 backend for test/security/grpc-backend-attack.test.ts: the server side of
// HTTP/2 written by hand over plain TCP (h2c prior knowledge, as the gateway's GRPC pool speaks) or TLS
// with ALPN (GRPCS), so that a test can answer with what no well-behaved server library would send
// (HPACK bombs, CR LF in trailers, pseudo-headers in trailers, PUSH_PROMISE, DATA after END_STREAM,
// GOAWAY with a low last-stream-id, PING floods, a connection cut mid-response). Frames are built with
// test/helpers/h2-raw.ts; the gateway's header blocks are not decoded (tests tell calls apart by the
// backend they reach, and by their DATA, which HPACK does not touch).
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { KeyPair } from '../../src/gateway/tls.ts';
import {
  FLAG,
  FRAME,
  type Frame,
  frame,
  headerBlock,
  nextFrame,
  PREFACE,
  SETTING,
  settingsPayload,
} from '../helpers/h2-raw.ts';

export interface RawStream {
  readonly id: number;
  /** The request's DATA payloads, as they came. */
  readonly data: Buffer[];
  /** The gateway ended its request (END_STREAM). */
  ended: boolean;
  /** The RST_STREAM code the gateway sent, if it did. */
  reset: number | null;
  /** The stream's send window (the gateway's INITIAL_WINDOW_SIZE plus its WINDOW_UPDATEs, less our DATA). */
  window: number;
}

export interface RawConn {
  readonly socket: net.Socket;
  /** Every frame the gateway sent, in order. */
  readonly frames: Frame[];
  readonly streams: Map<number, RawStream>;
  /** The connection's send window. */
  window: number;
  closed: boolean;
  /** Bytes of DATA payload we sent. */
  dataSent: number;
  write(bytes: Buffer): void;
  /** Writes, and waits until the socket took the bytes (or closed). */
  send(bytes: Buffer): Promise<void>;
  /** Resolves once `check` holds, re-checked on every frame and on the close; rejects after `timeoutMs`. */
  until(what: string, check: () => boolean, timeoutMs?: number): Promise<void>;
}

export interface RawBackendOptions {
  /** Our SETTINGS (default none). */
  settings?: readonly (readonly [number, number])[];
  /** TLS with ALPN (GRPCS); `alpn` the protocols we accept (default h2). */
  tls?: KeyPair;
  alpn?: string[];
  /** Answer PINGs with an ACK (default true). */
  pong?: boolean;
  /** Called for each new stream the gateway opens (its HEADERS came). */
  onStream(conn: RawConn, stream: RawStream): void;
}

export interface RawBackend {
  readonly port: number;
  readonly conns: RawConn[];
  /** Streams opened on every connection so far. */
  streams(): RawStream[];
  /** Resolves once `check` holds, re-checked on any backend event. */
  until(what: string, check: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const OK_MESSAGE = grpcMessage(Buffer.from('reply'));

/** The gRPC framing of one uncompressed message. */
export function grpcMessage(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

export const headersFrame = (id: number, fields: readonly (readonly [string, string])[], end = false) =>
  frame(FRAME.HEADERS, FLAG.END_HEADERS | (end ? FLAG.END_STREAM : 0), id, headerBlock(fields));
export const dataFrame = (id: number, payload: Buffer, end = false) =>
  frame(FRAME.DATA, end ? FLAG.END_STREAM : 0, id, payload);
export const GRPC_HEAD = [
  [':status', '200'],
  ['content-type', 'application/grpc'],
] as const;

/** A whole, well-formed gRPC answer on stream `id`: head, one message, trailers with grpc-status 0. */
export function okAnswer(id: number): Buffer {
  return Buffer.concat([
    headersFrame(id, GRPC_HEAD),
    dataFrame(id, OK_MESSAGE),
    headersFrame(id, [['grpc-status', '0']], true),
  ]);
}

function waiter(emitter: EventEmitter, what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const run = () => {
      if (!check()) return;
      emitter.off('change', run);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      emitter.off('change', run);
      reject(new Error(`${what}: not within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.on('change', run);
    run();
  });
}

/** Applies one frame of the gateway's to `conn`'s bookkeeping; true when it opened a stream. */
function account(conn: RawConn, f: Frame, initialWindow: { value: number }, pong: boolean): boolean {
  const stream = conn.streams.get(f.streamId);
  switch (f.type) {
    case FRAME.SETTINGS:
      if ((f.flags & FLAG.ACK) !== 0) return false;
      for (let at = 0; at + 6 <= f.payload.length; at += 6)
        if (f.payload.readUInt16BE(at) === SETTING.INITIAL_WINDOW_SIZE) {
          const value = f.payload.readUInt32BE(at + 2);
          for (const s of conn.streams.values()) s.window += value - initialWindow.value;
          initialWindow.value = value;
        }
      conn.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      return false;
    case FRAME.PING:
      if (pong && (f.flags & FLAG.ACK) === 0) conn.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
      return false;
    case FRAME.WINDOW_UPDATE: {
      const increment = f.payload.readUInt32BE(0) & 0x7fffffff;
      if (f.streamId === 0) conn.window += increment;
      else if (stream !== undefined) stream.window += increment;
      return false;
    }
    case FRAME.RST_STREAM:
      if (stream !== undefined) stream.reset = f.payload.readUInt32BE(0);
      return false;
    case FRAME.DATA:
      stream?.data.push(f.payload);
      if (stream !== undefined && (f.flags & FLAG.END_STREAM) !== 0) stream.ended = true;
      return false;
    case FRAME.HEADERS: {
      if (stream !== undefined) return false;
      const opened: RawStream = {
        id: f.streamId,
        data: [],
        ended: (f.flags & FLAG.END_STREAM) !== 0,
        reset: null,
        window: initialWindow.value,
      };
      conn.streams.set(f.streamId, opened);
      return true;
    }
    default:
      return false;
  }
}

function rawConn(socket: net.Socket, emitter: EventEmitter): RawConn {
  const conn: RawConn = {
    socket,
    frames: [],
    streams: new Map(),
    window: 65_535,
    closed: false,
    dataSent: 0,
    write: (bytes) => {
      if (!socket.destroyed) socket.write(bytes);
    },
    send: (bytes) =>
      new Promise((resolve) => {
        if (socket.destroyed || socket.write(bytes)) return resolve();
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.once('drain', done);
        socket.once('close', done);
      }),
    until: (what, check, timeoutMs = 10_000) => waiter(emitter, what, check, timeoutMs),
  };
  return conn;
}

/** Reads the preface and frames of one connection, keeps the books, hands new streams to `onStream`. */
function serve(socket: net.Socket, options: RawBackendOptions, emitter: EventEmitter, conns: RawConn[]) {
  const conn = rawConn(socket, emitter);
  conns.push(conn);
  const initialWindow = { value: 65_535 };
  let buffered = Buffer.alloc(0);
  let prefaced = false;
  socket.on('error', () => {});
  socket.on('close', () => {
    conn.closed = true;
    emitter.emit('change');
  });
  conn.write(frame(FRAME.SETTINGS, 0, 0, settingsPayload(options.settings ?? [])));
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (!prefaced) {
      if (buffered.length < PREFACE.length) return;
      buffered = buffered.subarray(PREFACE.length);
      prefaced = true;
    }
    for (let f = nextFrame(buffered); f !== null; f = nextFrame(buffered)) {
      buffered = buffered.subarray(9 + f.payload.length);
      conn.frames.push(f);
      if (account(conn, f, initialWindow, options.pong ?? true)) {
        const stream = conn.streams.get(f.streamId);
        if (stream !== undefined) options.onStream(conn, stream);
      }
    }
    emitter.emit('change');
  });
}

export async function startRawBackend(options: RawBackendOptions): Promise<RawBackend> {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const conns: RawConn[] = [];
  const onSocket = (socket: net.Socket) => serve(socket, options, emitter, conns);
  const server =
    options.tls === undefined
      ? net.createServer(onSocket)
      : tls.createServer(
          { key: options.tls.key, cert: options.tls.cert, ALPNProtocols: options.alpn ?? ['h2'] },
          onSocket,
        );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    streams: () => conns.flatMap((c) => [...c.streams.values()]),
    until: (what, check, timeoutMs = 10_000) => waiter(emitter, what, check, timeoutMs),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Sends up to `total` bytes of DATA on `stream` as fast as the gateway's flow control lets it (16 KiB
 * frames), until `total` is out, the stream is reset or the connection closed (waiting, while the
 * windows hold it back, for a WINDOW_UPDATE). Resolves with the bytes sent.
 */
export async function pourData(conn: RawConn, stream: RawStream, total: number): Promise<number> {
  let sent = 0;
  while (sent < total && stream.reset === null && !conn.closed) {
    const room = Math.min(conn.window, stream.window, 16_384, total - sent);
    if (room <= 0) {
      await conn
        .until(
          'window',
          () => Math.min(conn.window, stream.window) > 0 || stream.reset !== null || conn.closed,
          60_000,
        )
        .catch(() => {});
      continue;
    }
    conn.window -= room;
    stream.window -= room;
    sent += room;
    conn.dataSent += room;
    await conn.send(dataFrame(stream.id, Buffer.alloc(room, 0x61)));
  }
  return sent;
}
