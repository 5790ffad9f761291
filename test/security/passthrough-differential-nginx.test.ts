// ssl-passthrough, keepip against an independent reference: nginx 1.22's stream module with `ssl_preread
// on` and `map $ssl_preread_server_name` (Debian's libnginx-mod-stream, loaded by path), arranged as
// ingress-nginx's passthrough proxy arranges it (pkg/tcpproxy/tcp.go: the SNI read before anything, a
// passthrough host's connection as raw TCP to its backend, anything else to the local nginx HTTPS server
// with a PROXY header naming the client). The nginx side here:
//   front (stream, :F)   ssl_preread; map: p1/p2/p3 -> that host's recording backend (no PROXY header, peer
//                        nginx), default -> :T with proxy_bind $remote_addr (loopback: the client's own
//                        127.x address, so :T sees the real client)
//   :T (stream)          proxy_protocol on -> :H
//   :H (http)            listen ssl proxy_protocol, real_ip from the header; term.example.com (and `_`)
//                        proxy to the term backend with X-Real-IP/X-Forwarded-For, p1/p2/p3 proxy to their
//                        backend with https:// (ingress-nginx's SSLPassthrough upstream)
//   :F2 (stream)         the front again with preread_timeout 1s, for the stalled hello
// keepip: one in-process gateway (--enable-ssl-passthrough) with the same hosts as Ingresses, and one more
// with client-header-timeout 1 s for the deadlines. Each side has its own recording backends; a probe goes
// to both from the same 127.x source (a distinct one per probe, which also names the probe in the logs).
//
// The claims checked (docs/gateway.md, "SSL passthrough" and "The ClientHello is read first"):
//   "a TLS connection whose SNI is exactly such a host (no wildcard, no alias, as ingress-nginx's
//   passthrough proxy compares names) is not terminated: the hello and everything after it go unread to
//   the backend of the host's `/` path, which serves its own certificate"
//   "TLS: certificates … chosen by SNI (… case and one trailing dot ignored, as ingress-nginx)" — for the
//   certificate; the passthrough match compares exactly, case aside.
//   "The ClientHello is read first …, whole, before any TLS: across any TCP split and up to 64 TLS
//   records, at most 16 KiB, within `client-header-timeout` (a client that sends half a hello and stops
//   is dropped then, `header_timeout`). A hello that is not one, is inconsistent or too big is closed
//   without an answer and logged with its code (TLS_HELLO_NOT_HANDSHAKE, TLS_HELLO_MALFORMED,
//   TLS_HELLO_TOO_BIG)."
//   "A plain HTTP request on the HTTPS port gets nginx's `400 The plain HTTP request was sent to HTTPS port`."
//   "an end is passed on as an end (half-close)"
//   "Every passthrough connection gets one access log line, stream-style: `[client] [time_local] TCP status
//   bytes_sent bytes_received session_time "sni" "upstreams" ssl-passthrough namespace/ingress`"
//   docs/rules.md G10: "The backend terminates the TLS itself and sees the gateway pod as its peer, with no
//   X-Forwarded-For, X-Real-IP or PROXY header."
//   "The host's plain-HTTP side (… its name in the Host of a request over another host's TLS) is served
//   as any host's, … except that the backend of its `/` speaks TLS: every location proxying to it … does
//   so in HTTPS"
//   Client deadlines: "a request head (also: TLS handshake, a new connection that says nothing) |
//   client_header_timeout (60 s) | client-header-timeout | … close | header_timeout"
//
// Compared for every probe: where the bytes went (a passthrough backend, the terminating side, nowhere),
// the bytes that backend got (byte for byte what the client sent), what the client got back (the
// backend's bytes, TLS from the terminating side, an HTTP 400, a bare close), and the byte counts of the
// access log lines (nginx's $bytes_sent/$bytes_received, keepip's stream-style line) against what the
// client itself sent and got. Probes: a table of SNI spellings and hostile hellos, and generated
// well-formed ones (fast-check, fixed seed; PASSTHROUGH_DIFF_SEED=<n>|random) split over records and
// TCP writes, which must agree exactly. A difference where keepip hands a connection to a passthrough
// backend nginx would not (or another one) is a FINDING: those probes assert the safe behaviour. The
// differences in ALLOWED pass, and the last test checks every one of them was still seen.
//
// FINDING (since mended; N91): a server_name list whose first entry has a name_type other than
// host_name (0), followed by host_name p1. nginx's ssl_preread stops at the first entry ("SNI hostname
// type is not DNS": no name) and sends the connection to its terminating server, whose OpenSSL refuses
// such a list (only host_name entries exist for it); keepip's parseServerName (src/gateway/client-hello.ts)
// skipped entries of other types, as Go's crypto/tls does, and handed the connection to p1's backend.
// Safe: refuse it (TLS_HELLO_MALFORMED, what keepip now does with any entry of another type) or route
// it as nginx does; never to a passthrough backend.
//
// The reference as installed (seen, relied on): Debian's nginx 1.22.1-9+deb12u12 carries a backport
// that validates ClientHello extensions in ssl_preread (CVE-2026-123640 in its changelog): two
// server_name extensions give no name at all (upstream 1.22.1 took the first). nginx ends the preread
// phase with status 200 and no upstream at the client's FIN or at preread_timeout: a hello cut short is
// closed unread, as keepip closes it. nginx parses a record only once all of it is in; its preread buffer
// (16384 bytes, record headers included) full is a 400 and a close.
// What nginx does that keepip need not copy (seen, not asserted): its stream $bytes_received leaves out
// the bytes the preread phase read (the hello and what came with it): only keepip's bytes_received is
// held to what the client sent. Its access log names the server name as sent (keepip's the host's
// configured, lower-case name). The terminating side's 400 pages differ only in the signature line.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from '../../src/node-http.ts';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duplexPair } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import fc from 'fast-check';
import type { KeyPair } from '../../src/gateway/tls.ts';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type LineCollector, lineCollector } from '../helpers/lines.ts';
import { listenTracked, openRaw, type RawConnection } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { counterValue } from './helpers.ts';

const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const SEED =
  process.env.PASSTHROUGH_DIFF_SEED === 'random'
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(process.env.PASSTHROUGH_DIFF_SEED ?? 20_260_701);
const GENERATED_RUNS = 16;

