// Response compression (src/gateway/compression.ts, src/k8s/compression-settings.ts) against nginx 1.22
// rendered as ingress-nginx renders the ConfigMap keys (rootfs/etc/nginx/template/nginx.tmpl, use-gzip:
// `gzip on; gzip_comp_level N; gzip_disable "<value>"; gzip_http_version 1.1; gzip_min_length N;
// gzip_types <list>; gzip_proxied any; gzip_vary on;`, `default_type text/html`, and a location that
// proxies with `proxy_http_version 1.1`, `proxy_buffering off`, a keepalive upstream). ONE backend
// (node:http on 127.0.0.1, port 0) answers what each request's query asks for: status, Content-Type
// (parameters and case), length below/at/above the minimum, Content-Length or chunked or dripped in
// small pieces, Content-Encoding already set, ETag strong/weak/unquoted, Cache-Control: no-transform,
// Vary already present, Content-Range. ONE nginx carries two ConfigMaps as two servers (each with the
// whole block ingress-nginx renders, nothing inherited): A = `use-gzip: "true"`, `gzip-disable: msie6`
// (ingress-nginx's defaults otherwise: level 1, 256 bytes, its gzip-types list), with an `http2` (h2c)
// listener too; B = level 9, min-length 1000, gzip-types `*`, gzip-disable `msie6 Wget/`. keepip runs
// three in-process gateways: A and B with the same ConfigMaps and Ingress, and C = A + `enable-brotli`
// (Debian's nginx has no brotli module, so C is checked against a model of ngx_brotli and against
// nginx A for clients that do not take br).
//
// Claims checked (docs/gateway.md, Compression): "The backend's response is compressed on its way to
// the client on nginx's terms: statuses 200, 403 and 404; a type the list names (`text/html` always,
// `*` any); a Content-Length, when the backend sends one, of at least the minimum; not already encoded;
// not HEAD; Accept-Encoding taking the coding with q above 0 (nginx's parser); gzip only for HTTP/1.1
// and HTTP/2 requests (ingress-nginx's `gzip_http_version 1.1`) and not for a User-Agent `gzip-disable`
// matches. Brotli comes first when the client takes `br` and brotli's own type and length rules take
// the response (the brotli module runs before gzip). As nginx: `Vary: Accept-Encoding` on every
// response of a compressible type and length (`gzip_vary on`), compressed or not; Content-Length and
// Accept-Ranges dropped and a strong ETag made weak when compressing". docs/ingress-nginx-compat.md,
// use-gzip: "whose Accept-Encoding takes gzip (no parameter, or a first parameter q= above 0) ... a HEAD
// answered with the head a GET gets, 204/304 untouched"; gzip-disable: "space-separated regular
// expressions matched case-insensitively against the User-Agent (`msie6`: MSIE 4-6), as nginx's
// gzip_disable"; enable-brotli: "brotli (Node's zlib) on the same terms as gzip, chosen over gzip when
// the client takes `br`".
//
// Per request, compared with nginx: status, Content-Encoding (every line), Vary (tokens, every line,
// merged with the backend's), Content-Length present or not, ETag, Accept-Ranges. Checked on keepip's
// answer alone, always: the body decodes (zlib; and `gzip -dc` / `curl --compressed` in their own test)
// to the backend's bytes; a coding keepip adds is one the client listed with q above 0; an answer keepip
// compresses carries Vary: Accept-Encoding. A difference that corrupts a body, sends a coding the
// client did not take, loses Vary, or compresses where nginx does not in a way a client notices
// (length gone, ETag weakened) is a FINDING, asserted as nginx's behaviour (it fails until fixed); a
// documented or harmless one is in ALLOWED with its reason, and the ALLOWED test checks each is still
// what is seen. Found by this file and fixed: a Content-Type parameter other than `charset=` (or a space
// before `;`): nginx looks the whole value up in gzip-types and does not compress, keepip dropped every
// parameter and compressed (Content-Length gone, strong ETag weakened, Vary added); and an answer
// without Content-Type under `gzip-types *`, which nginx compresses and keepip did not.
// Cost: one nginx, three in-process gateways, one backend, about 300 requests, one `gzip`, eight `curl`.
// COMPRESSION_DIFF_SEED changes the bodies' words and the drip's piece sizes;
// COMPRESSION_DIFF_DUMP=1 prints every probe's difference.
import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { decodeChunked, rawExchange } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

const SEED = Number(process.env.COMPRESSION_DIFF_SEED ?? 1_122_334);
const DUMP = process.env.COMPRESSION_DIFF_DUMP === '1';
const HOST = 'zip.test';
const CONCURRENCY = 6;

/** ingress-nginx's gzip-types default (internal/ingress/controller/config/config.go), copied: not keepip's. */
const INGRESS_NGINX_GZIP_TYPES =
  'application/atom+xml application/javascript application/x-javascript application/json application/rss+xml application/vnd.ms-fontobject application/x-font-ttf application/x-web-app-manifest+json application/xhtml+xml application/xml font/opentype image/svg+xml image/x-icon text/css text/javascript text/plain text/x-component';

// ---------------------------------------------------------------------------------------------
// Bodies: ASCII words from a seeded generator (compressible as text is, and decodable by any tool).

const WORDS =
  'client address gateway keeps proxy header nginx ingress backend body gzip vary tag length'.split(' ');
const bodies = new Map<number, Buffer>();

