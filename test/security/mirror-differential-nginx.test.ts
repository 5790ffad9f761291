// mirror-target / mirror-host / mirror-request-body: keepip against real nginx 1.22 configured the way
// ingress-nginx renders the annotations, both in front of one recording main backend and recording mirror
// backends (raw TCP: what a mirror gets, byte for byte, its framing included).
//
// The model of ingress-nginx (the mirror's HEAD): internal/ingress/annotations/mirror/main.go gives an
// Ingress the source `/_mirror-<uid>`, RequestBody "on" unless the value is exactly "off", Host =
// mirror-host, else the target's host name (url.Hostname() of the target before its first `$`);
// buildMirrorLocations (internal/ingress/controller/template/template.go) writes in the server
//     location = "/_mirror-<uid>" { internal; proxy_set_header Host "<host>"; proxy_pass "<target>"; }
// and the template (rootfs/etc/nginx/template/nginx.tmpl) writes `mirror "/_mirror-<uid>";
// mirror_request_body on|off;` in each location of the Ingress. Nothing else: the mirror location sets no
// X-Forwarded-For / X-Real-IP / X-Original-URI, so nginx's subrequest passes the client's own request
// headers (proxy_pass_request_headers on; the subrequest shares the main request's headers_in), with the
// proxy module's defaults (Host replaced, `Connection: close`, Keep-Alive / TE / Expect / Upgrade dropped,
// HTTP/1.0). nginx's mirror module runs in the precontent phase: a request the rewrite phase answers (a
// redirect, a CORS preflight), the access phase refuses (allow/deny, auth_basic) or find-config refuses
// (a declared Content-Length over client_max_body_size) is never mirrored; with mirror_request_body on the
// body is read whole first (a chunked body over the limit: 413, not mirrored); with it off the copy goes
// before the body is read. The main location is rendered with the directives that decide these answers
// (allow/deny, auth_basic, client_max_body_size, the CORS `if`s and `return 204` — their more_set_headers
// left out: this nginx has no headers-more module and the headers are not compared —, `return 308`).
//
// Observed nginx 1.22 facts the comparison relies on (each checked by a test below):
//   * the copy of a request with a body and mirror_request_body off still declares the client's
//     Content-Length, with no body (the mirror backend then waits for it);
//   * a mirror that never answers holds the client's connection: the answer is sent, but a Connection:
//     close socket is not closed and the next keep-alive request is not read until the mirror is done
//     (proxy_read_timeout, 60 s by default);
//   * `$uri` in the mirror location is the subrequest's, `/_mirror-<uid>`; `$request_uri` / `$args` /
//     `$host` are the main request's; an absolute-form target gives `$host` its host and `$request_uri`
//     its path.
//
// A failure (nginx's safe behaviour is asserted): keepip mirroring a request nginx refuses before
// its content phase; a copy whose Host is not the one nginx sets; a body in the copy with
// mirror-request-body off; hop-by-hop fields nginx drops (TE, Keep-Alive, Expect, Upgrade) in the copy;
// a copy framed ambiguously (two lengths, a length with chunked, a length that is not the body's); a
// client answer that a failing mirror changes; a client connection that a hanging mirror holds.
//
// ALLOWED (keepip stricter, or documented in docs/ingress-nginx-compat.md's mirror-* rows):
//   forwarded-by-gateway  X-Forwarded-For / X-Real-IP / X-Forwarded-Host / X-Scheme… of the copy are
//                         the ones the backend gets, never the client's forged ones (documented; nginx
//                         passes the client's own: stricter)
//   hop-by-hop-named      a field the client's Connection names is not copied (nginx copies it: stricter)
//   gateway-headers       the copy carries headers the backend gets that the client did not send
//                         (X-Forwarded-*, X-Scheme…; documented: "the headers the backend gets")
//   no-path-target        a target without a path: the copy's path is the request's URI where nginx sends
//                         `/_mirror-<uid>` (documented)
//   off-length            mirror-request-body off: the copy declares no body where nginx declares the
//                         client's Content-Length without sending it (documented; nginx's copy then hangs)
//   not-held              a slow or hanging mirror never holds the client's connection (documented:
//                         "the client's answer never waits for the mirror"; nginx holds it)
//   uri-expanded          `$uri` in the target is the request's normalised path where nginx's is
//                         `/_mirror-<uid>` (not documented; no security effect: the path never leaves the
//                         target's origin, see mirror.ts mirrorPath)
//   not-copied:<name>     a client field nginx's copy carries and keepip's does not: Authorization on a
//                         basic-auth location (ingress-nginx clears it for the backend only), Proxy (the
//                         main location's httpoxy `Proxy ""`): stricter
//   off-over-limit        mirror-request-body off and a chunked body over proxy-body-size: nginx copies the
//                         request (before reading the body) and answers 413; keepip not copying it would be
//                         stricter (today it copies it too, as nginx)
//
// Generated cases (fast-check, fixed seed; MIRROR_SEED=<n> or `random` explores others): mirror-target
// with and without a path, with `$request_uri`, `$host`, `$is_args$args`, `$request_method`, `$arg_<n>`,
// `$scheme`; mirror-host absent, a name or `$host`; mirror-request-body absent, on, off; requests from a
// pool (GET, HEAD, POST/PUT with Content-Length and chunked bodies, empty ones, `%0d%0a` and `..` in the
// target, an absolute-form target with a foreign Host, forged X-Forwarded-For / X-Real-IP /
// X-Original-URI / X-Forwarded-Host / X-Request-ID / Proxy, hop-by-hop fields). The hand-picked cases:
// refused requests, a mirror answering 500 / closing / hanging, `$uri`.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { K8sObject } from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { completeResponses, listenTracked, openRaw } from '../helpers/net.ts';
import {
  type CaseIngress,
  casesTopology,
  checkGenerated,
  type Differential,
  SINGLE_HOST,
  startDifferential,
} from '../helpers/nginx-differential.ts';

