// A raw HTTP/2 client for abuse tests: frames written by hand over a TLS socket (ALPN h2) or plain TCP
// (h2c prior knowledge), so a test
// can send what no well-behaved library would (a flood of HEADERS+RST_STREAM, endless CONTINUATION,
// SETTINGS and PING floods, oversized header blocks) and read back the frames the server answers with.
// Header blocks are HPACK literals without indexing and without Huffman coding (RFC 7541 §6.2.2): valid
// for any decoder. Incoming header blocks are not decoded; tests look at frame types, flags, stream
// ids and GOAWAY/RST_STREAM error codes.
import net from 'node:net';
import tls from 'node:tls';

export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const H2_ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export const SETTING = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the bits above the prefix. */
function hpackInteger(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(hpackInteger(bytes.length, 7, 0)), bytes]);
}

/** A header block: every field a literal without indexing with a literal name. */
export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  return Buffer.concat(parts);
}

/** The fields of a GET (or `method`) request for `path` on `authority`. */
export function requestFields(
  authority: string,
  path = '/',
  method = 'GET',
  extra: readonly (readonly [string, string])[] = [],
): [string, string][] {
  return [
    [':method', method],
    [':scheme', 'https'],
    [':authority', authority],
    [':path', path],
    ...extra.map(([n, v]) => [n, v] as [string, string]),
  ];
}

export function settingsPayload(settings: readonly (readonly [number, number])[]): Buffer {
  const out = Buffer.alloc(settings.length * 6);
  settings.forEach(([id, value], i) => {
    out.writeUInt16BE(id, i * 6);
    out.writeUInt32BE(value, i * 6 + 2);
  });
  return out;
}

export function rstPayload(code: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(code, 0);
  return out;
}

/** The whole frame at the start of `bytes` (its payload copied), or null while it is incomplete. */
export function nextFrame(bytes: Buffer): Frame | null {
  if (bytes.length < 9) return null;
  const length = bytes.readUIntBE(0, 3);
  if (bytes.length < 9 + length) return null;
  return {
    type: bytes[3] as number,
    flags: bytes[4] as number,
    streamId: bytes.readUInt32BE(5) & 0x7fffffff,
    payload: Buffer.from(bytes.subarray(9, 9 + length)),
  };
}

export interface RawH2 {
  readonly socket: net.Socket;
  readonly frames: Frame[];
  /** Set once the server closed (or reset) the connection. */
  readonly closed: boolean;
  write(bytes: Buffer): boolean;
  /** Writes and waits for the socket to take the bytes (a flood respects backpressure). */
  send(bytes: Buffer): Promise<void>;
  /** Resolves with the first frame (received or to come) matching `match`. */
  waitFrame(match: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Resolves when the server has closed the connection. */
  waitClosed(timeoutMs?: number): Promise<void>;
  goaway(): Frame | undefined;
  close(): void;
}

export interface RawH2Options {
  port: number;
  host?: string;
  /** Source address (127.x) the client binds to. */
  from?: string;
  servername?: string;
  /** Our SETTINGS (sent after the preface); default none. */
  settings?: readonly (readonly [number, number])[];
  /** Frames sent with the preface in one write, before the server's SETTINGS can have been acknowledged. */
  firstFlight?: Buffer;
  /** h2c prior knowledge over plain TCP (the HTTP port) instead of TLS with ALPN h2. */
  plain?: boolean;
  /** Acknowledge the server's SETTINGS (default true). */
  ack?: boolean;
  /** Bytes to open with instead of the preface, our SETTINGS and firstFlight. */
  opening?: Buffer;
}

/** The connected socket: TLS with ALPN h2, or plain TCP for h2c. */
function connectSocket(options: RawH2Options): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const tcp = net.connect({
      host: options.host ?? '127.0.0.1',
      port: options.port,
      localAddress: options.from ?? '127.0.0.1',
    });
    tcp.on('error', () => {});
    if (options.plain === true) {
      tcp.once('connect', () => resolve(tcp));
      tcp.once('error', reject);
      return;
    }
    const socket = tls.connect({
      socket: tcp,
      servername: options.servername ?? 'localhost',
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol === 'h2') return resolve(socket);
      socket.destroy();
      reject(new Error(`server did not select h2 (ALPN: ${socket.alpnProtocol})`));
    });
    socket.once('error', reject);
  });
}

/**
 * Connects (ALPN h2, or h2c with `plain`), sends the preface and SETTINGS (or `opening`), ACKs the
 * server's SETTINGS unless `ack` is false, answers nothing else.
 */
