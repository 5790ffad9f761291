// Attacks on the two tools that talk to peers an attacker may control. `keepip doctor --probe` connects
// to a target and reads its answer: a hostile target that never answers, trickles, streams for ever,
// overflows the head, closes mid-answer, speaks PROXY back, stalls a TLS handshake, answers 101, or
// fills its answer with terminal escapes and broken UTF-8 must not hang the doctor, grow its memory or
// reach the operator's terminal. `keepip whoami` reflects a client's request: the reflection must stay
// inert (never HTML, no header injection, valid JSON), the client's own claims about its address must
// not pass for the socket peer, and malformed or oversized requests are refused.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type ProbeResult, runProbes } from '../../src/doctor/probe.ts';
import { encodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { rawExchange, splitResponse } from '../helpers/net.ts';
import { runKeepip } from '../helpers/process.ts';

/**
 * The probe's own deadline where a test expects it to run out; where another outcome is expected, the
 * deadline is far (a busy machine must not turn it into ETIMEDOUT). A probe that never settles is a
 * hang the test's timeout catches.
 */
const PROBE_TIMEOUT_MS = 300;
const FAR_DEADLINE_MS = 60_000;

/** What a hostile target does once the probe's request has arrived; `onStop` registers its clean-up. */
type Behaviour = (socket: net.Socket, onStop: (stop: () => void) => void) => void;

interface HostilePeer {
  port: number;
  close(): Promise<void>;
}

/** A TCP target on 127.0.0.1 that waits for the first bytes of each connection, then misbehaves. */
async function startHostile(behaviour: Behaviour): Promise<HostilePeer> {
  const sockets = new Set<net.Socket>();
  const stops = new Set<() => void>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => behaviour(socket, (stop) => stops.add(stop)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const stop of stops) stop();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Writes `chunk` for ever, as fast as the probe reads it, until the peer is closed. */
function pump(socket: net.Socket, chunk: Buffer, onStop: (stop: () => void) => void): void {
  let on = true;
  onStop(() => {
    on = false;
  });
  const next = () => {
    while (on && !socket.destroyed && socket.write(chunk)) {}
    if (on && !socket.destroyed) socket.once('drain', next);
  };
  next();
}

/** Writes `chunk` every 20 ms for ever (the attacker's pace, not a synchronisation), until closed. */
function trickle(socket: net.Socket, chunk: string, onStop: (stop: () => void) => void): void {
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(chunk);
  }, 20);
  onStop(() => clearInterval(timer));
}

/** One probe of the hostile target (a hang shows as the test's timeout). */
async function probeHostile(
  behaviour: Behaviour,
  { scheme = 'http', timeoutMs = FAR_DEADLINE_MS }: { scheme?: string; timeoutMs?: number } = {},
): Promise<ProbeResult> {
  const peer = await startHostile(behaviour);
  try {
    const results = await runProbes({
      url: `${scheme}://127.0.0.1:${peer.port}/`,
      from: [],
      timeoutMs,
    });
    return results[0]!;
  } finally {
    await peer.close();
  }
}

/** The probe settled with a connection-level error `code` and took nothing from the peer as an address. */
function assertFailedWith(probe: ProbeResult, codes: readonly string[]): void {
  assert.ok(codes.includes(probe.error ?? ''), `error ${probe.error}, expected one of ${codes.join(', ')}`);
  assert.equal(probe.backendSaw, null);
  assert.equal(probe.matches, null);
}