const LONG_HOST = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.example.com`;
/** The passthrough hosts by their Ingress (and backend) name. */
const PASS_HOSTS = { p1: 'p1.example.com', p2: 'p2.example.com', p3: LONG_HOST } as const;
type PassName = keyof typeof PASS_HOSTS;
const PASS_NAMES = Object.keys(PASS_HOSTS) as PassName[];
const TERM_HOST = 'term.example.com';
/** p2's whitelist-source-range (keepip only: nginx's stream map has no source rules). Every probe comes from inside it but one. */
const P2_ALLOWED_SOURCES = '127.77.0.0/16';
const OUTSIDE_SOURCE = '127.78.0.1';

/** Where a side sent a connection: a passthrough backend, its terminating TLS side, or nowhere. */
type Route = PassName | 'default' | 'none';
const isPass = (route: Route): route is PassName => (PASS_NAMES as string[]).includes(route);

/**
 * The differences that pass, each with its reason; the predicate says what must be seen for it (a probe
 * that names one but shows no difference, or another one, fails: the table cannot rot).
 */
const ALLOWED = {
  'refused-unread': {
    reason:
      'keepip closes a hello that is not one, or is ambiguous, malformed or too big, without an answer and dials nothing; nginx hands those bytes to its terminating TLS server (the map default), which refuses them or not. No passthrough backend sees them on either side.',
    holds: (ngx: Outcome, kip: Outcome) =>
      ngx.route === 'default' && kip.route === 'none' && kip.reply === 'closed',
  },
  'refused-not-passed': {
    reason:
      'stricter: nginx takes the first of two host_name entries in one server_name extension (or a host_name before an entry of another type, which OpenSSL refuses) and reads a hello over any number of records, zero-length ones included; keepip refuses those (TLS_HELLO_MALFORMED, TLS_HELLO_TOO_BIG past 64 records) and dials nothing, so no passthrough backend gets a hello it may read differently.',
    holds: (ngx: Outcome, kip: Outcome) =>
      isPass(ngx.route) && kip.route === 'none' && kip.reply === 'closed',
  },
  'half-close': {
    reason:
      "docs: an end is passed on as an end. nginx's stream proxy (no proxy_half_close, as ingress-nginx's Go proxy, which also closes both at the first end) ends the session at the client's FIN and drops the backend's answer; keepip passes the FIN and the answer after it. Both backends got the same bytes.",
    holds: (ngx: Outcome, kip: Outcome) =>
      isPass(ngx.route) &&
      kip.route === ngx.route &&
      ngx.forwardedSent === true &&
      kip.forwardedSent === true &&
      ngx.reply === 'closed' &&
      kip.reply.startsWith('bytes got:'),
  },
  'hello-bound': {
    reason:
      "documented bound: keepip reads a ClientHello message of up to 16 KiB over up to 64 records (their 5-byte headers on top); nginx's preread buffer is 16384 bytes of the wire, headers included ('preread buffer full', closed). A 16 KiB hello in two records passes through keepip and is refused by nginx (ingress-nginx's Go proxy reads at most 16384 bytes, in one read, and would not read it whole either).",
    holds: (ngx: Outcome, kip: Outcome) =>
      ngx.route === 'none' && isPass(kip.route) && kip.forwardedSent === true,
  },
  'source-rules': {
    reason:
      "keepip applies the passthrough host's whitelist-source-range to the client (403, closed, nothing dialled); nginx's map (and ingress-nginx's passthrough proxy) has no source rules and passes the client through.",
    holds: (ngx: Outcome, kip: Outcome) =>
      isPass(ngx.route) && kip.route === 'none' && kip.note === 'status 403' && kip.reply === 'closed',
  },
} satisfies Record<string, { reason: string; holds: (ngx: Outcome, kip: Outcome) => boolean }>;
type AllowedKey = keyof typeof ALLOWED;
const allowedSeen = new Set<AllowedKey>();

/** What one side did with one probe. */
interface Outcome {
  route: Route;
  /** What the client got: `closed` (nothing), `tls` (a TLS server answered), `http <status line>`, `bytes <text>`. */
  reply: string;
  /** Whether the backend the connection went to got exactly what the client sent (`prefix`: a strict start of it). */
  forwardedSent: boolean | 'prefix' | null;
  /** The access log's bytes_sent/bytes_received for the connection, when the side logged them. */
  logged: { sent: number; received: number } | null;
  /** The client's own counts. */
  client: { sent: number; received: number };
  /** keepip: the error code or the logged status; nginx: the logged status and server name. */
  note: string;
}

// ---- ClientHellos -----------------------------------------------------------------------------------

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u24 = (n: number) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
type Extension = [type: number, data: Buffer];
const extension = (type: number, data: Buffer): Extension => [type, data];
const vector16 = (...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([u16(body.length), body]);
};

/** A server_name extension holding these [name_type, name] entries (RFC 6066 3). */
function serverName(...entries: [number, string | Buffer][]): Extension {
  const list = entries.map(([type, name]) => {
    const bytes = Buffer.from(name as string, 'latin1');
    return Buffer.concat([Buffer.from([type]), u16(bytes.length), bytes]);
  });
  return extension(0, vector16(...list));
}

/** ALPN (RFC 7301) with these protocol names (an empty one allowed, for the hostile case). */
function alpn(...names: string[]): Extension {
  return extension(
    16,
    vector16(...names.map((n) => Buffer.concat([Buffer.from([n.length]), Buffer.from(n)]))),
  );
}

/**
 * The extensions that make a hello OpenSSL (nginx's and Node's) answers with a TLS 1.3 ServerHello:
 * supported_groups x25519, signature_algorithms (ECDSA P-256 first: the certificate is EC), supported
 * versions 1.3/1.2, and an x25519 key share (the base point: a valid public key).
 */
function servable(): Extension[] {
  const key = Buffer.alloc(32);
  key[0] = 9;
  return [
    extension(10, vector16(u16(0x001d), u16(0x0017))),
    extension(13, vector16(u16(0x0403), u16(0x0804), u16(0x0401))),
    extension(43, Buffer.from([4, 3, 4, 3, 3])),
    extension(51, vector16(u16(0x001d), u16(32), key)),
  ];
}

/**
 * A ClientHello handshake message: its random starts `#PRB` + `tag` (the recorders tell a probe's hello
 * from a real TLS client's by it), then `extensions` before the servable ones, then padding (21).
 */
function helloMessage(tag: string, extensions: Extension[], padding = 0): Buffer {
  const random = Buffer.alloc(32, '.');
  random.write(`#PRB${tag}`.slice(0, 32), 'latin1');
  const all = [...extensions, ...servable(), ...(padding > 0 ? [extension(21, Buffer.alloc(padding))] : [])];
  const ext = Buffer.concat(all.map(([type, data]) => Buffer.concat([u16(type), u16(data.length), data])));
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    random,
    Buffer.from([0]),
    vector16(u16(0x1301), u16(0x1302), u16(0xc02b), u16(0xc02f)),
    Buffer.from([1, 0]),
    u16(ext.length),
    ext,
  ]);
  return Buffer.concat([Buffer.from([1]), u24(body.length), body]);
}

/** `message` in exactly `count` handshake records (sizes differing by one at most). */
function inRecords(message: Buffer, count = 1, version: [number, number] = [3, 1]): Buffer {
  const base = Math.floor(message.length / count);
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const size = base + (i < message.length % count ? 1 : 0);
    out.push(Buffer.from([0x16, ...version]), u16(size), message.subarray(at, at + size));
    at += size;
  }
  return Buffer.concat(out);
}

/** `message` in handshake records of these sizes, the rest in one more. */
function recordsOf(message: Buffer, sizes: number[]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (const size of [...sizes, message.length]) {
    const part = message.subarray(at, Math.min(at + size, message.length));
    if (part.length === 0) break;
    out.push(Buffer.from([0x16, 3, 1]), u16(part.length), part);
    at += part.length;
  }
  return Buffer.concat(out);
}

/** One record holding a hello with one server_name entry (host_name), or none. */
const helloFor = (tag: string, name: string | null, extra: Extension[] = []) =>
  inRecords(helloMessage(tag, [...(name === null ? [] : [serverName([0, name])]), ...extra]));