const RUNS = 12;
/** The allowlist's only address; the probes come from STRANGER unless they say otherwise. */
const ALLOWED_IP = '127.0.0.50';
const STRANGER = '127.0.0.1';
const USER = 'alice';
const PASSWORD = 'open sesame';
const BODY_LIMIT = '1k';
const BIG = 'b'.repeat(2048);
/** A bound that turns a hang into a failure; never reached when things work. */
const FAR = 20_000;

// ---------------------------------------------------------------------------------------------
// The recording backends.

/** One request a mirror backend received, as bytes on the wire. */
interface Copy {
  id: string;
  method: string;
  target: string;
  /** Lower-case name -> values, in order. */
  headers: Map<string, string[]>;
  /** Every byte after the head until the peer closed. */
  body: Buffer;
  /** The peer closed the connection: the body is all there. */
  complete: boolean;
}

type MirrorMode = 'ok' | '500' | 'close' | 'hang';

interface Recorder {
  port: number;
  copies: Copy[];
  /** Resolves once a copy for each id has arrived (its head). */
  waitForIds(ids: readonly string[]): Promise<void>;
  /** Resolves once `copy` is complete. */
  whenComplete(copy: Copy): Promise<void>;
  /** Ends the connections a `hang` recorder holds. */
  release(): void;
  close(): Promise<void>;
}

function parseHead(head: string): Omit<Copy, 'body' | 'complete'> {
  const [line = '', ...fields] = head.split('\r\n');
  const [method = '', target = ''] = line.split(' ');
  const headers = new Map<string, string[]>();
  for (const field of fields) {
    const colon = field.indexOf(':');
    const name = field.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), field.slice(colon + 1).trim()]);
  }
  return { id: headers.get('x-probe')?.[0] ?? '', method, target, headers };
}

const ANSWERS: Record<'ok' | '500', string> = {
  ok: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
  500: 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
};

/**
 * A mirror backend: records each copy once its head is in, then answers at once (`ok`, `500`: the body
 * keeps being recorded until the peer closes), closes (`close`) or holds the connection (`hang`).
 */
async function startRecorder(mode: MirrorMode): Promise<Recorder> {
  const copies: Copy[] = [];
  const held = new Set<net.Socket>();
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    let copy: Copy | null = null;
    socket.on('error', () => {});
    socket.on('close', () => {
      held.delete(socket);
      if (copy !== null) copy.complete = true;
      notify();
    });
    socket.on('data', (chunk: Buffer) => {
      if (copy !== null) {
        copy.body = Buffer.concat([copy.body, chunk]);
        return;
      }
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      copy = { ...parseHead(buf.toString('latin1', 0, end)), body: buf.subarray(end + 4), complete: false };
      copies.push(copy);
      notify();
      if (mode === 'ok' || mode === '500') socket.write(ANSWERS[mode]);
      else if (mode === 'close') socket.destroy();
      else held.add(socket);
    });
  });
  const listening = await listenTracked(server);
  const until = (what: string, ready: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!ready()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`the ${mode} mirror never saw ${what}`));
      }, FAR);
      waiters.add(check);
      check();
    });
  return {
    port: listening.port,
    copies,
    waitForIds: (ids) =>
      until(`copies ${ids.join(', ')}`, () => ids.every((id) => copies.some((c) => c.id === id))),
    whenComplete: (copy) => until(`the end of copy ${copy.id}`, () => copy.complete),
    release() {
      for (const socket of held) socket.destroy();
    },
    close: () => listening.close(),
  };
}

/** What the main backend received for one probe. */
interface MainSeen {
  method: string;
  url: string;
  body: string;
}

const mainSeen = new Map<string, MainSeen>();

/** The main backend: records each request by its X-Probe, then answers 200 `main` (X-Loc: main). */
function mainHandler(): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = String(req.headers['x-probe'] ?? '');
      mainSeen.set(id, {
        method: req.method ?? '',
        url: req.url ?? '',
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 4, 'x-loc': 'main' });
      res.end('main');
    });
  };
}

// ---------------------------------------------------------------------------------------------
// Requests.

type Framing = 'none' | 'length' | 'chunked';

interface Probe {
  name: string;
  method: string;
  /** The origin-form target; sent in absolute form (`http://<host><target>`) with `absolute`. */
  target: string;
  framing: Framing;
  body: string;
  headers: [string, string][];
  absolute?: boolean;
  /** The Host header when it is not the case's host. */
  hostHeader?: string;
  from?: string;
  /** Keep the connection open (no `Connection: close`): for the pipelined probes only. */
  keepAlive?: boolean;
}