describe('keepip doctor --probe against a hostile target', () => {
  test('a target that accepts and never answers: ETIMEDOUT by the probe deadline', async () => {
    assertFailedWith(await probeHostile(() => {}, { timeoutMs: PROBE_TIMEOUT_MS }), ['ETIMEDOUT']);
  });

  test('a TLS target that stalls the handshake: ETIMEDOUT by the probe deadline', async () => {
    const stalled = await probeHostile(() => {}, { scheme: 'https', timeoutMs: PROBE_TIMEOUT_MS });
    assertFailedWith(stalled, ['ETIMEDOUT']);
  });

  test('a 100 KB status line, or an endless header block sent at full speed: HPE_HEADER_OVERFLOW', async () => {
    const status = await probeHostile((socket) => {
      socket.write(`HTTP/1.1 200 ${'A'.repeat(100_000)}\r\n\r\n`);
    });
    assertFailedWith(status, ['HPE_HEADER_OVERFLOW']);
    const endless = await probeHostile((socket, onStop) => {
      socket.write('HTTP/1.1 200 OK\r\n');
      pump(socket, Buffer.from(`x-filler: ${'b'.repeat(1000)}\r\n`), onStop);
    });
    assertFailedWith(endless, ['HPE_HEADER_OVERFLOW']);
  });

  test('a target that closes mid-answer: an error, and no address read from the partial JSON', async () => {
    const head = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n';
    const half = await probeHostile((socket) => {
      socket.end(`${head}{"remoteAddress":"127.0.0.1","headers":{"x-real-ip":"10.9.9.9"`);
    });
    assertFailedWith(half, ['ECONNRESET']);
    const reset = await probeHostile((socket) => {
      socket.write(`${head}{"remoteAddress":"127.0.0.1"`, () => socket.resetAndDestroy());
    });
    assertFailedWith(reset, ['ECONNRESET']);
  });

  test('a target that answers with a PROXY header first: a parse error, its claimed source is not taken', async () => {
    const result = await probeHostile((socket) => {
      socket.end(
        'PROXY TCP4 6.6.6.6 127.0.0.1 1111 80\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\n' +
          'content-length: 29\r\n\r\n{"remoteAddress":"127.0.0.1"}',
      );
    });
    assertFailedWith(result, ['HPE_INVALID_CONSTANT']);
  });

  test('a target that trickles its answer (a header byte, or a 102 Processing, at a time) meets the probe deadline: ETIMEDOUT', async () => {
    const [header, informational] = await Promise.all([
      probeHostile(
        (socket, onStop) => {
          socket.write('HTTP/1.1 200 OK\r\nx-slow: ');
          trickle(socket, 'a', onStop);
        },
        { timeoutMs: PROBE_TIMEOUT_MS },
      ),
      probeHostile((socket, onStop) => trickle(socket, 'HTTP/1.1 102 Processing\r\n\r\n', onStop), {
        timeoutMs: PROBE_TIMEOUT_MS,
      }),
    ]);
    assertFailedWith(header, ['ETIMEDOUT']);
    assertFailedWith(informational, ['ETIMEDOUT']);
  });

  test('a target that streams an endless body: the probe stops reading past 1 MiB (RESPONSE_TOO_LARGE)', async () => {
    const result = await probeHostile((socket, onStop) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
      pump(socket, Buffer.from(`10000\r\n${' '.repeat(0x10000)}\r\n`), onStop);
    });
    assertFailedWith(result, ['RESPONSE_TOO_LARGE']);
    assert.equal(result.status, 200);
  });
});

/** Any control byte but the newline: what must never reach the operator's terminal. */
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

/** A JSON answer from raw bytes (possibly invalid UTF-8) with a correct Content-Length. */
function jsonAnswer(body: Buffer): Buffer {
  const head = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** One poisoned answer per source address: escapes in the head, in the JSON, and broken UTF-8. */
function poisonedAnswer(socket: net.Socket): void {
  const from = socket.remoteAddress ?? '';
  if (from.endsWith('127.0.0.1')) {
    socket.end('HTTP/1.1 200 \x1b]0;pwned\x07OK\r\nServer: \x1b[2J\x1b[31m\r\ncontent-length: 0\r\n\r\n');
  } else if (from.endsWith('127.0.0.2')) {
    const echo = {
      remoteAddress: '\u001b[2J127.0.0.2',
      headers: { 'x-real-ip': '127.0.0.2\u001b]0;pwned\u0007', 'x-forwarded-for': '\u009b31m, \r\nX: y' },
    };
    socket.end(jsonAnswer(Buffer.from(JSON.stringify(echo))));
  } else {
    const broken = Buffer.concat([
      Buffer.from('{"remoteAddress":"\\ud800127.0.0.3","headers":{"x-real-ip":"'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x9b]),
      Buffer.from('"}}'),
    ]);
    socket.end(jsonAnswer(broken));
  }
}