export async function connectRawH2(options: RawH2Options): Promise<RawH2> {
  const socket = await connectSocket(options);
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  let buffered: Buffer = Buffer.alloc(0);
  let closed = false;
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };
  socket.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    for (let f = nextFrame(buffered); f !== null; f = nextFrame(buffered)) {
      buffered = buffered.subarray(9 + f.payload.length);
      frames.push(f);
      const ack = options.ack ?? true;
      if (ack && f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0 && !socket.destroyed)
        socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
    }
    notify();
  });
  const onGone = () => {
    closed = true;
    notify();
  };
  socket.on('close', onGone);
  socket.on('end', onGone);
  socket.on('error', onGone);
  socket.write(
    options.opening ??
      Buffer.concat([
        PREFACE,
        frame(FRAME.SETTINGS, 0, 0, settingsPayload(options.settings ?? [])),
        options.firstFlight ?? Buffer.alloc(0),
      ]),
  );
  /** Resolves with `check`'s first defined answer, rechecked on every frame and on the close. */
  const until = <T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> =>
    new Promise((done, fail) => {
      const run = () => {
        let found: T | undefined;
        try {
          found = check();
        } catch (error) {
          waiters.delete(run);
          clearTimeout(timer);
          fail(error);
          return;
        }
        if (found === undefined) return;
        waiters.delete(run);
        clearTimeout(timer);
        done(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(run);
        fail(new Error(`${what} within ${timeoutMs} ms; got types ${describe(frames)}`));
      }, timeoutMs);
      waiters.add(run);
      run();
    });
  return {
    socket,
    frames,
    get closed() {
      return closed;
    },
    write: (bytes) => (socket.destroyed ? false : socket.write(bytes)),
    send: (bytes) =>
      new Promise<void>((done) => {
        if (socket.destroyed || closed) return done();
        if (socket.write(bytes)) return done();
        const finish = () => {
          socket.off('drain', finish);
          socket.off('close', finish);
          done();
        };
        socket.once('drain', finish);
        socket.once('close', finish);
      }),
    waitFrame: (match, timeoutMs = 15_000) =>
      until('no matching frame', timeoutMs, () => {
        const found = frames.find(match);
        if (found === undefined && closed)
          throw new Error(`connection closed without the frame; got types ${describe(frames)}`);
        return found;
      }),
    waitClosed: (timeoutMs = 15_000) =>
      until('connection still open', timeoutMs, () => (closed ? true : undefined)).then(() => {}),
    goaway: () => frames.find((f) => f.type === FRAME.GOAWAY),
    close: () => socket.destroy(),
  };
}

function describe(frames: readonly Frame[]): string {
  const counts = new Map<number, number>();
  for (const f of frames) counts.set(f.type, (counts.get(f.type) ?? 0) + 1);
  return [...counts].map(([type, n]) => `${type}×${n}`).join(' ') || 'none';
}

/** The error code of a GOAWAY frame. */
export function goawayCode(f: Frame): number {
  return f.payload.readUInt32BE(4);
}

/** The error code of a RST_STREAM frame. */
export function rstCode(f: Frame): number {
  return f.payload.readUInt32BE(0);
}

/**
 * `:status` of a response HEADERS block (nghttp2's or nginx's): an indexed field, or a literal whose
 * value may be Huffman-coded.
 */
export function responseStatus(block: Buffer): number {
  const first = block[0] as number;
  if (first >= 0x88 && first <= 0x8e) return [200, 204, 206, 304, 400, 404, 500][first - 0x88]!;
  const length = (block[1] as number) & 0x7f;
  const value = block.subarray(2, 2 + length);
  if (((block[1] as number) & 0x80) === 0) return Number(value.toString('latin1'));
  // Huffman digits (RFC 7541 Appendix B): 0-2 are 5 bits (00000-00010), 3-9 are 6 bits (011001-011111).
  const bits = [...value].map((b) => b.toString(2).padStart(8, '0')).join('');
  let digits = '';
  for (let at = 0; digits.length < 3 && at < bits.length; ) {
    const five = Number.parseInt(bits.slice(at, at + 5), 2);
    if (five <= 2) {
      digits += String(five);
      at += 5;
    } else {
      digits += String(Number.parseInt(bits.slice(at, at + 6), 2) - 0b011001 + 3);
      at += 6;
    }
  }
  return Number(digits);
}