/** Forged headers a client may send; `Connection` names X-Hop, which is then hop-by-hop. */
const FORGED: [string, string][] = [
  ['X-Forwarded-For', '6.6.6.6'],
  ['X-Real-IP', '6.6.6.7'],
  ['X-Original-URI', '/forged'],
  ['X-Forwarded-Host', 'evil.example'],
  ['X-Request-ID', 'forged-request-id'],
  ['Proxy', 'http://evil.example:3128'],
  ['X-Hop', 'hop'],
  ['TE', 'trailers'],
  ['Keep-Alive', 'timeout=5'],
];

const POOL: Probe[] = [
  { name: 'get', method: 'GET', target: '/p/get?a=1&b=2', framing: 'none', body: '', headers: [] },
  { name: 'head', method: 'HEAD', target: '/p/head', framing: 'none', body: '', headers: [] },
  {
    name: 'post',
    method: 'POST',
    target: '/p/post?a=x',
    framing: 'length',
    body: 'hello mirror',
    headers: [],
  },
  {
    name: 'put-chunked',
    method: 'PUT',
    target: '/p/put',
    framing: 'chunked',
    body: 'hello chunked',
    headers: [],
  },
  { name: 'post-empty', method: 'POST', target: '/p/empty', framing: 'length', body: '', headers: [] },
  { name: 'post-chunked-empty', method: 'POST', target: '/p/ce', framing: 'chunked', body: '', headers: [] },
  {
    name: 'crlf-query',
    method: 'GET',
    target: '/p/q?x=%0d%0aX-Injected:%20yes&a=..%2f..%2fetc',
    framing: 'none',
    body: '',
    headers: [],
  },
  { name: 'dots', method: 'GET', target: '/p/a/../b/%2e%2e/c?d=1', framing: 'none', body: '', headers: [] },
  {
    name: 'absolute',
    method: 'GET',
    target: '/p/abs?a=abs',
    framing: 'none',
    body: '',
    headers: [],
    absolute: true,
    hostHeader: 'evil.example',
  },
  { name: 'forged', method: 'GET', target: '/p/forged', framing: 'none', body: '', headers: FORGED },
  {
    name: 'forged-post',
    method: 'POST',
    target: '/p/fp',
    framing: 'chunked',
    body: 'forged body',
    headers: [...FORGED, ['Expect', '100-continue'], ['Upgrade', 'evil/1']],
  },
];

function rawRequest(probe: Probe, host: string, id: string): string {
  const target = probe.absolute ? `http://${host}${probe.target}` : probe.target;
  const lines = [`${probe.method} ${target} HTTP/1.1`, `Host: ${probe.hostHeader ?? host}`, `X-Probe: ${id}`];
  for (const [name, value] of probe.headers) lines.push(`${name}: ${value}`);
  const hop = probe.headers.some(([name]) => name === 'X-Hop') ? ', X-Hop' : '';
  if (!probe.keepAlive) lines.push(`Connection: close${hop}`);
  if (probe.framing === 'length') lines.push(`Content-Length: ${Buffer.byteLength(probe.body)}`);
  if (probe.framing === 'chunked') lines.push('Transfer-Encoding: chunked');
  let body = probe.body;
  if (probe.framing === 'chunked') {
    const half = Math.ceil(body.length / 2);
    const parts = [body.slice(0, half), body.slice(half)].filter((p) => p !== '');
    body = `${parts.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('')}0\r\n\r\n`;
  }
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** The client's answer to one probe (its final answer after any 100 Continue). */
interface Answer {
  id: string;
  status: number;
  loc: string | null;
  gen: string | null;
}

let nextId = 0;

/** Sends `probe` to 127.0.0.1:`port` and reads until the server closes (FAR bound: a hang fails). */
async function send(port: number, probe: Probe, host: string): Promise<Answer> {
  nextId += 1;
  const id = `p${nextId}`;
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: probe.from ?? STRANGER });
  try {
    conn.socket.write(rawRequest(probe, host, id));
    await conn.whenClosed(FAR);
  } catch (error) {
    throw new Error(`${probe.name} to port ${port} was not answered and closed: ${(error as Error).message}`);
  } finally {
    conn.destroy();
  }
  const text = conn
    .received()
    .toString('latin1')
    .replace(/^HTTP\/1\.1 100 [^\r]*\r\n\r\n/, '');
  return {
    id,
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0),
    loc: /\r\nx-loc: (\w+)/i.exec(text)?.[1] ?? null,
    gen: /\r\nx-gen: (\d+)/i.exec(text)?.[1] ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// The mirror of a case, as ingress-nginx renders it and as keepip gets it.

type TargetForm =
  | 'origin'
  | 'path'
  | 'request_uri'
  | 'prefix_request_uri'
  | 'host_args'
  | 'method_arg'
  | 'scheme'
  | 'uri';

const TARGETS: Record<TargetForm, string> = {
  origin: '',
  path: '/shadow',
  request_uri: '$request_uri',
  prefix_request_uri: '/m$request_uri',
  host_args: '/h/$host$is_args$args',
  method_arg: '/v/$request_method?a=$arg_a',
  scheme: '/s/$scheme$request_uri',
  uri: '/u$uri',
};