describe('keepip doctor --probe output with a hostile target', () => {
  let peer: HostilePeer;
  before(async () => {
    peer = await startHostile(poisonedAnswer);
  });
  after(() => peer.close());

  const args = () => [
    'doctor',
    '--probe',
    `http://127.0.0.1:${peer.port}/`,
    '--from',
    '127.0.0.1',
    '--from',
    '127.0.0.2',
    '--from',
    '127.0.0.3',
  ];

  test('text mode: nothing the target sends puts a control byte on the terminal', async () => {
    const { code, stdout, stderr } = await runKeepip(args(), { timeoutMs: 30_000 });
    assert.equal(code, 1, stdout + stderr);
    assert.equal(stdout.match(/^ {2}from /gm)?.length, 3, stdout);
    assert.doesNotMatch(stdout, CONTROL);
    assert.doesNotMatch(stderr, CONTROL);
  });

  test('--json: valid JSON whatever bytes the target sends, and no poisoned address taken', async () => {
    const { code, stdout } = await runKeepip([...args(), '--json'], { timeoutMs: 30_000 });
    assert.equal(code, 1, stdout);
    const report = JSON.parse(stdout) as { probes: ProbeResult[] };
    assert.equal(report.probes.length, 3);
    for (const probe of report.probes) {
      assert.equal(probe.backendSaw, null, JSON.stringify(probe));
      assert.notEqual(probe.matches, true);
    }
    assert.match(report.probes[0]!.error ?? '', /^[A-Z_]+$/, 'a refused head is a stable code');
    assert.equal(report.probes[1]!.status, 200);
    assert.equal(report.probes[2]!.status, 200);
  });
});

describe('keepip doctor --probe against a target that answers 101', () => {
  let peer: HostilePeer;
  before(async () => {
    peer = await startHostile((socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: evil\r\nconnection: upgrade\r\n\r\n');
    });
  });
  after(() => peer.close());

  test('an unasked-for 101 Switching Protocols is a failed probe with a report and exit 1, for every source', async () => {
    const { code, stdout, stderr } = await runKeepip(
      [
        'doctor',
        '--probe',
        `http://127.0.0.1:${peer.port}/`,
        '--from',
        '127.0.0.1',
        '--from',
        '127.0.0.2',
        '--json',
      ],
      { timeoutMs: 30_000 },
    );
    // The target keeps the upgraded connection open: the doctor must close it and exit on its own
    // (killed at runKeepip's timeout it reads 124).
    assert.equal(code, 1, `exit ${code}; stdout ${JSON.stringify(stdout)}; stderr ${stderr}`);
    const report = JSON.parse(stdout) as { probes: ProbeResult[] };
    assert.equal(report.probes.length, 2);
    for (const probe of report.probes) {
      assert.equal(probe.error, 'UNEXPECTED_UPGRADE');
      assert.equal(probe.status, 101);
      assert.equal(probe.backendSaw, null);
    }
  });
});

interface WhoamiReply {
  status: number;
  head: string;
  body: Buffer;
  closed: boolean;
}