/** The cleartext request a probe sends after its hello: a passthrough backend answers it. */
const trailer = (tag: string, host: string) =>
  Buffer.from(`GET /probe/${tag} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);

// ---- recording backends -----------------------------------------------------------------------------

/** One connection a recording backend accepted. */
interface Recorded {
  chunks: Buffer[];
  mode: 'raw' | 'tls' | null;
}

/**
 * A passthrough backend that records every connection's bytes, as they came. A probe's hello (random
 * `#PRB…`, or not a TLS hello at all) is answered in cleartext, `backend:<name> got:<n>`, when its tag's
 * first letter says (`N`: the hello is in, `T`: the request after it is), else `got:<n>` at the end.
 * Anything else (a real TLS client: the client's own, or nginx's and
 * keepip's https:// to a passthrough host's backend) is terminated with `pair` and answered
 * `backend:<name> host:<Host> peer:<TCP peer>`. Events: `accept <i>`, `data <i> <total>`, `done <i>`
 * (answered, ended or closed).
 */
interface Recorder {
  name: string;
  port: number;
  conns: Recorded[];
  events: LineCollector;
  close(): Promise<void>;
}

const bytesOf = (r: Recorded) => Buffer.concat(r.chunks);

/** Whether `bytes` (at least 15 of them) is a probe's hello or not TLS: cleartext mode. null: wait for more. */
function rawMode(bytes: Buffer): boolean | null {
  if (bytes[0] !== 0x16) return true;
  if (bytes.length < 15) return null;
  const record = (bytes[3]! << 8) | bytes[4]!;
  return record < 38 || bytes.subarray(11, 15).toString('latin1') === '#PRB';
}

/** Where the hello that `bytes` start with ends (its records walked), and its tag's first letter; null while it is not all in. */
function helloEnd(bytes: Buffer): { end: number; flag: string } | null {
  const parts: Buffer[] = [];
  let at = 0;
  let total = 0;
  while (at + 5 <= bytes.length && bytes[at] === 0x16) {
    const length = (bytes[at + 3]! << 8) | bytes[at + 4]!;
    if (at + 5 + length > bytes.length) return null;
    parts.push(bytes.subarray(at + 5, at + 5 + length));
    total += length;
    at += 5 + length;
    const message = Buffer.concat(parts);
    if (total >= 11 && total >= 4 + message.readUIntBE(1, 3))
      return { end: at, flag: String.fromCharCode(message[10]!) };
  }
  return null;
}

/** The probe protocol: answered once the hello is in (`N`), once the request after it is (`T`), else at the end. */
function answerRaw(name: string, socket: net.Socket, conn: Recorded, done: () => void): () => void {
  let answered = false;
  socket.on('end', () => {
    if (!answered) socket.end(`got:${bytesOf(conn).length}`);
    answered = true;
    done();
  });
  return () => {
    const bytes = bytesOf(conn);
    const hello = helloEnd(bytes);
    if (answered || hello === null || hello.flag === 'H') return;
    if (hello.flag === 'T' && !bytes.subarray(hello.end).includes('\r\n\r\n')) return;
    answered = true;
    socket.end(`backend:${name} got:${bytes.length}`);
    done();
  };
}

/** Hands the connection to a TLS server side (through a socket pair): `bytes` so far, the rest as it comes. */
function answerTls(name: string, socket: net.Socket, context: tls.SecureContext, done: () => void) {
  const [mine, theirs] = duplexPair();
  const secure = new tls.TLSSocket(theirs, { isServer: true, secureContext: context });
  mine.on('data', (chunk: Buffer) => socket.write(chunk));
  mine.on('end', () => socket.end());
  secure.on('error', () => socket.destroy());
  let head = '';
  secure.on('data', (chunk: Buffer) => {
    head += chunk.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    const host = /\r\nhost: *([^\r]*)/i.exec(head)?.[1] ?? '-';
    const body = `backend:${name} host:${host} peer:${socket.remoteAddress}`;
    secure.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    done();
  });
  return mine;
}

async function startRecorder(name: string, pair: KeyPair): Promise<Recorder> {
  const events = lineCollector();
  const conns: Recorded[] = [];
  const context = tls.createSecureContext({ key: pair.key, cert: pair.cert });
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const index = conns.length;
    const conn: Recorded = { chunks: [], mode: null };
    conns.push(conn);
    events.push(`accept ${index}`);
    let finished = false;
    const done = () => {
      if (!finished) events.push(`done ${index}`);
      finished = true;
    };
    socket.on('error', () => socket.destroy());
    socket.on('close', done);
    let raw: (() => void) | null = null;
    let tlsSide: ReturnType<typeof answerTls> | null = null;
    socket.on('data', (chunk: Buffer) => {
      conn.chunks.push(chunk);
      events.push(`data ${index} ${bytesOf(conn).length}`);
      if (conn.mode === null) {
        const mode = rawMode(bytesOf(conn));
        if (mode === null) return;
        conn.mode = mode ? 'raw' : 'tls';
        if (mode) raw = answerRaw(name, socket, conn, done);
        else {
          tlsSide = answerTls(name, socket, context, done);
          tlsSide.write(bytesOf(conn));
          socket.on('end', () => tlsSide?.end());
          return;
        }
      }
      if (raw !== null) raw();
      else tlsSide?.write(chunk);
    });
    socket.on('end', () => {
      if (conn.mode === null) {
        conn.mode = 'raw';
        socket.end(`got:${bytesOf(conn).length}`);
        done();
      }
    });
  });
  const { port, close } = await listenTracked(server);
  return { name, port, conns, events, close };
}