/** `n` bytes of seeded words and line breaks (the same bytes for the same n in one run). */
function text(n: number): Buffer {
  const cached = bodies.get(n);
  if (cached !== undefined) return cached;
  const random = seededRandom(SEED + n * 7919);
  const parts: string[] = [];
  let size = 0;
  while (size < n) {
    const word = `${WORDS[Math.floor(random() * WORDS.length)]}${random() < 0.1 ? '\n' : ' '}`;
    parts.push(word);
    size += word.length;
  }
  const out = Buffer.from(parts.join('').slice(0, n), 'latin1');
  bodies.set(n, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The backend: what it answers is in the query. s status, t Content-Type (absent: none), n length,
// f cl|ch|drip (Content-Length, chunked in two writes, chunked in seeded pieces of 1-4096 bytes),
// ce Content-Encoding (gzip/GZIP: the body gzipped), e ETag, cc Cache-Control, ar Accept-Ranges,
// cr Content-Range, v Vary (repeatable: one line each).

interface Spec {
  status: number;
  n: number;
  ce: string | null;
}

function specOf(path: string): Spec {
  const q = new URL(path, 'http://b').searchParams;
  return { status: Number(q.get('s') ?? 200), n: Number(q.get('n') ?? 3000), ce: q.get('ce') };
}

/** The bytes the backend sends for `spec` (before any proxy touches them). */
function backendBytes(spec: Spec): Buffer {
  return spec.ce?.toLowerCase() === 'gzip' ? zlib.gzipSync(text(spec.n)) : text(spec.n);
}

const FIELDS: readonly [string, string][] = [
  ['t', 'content-type'],
  ['ce', 'content-encoding'],
  ['e', 'etag'],
  ['cc', 'cache-control'],
  ['ar', 'accept-ranges'],
  ['cr', 'content-range'],
];

function drip(res: ServerResponse, body: Buffer, n: number): void {
  const random = seededRandom(SEED ^ n);
  let at = 0;
  const next = (): void => {
    if (res.destroyed) return;
    if (at >= body.length) return void res.end();
    const piece = body.subarray(at, at + 1 + Math.floor(random() * 4096));
    at += piece.length;
    if (res.write(piece)) setImmediate(next);
    else res.once('drain', next);
  };
  next();
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  const q = new URL(req.url ?? '/', 'http://b').searchParams;
  const spec = specOf(req.url ?? '/');
  const body = backendBytes(spec);
  const head: string[] = [];
  for (const [key, name] of FIELDS) {
    const value = q.get(key);
    if (value !== null) head.push(name, value);
  }
  for (const v of q.getAll('v')) head.push('vary', v);
  const framing = q.get('f') ?? 'cl';
  if (framing === 'cl') head.push('content-length', String(body.length));
  res.writeHead(spec.status, head);
  if (framing === 'drip') drip(res, body, spec.n);
  else if (framing === 'cl') res.end(body);
  else res.write(body.subarray(0, body.length >> 1), () => res.end(body.subarray(body.length >> 1)));
}

// ---------------------------------------------------------------------------------------------
// The two proxies.

type Profile = 'A' | 'B' | 'C';

const CONFIGMAPS: Record<Profile, Record<string, string>> = {
  A: { 'use-gzip': 'true', 'gzip-disable': 'msie6' },
  B: {
    'use-gzip': 'true',
    'gzip-level': '9',
    'gzip-min-length': '1000',
    'gzip-types': '*',
    'gzip-disable': 'msie6 Wget/',
  },
  C: { 'use-gzip': 'true', 'gzip-disable': 'msie6', 'enable-brotli': 'true' },
};

/** The lines nginx.tmpl renders for use-gzip with these values (gzip-disable quoted, as one argument). */
function gzipLines(level: number, disable: string, minLength: number, types: string): string {
  return [
    'gzip on;',
    `gzip_comp_level ${level};`,
    `gzip_disable "${disable}";`,
    'gzip_http_version 1.1;',
    `gzip_min_length ${minLength};`,
    `gzip_types ${types};`,
    'gzip_proxied any;',
    'gzip_vary on;',
  ].join(' ');
}

/** ingress-nginx's location for an Ingress path to a Service (the ConfigMap's proxy defaults). */
const LOCATION = `location / {
      set $best_http_host $http_host;
      proxy_set_header Host $best_http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_connect_timeout 5s; proxy_send_timeout 60s; proxy_read_timeout 60s;
      proxy_buffering off; proxy_buffer_size 4k; proxy_buffers 4 4k; proxy_request_buffering on;
      proxy_http_version 1.1;
      proxy_pass http://upstream_balancer;
    }`;

function nginxHttp(backend: number, [a, a2, b]: number[]): string {
  return `
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream upstream_balancer { server 127.0.0.1:${backend}; keepalive 320; keepalive_requests 10000; }
  default_type text/html;
  server {
    listen 127.0.0.1:${a} default_server; listen 127.0.0.1:${a2} http2 default_server; server_name _;
    ${gzipLines(1, 'msie6', 256, INGRESS_NGINX_GZIP_TYPES)}
    ${LOCATION}
  }
  server {
    listen 127.0.0.1:${b} default_server; server_name _;
    ${gzipLines(9, 'msie6 Wget/', 1000, '*')}
    ${LOCATION}
  }`;
}

function keepipTopology(profile: Profile, backend: number) {
  return topologyOf([
    controllerConfigMap(CONFIGMAPS[profile]),
    ...serviceWithEndpoints({ name: 'app', ports: [backend] }),
    ingress({ name: 'app', host: HOST, paths: [{ path: '/', service: 'app', port: 80 }] }),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Clients: raw HTTP/1.x (every field line as sent) and node:http2 over h2c with prior knowledge.

interface Answer {
  status: number;
  /** Field lines in order, names lower-cased. */
  fields: [string, string][];
  /** The body after its framing is removed (empty for HEAD, 204 and 304). */
  body: Buffer;
}

function valuesOf(a: Answer, name: string): string[] {
  return a.fields.filter(([n]) => n === name).map(([, v]) => v);
}

async function askH1(port: number, p: Probe): Promise<Answer> {
  const method = p.method ?? 'GET';
  const version = p.version ?? '1.1';
  const close = version === '1.1' ? 'Connection: close\r\n' : '';
  const lines = p.lines.map((line) => `${line}\r\n`).join('');
  const payload = `${method} ${p.path} HTTP/${version}\r\nHost: ${HOST}\r\n${lines}${close}\r\n`;
  const reply = await rawExchange({ host: '127.0.0.1', port, payload });
  assert.ok(reply.closedByServer, `no close after ${id(p)}`);
  const raw = reply.received;
  const end = raw.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no head for ${id(p)}: ${raw.toString('latin1')}`);
  const [statusLine = '', ...rest] = raw.toString('latin1', 0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3}) /.exec(statusLine)?.[1] ?? 0);
  const fields = rest.map((line): [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  });
  let body = raw.subarray(end + 4);
  const bodiless = method === 'HEAD' || status === 204 || status === 304;
  const chunked = fields.some(([n, v]) => n === 'transfer-encoding' && /chunked/i.test(v));
  const length = fields.find(([n]) => n === 'content-length')?.[1];
  if (bodiless) body = Buffer.alloc(0);
  else if (chunked) body = decodeChunked(body).data;
  else if (length !== undefined) body = body.subarray(0, Number(length));
  return { status, fields, body };
}

/** One h2c session per test and port; `askH2` sends each probe as a stream on it. */
async function h2Session(port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return session;
}

function askH2(session: http2.ClientHttp2Session, p: Probe): Promise<Answer> {
  const headers: http2.OutgoingHttpHeaders = {
    ':method': p.method ?? 'GET',
    ':path': p.path,
    ':authority': HOST,
  };
  for (const line of p.lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = headers[name];
    // A name given twice goes as two fields (node:http2 sends an array's items one field each).
    headers[name] = had === undefined ? value : [...[had].flat().map(String), value];
  }
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: true });
    const chunks: Buffer[] = [];
    let status = 0;
    const fields: [string, string][] = [];
    stream.on('response', (head, _flags, rawHeaders) => {
      status = Number(head[':status']);
      for (let i = 0; i + 1 < rawHeaders.length; i += 2)
        if (!rawHeaders[i]!.startsWith(':')) fields.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, fields, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// Probes, views and judgements.

interface Probe {
  profile: Profile;
  path: string;
  /** Whole request field lines (`Accept-Encoding: gzip`). */
  lines: string[];
  method?: 'GET' | 'HEAD';
  version?: '1.1' | '1.0';
  h2?: boolean;
}

function id(p: Probe): string {
  const proto = p.h2 ? 'h2c' : `HTTP/${p.version ?? '1.1'}`;
  return `${p.profile} ${p.method ?? 'GET'} ${p.path} ${proto} ${JSON.stringify(p.lines)}`;
}

const ae = (value: string) => [`Accept-Encoding: ${value}`];
const GZ = ae('gzip');
const probe = (profile: Profile, path: string, lines = GZ, extra: Partial<Probe> = {}): Probe => ({
  profile,
  path,
  lines,
  ...extra,
});

type View = Record<
  'status' | 'content-encoding' | 'vary' | 'content-length' | 'etag' | 'accept-ranges',
  string
>;

/** What compression decides, one comparable value per part of the head. */
function view(a: Answer): View {
  const vary = valuesOf(a, 'vary')
    .flatMap((v) => v.split(','))
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '')
    .sort();
  return {
    status: String(a.status),
    'content-encoding': valuesOf(a, 'content-encoding').join(' | ') || '-',
    vary: vary.join(',') || '-',
    'content-length': valuesOf(a, 'content-length').length > 0 ? 'present' : 'absent',
    etag: valuesOf(a, 'etag').join(' | ') || '-',
    'accept-ranges': valuesOf(a, 'accept-ranges').join(' | ') || '-',
  };
}

function diffOf(ngx: Answer, kip: Answer): string[] {
  const n = view(ngx);
  const k = view(kip);
  return (Object.keys(n) as (keyof View)[])
    .filter((key) => n[key] !== k[key])
    .map((key) => `${key}: nginx ${n[key]} keepip ${k[key]}`);
}

/** Whether the client's Accept-Encoding lines (RFC 9110 12.5.3, lines combined) list `coding` with q above 0. */
function clientTakes(lines: readonly string[], coding: string): boolean {
  const values = lines.filter((l) => /^accept-encoding:/i.test(l)).map((l) => l.slice(l.indexOf(':') + 1));
  for (const item of values.join(',').split(',')) {
    const [name = '', ...params] = item.split(';').map((part) => part.trim());
    if (name.toLowerCase() !== coding) continue;
    const q = params.find((param) => /^q=/i.test(param));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

/** The codings the proxy added on top of the backend's own Content-Encoding (none: []). */
function added(p: Probe, a: Answer): string[] {
  const tokens = (values: string[]) =>
    values
      .flatMap((v) => v.split(','))
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== '');
  const backend = tokens([specOf(p.path).ce ?? '']);
  const sent = tokens(valuesOf(a, 'content-encoding'));
  assert.deepEqual(sent.slice(0, backend.length), backend, `${id(p)}: the backend's coding was changed`);
  return sent.slice(backend.length);
}

/** What is wrong with one proxy's answer on its own: a body that does not decode to the backend's, a coding not taken, no Vary. */
function problemsOf(p: Probe, a: Answer): string[] {
  const spec = specOf(p.path);
  const bodiless = p.method === 'HEAD' || spec.status === 204 || spec.status === 304;
  const expected = bodiless ? Buffer.alloc(0) : backendBytes(spec);
  const codings = added(p, a);
  const out: string[] = [];
  if (codings.length > 1) out.push(`coded twice: ${codings.join(', ')}`);
  const coding = codings[0];
  if (coding !== undefined && !clientTakes(p.lines, coding))
    out.push(`${coding} sent to a client that did not take it`);
  if (coding !== undefined && !view(a).vary.split(',').includes('accept-encoding'))
    out.push(`${coding} without Vary: Accept-Encoding`);
  let body = a.body;
  try {
    if (coding === 'gzip' && body.length > 0) body = zlib.gunzipSync(body);
    if (coding === 'br' && body.length > 0) body = zlib.brotliDecompressSync(body);
  } catch (error) {
    return [...out, `body does not decode as ${coding}: ${(error as Error).message}`];
  }
  if (!body.equals(expected)) out.push(`body: ${body.length} bytes, not the backend's ${expected.length}`);
  return out;
}

interface Allowed {
  name: string;
  reason: string;
  cases: Probe[];
  /** The difference seen on each case, exactly (diffOf's lines). */
  diff: string[];
}

interface Outcome {
  probe: Probe;
  diff: string[];
  /** keepip's own problems, then nginx's (a broken bench). */
  problems: string[];
}

interface Bench {
  nginx: RunningNginx;
  gateways: Record<Profile, TestGateway>;
  /** nginx's ports: A (HTTP/1.x), A's h2c, B. */
  ngx: { A: number; A2: number; B: number };
}

// ---------------------------------------------------------------------------------------------
// The cases.

const TEXT = '/?t=text/plain';

/** Accept-Encoding forms on a compressible answer (3000 bytes of text/plain with its length). */
const AE_FORMS = [
  'gzip',
  'GZIP',
  'gzip;q=0',
  'gzip; q=0.000',
  'gzip;q=0.001',
  'gzip;q=1.001',
  'identity',
  '*',
  'br',
  'br, gzip',
  'x-gzip',
  'deflate',
  'deflate, gzip',
  'gzip,deflate',
  'gzip, gzip;q=0',
  'gzip;q=0, gzip',
  'xgzip, gzip',
];

const AE_PROBES: Probe[] = [
  ...AE_FORMS.map((form) => probe('A', TEXT, ae(form))),
  probe('A', TEXT, []),
  probe('A', TEXT, ['Accept-Encoding: gzip', 'Accept-Encoding: identity']),
  probe('A', TEXT, ['Accept-Encoding: gzip;q=0', 'Accept-Encoding: gzip']),
];

/** Accept-Encoding forms where keepip reads a gzip nginx's parser does not (ALLOWED). */
const AE_WIDER: Probe[] = [
  probe('A', TEXT, ae('gzip2, gzip')),
  probe('A', TEXT, ae('gzip;q=1;x=y')),
  probe('A', TEXT, ae('gzip;q=0.5;level=1')),
  probe('A', TEXT, ['Accept-Encoding: identity', 'Accept-Encoding: gzip']),
  probe('A', TEXT, ['Accept-Encoding: deflate', 'Accept-Encoding: gzip']),
];

const enc = encodeURIComponent;

/** Content types the default gzip-types list takes or not (nginx lower-cases; `charset=` is set aside). */
const TYPES = [
  'text/plain',
  'TEXT/PLAIN',
  'Text/Html',
  'text/plain; charset=utf-8',
  'text/plain;charset=UTF-8',
  'text/plain; charset="utf-8"',
  'application/json',
  'application/javascript',
  'text/css',
  'image/svg+xml',
  'application/vnd.ms-fontobject',
  'text/xml',
  'application/xml+rss',
  'image/png',
  'font/woff2',
];

/** Content types whose parameter is not `charset=` (or a space before `;`): nginx does not set it aside. */
const PARAM_TYPES = [
  'text/plain; format=flowed',
  'text/html; foo=bar',
  'text/plain ; charset=utf-8',
  'text/plain;',
  'application/json; odata=verbose',
];

const MATRIX: Probe[] = [
  ...TYPES.map((t) => probe('A', `/?t=${enc(t)}`)),
  probe('A', '/?n=3000'),
  ...[255, 256, 257].flatMap((n) => [probe('A', `${TEXT}&n=${n}`), probe('A', `${TEXT}&n=${n}&f=ch`)]),
  probe('A', `${TEXT}&n=0`),
  probe('A', `${TEXT}&n=0&f=ch`),
  probe('A', `${TEXT}&n=120000&f=drip`),
  ...[200, 201, 206, 304, 403, 404, 410, 500].map((s) => probe('A', `/?t=text/html&s=${s}`)),
  probe('A', `${TEXT}&s=206&cr=${enc('bytes 0-2999/9000')}`, [...GZ, 'Range: bytes=0-2999']),
  probe('A', `${TEXT}&ar=bytes`, [...GZ, 'Range: bytes=0-9']),
  probe('A', `${TEXT}&ar=bytes&e=${enc('"v1"')}`, [...GZ, `If-Range: "v1"`, 'Range: bytes=0-9']),
  ...['gzip', 'GZIP', 'identity', 'br'].map((ce) => probe('A', `${TEXT}&ce=${ce}`)),
  probe('A', `${TEXT}&ce=gzip`, ae('identity')),
  ...['"v1"', 'W/"v1"', 'v1', 'w/"v1"'].map((e) => probe('A', `${TEXT}&e=${enc(e)}`)),
  probe('A', `${TEXT}&e=${enc('"v1"')}`, ae('identity')),
  probe('A', `${TEXT}&e=${enc('"v1"')}&s=304`, [...GZ, 'If-None-Match: "v1"']),
  probe('A', `${TEXT}&cc=no-transform`),
  probe('A', TEXT, [...GZ, 'Cache-Control: no-transform']),
  ...[['Origin'], ['Accept-Encoding'], ['accept-encoding, Cookie'], ['*'], ['Origin', 'Cookie']].map((v) =>
    probe('A', `${TEXT}&${v.map((x) => `v=${enc(x)}`).join('&')}`),
  ),
  probe('A', `${TEXT}&v=Origin`, ae('identity')),
  probe('A', `${TEXT}&v=Origin&n=100`),
  probe('A', TEXT, GZ, { method: 'HEAD' }),
  probe('A', `${TEXT}&n=100`, GZ, { method: 'HEAD' }),
  probe('A', `${TEXT}&f=ch`, GZ, { method: 'HEAD' }),
  probe('A', TEXT, [...GZ, 'Via: 1.1 cache.example']),
];

/** 204 with a body length the backend declares: nginx relays the Content-Length, keepip drops it (ALLOWED). */
const NO_CONTENT = [probe('A', '/?t=text/html&s=204'), probe('A', '/?t=text/html&s=204', ae('identity'))];
/** An empty Content-Encoding from the backend (not an encoding: both compress). */
const EMPTY_CE = [probe('A', `${TEXT}&ce=`), probe('B', `${TEXT}&ce=`)];

const UA = {
  msie6: 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)',
  msie6sv1: 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)',
  msie55: 'Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)',
  msie7: 'Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)',
  opera: 'Opera/9.0 (Windows NT 5.1; U; en) (compatible; MSIE 6.0)',
  lower: 'mozilla/4.0 (compatible; msie 6.0; windows nt 5.1)',
  end: 'Mozilla/4.0 (compatible; MSIE 6.',
  wget: 'Wget/1.21.3',
  curl: 'curl/8.0.1',
};
const withUa = (profile: Profile, ua: string) => probe(profile, TEXT, [...GZ, `User-Agent: ${ua}`]);

/** User-Agents on which both agree, under A (`msie6`) and B (`msie6 Wget/`). */
const UA_SAME: Probe[] = [
  withUa('A', UA.msie6),
  withUa('A', UA.msie55),
  withUa('A', UA.msie7),
  withUa('A', UA.wget),
  withUa('A', UA.curl),
  probe('A', TEXT, [...GZ, `User-Agent: ${UA.msie6}`, `User-Agent: ${UA.curl}`]),
  probe('A', TEXT, [...GZ, `User-Agent: ${UA.curl}`, `User-Agent: ${UA.msie6}`]),
  withUa('B', UA.msie7),
  withUa('B', UA.curl),
];
/** Where keepip's `msie6` disables more than nginx's (the SV1 rule, Opera, case, the end of the field). */
const UA_MSIE6_WIDER = [UA.msie6sv1, UA.opera, UA.lower, UA.end].map((ua) => withUa('A', ua));
/** Where ingress-nginx's quoted `gzip_disable "msie6 Wget/"` is one regular expression, keepip's two. */
const UA_SPLIT = [UA.msie6, UA.msie55, UA.wget].map((ua) => withUa('B', ua));

/** Profile B (level 9, 1000 bytes, types `*`) on lengths, framing and types. */
const TUNED: Probe[] = [
  ...[999, 1000, 3000].flatMap((n) => [probe('B', `${TEXT}&n=${n}`), probe('B', `${TEXT}&n=${n}&f=ch`)]),
  probe('B', `${TEXT}&n=0&f=ch`),
  probe('B', `/?t=image/png`),
  probe('B', `/?t=${enc('foo/bar; x=y')}`),
  probe('B', `/?t=${enc('text/plain; format=flowed')}`),
  probe('B', `${TEXT}&n=150000&f=drip`),
  probe('B', `${TEXT}&e=${enc('"v9"')}&ar=bytes`),
  probe('B', TEXT, ae('gzip;q=0')),
  probe('B', TEXT, GZ, { method: 'HEAD' }),
];
/** No Content-Type at all: `gzip_types *` takes it (nginx's ngx_http_test_content_type matches `*` first). */
const UNTYPED = [probe('B', '/?n=3000'), probe('B', '/?n=1000')];

/** HTTP/1.0 (gzip_http_version 1.1) and HTTP/2 (nginx's `http2` h2c listener). */
const PROTOCOLS: Probe[] = [
  probe('A', TEXT, GZ, { version: '1.0' }),
  probe('A', `${TEXT}&f=ch`, GZ, { version: '1.0' }),
  probe('A', TEXT, GZ, { version: '1.0', method: 'HEAD' }),
  ...[
    probe('A', TEXT),
    probe('A', TEXT, ae('GZIP')),
    probe('A', TEXT, ae('gzip;q=0')),
    probe('A', TEXT, []),
    probe('A', `${TEXT}&f=drip&n=60000`),
    probe('A', `${TEXT}&n=100`),
    probe('A', `/?t=${enc('text/plain; charset=utf-8')}&v=Origin&e=${enc('"h2"')}&ar=bytes`),
    probe('A', '/?t=image/png'),
    probe('A', '/?t=text/html&s=404'),
    probe('A', '/?t=text/html&s=204'),
    probe('A', `${TEXT}&ce=gzip`),
    probe('A', TEXT, GZ, { method: 'HEAD' }),
    probe('A', TEXT, [...GZ, `User-Agent: ${UA.msie6}`]),
  ].map((p) => ({ ...p, h2: true })),
];
/** Two Accept-Encoding fields over HTTP/2: nginx 1.22 reads the first, keepip both (ALLOWED). */
const H2_TWO_FIELDS = [
  { ...probe('A', TEXT, ['Accept-Encoding: identity', 'Accept-Encoding: gzip']), h2: true },
];

// ---------------------------------------------------------------------------------------------
// Brotli (profile C, keepip only): what ngx_brotli's header filter does (google/ngx_brotli,
// ngx_http_brotli_header_filter: 200/403/404, not already encoded, brotli-min-length 20, brotli-types,
// then `br` in Accept-Encoding with q not 0; no HTTP-version or gzip_disable check; r->gzip_vary set
// once type and length fit), with keepip's stricter reading of parameters (`br;level=1` and `br;Q=0`
// decline br, where ngx_brotli's parser would take it: keepip compresses less).

type Coding = 'br' | 'gzip' | '-';

interface BrotliCase {
  p: Probe;
  coding: Coding;
  /** Whether Vary: Accept-Encoding is expected (some codec takes the type and length). */
  vary: boolean;
}

const brCase = (path: string, lines: string[], coding: Coding, extra: Partial<Probe> = {}, vary = true) => ({
  p: probe('C', path, lines, extra),
  coding,
  vary,
});

const BROTLI: BrotliCase[] = [
  ...(
    [
      ['br', 'br'],
      ['BR', 'br'],
      ['br;q=0.5', 'br'],
      ['br, gzip', 'br'],
      ['gzip, br', 'br'],
      ['gzip;q=0.5, br;q=0.1', 'br'],
      ['br;q=0', '-'],
      ['br;q=0.0', '-'],
      ['br; q=0.000', '-'],
      ['br;Q=0', '-'],
      ['br;level=1', '-'],
      ['brotli', '-'],
      ['xbr', '-'],
      ['xbr, gzip', 'gzip'],
      ['gzip, br;q=0', 'gzip'],
      ['br;q=0, gzip;q=0', '-'],
      ['*', '-'],
      ['identity', '-'],
      ['gzip', 'gzip'],
    ] as const
  ).map(([form, coding]) => brCase(TEXT, ae(form), coding)),
  brCase(TEXT, [], '-'),
  brCase(TEXT, ['Accept-Encoding: gzip', 'Accept-Encoding: br'], 'br'),
  // brotli-min-length 20 and gzip-min-length 256; brotli-types adds application/xml+rss.
  brCase(`${TEXT}&n=100`, ae('br'), 'br'),
  brCase(`${TEXT}&n=100`, ae('gzip'), '-'),
  brCase(`${TEXT}&n=10`, ae('br, gzip'), '-', {}, false),
  brCase(`${TEXT}&n=100&f=ch`, ae('br'), 'br'),
  brCase(`/?t=${enc('application/xml+rss')}`, ae('br'), 'br'),
  brCase(`/?t=${enc('application/xml+rss')}`, ae('gzip'), '-'),
  brCase('/?t=image/png', ae('br, gzip'), '-', {}, false),
  brCase(`${TEXT}&n=150000&f=drip`, ae('br'), 'br'),
  brCase('/?t=text/html&s=404', ae('br'), 'br'),
  brCase('/?t=text/html&s=206', ae('br'), '-', {}, false),
  brCase(`${TEXT}&ce=gzip`, ae('br, gzip'), '-', {}, false),
  brCase(`${TEXT}&e=${enc('"b1"')}&ar=bytes`, ae('br'), 'br'),
  brCase(TEXT, ae('br'), 'br', { method: 'HEAD' }),
  brCase(`${TEXT}&f=ch`, ae('br'), 'br', { version: '1.0' }),
  brCase(TEXT, [...ae('br, gzip'), `User-Agent: ${UA.msie6}`], 'br'),
  brCase(TEXT, [...ae('gzip'), `User-Agent: ${UA.msie6}`], '-'),
  brCase(TEXT, ae('br'), 'br', { h2: true }),
  brCase(TEXT, ae('gzip;q=1, br;q=0'), 'gzip', { h2: true }),
  brCase(`${TEXT}&f=drip&n=60000`, ae('gzip, br'), 'br', { h2: true }),
];

/** With enable-brotli on, a client that does not take br gets what nginx's gzip gives (nginx A). */
const BROTLI_OFF_PATH: Probe[] = [
  ...AE_PROBES.filter((p) => !/\bbr\b/i.test(p.lines.join(','))),
  probe('A', `${TEXT}&n=256`),
  probe('A', `${TEXT}&e=${enc('"v1"')}&ar=bytes`),
  probe('A', '/?t=text/html&s=404'),
  probe('A', `${TEXT}&f=drip&n=50000`),
  probe('A', TEXT, [...GZ, `User-Agent: ${UA.msie6}`]),
  probe('A', TEXT, GZ, { version: '1.0' }),
  probe('A', TEXT, GZ, { h2: true }),
].map((p) => ({ ...p, profile: 'C' as const }));

// ---------------------------------------------------------------------------------------------
// ALLOWED: differences that are documented or harmless, each checked to still be what is seen.

const KEEPIP_GZIPS = ['content-encoding: nginx - keepip gzip', 'content-length: nginx present keepip absent'];
const NGINX_GZIPS = ['content-encoding: nginx gzip keepip -', 'content-length: nginx absent keepip present'];

const ALLOWED: Allowed[] = [
  {
    name: 'Accept-Encoding read as a list',
    reason:
      'keepip takes a gzip listed anywhere with a first parameter q= above 0 (docs/ingress-nginx-compat.md use-gzip: "no parameter, or a first parameter q= above 0"), and two Accept-Encoding lines as one list (RFC 9110 5.3); nginx 1.22 reads the first line only, stops at the first "gzip" substring (gzip2) and declines a parameter after q=. The client did list gzip with q above 0, and Vary is on both',
    cases: [...AE_WIDER, ...H2_TWO_FIELDS],
    diff: KEEPIP_GZIPS,
  },
  {
    name: 'msie6 read as MSIE 4-6',
    reason:
      'docs/ingress-nginx-compat.md gzip-disable: "(`msie6`: MSIE 4-6)"; nginx also compresses for "MSIE 6.0; ... SV1", for Opera claiming MSIE, for a lower-case "msie" and for "MSIE 6." at the end of the field. keepip compresses less: the client gets the identity body it can always read, with Vary',
    cases: UA_MSIE6_WIDER,
    diff: NGINX_GZIPS,
  },
  {
    name: 'gzip-disable split on spaces',
    reason:
      'docs/ingress-nginx-compat.md gzip-disable: "space-separated regular expressions"; ingress-nginx writes the value quoted, one argument (gzip_disable "msie6 Wget/"), one regular expression that matches neither MSIE 6 nor Wget. keepip disables gzip for both words: it compresses less, never more',
    cases: UA_SPLIT,
    diff: NGINX_GZIPS,
  },
  {
    name: '204 Content-Length',
    reason:
      'not compression: keepip drops a Content-Length the backend put on a 204 (RFC 9110 8.6: a server MUST NOT send it there); nginx 1.22 relays it. Neither compresses nor adds Vary',
    cases: NO_CONTENT,
    diff: ['content-length: nginx present keepip absent'],
  },
  {
    name: 'empty Content-Encoding replaced',
    reason:
      'the backend sent "Content-Encoding:" with an empty value; both compress (nginx: an empty value is no encoding). nginx keeps the empty line beside its own "gzip" line, keepip sends one "gzip": the same list (RFC 9110 5.3), without an empty member',
    cases: EMPTY_CE,
    diff: ['content-encoding: nginx  | gzip keepip gzip'],
  },
];

function allowedFor(p: Probe): Allowed | undefined {
  const key = id(p);
  return ALLOWED.find((a) => a.cases.some((c) => id(c) === key));
}

// ---------------------------------------------------------------------------------------------

describe('response compression against nginx 1.22 as ingress-nginx renders use-gzip (and keepip brotli)', () => {
  let backend: Server | undefined;
  let bench: Bench | undefined;
  const sessions: http2.ClientHttp2Session[] = [];

  before(async () => {
    backend = http.createServer(answer);
    await new Promise<void>((resolve) => backend!.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as AddressInfo).port;
    const nginx = await startNginx({
      freePorts: 3,
      http: (_dir, ports) => nginxHttp(port, ports),
      waitFor: (ports) => ports.map((p) => ({ host: '127.0.0.1', port: p })),
    });
    const gateways: Partial<Record<Profile, TestGateway>> = {};
    bench = { nginx, gateways: gateways as Record<Profile, TestGateway>, ngx: { A: 0, A2: 0, B: 0 } };
    const [a = 0, a2 = 0, b = 0] = nginx.ports;
    bench.ngx = { A: a, A2: a2, B: b };
    for (const profile of ['A', 'B', 'C'] as const)
      gateways[profile] = await startTestGateway(keepipTopology(profile, port));
  });

  after(async () => {
    for (const session of sessions) session.destroy();
    for (const gw of Object.values(bench?.gateways ?? {})) await gw.close();
    await bench?.nginx.stop();
    backend?.closeAllConnections();
    await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
  });

  const h2Sessions = new Map<number, Promise<http2.ClientHttp2Session>>();
  /** The h2c session to `port`, opened once and again only if the server closed it (an idle timeout). */
  const sessionFor = (port: number): Promise<http2.ClientHttp2Session> => {
    const fresh = () => {
      const next = h2Session(port).then((s) => {
        sessions.push(s);
        return s;
      });
      h2Sessions.set(port, next);
      return next;
    };
    const known = h2Sessions.get(port);
    if (known === undefined) return fresh();
    return known.then((s) => {
      if (!s.closed && !s.destroyed) return s;
      const latest = h2Sessions.get(port)!;
      return latest === known ? fresh() : latest;
    });
  };

  /** keepip's answer to `p` (its profile's gateway). */
  const askKeepip = async (p: Probe): Promise<Answer> => {
    const port = bench!.gateways[p.profile].httpPort;
    return p.h2 ? askH2(await sessionFor(port), p) : askH1(port, p);
  };
  /** nginx's answer to `p` (profile C is compared with A: no brotli module here). */
  const askNginx = async (p: Probe): Promise<Answer> => {
    const ports = bench!.ngx;
    if (p.h2) return askH2(await sessionFor(ports.A2), p);
    return askH1(p.profile === 'B' ? ports.B : ports.A, p);
  };

  const compare = async (p: Probe): Promise<Outcome> => {
    const [ngx, kip] = await Promise.all([askNginx(p), askKeepip(p)]);
    const problems = [
      ...problemsOf(p, kip).map((x) => `keepip: ${x}`),
      ...problemsOf(p, ngx).map((x) => `nginx (bench): ${x}`),
    ];
    const outcome = { probe: p, diff: diffOf(ngx, kip), problems };
    if (DUMP && (outcome.diff.length > 0 || problems.length > 0))
      console.log(`${id(p)}\n  ${[...outcome.diff, ...problems].join('\n  ')}`);
    return outcome;
  };

  /** Every probe compared; the differences no ALLOWED entry covers exactly, and every problem. */
  const judge = async (probes: readonly Probe[]): Promise<string[]> => {
    const outcomes = await mapLimited(probes, CONCURRENCY, compare);
    const out: string[] = [];
    for (const { probe: p, diff, problems } of outcomes) {
      for (const problem of problems) out.push(`${id(p)}: ${problem}`);
      if (diff.length === 0) continue;
      const allowed = allowedFor(p);
      if (allowed === undefined || JSON.stringify(allowed.diff) !== JSON.stringify(diff))
        out.push(`${id(p)}\n    ${diff.join('\n    ')}`);
    }
    return out;
  };

  test('HTTP/1.1 Accept-Encoding forms (case, q=0 spellings, *, identity, br, x-gzip, deflate, two lines, none): compressed exactly when nginx compresses, ALLOWED aside', async () => {
    assert.deepEqual(await judge([...AE_PROBES, ...AE_WIDER]), []);
  });

  test('what is compressed by type, length, framing, status, existing encoding; the head (ETag, Vary, Accept-Ranges, Content-Length) for HEAD, Range, If-None-Match, no-transform, Via: as nginx', async () => {
    assert.deepEqual(await judge([...MATRIX, ...NO_CONTENT, ...EMPTY_CE]), []);
  });

  test('gzip-disable (msie6, and a two-word value) and a tuned ConfigMap (level 9, min-length 1000, gzip-types *): as nginx, ALLOWED aside', async () => {
    assert.deepEqual(await judge([...UA_SAME, ...UA_MSIE6_WIDER, ...UA_SPLIT, ...TUNED, ...UNTYPED]), []);
  });

  test('HTTP/1.0 (no gzip, Vary kept) and HTTP/2 over h2c (nginx `listen … http2`): as nginx', async () => {
    assert.deepEqual(await judge([...PROTOCOLS, ...H2_TWO_FIELDS]), []);
  });

  test('a Content-Type parameter other than charset= (or a space before `;`) keeps the answer out of gzip-types, as nginx reads the type (no gzip, no Vary, length and strong ETag kept)', async () => {
    const probes = PARAM_TYPES.flatMap((t) => [
      probe('A', `/?t=${enc(t)}&e=${enc('"p1"')}`),
      probe('A', `/?t=${enc(t)}`, GZ, { h2: true }),
    ]);
    assert.deepEqual(await judge(probes), []);
  });

  test("brotli (enable-brotli): br exactly when the client takes br and brotli takes the answer, else gzip on gzip's terms; Vary, no length, weak ETag; decodes", async () => {
    const wrong: string[] = [];
    await mapLimited(BROTLI, CONCURRENCY, async ({ p, coding, vary }) => {
      const a = await askKeepip(p);
      const v = view(a);
      const codings = added(p, a);
      const seen = codings.join(',') || '-';
      const problems = problemsOf(p, a);
      if (seen !== coding) problems.push(`coding ${seen}, expected ${coding}`);
      if (v.vary.split(',').includes('accept-encoding') !== vary) problems.push(`vary ${v.vary}`);
      if (coding !== '-' && v['content-length'] !== 'absent') problems.push('content-length kept');
      if (coding !== '-' && v.etag !== '-' && !v.etag.startsWith('W/')) problems.push(`etag ${v.etag}`);
      for (const problem of problems) wrong.push(`${id(p)}: ${problem}`);
    });
    assert.deepEqual(wrong.sort(), []);
  });

  test("brotli on, br not taken: the same answers as nginx's gzip", async () => {
    assert.deepEqual(await judge(BROTLI_OFF_PATH), []);
  });

  test('independent decoders: `gzip -dc` reads every gzip body keepip sent (levels 1 and 9, dripped, HTTP/2); curl --compressed reads gzip and br over HTTP/1.1, HTTP/1.0 and h2c', async () => {
    const gzipped: Probe[] = [
      probe('A', TEXT),
      probe('A', `/?t=${enc('text/plain; charset=utf-8')}&n=40000&f=ch`),
      probe('A', `${TEXT}&n=120000&f=drip`),
      probe('B', `${TEXT}&n=150000&f=drip`),
      probe('B', `${TEXT}&n=1000`),
      probe('A', `${TEXT}&n=60000&f=drip`, GZ, { h2: true }),
      probe('C', `${TEXT}&n=60000&f=drip`, GZ, { h2: true }),
    ];
    const answers = await mapLimited(gzipped, CONCURRENCY, askKeepip);
    for (const [i, a] of answers.entries())
      assert.deepEqual(added(gzipped[i]!, a), ['gzip'], id(gzipped[i]!));
    // Concatenated gzip members decode to the concatenated bodies (one process for all).
    const out = await runCommand(requireBinary('gzip'), ['-dc'], {
      input: Buffer.concat(answers.map((a) => a.body)),
    });
    assert.equal(out.code, 0, out.stderr);
    const expected = Buffer.concat(gzipped.map((p) => backendBytes(specOf(p.path))));
    assert.ok(
      out.stdout === expected.toString('latin1'),
      `gzip -dc: ${out.stdout.length} bytes, expected ${expected.length}`,
    );

    const curl = requireBinary('curl');
    const features = await runCommand(curl, ['-V']);
    assert.match(features.stdout, /\bbrotli\b/, 'this curl has no brotli decoder: br would go unchecked');
    const gws = bench!.gateways;
    const rows: [string, Profile, string[], string][] = [
      ['gzip', 'A', [], 'HTTP/1.1 200'],
      ['gzip', 'B', [], 'HTTP/1.1 200'],
      ['gzip', 'A', ['--http2-prior-knowledge'], 'HTTP/2 200'],
      ['br', 'C', [], 'HTTP/1.1 200'],
      ['br', 'C', ['--http2-prior-knowledge'], 'HTTP/2 200'],
      ['br', 'C', ['-0'], 'HTTP/1.1 200'],
      ['gzip', 'C', ['-H', 'Accept-Encoding: gzip, br;q=0'], 'HTTP/1.1 200'],
    ];
    const wrong: string[] = [];
    await mapLimited(rows, 4, async ([coding, profile, args, statusLine]) => {
      const n = 40_000;
      const url = `http://127.0.0.1:${gws[profile].httpPort}/?t=text/plain&f=drip&n=${n}`;
      const r = await runCommand(curl, [
        '-s',
        '-D',
        '-',
        '--compressed',
        '-H',
        `Host: ${HOST}`,
        ...args,
        url,
      ]);
      const split = r.stdout.indexOf('\r\n\r\n');
      const head = r.stdout.slice(0, split);
      const row = `${profile} ${coding} ${args.join(' ')}`;
      if (r.code !== 0) wrong.push(`${row}: curl ${r.code} ${r.stderr}`);
      if (!head.startsWith(statusLine)) wrong.push(`${row}: ${head.split('\r\n')[0]}`);
      if (!new RegExp(`\\r\\ncontent-encoding: ${coding}\\r\\n`, 'i').test(`${head}\r\n`))
        wrong.push(`${row}: not ${coding}: ${head}`);
      if (r.stdout.slice(split + 4) !== text(n).toString('latin1')) wrong.push(`${row}: body differs`);
    });
    assert.deepEqual(wrong.sort(), []);
  });

  test('every ALLOWED difference is still exactly what is seen', async () => {
    const stale: string[] = [];
    for (const entry of ALLOWED) {
      const outcomes = await mapLimited(entry.cases, CONCURRENCY, compare);
      for (const { probe: p, diff } of outcomes)
        if (JSON.stringify(diff) !== JSON.stringify(entry.diff))
          stale.push(`${entry.name}: ${id(p)}\n    seen: ${diff.join(' / ') || 'no difference'}`);
    }
    assert.deepEqual(stale, []);
  });
});
