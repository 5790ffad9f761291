// Attacks on a tcp-services entry with `:PROXY` (clients must open with a PROXY header): a header from
// an untrusted peer, a partial header that never completes, a v2 header declaring a huge length or
// broken TLVs, garbage, an over-long v1 line, UNKNOWN with junk, and clients that half-close. Real
// sockets on 127.x through createTcpRunner, as the controller runs it; every wait is on a signal (the
// backend's connection log, a log line, the client's close).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import { Registry } from 'prom-client';
import { DEFAULT_STREAM_SETTINGS } from '../../src/config/stream.ts';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import type { TcpServicePlan } from '../../src/controller/tcp-services.ts';
import { lineCollector } from '../helpers/lines.ts';
import { listenTracked } from '../helpers/net.ts';

const HEADER_TIMEOUT_MS = 500;

/** A backend that records each connection: the bytes it got and whether the client half-closed; it answers `got:<bytes>` at EOF. */
async function recordingBackend(t: TestContext) {
  const events = lineCollector();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    let got = '';
    events.push('accepted');
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
    });
    socket.on('end', () => {
      events.push(`eof ${JSON.stringify(got)}`);
      socket.end(`got:${got}`);
    });
    socket.on('error', () => {});
  });
  const { port, close } = await listenTracked(server);
  t.after(close);
  return { port, events };
}

async function entry(
  t: TestContext,
  options: { target: number; trusted?: string[]; encode?: boolean; maxConnections?: number },
) {
  const log = lineCollector();
  const access = lineCollector();
  const tcp = createTcpRunner({
    host: '127.0.0.1',
    registry: new Registry(),
    log: log.push,
    accessLog: access.push,
  });
  t.after(() => tcp.close());
  const plan: TcpServicePlan = {
    port: 0,
    service: { namespace: 'default', name: 'db' },
    servicePort: '5432',
    decode: true,
    encode: options.encode ?? false,
    targets: [{ host: '127.0.0.1', port: options.target }],
  };
  await tcp.apply([plan], {
    trustedCidrs: options.trusted ?? ['127.0.0.0/8'],
    // The load balancer's case: its header names the client (enable-real-ip, as ingress-nginx's stream).
    enableRealIp: true,
    headerTimeoutMs: HEADER_TIMEOUT_MS,
    idleTimeoutMs: 600_000,
    drainMs: 240_000,
    maxConnections: options.maxConnections ?? 0,
    stream: { ...DEFAULT_STREAM_SETTINGS, logFormat: '$remote_addr $realip_remote_addr $status' },
  });
  return { port: tcp.listeners()[0]!.actualPort, log, access };
}

/** Connects from `from`, writes `bytes`, optionally half-closes; resolves with everything received and how it ended. */
function session(port: number, from: string, bytes: Buffer, end = false) {
  return new Promise<{ got: string; how: 'end' | 'reset' }>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from, allowHalfOpen: false });
    let got = '';
    socket.on('connect', () => (end ? socket.end(bytes) : socket.write(bytes)));
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('error', () => resolve({ got, how: 'reset' }));
    socket.on('close', () => resolve({ got, how: 'end' }));
  });
}