/** The term backend (HTTP): answers with the Host and the client address headers it got. */
async function startTermBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const h = req.headers;
    const body = `backend:term host:${h.host} xff:${h['x-forwarded-for']} xri:${h['x-real-ip']}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  return listenTracked(server);
}

// ---- the two sides ----------------------------------------------------------------------------------

interface Backends {
  pass: Record<PassName, Recorder>;
  term: { port: number; close(): Promise<void> };
  /** Connections each passthrough backend must have had, as the sides said (checked by the last test). */
  expected: Record<PassName, number>;
}

async function startBackends(pair: KeyPair): Promise<Backends> {
  const pass = {} as Record<PassName, Recorder>;
  for (const name of PASS_NAMES) pass[name] = await startRecorder(name, pair);
  return { pass, term: await startTermBackend(), expected: { p1: 0, p2: 0, p3: 0 } };
}

async function closeBackends(b: Backends | undefined): Promise<void> {
  if (b === undefined) return;
  for (const r of Object.values(b.pass)) await r.close();
  await b.term.close();
}

/** keepip's Ingresses: p1/p2/p3 with ssl-passthrough (p2 with a whitelist), term terminated. */
function keepipObjects(b: Backends, settings: Record<string, string> = {}): K8sObject[] {
  return [
    controllerConfigMap(settings),
    ...PASS_NAMES.flatMap((name) =>
      serviceWithEndpoints({ name: `${name}-svc`, ports: [b.pass[name].port], servicePort: 443 }),
    ),
    ...serviceWithEndpoints({ name: 'term-svc', ports: [b.term.port] }),
    ...PASS_NAMES.map((name) =>
      ingress({
        name,
        host: PASS_HOSTS[name],
        paths: [{ path: '/', service: `${name}-svc`, port: 443 }],
        annotations: {
          'ssl-passthrough': 'true',
          ...(name === 'p2' ? { 'whitelist-source-range': P2_ALLOWED_SOURCES } : {}),
        },
      }),
    ),
    ingress({ name: 'term', host: TERM_HOST, paths: [{ path: '/', service: 'term-svc', port: 80 }] }),
  ];
}

/** The stream log of the fronts: `remote_addr remote_port status bytes_sent bytes_received upstream_addr sni`. */
const STREAM_LOG =
  '$remote_addr $remote_port $status $bytes_sent $bytes_received $upstream_addr "$ssl_preread_server_name"';

function nginxStream(dir: string, [front, front2, inner, https]: number[], b: Backends): string {
  const entries = PASS_NAMES.map((name) => `    ${PASS_HOSTS[name]} 127.0.0.1:${b.pass[name].port};`);
  const binds = PASS_NAMES.map((name) => `    ${PASS_HOSTS[name]} "";`);
  const frontServer = (port: number, extra: string) => `
  server {
    listen 127.0.0.1:${port};
    ssl_preread on;
    ${extra}
    proxy_pass $passthrough_upstream;
    proxy_bind $passthrough_bind;
    access_log ${dir}/front.log passthrough;
  }`;
  return `
  log_format passthrough '${STREAM_LOG}';
  map_hash_bucket_size 256;
  map $ssl_preread_server_name $passthrough_upstream {
${entries.join('\n')}
    default 127.0.0.1:${inner};
  }
  map $ssl_preread_server_name $passthrough_bind {
${binds.join('\n')}
    default $remote_addr;
  }
  ${frontServer(front!, '')}
  ${frontServer(front2!, 'preread_timeout 1s;')}
  server {
    listen 127.0.0.1:${inner};
    proxy_pass 127.0.0.1:${https};
    proxy_protocol on;
    access_log ${dir}/inner.log passthrough;
  }`;
}

function nginxHttp(certDir: string, [, , , https]: number[], b: Backends): string {
  const tlsLines = `ssl_certificate ${certDir}/tls.crt; ssl_certificate_key ${certDir}/tls.key;
    set_real_ip_from 127.0.0.1/32; real_ip_header proxy_protocol;`;
  const passServers = PASS_NAMES.map(
    (name) => `
  server {
    listen 127.0.0.1:${https} ssl proxy_protocol;
    server_name ${PASS_HOSTS[name]};
    ${tlsLines}
    location / { proxy_pass https://127.0.0.1:${b.pass[name].port}; proxy_set_header Host $host; }
  }`,
  );
  return `
  server_names_hash_bucket_size 256;
  server {
    listen 127.0.0.1:${https} ssl proxy_protocol default_server;
    server_name _ ${TERM_HOST};
    ${tlsLines}
    location / {
      proxy_pass http://127.0.0.1:${b.term.port};
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }
  ${passServers.join('\n')}`;
}

interface Sides {
  certDir: string;
  nginx: RunningNginx;
  ngxBackends: Backends;
  kip: TestGateway;
  /** client-header-timeout 1 s, the same Ingresses and backends as kip. */
  kipStall: TestGateway;
  kipBackends: Backends;
}

async function startSides(): Promise<Sides> {
  assert.ok(
    existsSync(STREAM_MODULE),
    `no ${STREAM_MODULE}: install libnginx-mod-stream (nginx's stream module)`,
  );
  const pair = await testCertificate();
  const certDir = mkdtempSync(join(tmpdir(), 'keepip-passthrough-diff-'));
  writeFileSync(join(certDir, 'tls.crt'), pair.cert);
  writeFileSync(join(certDir, 'tls.key'), pair.key);
  const sides: Partial<Sides> = { certDir };
  try {
    sides.ngxBackends = await startBackends(pair);
    sides.kipBackends = await startBackends(pair);
    const ngxBackends = sides.ngxBackends;
    sides.nginx = await startNginx({
      main: [`load_module ${STREAM_MODULE};`],
      freePorts: 4,
      stream: (dir, ports) => nginxStream(dir, ports, ngxBackends),
      http: (_dir, ports) => nginxHttp(certDir, ports, ngxBackends),
      waitFor: (ports) => ports.map((port) => ({ host: '127.0.0.1', port })),
    });
    const passthrough = { enableSslPassthrough: true };
    sides.kip = await startTestGateway(topologyOf(keepipObjects(sides.kipBackends), passthrough));
    sides.kipStall = await startTestGateway(
      topologyOf(keepipObjects(sides.kipBackends, { 'client-header-timeout': '1' }), passthrough),
    );
    return sides as Sides;
  } catch (error) {
    await stopSides(sides);
    throw error;
  }
}

async function stopSides(s: Partial<Sides>): Promise<void> {
  await s.kip?.close();
  await s.kipStall?.close();
  await s.nginx?.stop();
  await closeBackends(s.ngxBackends);
  await closeBackends(s.kipBackends);
  if (s.certDir !== undefined) rmSync(s.certDir, { recursive: true, force: true });
}

// ---- probes -----------------------------------------------------------------------------------------

interface Probe {
  /** In the hello's random and the trailer's path; unique. */
  tag: string;
  what: string;
  /** Written in order, each write awaited before the next. */
  writes: Buffer[];
  /** A FIN after the writes. */
  end?: boolean;
  /** The FIN only once this backend has all the bytes (a half-close of an open tunnel). */
  finAfterBackend?: PassName;
  /** The source address (default: one of its own). */
  from?: string;
  allowed?: AllowedKey;
  /** The probe shows a FINDING: it asserts the safe behaviour (keepip never passes through where nginx does not). */
  finding?: string;
  /** keepip closes it without a log line (a FIN inside the hello): its "none" is proven by the last test's count. */
  quiet?: boolean;
}

/**
 * A probe whose one write is `hello`, then (with `host`) a cleartext request for it. The tag's first
 * letter tells the recording backend when to answer: `T` once that request is in, `N` once the hello is
 * (nothing follows it: a terminating TLS server never meets bytes it would refuse, and close early on),
 * `H` only at the end.
 */
function probe(
  tag: string,
  what: string,
  hello: Buffer,
  host: string | null,
  extra: Partial<Probe> = {},
): Probe {
  assert.equal(tag[0], host === null ? 'N' : 'T', tag);
  return {
    tag,
    what,
    writes: [host === null ? hello : Buffer.concat([hello, trailer(tag, host)])],
    ...extra,
  };
}

/** `bytes` cut into writes of `size`. */
function chunks(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

function sniProbes(): Probe[] {
  const { p1, p2 } = PASS_HOSTS;
  const unread = { allowed: 'refused-unread' } as const;
  return [
    probe('T01', 'SNI exactly p1', helloFor('T01', p1), p1),
    probe('T02', 'SNI exactly p2', helloFor('T02', p2), p2),
    probe('T03', 'SNI exactly the 194-byte p3', helloFor('T03', LONG_HOST), LONG_HOST),
    probe('T04', 'SNI p1 in another case', helloFor('T04', 'P1.Example.COM'), p1),
    probe('N05', 'SNI p1 with a trailing dot', helloFor('N05', `${p1}.`), null),
    probe('N06', 'no SNI', helloFor('N06', null), null),
    probe('N07', 'SNI an IP literal', helloFor('N07', '127.0.0.1'), null),
    probe('N08', 'SNI an unknown name', helloFor('N08', 'nope.example.com'), null),
    probe('N09', "SNI the terminated host's name", helloFor('N09', TERM_HOST), null),
    probe('N10', 'SNI a subdomain of p1', helloFor('N10', `x.${p1}`), null),
    probe(
      'N11',
      'SNI an unknown name of 255 bytes',
      helloFor('N11', `${'d'.repeat(63)}.`.repeat(4).slice(0, 255)),
      null,
    ),
    probe('T12', 'SNI p1, then a request with the Host of another', helloFor('T12', p1), TERM_HOST),
    probe('T13', 'SNI p1, then ALPN h2', helloFor('T13', p1, [alpn('h2', 'http/1.1')]), p1),
    probe('N14', 'SNI of 300 bytes', helloFor('N14', 'e'.repeat(300)), null, unread),
    probe('N15', 'SNI p1 with a NUL after it', helloFor('N15', `${p1}\u0000`), null, unread),
    probe('N16', 'an empty ALPN protocol after SNI p1', helloFor('N16', p1, [alpn('')]), null, unread),
  ];
}

function ambiguousNameProbes(): Probe[] {
  const p1 = PASS_HOSTS.p1;
  const two = (tag: string, a: [number, string][], b?: [number, string][]) =>
    inRecords(helloMessage(tag, b === undefined ? [serverName(...a)] : [serverName(...a), serverName(...b)]));
  const unread = { allowed: 'refused-unread' } as const;
  return [
    probe(
      'N20',
      'two server_name extensions, p1 first',
      two('N20', [[0, p1]], [[0, TERM_HOST]]),
      null,
      unread,
    ),
    probe(
      'N21',
      'two server_name extensions, p1 second',
      two('N21', [[0, TERM_HOST]], [[0, p1]]),
      null,
      unread,
    ),
    probe(
      'T22',
      'two host_names in one extension, p1 first',
      two('T22', [
        [0, p1],
        [0, TERM_HOST],
      ]),
      p1,
      {
        allowed: 'refused-not-passed',
      },
    ),
    probe(
      'N23',
      'two host_names in one extension, p1 second',
      two('N23', [
        [0, TERM_HOST],
        [0, p1],
      ]),
      null,
      unread,
    ),
    probe(
      'N24',
      'a name of type 1 naming p1, then host_name term',
      two('N24', [
        [1, p1],
        [0, TERM_HOST],
      ]),
      null,
      unread,
    ),
    probe(
      'T25',
      'host_name p1, then a name of type 1 naming term',
      two('T25', [
        [0, p1],
        [1, TERM_HOST],
      ]),
      p1,
      { allowed: 'refused-not-passed' },
    ),
  ];
}

/** The hello split, re-framed, oversized. */
function framingProbes(): Probe[] {
  const p1 = PASS_HOSTS.p1;
  const msg = (tag: string, padding = 0) => helloMessage(tag, [serverName([0, p1])], padding);
  const withTrailer = (tag: string, bytes: Buffer) => Buffer.concat([bytes, trailer(tag, p1)]);
  const zeroFirst = Buffer.concat([Buffer.from([0x16, 3, 1, 0, 0]), inRecords(msg('T36'))]);
  const secondNotHandshake = recordsOf(msg('N37'), [100]);
  secondNotHandshake[5 + 100] = 0x17;
  const stricter = { allowed: 'refused-not-passed' } as const;
  return [
    probe('T30', 'the hello over 5 records', inRecords(msg('T30'), 5), p1),
    probe('T31', 'the hello over 64 records', inRecords(msg('T31', 400), 64), p1),
    {
      tag: 'T32',
      what: 'the hello a byte per TCP write',
      writes: chunks(withTrailer('T32', inRecords(msg('T32'))), 1),
    },
    {
      tag: 'T33',
      what: 'the hello over 9 records, 7 bytes per TCP write',
      writes: chunks(withTrailer('T33', inRecords(msg('T33'), 9)), 7),
    },
    probe('T34', 'a 12 KiB hello over 2 records', inRecords(msg('T34', 12_000), 2), p1),
    probe('T35', 'the hello over 65 records', inRecords(msg('T35', 400), 65), p1, stricter),
    probe('T36', 'an empty handshake record, then the hello', zeroFirst, p1, stricter),
    probe('N37', 'the second record of the hello is not a handshake', secondNotHandshake, null, {
      allowed: 'refused-unread',
    }),
    probe('N38', 'a record version 2.1', inRecords(msg('N38'), 1, [2, 1]), null, {
      allowed: 'refused-unread',
    }),
    probe('N39', 'a 20 KiB hello over 2 records', inRecords(msg('N39', 20_000), 2), null),
    probe('N40', 'one record of 20000 bytes holding a 20 KiB hello', inRecords(msg('N40', 19_800), 1), null),
    probe('T41', 'a 16 KiB hello (the message) over 2 records', inRecords(fill16k('T41'), 2), p1, {
      allowed: 'hello-bound',
    }),
  ];
}

/** A hello naming p1 whose handshake message is exactly 16384 bytes (keepip's MAX_HELLO_BYTES). */
function fill16k(tag: string): Buffer {
  const bare = helloMessage(tag, [serverName([0, PASS_HOSTS.p1])], 1);
  return helloMessage(tag, [serverName([0, PASS_HOSTS.p1])], 16_384 - bare.length + 1);
}

/** Not TLS, or cut short. */
function otherProbes(): Probe[] {
  const { p1, p2 } = PASS_HOSTS;
  const sslv2 = Buffer.concat([
    Buffer.from([0x80, 28, 0x01, 0x03, 0x01, 0, 3, 0, 0, 0, 16]),
    Buffer.from([0x00, 0x00, 0x2f]),
    Buffer.alloc(16, 9),
  ]);
  // The server_name is in the first record, whole: nginx parses a record only once it is all in.
  const cut = recordsOf(helloMessage('N54', [serverName([0, p1])]), [100]).subarray(0, 105);
  const overlong = Buffer.concat([
    Buffer.from([0x16, 3, 1, 0x40, 0x01]),
    helloMessage('N56', [serverName([0, p1])]),
  ]);
  const proxyV2 = Buffer.from('0d0a0d0a000d0a515549540a2111000c7f0000017f000001a4100050', 'hex');
  const raw = (tag: string, what: string, bytes: Buffer, extra: Partial<Probe> = {}) => ({
    tag,
    what,
    writes: [bytes],
    ...extra,
  });
  return [
    raw('N50', 'an SSLv2-style hello', sslv2, { allowed: 'refused-unread' }),
    raw('N51', 'plain HTTP to the HTTPS port', Buffer.from(`GET / HTTP/1.1\r\nHost: ${p1}\r\n\r\n`)),
    raw('N52', 'bytes that are neither TLS nor HTTP', Buffer.from('\u0001\u0002 hello?\r\n\r\n')),
    raw('N53', 'a hello cut before its server_name, then a FIN', helloFor('N53', p1).subarray(0, 30), {
      end: true,
      quiet: true,
    }),
    raw('N54', 'a hello naming p1 cut after its server_name, then a FIN', cut, { end: true, quiet: true }),
    raw(
      'T55',
      'SNI p2 from a client outside its whitelist-source-range',
      Buffer.concat([helloFor('T55', p2), trailer('T55', p2)]),
      {
        from: OUTSIDE_SOURCE,
        allowed: 'source-rules',
      },
    ),
    raw('N56', 'a record header claiming 16385 bytes, then the hello and a FIN', overlong, { end: true }),
    raw(
      'N57',
      'a PROXY v1 header naming another client, then a hello naming p1',
      Buffer.concat([Buffer.from('PROXY TCP4 10.9.9.9 127.0.0.1 4000 443\r\n'), helloFor('N57', p1)]),
    ),
    raw('N58', 'a PROXY v2 header, then a hello naming p1', Buffer.concat([proxyV2, helloFor('N58', p1)])),
    raw('N59', 'the HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')),
  ];
}

/** Where keepip passes through and nginx does not (or elsewhere): each asserts the safe behaviour. */
function findingProbes(): Probe[] {
  const p1 = PASS_HOSTS.p1;
  const hello = inRecords(helloMessage('N91', [serverName([1, TERM_HOST], [0, p1])]));
  return [
    probe('N91', 'a name of type 1 naming term, then host_name p1', hello, null, {
      finding:
        'nginx (ssl_preread: "SNI hostname type is not DNS") reads no name and sends it to its terminating server, where OpenSSL refuses a server_name whose entry is not a host_name; keepip skips the entry and hands the hello to p1',
    }),
  ];
}

// ---- running a probe against a side -----------------------------------------------------------------

type RouteInfo = Pick<Outcome, 'route' | 'logged' | 'note'>;

interface Side {
  name: 'nginx' | 'keepip';
  port: number;
  backends: Backends;
  route(src: string, reply: Buffer, quiet: boolean): Promise<RouteInfo>;
}

/** What the client got, as compared. */
function classify(reply: Buffer): string {
  if (reply.length === 0) return 'closed';
  if (reply[0] === 0x16 || reply[0] === 0x15) return 'tls';
  const text = reply.toString('latin1');
  if (!text.startsWith('HTTP/')) return `bytes ${text}`;
  // The page's text, without its signature line (server tokens: `nginx/1.22.1`, `keepip`).
  const page = text.replace(/<hr><center>[^<]*<\/center>/, '');
  const title = /<title>([^<]*)<\/title>/.exec(page)?.[1] ?? '';
  const centers = [...page.matchAll(/<center>([^<]*)<\/center>/g)].map((m) => m[1]);
  return `http ${text.slice(0, text.indexOf('\r\n'))} | ${title} | ${centers.join(' | ')}`;
}

/** Polls `find` (a file nginx appends to) every 5 ms, for at most 15 s: the line is the signal. */
async function pollFor<T>(what: string, find: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no ${what} within 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function nginxSide(ngx: RunningNginx, backends: Backends, port: number): Side {
  const inner = `127.0.0.1:${ngx.ports[2]}`;
  const byPort = new Map(PASS_NAMES.map((name) => [`127.0.0.1:${backends.pass[name].port}`, name]));
  return {
    name: 'nginx',
    port,
    backends,
    async route(src) {
      const line = await pollFor(`nginx stream log line for ${src}`, () =>
        ngx
          .readFile('front.log')
          .split('\n')
          .find((l) => l.startsWith(`${src} `)),
      );
      const [, , status, sent, received, upstream] = line.split(' ');
      const route: Route = upstream === inner ? 'default' : (byPort.get(upstream ?? '') ?? 'none');
      const sni = line.slice(line.indexOf('"'));
      return {
        route,
        logged: { sent: Number(sent), received: Number(received) },
        note: `status ${status} ${sni}`,
      };
    },
  };
}

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** keepip's line naming the client: the passthrough access line, else the error line that closed it. */
async function keepipLine(gw: TestGateway, src: string): Promise<{ access: boolean; line: string }> {
  const access = new RegExp(`^\\[${escapeRe(src)}\\] `);
  const error = new RegExp(`(TLS_HELLO_\\w+|ssl-passthrough).*client: ${escapeRe(src)},`);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const a = gw.access.lines.find((l) => access.test(l));
    if (a !== undefined) return { access: true, line: a };
    const e = gw.errors.lines.find((l) => error.test(l));
    if (e !== undefined) return { access: false, line: e };
    if (Date.now() > deadline)
      throw new Error(`no keepip log line for ${src}:\n${gw.errors.lines.join('\n')}`);
    await Promise.race([
      gw.access.untilCount(gw.access.lines.length + 1, 250),
      gw.errors.untilCount(gw.errors.lines.length + 1, 250),
    ]);
  }
}

const PASSTHROUGH_LINE =
  /^\[([^\]]+)\] \[[^\]]+\] TCP (\d{3}) (\d+) (\d+) \d+\.\d{3} "([^"]*)" "([^"]*)" ssl-passthrough default\/(\S+)$/;

function keepipSide(gw: TestGateway, backends: Backends): Side {
  return {
    name: 'keepip',
    port: gw.httpsPort,
    backends,
    async route(src, reply, quiet) {
      const cls = classify(reply);
      // TLS or HTTP from keepip itself: its terminating side took the connection (one decision per connection).
      if (cls === 'tls' || cls.startsWith('http ')) return { route: 'default', logged: null, note: '' };
      if (quiet && cls === 'closed') return { route: 'none', logged: null, note: 'closed at the FIN' };
      const { access, line } = await keepipLine(gw, src);
      if (!access) return { route: 'none', logged: null, note: /TLS_HELLO_\w+/.exec(line)?.[0] ?? line };
      const m = PASSTHROUGH_LINE.exec(line);
      assert.ok(m, `not the documented passthrough line: ${line}`);
      const [, , status, sent, received, , , ingressName] = m;
      const route: Route = status === '200' ? (ingressName as PassName) : 'none';
      return { route, logged: { sent: Number(sent), received: Number(received) }, note: `status ${status}` };
    },
  };
}

const sourceOf = (group: number, index: number) => `127.77.${group}.${index}`;

/**
 * Until the server closed the connection, or a TLS server answered (its first record is all that is
 * compared: the client then leaves, as the handshake would wait for it).
 */
async function settled(conn: RawConnection): Promise<void> {
  try {
    await conn.until((bytes) => bytes.length > 0 && (bytes[0] === 0x16 || bytes[0] === 0x15));
    conn.destroy();
  } catch (error) {
    if (!conn.closed()) throw error;
  }
}

/** Sends `p` from `src` to `side`; the outcome once the connection is over and the side said where it went. */
async function run(side: Side, p: Probe, src: string): Promise<Outcome> {
  const sent = Buffer.concat(p.writes);
  const starts = Object.fromEntries(PASS_NAMES.map((n) => [n, side.backends.pass[n].conns.length]));
  const conn = await openRaw({ host: '127.0.0.1', port: side.port, localAddress: src });
  conn.socket.setNoDelay(true);
  for (const bytes of p.writes) {
    if (conn.closed()) break;
    await new Promise((resolve) => conn.socket.write(bytes, resolve));
  }
  if (p.finAfterBackend !== undefined) {
    const recorder = side.backends.pass[p.finAfterBackend];
    await recorder.events.wait(new RegExp(`^data ${starts[p.finAfterBackend]} ${sent.length}$`));
  }
  if (p.end === true) conn.socket.end();
  await settled(conn);
  const reply = conn.received();
  const info = await side.route(src, reply, p.quiet === true);
  let forwardedSent: Outcome['forwardedSent'] = null;
  if (isPass(info.route)) {
    const recorder = side.backends.pass[info.route];
    const index = starts[info.route]!;
    await recorder.events.wait(new RegExp(`^done ${index}$`));
    side.backends.expected[info.route] += 1;
    const got = bytesOf(recorder.conns[index]!);
    forwardedSent = got.equals(sent) ? true : sent.subarray(0, got.length).equals(got) ? 'prefix' : false;
  }
  return {
    ...info,
    reply: classify(reply),
    forwardedSent,
    client: { sent: sent.length, received: reply.length },
  };
}

const summary = (o: Outcome) =>
  `${o.route} reply=${o.reply.slice(0, 80)} forwarded=${o.forwardedSent} logged=${JSON.stringify(o.logged)} ${o.note}`;

/**
 * Where a passthrough connection was logged, the counts are the client's own. nginx 1.22's stream
 * $bytes_received leaves out what the preread phase read (the hello, and whatever came with it): only
 * its $bytes_sent is compared.
 */
function countsAgree(o: Outcome, side: Side['name']): boolean {
  if (!isPass(o.route) || o.logged === null) return true;
  const received = side === 'nginx' || o.logged.received === o.client.sent;
  return received && o.logged.sent === o.client.received;
}

/** null when the pair is as expected; else what is wrong. */
function verdict(p: Probe, ngx: Outcome, kip: Outcome): string | null {
  const pair = `\n  nginx:  ${summary(ngx)}\n  keepip: ${summary(kip)}`;
  if (p.finding !== undefined) {
    const safe = !isPass(kip.route) || kip.route === ngx.route;
    return safe ? null : `FINDING (${p.tag}) ${p.what}: ${p.finding}${pair}`;
  }
  if (p.allowed !== undefined) {
    if (!ALLOWED[p.allowed].holds(ngx, kip))
      return `${p.tag} ${p.what}: not the allowed '${p.allowed}'${pair}`;
    allowedSeen.add(p.allowed);
    return null;
  }
  const same = ngx.route === kip.route && ngx.reply === kip.reply && ngx.forwardedSent === kip.forwardedSent;
  if (!same) return `${p.tag} ${p.what}: differs${pair}`;
  if (isPass(kip.route) && kip.forwardedSent !== true) return `${p.tag} ${p.what}: not byte for byte${pair}`;
  if (!countsAgree(ngx, 'nginx') || !countsAgree(kip, 'keepip'))
    return `${p.tag} ${p.what}: logged counts${pair}`;
  return null;
}

/** Each probe to both sides at once (probes one after the other); the verdicts that are not null. */
async function judge(sides: [Side, Side], probes: readonly Probe[], group: number): Promise<string[]> {
  const wrong: string[] = [];
  for (const [i, p] of probes.entries()) {
    const src = p.from ?? sourceOf(group, i + 1);
    const [ngx, kip] = await Promise.all(sides.map((side) => run(side, p, src)));
    const v = verdict(p, ngx!, kip!);
    if (process.env.PASSTHROUGH_DIFF_DUMP === '1')
      console.log(`${p.tag} ${p.what}\n  nginx:  ${summary(ngx!)}\n  keepip: ${summary(kip!)}`);
    if (v !== null) wrong.push(v);
  }
  return wrong;
}

// ---- generated hellos -------------------------------------------------------------------------------

/** The names that are not a passthrough host's (the generator takes those half of the time). */
const GENERATED_OTHER_NAMES: (string | null)[] = [
  `${PASS_HOSTS.p2}.`,
  null,
  '127.0.0.1',
  'nope.example.com',
  TERM_HOST,
  `www.${PASS_HOSTS.p1}`,
  'example.com',
];

/** A well-formed hello: a name (maybe re-cased), ALPN or not, padding, 1-64 records, TCP writes of 1-97 bytes or one. */
const generatedArb = fc.record({
  name: fc.oneof(
    fc.constantFrom<string | null>(...Object.values(PASS_HOSTS)),
    fc.constantFrom(...GENERATED_OTHER_NAMES),
  ),
  caseBits: fc.integer({ min: 0, max: 2 ** 30 }),
  padding: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3_000 })),
  records: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 64 })),
  write: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 97 })),
  host: fc.constantFrom(...Object.values(PASS_HOSTS), TERM_HOST),
  alpn: fc.boolean(),
});
type Generated = typeof generatedArb extends fc.Arbitrary<infer T> ? T : never;

