// A strict HTTP/1.1 backend that records what a proxy sent it, byte for byte, for the request-body
// differentials (HTTP/1.1 and HTTP/2 clients against nginx): each request's framing (Content-Length or
// chunked, extensions, trailers), Expect and Connection, its body, and whether the body arrived whole or
// was cut. Bytes it cannot read as requests are kept apart (a proxy that would desync a backend).
import net from 'node:net';

/** One request as the backend read it. */
export interface Seen {
  target: string;
  /** Content-Length values, Transfer-Encoding values, Expect, Connection, as the head carried them. */
  lengths: string[];
  codings: string[];
  expect: string[];
  connection: string[];
  /** The decoded body so far. */
  body: Buffer;
  /** Chunk extensions and trailer lines that reached the backend. */
  extensions: string[];
  trailers: string[];
  /** The body was whole (its length reached, or its last chunk and trailer section read). */
  whole: boolean;
  /** The connection ended (or broke the framing) before the body was whole. */
  cut: boolean;
  /** The id of the backend connection it came on. */
  conn: number;
}

export interface Recorder {
  port: number;
  /** Requests by the key field's value ('?' when the head had none). */
  seen: Map<string, Seen[]>;
  /** Bytes no request could be parsed from (a framing the backend could not read). */
  unparsable: string[];
  /** Until a head with `key` arrived (false after the safety deadline). */
  waitHead(key: string): Promise<boolean>;
  /** Until a request with `key` is whole (false after the safety deadline). */
  waitWhole(key: string): Promise<boolean>;
  /** Until every request with `key` is whole or cut (false after the safety deadline). */
  waitSettled(key: string): Promise<boolean>;
  /** Answers the held request (a target with `/hold/`) of `key`, or the next one when it comes. */
  release(key: string): void;
  close(): Promise<void>;
}

const fieldValues = (fields: readonly string[], name: string): string[] =>
  fields.filter((f) => f.toLowerCase().startsWith(`${name}:`)).map((f) => f.slice(name.length + 1).trim());

/**
 * A backend on 127.0.0.1 (port 0) that parses strictly and records each request's head and body;
 * requests are keyed by the value of `keyField` (X-Real-IP to tell clients apart, or a probe field).
 * By target: `/cont/` answers 100 to an Expect, `/early/` answers before reading the body, `/hold/`
 * answers once released; others answer `done` when the body is whole. Waits end after `safetyMs`.
 */