const V1 = 'PROXY TCP4 198.51.100.7 10.0.0.1 40000 5432\r\n';
const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 PROXY TCP4 header 198.51.100.7:40000 -> 10.0.0.1:5432 with `tlvs` after the addresses, declaring `declared` (default: the real length). */
function v2(tlvs: Buffer = Buffer.alloc(0), declared?: number): Buffer {
  const addr = Buffer.from([198, 51, 100, 7, 10, 0, 0, 1, 0x9c, 0x40, 0x15, 0x38]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(declared ?? addr.length + tlvs.length);
  return Buffer.concat([SIG, Buffer.from([0x21, 0x11]), len, addr, tlvs]);
}

test('an untrusted peer: closed unread, even with a well-formed header; the backend never sees a connection', async (t) => {
  const backend = await recordingBackend(t);
  const { port, log, access } = await entry(t, { target: backend.port, trusted: ['127.0.50.1/32'] });
  const r = await session(port, '127.0.50.2', Buffer.from(`${V1}hello`));
  assert.equal(r.got, '');
  await log.wait(/PROXY header refused from 127\.0\.50\.2 \(untrusted/);
  await access.wait(/^127\.0\.50\.2 127\.0\.50\.2 400$/);
  // The trusted peer works, and is the backend's first and only connection.
  const ok = await session(port, '127.0.50.1', Buffer.from(`${V1}hello`), true);
  assert.equal(ok.got, 'got:hello');
  assert.deepEqual(backend.events.lines, ['accepted', 'eof "hello"']);
  await access.wait(/^198\.51\.100\.7 127\.0\.50\.1 200$/);
});

test('a partial header that never completes is closed at proxy-protocol-header-timeout', async (t) => {
  const backend = await recordingBackend(t);
  const { port, log } = await entry(t, { target: backend.port });
  const started = Date.now();
  const r = await session(port, '127.0.51.1', Buffer.from('PROXY TCP4 198.51.100.7 '));
  assert.equal(r.got, '');
  const line = (await log.wait(/PROXY header refused from 127\.0\.51\.1 \(timeout: /))[0]!;
  assert.match(line, /no complete header within 500 ms \(24 byte\(s\) so far\)/);
  assert.ok(Date.now() - started >= HEADER_TIMEOUT_MS - 50);
  assert.deepEqual(backend.events.lines, []);
});

test('a v2 header declaring 65535 bytes is refused at once (not buffered), by the 4 KB cap', async (t) => {
  const backend = await recordingBackend(t);
  const { port, log } = await entry(t, { target: backend.port });
  await session(port, '127.0.52.1', v2(Buffer.alloc(0), 65535));
  // Refused for its size, not at the header deadline (that refusal says `timeout`): no clock needed.
  await log.wait(
    /PROXY header refused from 127\.0\.52\.1 \(oversize: the header declares 65551 bytes, the cap is 4096\)/,
  );
  assert.deepEqual(backend.events.lines, []);
});

test('v2 TLVs that overrun the header, a bad CRC32C, garbage, an over-long v1 line: malformed, closed', async (t) => {
  const backend = await recordingBackend(t);
  const { port, log } = await entry(t, { target: backend.port });
  const cases: [string, Buffer, RegExp][] = [
    ['127.0.53.1', v2(Buffer.from([0x04, 0xff, 0xff, 0x00])), /malformed: PP_V2_TLV_OVERFLOW/],
    [
      '127.0.53.2',
      v2(Buffer.from([0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef])),
      /malformed: PP_V2_CRC32C_MISMATCH/,
    ],
    ['127.0.53.3', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /malformed: PP_NOT_PROXY_PROTOCOL/],
    ['127.0.53.4', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), /malformed: PP_V1_/],
    [
      '127.0.53.5',
      Buffer.from('PROXY TCP4 198.51.100.7 10.0.0.1 40000 5432\nx'),
      /malformed: PP_V1_BAD_LINE_END/,
    ],
    ['127.0.53.6', Buffer.from('PROXY TCP4 198.51.100.7\r\n10.0.0.1 40000 5432\r\n'), /malformed: PP_V1_/],
  ];
  for (const [from, bytes, pattern] of cases) {
    const r = await session(port, from, bytes);
    assert.equal(r.got, '');
    await log.wait(
      new RegExp(`PROXY header refused from ${from.replaceAll('.', '\\.')} \\(${pattern.source}`),
    );
  }
  assert.deepEqual(backend.events.lines, []);
});

test('the header and the payload in one write: the payload reaches the backend intact, the header does not', async (t) => {
  const backend = await recordingBackend(t);
  const { port } = await entry(t, { target: backend.port });
  const payload = 'PROXY TCP4 6.6.6.6 6.6.6.6 1 1\r\nsecond line\r\n';
  const r = await session(
    port,
    '127.0.54.1',
    Buffer.concat([v2(Buffer.from([0x04, 0x00, 0x02, 0, 0])), Buffer.from(payload)]),
    true,
  );
  assert.equal(r.got, `got:${payload}`);
});

test('a client that half-closes right after the header (no payload): the backend sees EOF', async (t) => {
  const backend = await recordingBackend(t);
  const { port, access } = await entry(t, { target: backend.port });
  // The client runs while this process is blocked (spawnSync), so its header and its FIN are both
  // queued before the entry accepts: the first read gets them together, whatever the scheduling.
  const sent = spawnSync(process.execPath, [
    '-e',
    `const s=require('net').connect({port:${port},host:'127.0.0.1',localAddress:'127.0.55.1'},()=>s.end(${JSON.stringify(V1)}));s.on('finish',()=>process.exit(0));s.on('error',()=>process.exit(1))`,
  ]);
  assert.equal(sent.status, 0);
  await backend.events.wait(/^accepted$/);
  await backend.events.wait(/^eof ""$/); // rejects after 20 s: the FIN never came
  await access.wait(/^198\.51\.100\.7 127\.0\.55\.1 /);
});

test('a client that half-closes after header + data: the backend reads the data, then EOF, and answers', async (t) => {
  const backend = await recordingBackend(t);
  const { port } = await entry(t, { target: backend.port });
  const r = await session(port, '127.0.55.2', Buffer.from(`${V1}query`), true);
  assert.deepEqual(r, { got: 'got:query', how: 'end' });
});

test('a client that half-closes in the middle of the header: closed, nothing dialled', async (t) => {
  const backend = await recordingBackend(t);
  const { port, log } = await entry(t, { target: backend.port });
  await session(port, '127.0.55.3', Buffer.from('PROXY TCP4 198.51'), true);
  await log.wait(/PROXY header refused from 127\.0\.55\.3 \(closed: the peer ended after 17 byte/);
  assert.deepEqual(backend.events.lines, []);
});

test('`:PROXY:PROXY`: the backend gets a v1 header naming the decoded client; v2 TLVs and UNKNOWN junk never pass', async (t) => {
  const backend = await recordingBackend(t);
  const { port } = await entry(t, { target: backend.port, encode: true });
  const r = await session(
    port,
    '127.0.56.1',
    Buffer.concat([v2(Buffer.from([0x04, 0x00, 0x03, 0x41, 0x42, 0x43])), Buffer.from('x')]),
    true,
  );
  assert.equal(r.got, 'got:PROXY TCP4 198.51.100.7 10.0.0.1 40000 5432\r\nx');
  // UNKNOWN: the peer is the client; what follows UNKNOWN is ignored, not forwarded or logged.
  const u = await session(port, '127.0.56.2', Buffer.from('PROXY UNKNOWN "evil" \x1b[31m\r\ny'), true);
  assert.match(u.got, /^got:PROXY TCP4 127\.0\.56\.2 127\.0\.0\.1 \d+ \d+\r\ny$/);
});

test('max-worker-connections: slow headers hold slots only until the header deadline', async (t) => {
  const backend = await recordingBackend(t);
  const { port, log } = await entry(t, { target: backend.port, maxConnections: 2 });
  // Two connections that never finish their header take both slots...
  const slow = [
    session(port, '127.0.57.1', Buffer.from('PROXY ')),
    session(port, '127.0.57.2', Buffer.from('PROXY ')),
  ];
  await log.wait(/PROXY header refused from 127\.0\.57\.[12] \(timeout/, { count: 2 });
  await Promise.all(slow);
  // ...and once the deadline closed them, a well-behaved client gets through.
  const ok = await session(port, '127.0.57.3', Buffer.from(`${V1}ok`), true);
  assert.equal(ok.got, 'got:ok');
});