describe('keepip whoami reflecting a hostile client', () => {
  let whoami: RunningWhoami;
  before(async () => {
    whoami = await startWhoami({ host: '127.0.0.1', port: 0 });
  });
  after(() => whoami.close());

  /** One raw exchange from `from`; the request should say Connection: close (or end with `fin`). */
  async function ask(payload: string | Buffer, from = '127.0.0.1', fin = false): Promise<WhoamiReply> {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: whoami.address.port,
      payload,
      localAddress: from,
      endAfterWrite: fin,
    });
    const { head, body } = splitResponse(reply.received);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    return { status, head, body, closed: reply.closedByServer };
  }

  /** The response's header names, lower-case. */
  const headerNames = (head: string) =>
    head
      .split('\r\n')
      .slice(1)
      .map((line) => line.slice(0, line.indexOf(':')).toLowerCase());

  test('never HTML: markup in path, Host and headers is served back as text/plain or JSON', async () => {
    const script = '<script>alert(1)</script>';
    for (const query of ['', '?format=html', '?format=json']) {
      const reply = await ask(
        `GET /${script}${query} HTTP/1.1\r\nHost: <img src=x onerror=alert(1)>\r\nAccept: text/html\r\n` +
          `X-Payload: ${script}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(reply.status, 200);
      const type = /\r\ncontent-type: ([^\r]*)/i.exec(reply.head)?.[1] ?? '';
      assert.match(type, query === '?format=json' ? /^application\/json$/ : /^text\/plain; charset=utf-8$/);
      if (query === '?format=json') JSON.parse(reply.body.toString('utf8'));
    }
  });

  test('encoded CR/LF in the path, the query or ?wait= never becomes a response header', async () => {
    const targets = [
      '/%0d%0aSet-Cookie:%20a=b',
      '/?format=%0d%0aSet-Cookie:%20a=b',
      '/?wait=%0d%0aSet-Cookie:%20a=b',
      '/?format=json&x=%0d%0aX-Injected:%201',
    ];
    for (const target of targets) {
      const reply = await ask(`GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      assert.ok(reply.status === 200 || reply.status === 400, reply.head);
      for (const name of headerNames(reply.head)) {
        assert.ok(['content-type', 'content-length', 'date', 'connection'].includes(name), reply.head);
      }
    }
  });

  test('control bytes in the request line or a header value are refused with 400, never reflected', async () => {
    const requests = [
      'GET /\x1b[31m HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX-E: \x1b]0;pwned\x07\r\nConnection: close\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX-E: a\x00b\r\nConnection: close\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX-E: a\rRemoteAddr: 6.6.6.6\r\nConnection: close\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX-E: a\r\n RemoteAddr: 6.6.6.6\r\nConnection: close\r\n\r\n',
    ];
    for (const request of requests) {
      const reply = await ask(request);
      assert.equal(reply.status, 400, JSON.stringify(request));
      assert.equal(reply.body.length, 0);
      assert.ok(reply.closed);
    }
  });

  test('JSON stays valid for header bytes that are not UTF-8', async () => {
    const raw = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x9b]);
    const reply = await ask(
      Buffer.concat([
        Buffer.from('GET /?format=json HTTP/1.1\r\nHost: a\r\nX-Raw: '),
        raw,
        Buffer.from('\r\nConnection: close\r\n\r\n'),
      ]),
    );
    assert.equal(reply.status, 200);
    const echo = JSON.parse(reply.body.toString('utf8')) as { headers: Record<string, string> };
    assert.equal(echo.headers['x-raw'], raw.toString('latin1'));
  });

  test("a client's X-Forwarded-For, X-Real-IP and Forwarded claims are shown as headers, not as its address", async () => {
    const claims =
      'X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\n';
    const json = await ask(
      `GET /?format=json HTTP/1.1\r\nHost: a\r\n${claims}Connection: close\r\n\r\n`,
      '127.0.0.7',
    );
    const echo = JSON.parse(json.body.toString('utf8')) as {
      remoteAddress: string;
      headers: Record<string, string>;
    };
    assert.equal(echo.remoteAddress, '127.0.0.7');
    assert.equal(echo.headers['x-forwarded-for'], '6.6.6.6');
    const text = await ask(`GET / HTTP/1.1\r\nHost: a\r\n${claims}Connection: close\r\n\r\n`, '127.0.0.7');
    assert.match(text.body.toString('utf8'), /^RemoteAddr: 127\.0\.0\.7:\d+$/m);
    assert.doesNotMatch(text.body.toString('utf8'), /^(RemoteAddr|IP): .*6\.6\.6\.6/m);
  });

  test('a PROXY v1 or v2 preface is refused with 400: whoami trusts no PROXY header from anyone', async () => {
    const v2 = encodeProxyHeader({
      version: 2,
      source: { address: '6.6.6.6', port: 1111 },
      destination: { address: '127.0.0.1', port: 80 },
    });
    const request = 'GET /?format=json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
    for (const preface of [Buffer.from('PROXY TCP4 6.6.6.6 127.0.0.1 1111 80\r\n'), v2]) {
      const reply = await ask(Buffer.concat([preface, Buffer.from(request)]), '127.0.0.7');
      assert.equal(reply.status, 400);
      assert.doesNotMatch(reply.head + reply.body.toString('latin1'), /6\.6\.6\.6/);
      assert.ok(reply.closed);
    }
  });

  test('an oversized head is refused and closed; a half-open client with a partial head is answered 400 and closed', async () => {
    const big = await ask(
      `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\nConnection: close\r\n\r\n`,
    );
    assert.ok(big.status === 400 || big.status === 431, big.head);
    assert.equal(big.body.length, 0);
    assert.ok(big.closed);
    const partial = await ask('GET / HTTP/1.1\r\nHost: a\r\nX-Half', '127.0.0.1', true);
    assert.equal(partial.status, 400);
    assert.ok(partial.closed, 'the server closed its side once the client had gone');
  });
});
