// The ClientHello reader (src/gateway/client-hello.ts): hellos recorded from real clients (openssl
// s_client, curl: test/fixtures/client-hello/*.hex), split over any TCP boundaries and re-framed
// over many TLS records; hostile bytes never throw; the size bounds hold.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type ClientHelloRead,
  MAX_HELLO_BYTES,
  MAX_HELLO_INPUT,
  MAX_HELLO_RECORDS,
  readClientHello,
} from '../../src/gateway/client-hello.ts';

const fixture = (name: string) =>
  Buffer.from(
    readFileSync(new URL(`../fixtures/client-hello/${name}.hex`, import.meta.url), 'utf8').trim(),
    'hex',
  );

/** Recorded with `openssl s_client` and curl against a listener that kept the first record. */
const VECTORS: { name: string; serverName: string | null; alpn: string[] }[] = [
  // -servername Pass.Example.COM -alpn h2,http/1.1: the name is lower-cased.
  { name: 'openssl-sni-alpn', serverName: 'pass.example.com', alpn: ['h2', 'http/1.1'] },
  { name: 'openssl-no-sni', serverName: null, alpn: [] },
  { name: 'openssl-tls12', serverName: 'a.example.com', alpn: [] },
  // openssl sends an IP literal when told to (RFC 6066 forbids it; it is read as a name).
  { name: 'openssl-ip-literal', serverName: '127.0.0.1', alpn: [] },
  { name: 'curl-sni', serverName: 'curl.example.com', alpn: ['h2', 'http/1.1'] },
  // curl sends no SNI for an IP address.
  { name: 'curl-ip-literal', serverName: null, alpn: ['h2', 'http/1.1'] },
];

function helloOf(read: ClientHelloRead) {
  assert.equal(read.kind, 'hello', JSON.stringify(read));
  return (read as Extract<ClientHelloRead, { kind: 'hello' }>).hello;
}

function codeOf(read: ClientHelloRead): string {
  assert.equal(read.kind, 'error', JSON.stringify(read));
  return (read as Extract<ClientHelloRead, { kind: 'error' }>).error.code;
}

/** The handshake message inside a single-record hello. */
function handshakeOf(record: Buffer): Buffer {
  return record.subarray(5, 5 + record.readUInt16BE(3));
}

/** The handshake message re-framed into records of the given payload sizes (the last takes the rest). */
function reframe(handshake: Buffer, sizes: readonly number[]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= handshake.length) break;
    const part = handshake.subarray(at, Math.min(at + size, handshake.length));
    out.push(Buffer.from([0x16, 3, 1, part.length >> 8, part.length & 0xff]), part);
    at += part.length;
  }
  if (at < handshake.length) {
    const part = handshake.subarray(at);
    out.push(Buffer.from([0x16, 3, 1, part.length >> 8, part.length & 0xff]), part);
  }
  return Buffer.concat(out);
}