interface MirrorCase {
  target: TargetForm;
  /** mirror-host; null: not set (the target's host name). */
  host: null | 'shadow.example' | '$host';
  /** mirror-request-body; null: not set (on). */
  body: null | 'on' | 'off';
  mirror: MirrorMode;
  probes: Probe[];
  /** Location features that answer or refuse before the content phase. */
  allow?: boolean;
  basic?: boolean;
  small?: boolean;
  redirect?: boolean;
  cors?: boolean;
}

type Ports = Record<MirrorMode, number>;

function targetOf(c: MirrorCase, ports: Ports): string {
  return `http://127.0.0.1:${ports[c.mirror]}${TARGETS[c.target]}`;
}

/** The template's CORS block for cors-allow-origin `*` (its more_set_headers left out: no headers-more here). */
const CORS = [
  "set $http_origin *; set $cors 'true';",
  `if ($request_method = 'OPTIONS') { set $cors $\{cors}options; }`,
  'if ($cors = "trueoptions") { return 204; }',
];

/** The `server { }` ingress-nginx writes for `c` on `host` (uid: the host), the main location at `/`. */
function nginxServer(c: MirrorCase, host: string, port: number, ports: Ports, main: number, dir: string) {
  const source = `/_mirror-${host}`;
  const features = [
    ...(c.cors ? CORS : []),
    ...(c.redirect ? ['return 308 https://r.test/moved;'] : []),
    ...(c.allow ? [`allow ${ALLOWED_IP}/32;`, 'deny all;'] : []),
    ...(c.basic
      ? [
          'auth_basic "Protected";',
          `auth_basic_user_file ${join(dir, 'htpasswd')};`,
          'proxy_set_header Authorization "";',
        ]
      : []),
  ];
  return [
    `server { listen 127.0.0.1:${port}; server_name ${host};`,
    `  location = "${source}" { internal; proxy_set_header Host "${c.host ?? '127.0.0.1'}"; proxy_pass "${targetOf(c, ports)}"; }`,
    '  location / {',
    `    mirror "${source}"; mirror_request_body ${c.body === 'off' ? 'off' : 'on'};`,
    ...features.map((line) => `    ${line}`),
    `    client_max_body_size ${c.small ? BODY_LIMIT : '1m'};`,
    '    proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;',
    '    proxy_set_header X-Real-IP $remote_addr; proxy_set_header X-Forwarded-For $remote_addr;',
    '    proxy_set_header Proxy "";',
    `    proxy_pass http://127.0.0.1:${main};`,
    '  }',
    '}',
  ].join('\n');
}

function annotationsOf(c: MirrorCase, ports: Ports): Record<string, string> {
  const a: Record<string, string> = { 'mirror-target': targetOf(c, ports) };
  if (c.host !== null) a['mirror-host'] = c.host;
  if (c.body !== null) a['mirror-request-body'] = c.body;
  if (c.allow) a['allowlist-source-range'] = `${ALLOWED_IP}/32`;
  if (c.basic) Object.assign(a, { 'auth-type': 'basic', 'auth-secret': 'users', 'auth-realm': 'Protected' });
  if (c.small) a['proxy-body-size'] = BODY_LIMIT;
  if (c.redirect)
    Object.assign(a, { 'permanent-redirect': 'https://r.test/moved', 'permanent-redirect-code': '308' });
  if (c.cors) Object.assign(a, { 'enable-cors': 'true', 'cors-allow-origin': '*' });
  return a;
}

function htpasswd(): string {
  return `${USER}:{SHA}${createHash('sha1').update(PASSWORD).digest('base64')}\n`;
}

const CREDENTIALS: [string, string] = [
  'Authorization',
  `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`,
];

function probe(name: string, fields: Partial<Probe> = {}): Probe {
  return { name, method: 'GET', target: `/p/${name}`, framing: 'none', body: '', headers: [], ...fields };
}

/** The positive marker: a plain GET on marker.test (mirrored to the `ok` recorder by both). */
const MARKER_HOST = 'marker.test';
const MARKER = probe('marker');

/** The probes of a mirror that answers 500 or closes the connection. */
const FAILING = [
  probe('fail-get'),
  probe('fail-post', { method: 'POST', framing: 'length', body: 'to a failing mirror' }),
  probe('fail-chunked', { method: 'PUT', framing: 'chunked', body: 'to a failing mirror' }),
];