export async function startBodyRecorder(keyField: string, safetyMs: number): Promise<Recorder> {
  const seen = new Map<string, Seen[]>();
  const unparsable: string[] = [];
  const sockets = new Set<net.Socket>();
  const waiters = new Set<() => void>();
  const held = new Map<string, () => void>();
  const released = new Set<string>();
  const changed = () => {
    for (const w of [...waiters]) w();
  };
  let nextConn = 0;
  const server = net.createServer((socket) => {
    const conn = nextConn++;
    sockets.add(socket);
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let current: Seen | null = null;
    /** Body state of `current`: bytes still due (length), or the chunk parser's position. */
    let remaining = 0;
    let chunkLeft = -1; // -1: at a size line; n >= 0: n data bytes then CRLF
    let inTrailers = false;
    let answeredEarly = false;
    let currentKey = '?';
    const answer = (text: string) => {
      if (!socket.destroyed) socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
    };
    const finish = () => {
      if (current === null) return;
      current.whole = true;
      const key = currentKey;
      if (current.target.includes('/hold/') && !released.has(key)) held.set(key, () => answer('done'));
      else if (!answeredEarly) answer('done');
      current = null;
      changed();
    };
    const bad = (why: string) => {
      unparsable.push(`${why}: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`);
      if (current !== null) current.cut = true;
      current = null;
      socket.destroy();
      changed();
    };
    const step = (): boolean => {
      if (current === null) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return false;
        const [line = '', ...fields] = buf.toString('latin1', 0, end).split('\r\n');
        buf = buf.subarray(end + 4);
        const target = line.split(' ')[1] ?? '';
        const key = fieldValues(fields, keyField)[0] ?? '?';
        const request: Seen = {
          target,
          lengths: fieldValues(fields, 'content-length'),
          codings: fieldValues(fields, 'transfer-encoding'),
          expect: fieldValues(fields, 'expect'),
          connection: fieldValues(fields, 'connection'),
          body: Buffer.alloc(0),
          extensions: [],
          trailers: [],
          whole: false,
          cut: false,
          conn,
        };
        seen.set(key, [...(seen.get(key) ?? []), request]);
        current = request;
        currentKey = key;
        answeredEarly = false;
        if (request.lengths.length > 1 || (request.lengths.length > 0 && request.codings.length > 0)) {
          bad('ambiguous framing');
          return false;
        }
        if (target.includes('/cont/') && request.expect.some((e) => e.toLowerCase() === '100-continue'))
          socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        if (target.includes('/early/')) {
          answeredEarly = true;
          answer('early');
        }
        chunkLeft = -1;
        inTrailers = false;
        if (request.codings.length > 0) {
          if (request.codings.join(',').toLowerCase() !== 'chunked') {
            bad('transfer-coding');
            return false;
          }
          remaining = -1;
        } else {
          remaining = Number(request.lengths[0] ?? '0');
          if (!/^\d+$/.test(request.lengths[0] ?? '0')) {
            bad('content-length');
            return false;
          }
        }
        changed();
        if (remaining === 0) finish();
        return true;
      }
      const request = current;
      if (remaining >= 0) {
        const take = Math.min(remaining, buf.length);
        if (take === 0) return false;
        request.body = Buffer.concat([request.body, buf.subarray(0, take)]);
        buf = buf.subarray(take);
        remaining -= take;
        if (remaining === 0) finish();
        return true;
      }
      if (inTrailers) {
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return false;
        const line = buf.toString('latin1', 0, eol);
        buf = buf.subarray(eol + 2);
        if (line === '') finish();
        else request.trailers.push(line);
        return true;
      }
      if (chunkLeft < 0) {
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return false;
        const line = buf.toString('latin1', 0, eol);
        const m = /^([0-9a-fA-F]{1,15})(;.*)?$/.exec(line);
        if (m === null) {
          bad(`chunk size line ${JSON.stringify(line)}`);
          return false;
        }
        buf = buf.subarray(eol + 2);
        if (m[2] !== undefined) request.extensions.push(m[2]);
        const size = Number.parseInt(m[1]!, 16);
        if (size === 0) inTrailers = true;
        else chunkLeft = size;
        return true;
      }
      if (chunkLeft > 0) {
        const take = Math.min(chunkLeft, buf.length);
        if (take === 0) return false;
        request.body = Buffer.concat([request.body, buf.subarray(0, take)]);
        buf = buf.subarray(take);
        chunkLeft -= take;
        return true;
      }
      if (buf.length < 2) return false;
      if (buf[0] !== 0x0d || buf[1] !== 0x0a) {
        bad('chunk data longer than its size');
        return false;
      }
      buf = buf.subarray(2);
      chunkLeft = -1;
      return true;
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (!socket.destroyed && step()) {}
    });
    socket.once('close', () => {
      sockets.delete(socket);
      if (current !== null) current.cut = true;
      current = null;
      changed();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const until = (test: () => boolean): Promise<boolean> =>
    new Promise((resolve) => {
      const check = () => {
        if (!test()) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve(false);
      }, safetyMs);
      waiters.add(check);
      check();
    });
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    unparsable,
    waitHead: (key) => until(() => (seen.get(key) ?? []).length > 0),
    waitWhole: (key) => until(() => (seen.get(key) ?? []).some((s) => s.whole)),
    waitSettled: (key) => until(() => (seen.get(key) ?? []).every((s) => s.whole || s.cut)),
    release(key) {
      released.add(key);
      const answer = held.get(key);
      held.delete(key);
      answer?.();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