/** A ClientHello built by hand: extensions as [type, data] pairs. */
function buildHello(extensions: [number, Buffer][], handshakeType = 1): Buffer {
  const ext = Buffer.concat(
    extensions.map(([type, data]) => {
      const head = Buffer.alloc(4);
      head.writeUInt16BE(type, 0);
      head.writeUInt16BE(data.length, 2);
      return Buffer.concat([head, data]);
    }),
  );
  const extLength = Buffer.alloc(2);
  extLength.writeUInt16BE(ext.length);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([0]), // session id
    Buffer.from([0, 2, 0x13, 0x01]), // one cipher suite
    Buffer.from([1, 0]), // null compression
    extLength,
    ext,
  ]);
  const handshake = Buffer.concat([
    Buffer.from([handshakeType, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
  return reframe(handshake, [16_384]);
}

function serverNameExtension(...names: Buffer[]): Buffer {
  const entries = Buffer.concat(
    names.map((n) => Buffer.concat([Buffer.from([0, n.length >> 8, n.length & 0xff]), n])),
  );
  return Buffer.concat([Buffer.from([entries.length >> 8, entries.length & 0xff]), entries]);
}

test('vectors recorded from openssl s_client and curl: server name and ALPN', () => {
  for (const v of VECTORS) {
    const hello = helloOf(readClientHello(fixture(v.name)));
    assert.equal(hello.serverName, v.serverName, v.name);
    assert.deepEqual(hello.alpn, v.alpn, v.name);
  }
});

test('every prefix of a real hello is incomplete, the whole is the hello (any TCP split)', () => {
  for (const v of VECTORS) {
    const bytes = fixture(v.name);
    for (let n = 0; n < bytes.length; n++)
      assert.equal(readClientHello(bytes.subarray(0, n)).kind, 'incomplete');
    assert.equal(helloOf(readClientHello(bytes)).serverName, v.serverName);
  }
});

test('a hello split over many TLS records reads the same; bytes after it do not matter', () => {
  const vectors = fc.constantFrom(...VECTORS);
  const sizes = fc.array(fc.integer({ min: 1, max: 600 }), {
    minLength: 1,
    maxLength: MAX_HELLO_RECORDS - 1,
  });
  fc.assert(
    fc.property(vectors, sizes, fc.uint8Array({ maxLength: 64 }), (v, split, trailer) => {
      const framed = reframe(handshakeOf(fixture(v.name)), split);
      for (const cut of [1, 5, 6, Math.floor(framed.length / 2), framed.length - 1])
        if (cut < framed.length) assert.equal(readClientHello(framed.subarray(0, cut)).kind, 'incomplete');
      const hello = helloOf(readClientHello(Buffer.concat([framed, trailer])));
      assert.equal(hello.serverName, v.serverName);
      assert.deepEqual(hello.alpn, v.alpn);
    }),
  );
});

test('hostile bytes never throw, and the reader decides before MAX_HELLO_INPUT bytes', () => {
  const verdict = (bytes: Uint8Array) => {
    const read = readClientHello(bytes);
    assert.ok(['incomplete', 'hello', 'error'].includes(read.kind));
    if (read.kind === 'incomplete') assert.ok(bytes.length < MAX_HELLO_INPUT);
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2_000 }), verdict), { numRuns: 2_000 });
  // Starting like a handshake record, so the parser gets further in.
  const record = fc
    .tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 1_000 }))
    .map(([len, rest]) => Buffer.concat([Buffer.from([0x16, 3, 1, len >> 8, len & 0xff, 1]), rest]));
  fc.assert(fc.property(record, verdict), { numRuns: 2_000 });
  // Real hellos with bytes flipped.
  const mutated = fc
    .tuple(
      fc.constantFrom(...VECTORS),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
    )
    .map(([v, flips]) => {
      const bytes = Buffer.from(fixture(v.name));
      for (const [at, value] of flips) bytes[at % bytes.length] = value;
      return bytes;
    });
  fc.assert(fc.property(mutated, verdict), { numRuns: 3_000 });
});

test('not a handshake: plain HTTP, an application-data record, a ServerHello', () => {
  assert.equal(codeOf(readClientHello(Buffer.from('GET / HTTP/1.1\r\n'))), 'TLS_HELLO_NOT_HANDSHAKE');
  assert.equal(codeOf(readClientHello(Buffer.from([0x17, 3, 3, 0, 1, 0]))), 'TLS_HELLO_NOT_HANDSHAKE');
  assert.equal(codeOf(readClientHello(buildHello([], 2))), 'TLS_HELLO_NOT_HANDSHAKE');
  // The second record is not a handshake record.
  const first = reframe(handshakeOf(fixture('curl-sni')), [10]).subarray(0, 15);
  assert.equal(
    codeOf(readClientHello(Buffer.concat([first, Buffer.from([0x15, 3, 3, 0, 2])]))),
    'TLS_HELLO_NOT_HANDSHAKE',
  );
});