/** Upper-cases the letters whose bit in `bits` is set (cycling). */
function recase(name: string, bits: number): string {
  return [...name].map((c, i) => ((bits >> (i % 30)) & 1 ? c.toUpperCase() : c)).join('');
}

function generatedProbe(g: Generated, i: number): Probe {
  // A request after the hello only for a passthrough name: a terminating server never meets it.
  const passing = (Object.values(PASS_HOSTS) as (string | null)[]).includes(g.name);
  const tag = `${passing ? 'T' : 'N'}g${i}`;
  const extensions = [
    ...(g.name === null ? [] : [serverName([0, recase(g.name, g.caseBits)])]),
    ...(g.alpn ? [alpn('h2', 'http/1.1')] : []),
  ];
  const hello = inRecords(helloMessage(tag, extensions, g.padding), g.records);
  const bytes = passing ? Buffer.concat([hello, trailer(tag, g.host)]) : hello;
  // At most 200 writes.
  const writes = g.write === 0 ? [bytes] : chunks(bytes, Math.max(g.write, Math.ceil(bytes.length / 200)));
  return { tag, what: `generated ${JSON.stringify(g)}`, writes };
}

// ---- TLS clients ------------------------------------------------------------------------------------

interface FlowResult {
  answer: string;
  /** Bytes on the client's TCP connection, both ways. */
  sent: number;
  received: number;
}