/** The hosts every configuration has (an old nginx worker still has them too). */
const STATIC: Record<string, MirrorCase> = {
  [MARKER_HOST]: { target: 'request_uri', host: null, body: null, mirror: 'ok', probes: [] },
  'allow.test': {
    target: 'request_uri',
    host: null,
    body: null,
    mirror: 'ok',
    allow: true,
    probes: [
      probe('allow-get'),
      probe('allow-post', { method: 'POST', framing: 'length', body: 'refused body' }),
      probe('allow-listed', { from: ALLOWED_IP }),
    ],
  },
  'limit.test': {
    target: 'request_uri',
    host: null,
    body: 'on',
    mirror: 'ok',
    small: true,
    probes: [
      probe('limit-length', { method: 'POST', framing: 'length', body: BIG }),
      probe('limit-chunked', { method: 'POST', framing: 'chunked', body: BIG }),
      probe('limit-small', { method: 'POST', framing: 'length', body: 'small' }),
    ],
  },
  'limitoff.test': {
    target: 'request_uri',
    host: null,
    body: 'off',
    mirror: 'ok',
    small: true,
    probes: [
      probe('limitoff-length', { method: 'POST', framing: 'length', body: BIG }),
      probe('limitoff-chunked', { method: 'POST', framing: 'chunked', body: BIG }),
    ],
  },
  'auth.test': {
    target: 'request_uri',
    host: null,
    body: null,
    mirror: 'ok',
    basic: true,
    probes: [
      probe('auth-none'),
      probe('auth-post', { method: 'POST', framing: 'chunked', body: 'no credentials' }),
      probe('auth-ok', { headers: [CREDENTIALS] }),
    ],
  },
  'redirect.test': {
    target: 'request_uri',
    host: null,
    body: null,
    mirror: 'ok',
    redirect: true,
    probes: [probe('redirect-get'), probe('redirect-post', { method: 'POST', framing: 'length', body: 'x' })],
  },
  'cors.test': {
    target: 'request_uri',
    host: null,
    body: null,
    mirror: 'ok',
    cors: true,
    probes: [
      probe('cors-preflight', {
        method: 'OPTIONS',
        headers: [
          ['Origin', 'https://ok.test'],
          ['Access-Control-Request-Method', 'POST'],
        ],
      }),
      probe('cors-get', { headers: [['Origin', 'https://ok.test']] }),
    ],
  },
  'uri.test': {
    target: 'uri',
    host: 'shadow.example',
    body: null,
    mirror: 'ok',
    probes: [
      probe('uri-plain'),
      probe('uri-space', { target: '/p/a%20b' }),
      probe('uri-crlf', { target: '/p/x%0d%0aX-Injected:%20yes' }),
      probe('uri-query', { target: '/p/%3Fq%3D1%23f' }),
      probe('uri-dots', { target: '/p/a/%2e%2e/%2e%2e/%2e%2e/etc' }),
      probe('uri-utf8', { target: '/p/%E2%82%AC' }),
    ],
  },
  'hostvar.test': {
    target: 'request_uri',
    host: '$host',
    body: null,
    mirror: 'ok',
    probes: [
      probe('hostvar-absolute', { target: '/p/abs?x=1', absolute: true, hostHeader: 'evil.example' }),
      probe('hostvar-upper', { hostHeader: 'HOSTVAR.test.' }),
      probe('hostvar-port', { hostHeader: 'hostvar.test:1' }),
    ],
  },
  'fail500.test': { target: 'request_uri', host: null, body: null, mirror: '500', probes: FAILING },
  'failclose.test': { target: 'request_uri', host: null, body: null, mirror: 'close', probes: FAILING },
  'hang.test': { target: 'request_uri', host: null, body: null, mirror: 'hang', probes: [] },
};

// ---------------------------------------------------------------------------------------------
// The judge.

/** What one server made of one probe. */
interface Observed {
  answer: Answer;
  main: MainSeen | undefined;
  copies: Copy[];
}

/** Hop-by-hop fields nginx's proxy module never passes (its default proxy_set_header values are ""). */
const NGINX_DROPS = new Set(['te', 'keep-alive', 'expect', 'upgrade']);
/** Fields ingress-nginx sets for the backend (and keepip's copy carries, as documented). */
const GATEWAY_SET = new Set([
  'x-real-ip',
  'x-request-id',
  'x-scheme',
  'x-original-forwarded-for',
  'x-original-forwarded-host',
]);
/** Compared apart (framing, Host, the probe's id) or always different (nginx's HTTP/1.0 copy). */
const APART = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'x-probe']);

interface Verdict {
  findings: string[];
  /** nginx's answers, `<probe>:<status>`: what the probes exercised. */
  answers: string[];
  /** ALLOWED entries met (their tag). */
  allowed: string[];
}

function headerVerdicts(probe: Probe, ngx: Copy, kip: Copy, v: Verdict): void {
  const sent = new Set(probe.headers.map(([name]) => name.toLowerCase()));
  const names = new Set([...ngx.headers.keys(), ...kip.headers.keys()]);
  for (const name of names) {
    if (APART.has(name)) continue;
    const n = ngx.headers.get(name)?.join(', ');
    const k = kip.headers.get(name)?.join(', ');
    if (n === k) continue;
    if (NGINX_DROPS.has(name)) {
      if (k !== undefined) v.findings.push(`the copy carries the client's ${name}: ${k} (nginx drops it)`);
    } else if (name === 'x-hop' && k === undefined) v.allowed.push('hop-by-hop-named');
    else if (GATEWAY_SET.has(name) || name.startsWith('x-forwarded-'))
      v.allowed.push(sent.has(name) ? 'forwarded-by-gateway' : 'gateway-headers');
    else if (k === undefined && sent.has(name)) v.allowed.push(`not-copied:${name}`);
    else v.findings.push(`copy header ${name}: nginx ${n ?? '(none)'}, keepip ${k ?? '(none)'}`);
  }
  const host = [ngx.headers.get('host')?.join(', '), kip.headers.get('host')?.join(', ')];
  if (host[0] !== host[1]) v.findings.push(`copy Host: nginx ${host[0]}, keepip ${host[1]}`);
}