test('too big: a declared length over 16 KiB is refused from its first bytes; too many records', () => {
  const len = MAX_HELLO_BYTES; // body length: the message is 4 bytes more than the cap
  const head = Buffer.from([0x16, 3, 1, 0x40, 0x00, 1, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  assert.equal(codeOf(readClientHello(head)), 'TLS_HELLO_TOO_BIG');
  // The same header split one byte per record: refused as soon as the length is known.
  const split = reframe(head.subarray(5), [1, 1, 1, 1]);
  assert.equal(codeOf(readClientHello(split)), 'TLS_HELLO_TOO_BIG');
  // A real hello in 1-byte records: past 64 records it is refused, without waiting for the rest.
  const oneByte = reframe(handshakeOf(fixture('openssl-no-sni')), new Array(400).fill(1));
  assert.equal(codeOf(readClientHello(oneByte.subarray(0, MAX_HELLO_RECORDS * 6 + 1))), 'TLS_HELLO_TOO_BIG');
  // A record of more than 16 KiB (the TLS maximum) is malformed.
  assert.equal(codeOf(readClientHello(Buffer.from([0x16, 3, 1, 0x40, 0x01]))), 'TLS_HELLO_MALFORMED');
});

test('malformed: empty record, bad version, duplicate extension, bad server_name, bad ALPN, trailing bytes', () => {
  const cases: [string, Buffer][] = [
    ['empty record', Buffer.from([0x16, 3, 1, 0, 0])],
    ['record version', Buffer.from([0x16, 2, 0, 0, 4, 1, 0, 0, 0])],
    [
      'body ends inside the random',
      Buffer.from([0x16, 3, 1, 0, 14, 1, 0, 0, 10, 3, 3, 1, 2, 3, 4, 5, 6, 7, 8]),
    ],
    [
      'duplicate extension',
      buildHello([
        [0x17, Buffer.alloc(0)],
        [0x17, Buffer.alloc(0)],
      ]),
    ],
    ['NUL in host_name', buildHello([[0, serverNameExtension(Buffer.from('a\u0000b'))]])],
    ['space in host_name', buildHello([[0, serverNameExtension(Buffer.from('a b'))]])],
    ['empty host_name', buildHello([[0, serverNameExtension(Buffer.alloc(0))]])],
    ['two host_names', buildHello([[0, serverNameExtension(Buffer.from('a'), Buffer.from('b'))]])],
    ['server_name list too long', buildHello([[0, Buffer.from([0, 9, 0, 0, 1, 0x61])]])],
    ['empty ALPN list', buildHello([[16, Buffer.from([0, 0])]])],
    ['empty ALPN name', buildHello([[16, Buffer.from([0, 1, 0])]])],
  ];
  for (const [what, bytes] of cases) {
    assert.equal(codeOf(readClientHello(bytes)), 'TLS_HELLO_MALFORMED', what);
  }
  // Bytes after the extensions inside the hello body.
  const good = buildHello([[0, serverNameExtension(Buffer.from('ok.example'))]]);
  const hs = Buffer.from(handshakeOf(good));
  const longer = Buffer.concat([hs, Buffer.from([0])]);
  longer.writeUIntBE(longer.length - 4, 1, 3);
  assert.equal(codeOf(readClientHello(reframe(longer, [16_384]))), 'TLS_HELLO_MALFORMED');
  assert.equal(helloOf(readClientHello(good)).serverName, 'ok.example');
});

test('a hello without extensions (TLS 1.2 allows it) has no server name', () => {
  const hs = Buffer.from(handshakeOf(buildHello([])));
  const bare = hs.subarray(0, hs.length - 2); // drop the empty extensions block
  bare.writeUIntBE(bare.length - 4, 1, 3);
  const hello = helloOf(readClientHello(reframe(Buffer.from(bare), [16_384])));
  assert.equal(hello.serverName, null);
  assert.deepEqual(hello.alpn, []);
});