/** A TLS client (SNI `servername`, none when undefined) from `src`, one request for `host`: the body it got. */
function tlsFlow(
  port: number,
  src: string,
  servername: string | undefined,
  host: string,
): Promise<FlowResult> {
  return new Promise((resolve) => {
    const raw = net.connect({ host: '127.0.0.1', port, localAddress: src });
    const secure = tls.connect(
      {
        socket: raw,
        host: '127.0.0.1',
        ...(servername === undefined ? {} : { servername }),
        rejectUnauthorized: false,
      },
      () => secure.write(`GET /flow HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    const parts: Buffer[] = [];
    // A failure shows as a wrong answer once the connection is closed (an error closes it).
    raw.on('error', () => {});
    secure.on('error', () => {});
    secure.on('data', (c: Buffer) => parts.push(c));
    raw.on('close', () => {
      const text = Buffer.concat(parts).toString('latin1');
      resolve({
        answer: text.slice(text.indexOf('\r\n\r\n') + 4),
        sent: raw.bytesWritten,
        received: raw.bytesRead,
      });
    });
  });
}

// ---- the tests --------------------------------------------------------------------------------------

describe('ssl-passthrough: keepip against nginx stream ssl_preread + map $ssl_preread_server_name', () => {
  let s: Sides;
  let sides: [Side, Side];

  before(async () => {
    s = await startSides();
    sides = [nginxSide(s.nginx, s.ngxBackends, s.nginx.ports[0]!), keepipSide(s.kip, s.kipBackends)];
  });

  after(async () => {
    if (s !== undefined) await stopSides(s);
  });

  it('SNI spellings: exact (any case) passes through byte for byte, a trailing dot, none, an IP, another name are terminated', async () => {
    assert.deepEqual(await judge(sides, sniProbes(), 1), []);
  });

  it('two names (two extensions, two host_names), names of another type: never a passthrough nginx would not make', async () => {
    assert.deepEqual(await judge(sides, ambiguousNameProbes(), 2), []);
  });

  it('the hello over records and TCP writes, re-framed, oversized', async () => {
    assert.deepEqual(await judge(sides, framingProbes(), 3), []);
  });

  it('not TLS (SSLv2, plain HTTP, other bytes), cut short by a FIN, a client outside the whitelist', async () => {
    assert.deepEqual(await judge(sides, otherProbes(), 4), []);
  });

  it(`generated well-formed hellos (seed ${SEED}, PASSTHROUGH_DIFF_SEED): the same backend, bytes and answer on both`, async () => {
    const probes = fc.sample(generatedArb, { numRuns: GENERATED_RUNS, seed: SEED }).map(generatedProbe);
    assert.deepEqual(await judge(sides, probes, 5), [], `seed ${SEED}`);
  });

  it('a half-close after the hello reaches the backend as an end on both; keepip also brings its answer back', async () => {
    const hello = helloFor('H01', PASS_HOSTS.p1);
    const p: Probe = {
      tag: 'H01',
      what: 'hello, then a FIN once the backend has it',
      writes: [hello],
      end: true,
      finAfterBackend: 'p1',
      allowed: 'half-close',
    };
    assert.deepEqual(await judge(sides, [p], 6), []);
  });

  it('real TLS clients: the same backend and answer, the client address where each side sends it, the log counts', async () => {
    await realClients(s, sides);
  });

  it('a stalled hello is closed at client-header-timeout (header_timeout), nothing dialled, as nginx closes it at preread_timeout', async () => {
    await stalledHellos(s);
  });

  it('FINDING probes: keepip never passes through where nginx does not', async () => {
    assert.deepEqual(await judge(sides, findingProbes(), 8), []);
  });

  it('no backend got a connection the sides did not report; every ALLOWED difference was seen', async () => {
    await barrier(s);
    for (const [side, backends] of [
      ['nginx', s.ngxBackends],
      ['keepip', s.kipBackends],
    ] as const) {
      const got = Object.fromEntries(
        PASS_NAMES.map((n) => [n, backends.pass[n].conns.filter((c) => !isBarrier(c)).length]),
      );
      assert.deepEqual(got, backends.expected, side);
    }
    assert.deepEqual([...allowedSeen].sort(), Object.keys(ALLOWED).sort());
  });
});

const BARRIER = 'BARRIER';
const isBarrier = (c: Recorded) => bytesOf(c).toString('latin1') === BARRIER;

/**
 * One connection to every recording backend, answered: each was opened after every probe's bytes were in
 * the kernel, so once all are answered (and the event loop turned) every earlier connection was seen.
 */
async function barrier(s: Sides): Promise<void> {
  const recorders = [...Object.values(s.ngxBackends.pass), ...Object.values(s.kipBackends.pass)];
  await Promise.all(
    recorders.map(async (r) => {
      const conn = await openRaw({ host: '127.0.0.1', port: r.port });
      conn.socket.end(BARRIER);
      await conn.whenClosed();
      assert.equal(conn.received().toString('latin1'), `got:${BARRIER.length}`);
    }),
  );
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

interface RealFlow {
  what: string;
  servername: string | undefined;
  host: string;
  /** The body the client must get (`src`: its own address). */
  answer: (src: string) => string;
  /** The passthrough backend that terminates it. */
  pass?: PassName;
  /** The passthrough host's backend reached over https:// by a request fronted by the terminating side. */
  fronted?: PassName;
}

function realFlows(): RealFlow[] {
  const { p1, p2 } = PASS_HOSTS;
  const term = (src: string) => `backend:term host:${TERM_HOST} xff:${src} xri:${src}`;
  return [
    { what: 'SNI term, Host term', servername: TERM_HOST, host: TERM_HOST, answer: term },
    { what: 'no SNI, Host term', servername: undefined, host: TERM_HOST, answer: term },
    {
      what: 'SNI p1, Host term: p1 terminates it',
      servername: p1,
      host: TERM_HOST,
      answer: () => `backend:p1 host:${TERM_HOST} peer:127.0.0.1`,
      pass: 'p1',
    },
    {
      what: 'SNI p2 re-cased, Host p2',
      servername: 'P2.Example.COM',
      host: p2,
      answer: () => `backend:p2 host:${p2} peer:127.0.0.1`,
      pass: 'p2',
    },
    {
      what: "SNI term, Host p1: fronted to p1's backend in TLS",
      servername: TERM_HOST,
      host: p1,
      answer: () => `backend:p1 host:${p1} peer:127.0.0.1`,
      fronted: 'p1',
    },
  ];
}

/** The passthrough lines of both sides for `src` name the backend and carry the client's own counts. */
async function checkPassthroughLogs(
  s: Sides,
  sides: [Side, Side],
  src: string,
  flow: RealFlow,
  got: FlowResult[],
) {
  const name = flow.pass!;
  const [ngxGot, kipGot] = got as [FlowResult, FlowResult];
  const ngx = await sides[0].route(src, Buffer.alloc(0), false);
  assert.deepEqual(
    [ngx.route, ngx.logged?.sent, ngx.note],
    [name, ngxGot.received, `status 200 "${flow.servername}"`],
  );
  const { access, line } = await keepipLine(s.kip, src);
  assert.ok(access, line);
  const upstream = `127.0.0.1:${s.kipBackends.pass[name].port}`;
  const m = PASSTHROUGH_LINE.exec(line);
  assert.deepEqual(
    m?.slice(1),
    [src, '200', `${kipGot.received}`, `${kipGot.sent}`, PASS_HOSTS[name], upstream, name],
    line,
  );
}

async function realClients(s: Sides, sides: [Side, Side]): Promise<void> {
  for (const [i, flow] of realFlows().entries()) {
    const src = sourceOf(7, i + 1);
    const got = await Promise.all(sides.map((side) => tlsFlow(side.port, src, flow.servername, flow.host)));
    assert.deepEqual(
      got.map((g) => g.answer),
      [flow.answer(src), flow.answer(src)],
      flow.what,
    );
    const reached = flow.pass ?? flow.fronted;
    if (reached === undefined) continue;
    for (const backends of [s.ngxBackends, s.kipBackends]) {
      backends.expected[reached] += 1;
      const conns: Recorded[] = backends.pass[reached].conns;
      // The backend spoke TLS: the first byte it got is a handshake record, never cleartext.
      assert.equal(conns.at(-1)?.mode, 'tls', flow.what);
    }
    if (flow.pass !== undefined) await checkPassthroughLogs(s, sides, src, flow, got);
  }
}

interface Stalled {
  elapsed: number;
  reply: string;
}

/** Connects from `src`, writes `bytes` (if any) and nothing more: how long until the other side closed, and what it sent. */
async function stall(port: number, src: string, bytes: Buffer): Promise<Stalled> {
  const started = Date.now();
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: src });
  if (bytes.length > 0) conn.socket.write(bytes);
  await conn.whenClosed(10_000);
  return { elapsed: Date.now() - started, reply: classify(conn.received()) };
}

async function stalledHellos(s: Sides): Promise<void> {
  const gw = s.kipStall;
  const metric = 'keepip_gateway_connections_closed_total';
  const before = await counterValue(gw.gateway, metric, { reason: 'header_timeout' });
  // A hello cut after the record that holds its server_name: nginx has read the name when it stops.
  const cut = recordsOf(helloMessage('N02', [serverName([0, PASS_HOSTS.p1])]), [100]).subarray(0, 105);
  const ngxPort = s.nginx.ports[1]!;
  const [silent, partial, handshake, ngxSilent, ngxPartial] = await Promise.all([
    stall(gw.httpsPort, sourceOf(9, 1), Buffer.alloc(0)),
    stall(gw.httpsPort, sourceOf(9, 2), cut),
    stall(gw.httpsPort, sourceOf(9, 3), helloFor('N03', TERM_HOST)),
    stall(ngxPort, sourceOf(9, 1), Buffer.alloc(0)),
    stall(ngxPort, sourceOf(9, 2), cut),
  ]);
  // Closed by the deadline (1 s), not before it: a lower bound holds whatever the machine's load.
  for (const [what, r] of Object.entries({ silent, partial, handshake, ngxSilent, ngxPartial })) {
    assert.ok(r.elapsed >= 800, `${what} closed after ${r.elapsed} ms`);
  }
  // keepip: nothing, nothing, and its TLS flight before the handshake was given up; nginx the same.
  const replies = [silent, partial, handshake, ngxSilent, ngxPartial].map((r) => r.reply);
  assert.deepEqual(replies, ['closed', 'closed', 'tls', 'closed', 'closed']);
  assert.equal((await counterValue(gw.gateway, metric, { reason: 'header_timeout' })) - before, 3);
  // nginx ends the preread phase at its timeout without proxying (status 200, no upstream), as keepip
  // dials nothing: p1's backends are counted by the last test.
  const ngxSide = nginxSide(s.nginx, s.ngxBackends, ngxPort);
  for (const index of [1, 2]) {
    const info = await ngxSide.route(sourceOf(9, index), Buffer.alloc(0), false);
    assert.equal(info.route, 'none', info.note);
  }
}