/** keepip's copy framed so that a mirror could read another request in it. */
function framingVerdict(kip: Copy, v: Verdict): void {
  const lengths = kip.headers.get('content-length') ?? [];
  const codings = kip.headers.get('transfer-encoding') ?? [];
  const other = codings.some((coding) => coding.toLowerCase() !== 'chunked');
  if (lengths.length > 1 || (lengths.length > 0 && codings.length > 0) || other)
    v.findings.push(
      `copy framing: content-length ${lengths.join(',')} transfer-encoding ${codings.join(',')}`,
    );
  else if (codings.length === 0 && kip.complete && Number(lengths[0] ?? 0) !== kip.body.length)
    v.findings.push(`copy declares ${lengths[0]} bytes and carries ${kip.body.length}`);
}

function bodyVerdict(c: MirrorCase, ngx: Copy, kip: Copy, v: Verdict): void {
  if (c.body === 'off') {
    if (kip.body.length > 0)
      v.findings.push(`mirror-request-body off, and the copy carries the body "${kip.body}"`);
    const declared = ngx.headers.get('content-length')?.[0];
    if (declared !== undefined && Number(declared) !== ngx.body.length) v.allowed.push('off-length');
  } else if (!ngx.body.equals(kip.body)) {
    v.findings.push(`copy body: nginx "${ngx.body}", keepip "${kip.body}"`);
  }
}

function pathVerdict(c: MirrorCase, probe: Probe, ngx: Copy, kip: Copy, v: Verdict): void {
  if (ngx.target === kip.target) return;
  if (c.target === 'origin' && ngx.target.startsWith('/_mirror-') && kip.target === probe.target)
    v.allowed.push('no-path-target');
  else if (c.target === 'uri' && ngx.target.startsWith('/u/_mirror-') && /^\/u\/[^\s]*$/.test(kip.target))
    v.allowed.push('uri-expanded');
  else v.findings.push(`copy path: nginx ${ngx.target}, keepip ${kip.target}`);
}

