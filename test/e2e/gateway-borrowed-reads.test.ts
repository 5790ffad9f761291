// The plain-HTTP listener reads every connection into one shared buffer (src/gateway/borrowed-reads.ts):
// the next read of any connection overwrites it. These tests hold the gateway to copying what it keeps:
// request bodies of many connections at once, with a backend that reads slowly so the gateway's
// upstream writes queue (a queued write of a view into the shared buffer would send other bytes), and
// a pipelined request held while the one before it is answered. Bytes are compared by SHA-256 end to end.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from '../../src/node-http.ts';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { completeResponses, openRaw, splitResponse } from '../helpers/net.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Requests the backend holds until the test releases them, and the signal that one has arrived. */
function heldRequests() {
  const arrivedUrls = new Set<string>();
  const waiters: (() => void)[] = [];
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    arrived(url: string): Promise<void> {
      arrivedUrls.add(url);
      for (const wake of waiters.splice(0)) wake();
      return released;
    },
    async seen(url: string): Promise<void> {
      while (!arrivedUrls.has(url)) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    release: () => release(),
  };
}

describe('gateway: reads into the shared buffer keep every byte of every connection', () => {
  let gw: TestGateway;
  const held = heldRequests();
  const backend = http.createServer(async (req, res) => {
    if (req.url?.startsWith('/hold/')) await held.arrived(req.url);
    const hash = createHash('sha256');
    let length = 0;
    const answer = () => {
      const text = `${req.url} ${length} ${hash.digest('hex')}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    // Slow readers: the body waits in the gateway's upstream writes before the backend takes it.
    req.pause();
    setImmediate(() => {
      req.on('data', (chunk: Buffer) => {
        length += chunk.length;
        hash.update(chunk);
      });
      req.on('end', answer);
      req.resume();
    });
  });

  before(async () => {
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as net.AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'svc', ports: [port] }),
        // Bodies streamed to the backend, and (ingress-nginx's default) read whole first.
        ingress({
          name: 'streamed',
          host: 'b.example',
          paths: [{ path: '/', service: 'svc', port: 80 }],
          annotations: { 'proxy-body-size': '8m', 'proxy-request-buffering': 'off' },
        }),
        ingress({
          name: 'buffered',
          host: 'c.example',
          paths: [{ path: '/', service: 'svc', port: 80 }],
          annotations: { 'proxy-body-size': '8m' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    backend.closeAllConnections();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  /** Sends `head` then `body` in pieces of `piece` bytes from one connection; the whole response. */
  async function upload(from: string, head: string, pieces: Buffer[]): Promise<string> {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: from });
    try {
      conn.socket.write(head);
      for (const piece of pieces) conn.socket.write(piece);
      const raw = await conn.until((received) => completeResponses(received) >= 1, 30_000);
      return splitResponse(raw).body.toString('latin1');
    } finally {
      conn.destroy();
    }
  }

  it('eight clients sending 1 MiB bodies at once, streamed and buffered: the backend gets each byte for byte', async () => {
    const bodies = Array.from({ length: 8 }, () => randomBytes(1024 * 1024));
    const replies = await Promise.all(
      bodies.map((body, i) => {
        const host = i % 2 === 0 ? 'b.example' : 'c.example';
        const head = `POST /up/${i} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\n\r\n`;
        const pieces = Array.from({ length: 64 }, (_, k) => body.subarray(k * 16384, (k + 1) * 16384));
        return upload(`127.0.0.${40 + i}`, head, pieces);
      }),
    );
    for (const [i, body] of bodies.entries())
      assert.equal(replies[i], `/up/${i} ${body.length} ${sha256(body)}`, `client ${i}`);
  });

  it('chunked bodies from four clients at once arrive whole, each chunk in its place', async () => {
    const bodies = Array.from({ length: 4 }, () => randomBytes(512 * 1024));
    const replies = await Promise.all(
      bodies.map((body, i) => {
        const head = `POST /chunked/${i} HTTP/1.1\r\nHost: b.example\r\nTransfer-Encoding: chunked\r\n\r\n`;
        const pieces: Buffer[] = [];
        for (let at = 0; at < body.length; at += 7000) {
          const chunk = body.subarray(at, Math.min(at + 7000, body.length));
          pieces.push(
            Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
          );
        }
        pieces.push(Buffer.from('0\r\n\r\n'));
        return upload(`127.0.0.${50 + i}`, head, pieces);
      }),
    );
    for (const [i, body] of bodies.entries())
      assert.equal(replies[i], `/chunked/${i} ${body.length} ${sha256(body)}`, `client ${i}`);
  });

  it('a request pipelined behind one still answered keeps its bytes while other connections read', async () => {
    const a = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.0.60' });
    const b = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.0.61' });
    try {
      const body = randomBytes(3000);
      const post = (path: string, bytes: Buffer) =>
        Buffer.concat([
          Buffer.from(`POST ${path} HTTP/1.1\r\nHost: b.example\r\nContent-Length: ${bytes.length}\r\n\r\n`),
          bytes,
        ]);
      // One write: the second request is read with the first and held until the first is answered.
      a.socket.write(Buffer.concat([post('/hold/first', body), post('/p/second', body)]));
      await held.seen('/hold/first');
      // Another connection reads more than both into the same buffer while the held bytes wait.
      b.socket.write(post('/p/other', Buffer.alloc(8 * body.length, 0x5a)));
      await b.until((received) => completeResponses(received) >= 1, 30_000);
      held.release();
      const raw = await a.until((received) => completeResponses(received) >= 2, 30_000);
      const text = raw.toString('latin1');
      const first = text.indexOf(`/hold/first ${body.length} ${sha256(body)}`);
      const second = text.indexOf(`/p/second ${body.length} ${sha256(body)}`);
      assert.ok(first >= 0 && second > first, text);
    } finally {
      a.destroy();
      b.destroy();
    }
  });
  it('random pipelines (length and chunked bodies) cut at random points, three connections at once: every body whole, answers in order', async () => {
    const request = fc.record({
      chunked: fc.boolean(),
      body: fc.uint8Array({ maxLength: 6000 }).map((bytes) => Buffer.from(bytes)),
      chunkSize: fc.integer({ min: 1, max: 3000 }),
    });
    const connection = fc.record({
      requests: fc.array(request, { minLength: 1, maxLength: 4 }),
      cuts: fc.array(fc.integer({ min: 1, max: 40000 }), { maxLength: 12 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(connection, { minLength: 3, maxLength: 3 }), async (connections) => {
        const wires = connections.map((c, k) => ({
          bytes: Buffer.concat(c.requests.map((r, i) => framed(`/r/${k}/${i}`, r))),
          cuts: c.cuts,
          expected: c.requests.map((r, i) => `/r/${k}/${i} ${r.body.length} ${sha256(r.body)}`),
        }));
        const replies = await Promise.all(wires.map((wire, k) => pipeline(`127.0.0.${70 + k}`, wire)));
        for (const [k, wire] of wires.entries()) assert.deepEqual(replies[k], wire.expected);
      }),
      { numRuns: 12 },
    );
  });

  /** One request on the wire: Content-Length, or chunked in pieces of `chunkSize`. */
  function framed(path: string, r: { chunked: boolean; body: Buffer; chunkSize: number }): Buffer {
    if (!r.chunked)
      return Buffer.concat([
        Buffer.from(`POST ${path} HTTP/1.1\r\nHost: b.example\r\nContent-Length: ${r.body.length}\r\n\r\n`),
        r.body,
      ]);
    const parts: Buffer[] = [
      Buffer.from(`POST ${path} HTTP/1.1\r\nHost: c.example\r\nTransfer-Encoding: chunked\r\n\r\n`),
    ];
    for (let at = 0; at < r.body.length; at += r.chunkSize) {
      const chunk = r.body.subarray(at, at + r.chunkSize);
      parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from('0\r\n\r\n'));
    return Buffer.concat(parts);
  }

  /** Writes `bytes` cut at `cuts` from one connection; the bodies of the answers, in order. */
  async function pipeline(from: string, wire: { bytes: Buffer; cuts: number[]; expected: string[] }) {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: from });
    try {
      const points = [...new Set(wire.cuts.filter((c) => c < wire.bytes.length))].sort((a, b) => a - b);
      let at = 0;
      for (const point of [...points, wire.bytes.length]) {
        conn.socket.write(wire.bytes.subarray(at, point));
        at = point;
        // Let other connections' writes in between, so reads of all three interleave.
        await new Promise((resolve) => setImmediate(resolve));
      }
      const n = wire.expected.length;
      const raw = await conn.until((received) => completeResponses(received) >= n, 30_000);
      return [...raw.toString('latin1').matchAll(/\/r\/\d+\/\d+ \d+ [0-9a-f]{64}/g)].map((m) => m[0]);
    } finally {
      conn.destroy();
    }
  }
});