/** The differences of one probe: FINDINGs, and the ALLOWED entries met. */
function judge(c: MirrorCase, probe: Probe, ngx: Observed, kip: Observed): Verdict {
  const v: Verdict = { findings: [], answers: [`${probe.name}:${ngx.answer.status}`], allowed: [] };
  const a = [ngx.answer, kip.answer].map((x) => `${x.status}${x.loc === null ? '' : ` from ${x.loc}`}`);
  if (a[0] !== a[1]) v.findings.push(`client answer: nginx ${a[0]}, keepip ${a[1]}`);
  const main = [ngx.main, kip.main].map((m) =>
    m === undefined ? 'nothing' : `${m.method} ${m.url} "${m.body}"`,
  );
  if (main[0] !== main[1]) v.findings.push(`main backend got: nginx ${main[0]}, keepip ${main[1]}`);
  const [n, k] = [ngx.copies, kip.copies];
  if (n.length > 1 || k.length > 1) v.findings.push(`copies: nginx ${n.length}, keepip ${k.length}`);
  if (n.length === 0 && k.length > 0)
    v.findings.push(`keepip mirrored a request nginx does not mirror (answered ${kip.answer.status})`);
  if (n.length > 0 && k.length === 0) {
    if (c.body === 'off' && kip.answer.status === 413) v.allowed.push('off-over-limit');
    else v.findings.push('nginx mirrored the request, keepip sent no copy');
  }
  // A mirror that fails or closes at once: only what the client, the backend and the mirror saw at all.
  if (n.length === 1 && k.length === 1 && c.mirror === 'ok') {
    const [nc, kc] = [n[0]!, k[0]!];
    if (nc.method !== kc.method) v.findings.push(`copy method: nginx ${nc.method}, keepip ${kc.method}`);
    pathVerdict(c, probe, nc, kc, v);
    headerVerdicts(probe, nc, kc, v);
    bodyVerdict(c, nc, kc, v);
    framingVerdict(kc, v);
  }
  v.findings = v.findings.map((f) => `${probe.name}: ${f}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// The bench: nginx and keepip, the main backend (the bench's), the four mirror recorders.

interface Bench {
  diff: Differential<Probe, Answer>;
  recorders: Record<MirrorMode, Recorder>;
  ports: Ports;
  /** ALLOWED tags met, with a count. */
  met: Map<string, number>;
}

/** Configures the static hosts and `cases` (case i on hosts[i]) on both servers. */
async function configure(
  bench: Bench,
  cases: readonly MirrorCase[],
  hosts: readonly string[],
): Promise<void> {
  const all = [...Object.values(STATIC), ...cases];
  const names = [...Object.keys(STATIC), ...hosts];
  const { diff, ports } = bench;
  const main = diff.backends.get('main')!;
  const users: K8sObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'users', namespace: 'default' },
    type: 'Opaque',
    data: { auth: Buffer.from(htpasswd()).toString('base64') },
  };
  const ingressesOf = (c: MirrorCase): CaseIngress[] => [
    { annotations: annotationsOf(c, ports), paths: [{ path: '/', service: 'svc-main', port: 80 }] },
  ];
  await diff.configure(
    (port) => all.map((c, i) => nginxServer(c, names[i]!, port, ports, main, diff.nginx.dir)),
    casesTopology({ cases: all, hosts: names, backends: diff.backends, ingressesOf, objects: [users] }),
  );
}

/**
 * Sends `c`'s probes to both servers (on `host`), then the marker to both: once the `ok` recorder has
 * the markers' copies, the copies of the probes before them (sent before their answers) are in; each
 * is then awaited to its end. The verdicts, probe by probe.
 */
async function observe(bench: Bench, c: MirrorCase, host: string): Promise<Verdict> {
  const { diff } = bench;
  const recorder = bench.recorders[c.mirror];
  const pairs = await mapLimited(c.probes, 6, async (p) => {
    const [ngx, kip] = await Promise.all([diff.askNginx(p, host), diff.askKeepip(p, host)]);
    return { p, ngx, kip };
  });
  const markers = await Promise.all([
    diff.askNginx(MARKER, MARKER_HOST),
    diff.askKeepip(MARKER, MARKER_HOST),
  ]);
  await bench.recorders.ok.waitForIds(markers.map((m) => m.id));
  const copiesOf = (id: string) => recorder.copies.filter((copy) => copy.id === id);
  const all = pairs.flatMap(({ ngx, kip }) => [...copiesOf(ngx.id), ...copiesOf(kip.id)]);
  await Promise.all(all.map((copy) => recorder.whenComplete(copy)));
  const observed = (answer: Answer): Observed => ({
    answer,
    main: mainSeen.get(answer.id),
    copies: copiesOf(answer.id),
  });
  const verdict: Verdict = { findings: [], answers: [], allowed: [] };
  for (const { p, ngx, kip } of pairs) {
    const v = judge(c, p, observed(ngx), observed(kip));
    verdict.findings.push(...v.findings);
    verdict.answers.push(...v.answers);
    verdict.allowed.push(...v.allowed);
  }
  for (const tag of verdict.allowed) bench.met.set(tag, (bench.met.get(tag) ?? 0) + 1);
  return verdict;
}

function describeCase(c: MirrorCase, ports: Ports): string {
  return `annotations ${JSON.stringify(annotationsOf(c, ports))}, probes ${c.probes.map((p) => p.name).join(', ')}`;
}

function assertNoFinding(c: MirrorCase, bench: Bench, v: Verdict): void {
  assert.deepEqual(v.findings, [], describeCase(c, bench.ports));
}

// ---------------------------------------------------------------------------------------------
// Generated cases.

const caseArb: fc.Arbitrary<MirrorCase> = fc.record({
  target: fc.constantFrom<TargetForm>(
    'origin',
    'path',
    'request_uri',
    'prefix_request_uri',
    'host_args',
    'method_arg',
    'scheme',
  ),
  host: fc.constantFrom<MirrorCase['host']>(null, 'shadow.example', '$host'),
  body: fc.constantFrom<MirrorCase['body']>(null, 'on', 'off'),
  mirror: fc.constant<MirrorMode>('ok'),
  probes: fc.subarray(POOL, { minLength: 3, maxLength: 6 }),
});

async function checkMirrors(bench: Bench): Promise<void> {
  await checkGenerated({
    arb: caseArb,
    runs: RUNS,
    seedVariable: 'MIRROR_SEED',
    defaultSeed: 20261206,
    configure: (cases, hosts) => configure(bench, cases, hosts),
    differences: async (c, host) => (await observe(bench, c, host)).findings,
    assertAlone: async (c) => {
      await configure(bench, [c], [SINGLE_HOST]);
      assertNoFinding(c, bench, await observe(bench, c, SINGLE_HOST));
    },
    describe: (c) => describeCase(c, bench.ports),
    shrinkTimeLimitMs: 10_000,
  });
}

// ---------------------------------------------------------------------------------------------
// A mirror that never answers.

/** Writes `probes` on one kept-alive connection to `port` (hang.test); the connection. */
async function pipelined(port: number, ids: readonly string[]) {
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: STRANGER });
  conn.socket.write(ids.map((id) => rawRequest(probe(id, { keepAlive: true }), 'hang.test', id)).join(''));
  return conn;
}

/** keepip: the answers of a Connection: close request and of two kept-alive ones come while the mirror holds their copies. */
async function keepipWithHangingMirror(bench: Bench): Promise<void> {
  const hang = bench.recorders.hang;
  const port = bench.diff.gateway.httpPort;
  // `send` waits for the server's close: keepip closes a Connection: close exchange without the mirror.
  const closed = await send(
    port,
    probe('hang-close', { method: 'POST', framing: 'length', body: 'held' }),
    'hang.test',
  );
  assert.deepEqual([closed.status, closed.loc], [200, 'main']);
  const conn = await pipelined(port, ['hang-k1', 'hang-k2']);
  try {
    await conn.until((raw) => completeResponses(raw) === 2, FAR);
    // The copies are held from here on (release() comes later): the answers did not wait for them.
    await hang.waitForIds([closed.id, 'hang-k1', 'hang-k2']);
  } finally {
    conn.destroy();
  }
}

/**
 * nginx: the answers are sent, but the connection waits for the mirror: a Connection: close one is not
 * closed, the next kept-alive request is not read, until the mirror is done (here: released).
 */
async function nginxWithHangingMirror(bench: Bench): Promise<void> {
  const hang = bench.recorders.hang;
  const port = bench.diff.nginx.ports[0]!;
  const kept = await pipelined(port, ['hang-n1', 'hang-n2']);
  const close = await openRaw({ host: '127.0.0.1', port, localAddress: STRANGER });
  try {
    close.socket.write(rawRequest(probe('hang-nc'), 'hang.test', 'hang-nc'));
    await kept.until((raw) => completeResponses(raw) >= 1, FAR);
    await close.until((raw) => completeResponses(raw) >= 1, FAR);
    await hang.waitForIds(['hang-n1', 'hang-nc']);
    for (const conn of [kept, close])
      assert.match(conn.received().toString('latin1'), /^HTTP\/1\.1 200 [\s\S]*\r\nx-loc: main\r\n/i);
    // Both mirror subrequests are held: nginx 1.22 has neither read the next request nor closed.
    assert.equal(
      completeResponses(kept.received()),
      1,
      'nginx answered the next request while its mirror hung',
    );
    assert.equal(close.closed(), false, 'nginx closed the connection while its mirror hung');
    hang.release();
    await close.whenClosed(FAR);
    await kept.until((raw) => completeResponses(raw) === 2, FAR);
    await hang.waitForIds(['hang-n2']);
  } finally {
    kept.destroy();
    close.destroy();
    hang.release();
  }
}

// ---------------------------------------------------------------------------------------------

/** The recorders, the main backend, nginx and keepip, with the static hosts configured. */
async function startBench(): Promise<Bench> {
  const modes: MirrorMode[] = ['ok', '500', 'close', 'hang'];
  const started = await Promise.all(modes.map((mode) => startRecorder(mode)));
  const recorders = Object.fromEntries(modes.map((mode, i) => [mode, started[i]!]));
  const ports = Object.fromEntries(modes.map((mode, i) => [mode, started[i]!.port]));
  const diff = await startDifferential<Probe, Answer>({
    ids: ['main'],
    handler: () => mainHandler(),
    send,
    genProbe: probe('gen', { target: '/__gen' }),
  });
  const bench: Bench = {
    diff,
    recorders: recorders as Record<MirrorMode, Recorder>,
    ports: ports as Ports,
    met: new Map(),
  };
  writeFileSync(join(diff.nginx.dir, 'htpasswd'), htpasswd());
  await configure(bench, [], []);
  return bench;
}

describe('mirror-target: keepip against nginx 1.22 rendered as ingress-nginx renders it', () => {
  let bench: Bench;

  before(async () => {
    bench = await startBench();
  });

  after(async () => {
    bench?.recorders.hang.release();
    await bench?.diff.close();
    for (const recorder of Object.values(bench?.recorders ?? {})) await recorder.close();
  });

  it('a request nginx answers or refuses before its content phase (allowlist, body over proxy-body-size, basic auth, redirect, CORS preflight) is not mirrored by keepip either', async (t) => {
    const hosts = ['allow.test', 'limit.test', 'limitoff.test', 'auth.test', 'redirect.test', 'cors.test'];
    const verdicts = await Promise.all(hosts.map((host) => observe(bench, STATIC[host]!, host)));
    const answers = verdicts.flatMap((v) => v.answers);
    // Not vacuous: nginx refused (403, 413, 401), redirected (308) and answered a preflight (204).
    for (const status of [403, 413, 401, 308, 204, 200])
      assert.ok(
        answers.some((a) => a.endsWith(`:${status}`)),
        `no ${status} among ${answers.join(' ')}`,
      );
    t.diagnostic(`ALLOWED met: ${[...new Set(verdicts.flatMap((v) => v.allowed))].join(', ') || 'none'}`);
    assert.deepEqual(
      verdicts.flatMap((v) => v.findings),
      [],
    );
  });

  it('a mirror that answers 500 or closes the connection changes nothing the client or the backend gets', async () => {
    const verdicts = await Promise.all(
      ['fail500.test', 'failclose.test'].map((h) => observe(bench, STATIC[h]!, h)),
    );
    for (const v of verdicts)
      assert.ok(
        v.answers.every((a) => a.endsWith(':200')),
        v.answers.join(' '),
      );
    assert.deepEqual(
      verdicts.flatMap((v) => v.findings),
      [],
    );
    // Both failing mirrors got every copy (of nginx and of keepip): the failure was exercised.
    assert.equal(bench.recorders['500'].copies.length >= 2 * FAILING.length, true);
    assert.equal(bench.recorders.close.copies.length >= 2 * FAILING.length, true);
  });

  it('a mirror that never answers: keepip answers and closes without waiting, kept-alive requests go on (nginx holds the connection until the mirror is done)', async () => {
    await keepipWithHangingMirror(bench);
    await nginxWithHangingMirror(bench);
  });

  it('$uri in mirror-target: a client cannot split the copy (CR LF, space) nor keep its request from being mirrored', async () => {
    const v = await observe(bench, STATIC['uri.test']!, 'uri.test');
    assert.deepEqual(v.findings, []);
  });

  it("mirror-host $host: the copy's Host is the request's host as nginx's $host (absolute-form target, upper case, port)", async () => {
    const v = await observe(bench, STATIC['hostvar.test']!, 'hostvar.test');
    assert.ok(
      v.answers.every((a) => a.endsWith(':200')),
      v.answers.join(' '),
    );
    assert.deepEqual(v.findings, []);
  });

  it('generated mirror-target / mirror-host / mirror-request-body cases and requests: the copy, the backend and the answer as nginx, or stricter', async (t) => {
    await checkMirrors(bench);
    const met = [...bench.met].map(([tag, n]) => `${tag} x${n}`).join(', ');
    t.diagnostic(`ALLOWED met over the run: ${met}`);
  });
});
