// The external-auth answer cache (auth-cache-key, auth-cache-duration, and the ConfigMap's
// global-auth-cache-key / -duration) in keepip against real nginx 1.22 configured as ingress-nginx's
// template renders it (rootfs/etc/nginx/template/nginx.tmpl, the mirror's HEAD):
//   http { proxy_cache_path … keys_zone=auth_cache:10m max_size=128m inactive=30m use_temp_path=off; }
//   location = /_external-auth-<base64url(path)>-<pathType> {
//     internal;
//     set $tmp_cache_key '<server hostname><auth path><auth-cache-key>';
//     rewrite_by_lua_file ngx_conf_rewrite_auth.lua;   # $cache_key = base64(sha1($tmp_cache_key))
//     proxy_cache auth_cache; proxy_cache_valid <each auth-cache-duration entry>; proxy_cache_key "$cache_key";
//     … proxy_buffering "on"; proxy_pass $target; }
//   location … { auth_request <auth path>; auth_request_set $authHeaderN $upstream_http_<name>; … }
// The Lua step is not run here (no OpenResty): the key is used unhashed, `proxy_cache_key
// "$tmp_cache_key"`. Only collisions of SHA-1 could tell the two apart. A Prefix path renders as
// `location <path>/` here (the probes never ask for the bare `/api`).
//
// The claims checked (docs/ingress-nginx-compat.md, auth-cache-key / auth-cache-duration):
//   "answers cached per host, location, auth-url (with its method: ingress-nginx's key has neither …)
//   and key, for the listed statuses and times (a time alone: 200 301 302). As nginx's proxy cache, the
//   answer's own X-Accel-Expires, then Cache-Control s-maxage/max-age, then Expires set the time, for
//   any status; Set-Cookie, `Vary: *`, Cache-Control no-store/no-cache/private, max-age=0,
//   X-Accel-Expires: 0 and an Expires in the past keep it out. … A key that names nothing of the client
//   (no `$http_authorization`, `$cookie_<name>`, `$remote_user`, `$remote_addr`…) shares one answer
//   among all clients, as nginx does: a warning, AUTH_CACHE_SHARED"
//   and `global-auth-cache-key`, `global-auth-cache-duration`: "as the annotations".
// docs/gateway.md: "`auth-cache-key` entries are kept by the key's SHA-256."
//
// Each case: two hosts (a.… and b.…) with the SAME auth-url and the same key text, each an Ingress with
// two locations (`/` and `/api`), a generated auth-cache-key (`$remote_user`, `$http_authorization`,
// `$cookie_x`, `$host`, `$request_uri`, `$arg_x`, two of them, or none), auth-cache-duration ("200 202
// 401 5m", "200 1m", "401 30s", "5m": no sequence lasts long enough for one to expire, nothing waits
// for time to pass), auth-method (none/GET/POST), with or without auth-response-headers X-Auth-User; and
// an auth service that answers per credential (alice: Basic alice:pw, bob: Bearer bob-token, carol: the
// cookie x=carol-token, anyone else), each with a status (200/202 with X-Auth-User, 302, 401 with
// WWW-Authenticate, 403, 500) and maybe headers that decide caching (Set-Cookie, Cache-Control no-store /
// private / max-age=0 / max-age=600, Vary: Authorization / Cookie / *, X-Accel-Expires: 0, a past
// Expires, some of them repeated on a second line). A sequence of requests from distinct 127.x clients
// with credentials and near-miss spellings of them (a wrong password, base64 nginx reads otherwise, a
// second, quoted or differently cased cookie…), on either host (also upper-case or with a trailing dot),
// location, with arguments, maybe a forged X-Auth-User, goes to nginx and to keepip request by request.
// nginx 1.22 reads a few header orders otherwise than the nginx ingress-nginx ships (1.27.1): those are
// not generated, and their difference is in ALLOWED. Compared per request: the
// client's status, whether the auth service was asked, the X-Auth-User the backend got, the client's
// WWW-Authenticate and Set-Cookie. The first difference of a sequence ends it (the two caches no longer
// hold the same entries): keepip admitting what nginx refused, or passing an identity nginx did not, is
// LESS SAFE; a stricter difference that is understood is in ALLOWED (checked to still be what is seen).
// AUTH_CACHE_SEED=<n> (or `random`) explores other cases, AUTH_CACHE_RUNS their number.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Topology } from '../../src/config/model.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { openRaw } from '../helpers/net.ts';
import { ingressNginxAuthLocation } from '../helpers/nginx-auth.ts';
import { checkGenerated, type Differential, startDifferential } from '../helpers/nginx-differential.ts';

// ---------------------------------------------------------------------------------------------
// Credentials, and how the auth service tells who asks.

const b64 = (text: string) => Buffer.from(text, 'latin1').toString('base64');
const ALICE = `Basic ${b64('alice:pw')}`;
const BOB = 'Bearer bob-token';
const CAROL = 'x=carol-token';

/** The header lines of each credential a request can carry. */
const CREDS = {
  none: [],
  alice: [`Authorization: ${ALICE}`],
  // Near misses: the auth service takes none of them for its user.
  'alice wrong password': [`Authorization: Basic ${b64('alice:nope')}`],
  // 12 base64 characters and one more: nginx's ngx_decode_base64 refuses a length of 4n+1 (no user).
  'alice base64 4n+1': [`Authorization: Basic ${b64('alice:xxx')}Q`],
  // nginx's ngx_decode_base64 stops at the first "=": the user is alice there.
  'alice junk after padding': [`Authorization: Basic ${b64('alice:x')}junk`],
  bob: [`Authorization: ${BOB}`],
  'bob two spaces': ['Authorization: Bearer  bob-token'],
  carol: [`Cookie: ${CAROL}`],
  'carol and a second x': [`Cookie: ${CAROL}; x=mallory`],
  'carol upper-case name': ['Cookie: X=carol-token'],
  'carol second cookie': ['Cookie: y=1; x=carol-token'],
  'carol on a second line': ['Cookie: x=mallory', `Cookie: ${CAROL}`],
  'carol after a comma': ['Cookie: y=1,x=carol-token'],
  'carol without a space': ['Cookie: y=1;x=carol-token'],
  'carol quoted': ['Cookie: x="carol-token"'],
  'alice lower-case scheme': [`Authorization: basic ${b64('alice:pw')}`],
  'alice without padding': [`Authorization: Basic ${b64('alice:pw').replace(/=+$/, '')}`],
} satisfies Record<string, string[]>;
type Cred = keyof typeof CREDS;

type User = 'alice' | 'bob' | 'carol' | 'anon';
const USERS: User[] = ['alice', 'bob', 'carol', 'anon'];

/** The auth service's reading: exactly the credential, else nobody. */
function identity(headers: http.IncomingHttpHeaders): User {
  if (headers.authorization === ALICE) return 'alice';
  if (headers.authorization === BOB) return 'bob';
  if (headers.authorization === undefined && headers.cookie === CAROL) return 'carol';
  return 'anon';
}

const PAST = 'Thu, 01 Jan 1970 00:00:00 GMT';

/**
 * What decides caching besides the status, in the order sent (an array: one line per value):
 * c Set-Cookie, n no-store, o no-cache, p private, z max-age=0, m max-age=600, S s-maxage=600 with
 * max-age=0, a Vary: Authorization, k Vary: Cookie,
 * v Vary: *, x X-Accel-Expires: 0, e a past Expires; on two lines: M max-age=600 then max-age=0,
 * V Vary: Accept then Vary: *, X X-Accel-Expires: 0 then 600. E (a past Expires, then max-age=600) and
 * F (no-store, then X-Accel-Expires: 600) are read otherwise by nginx 1.22 than by 1.23+: not generated.
 */
const EXTRAS = ['c', 'n', 'o', 'p', 'z', 'm', 'S', 'a', 'k', 'v', 'x', 'e', 'M', 'V', 'X'] as const;
type Extra = '' | (typeof EXTRAS)[number] | 'E' | 'F';
const EXTRA_HEADERS: Record<Exclude<Extra, ''>, Record<string, string | string[]>> = {
  c: { 'set-cookie': 'sess=from-auth; Path=/' },
  n: { 'cache-control': 'no-store' },
  o: { 'cache-control': 'no-cache' },
  p: { 'cache-control': 'private, max-age=600' },
  z: { 'cache-control': 'max-age=0' },
  m: { 'cache-control': 'max-age=600' },
  S: { 'cache-control': 'max-age=0, s-maxage=600' },
  a: { vary: 'Authorization' },
  k: { vary: 'Cookie' },
  v: { vary: '*' },
  x: { 'x-accel-expires': '0' },
  e: { expires: PAST },
  M: { 'cache-control': ['max-age=600', 'max-age=0'] },
  V: { vary: ['Accept', '*'] },
  X: { 'x-accel-expires': ['0', '600'] },
  E: { expires: PAST, 'cache-control': 'max-age=600' },
  F: { 'cache-control': 'no-store', 'x-accel-expires': '600' },
};

type Status = 200 | 202 | 302 | 401 | 403 | 500;
interface Answer {
  status: Status;
  extra: Extra;
}

// ---------------------------------------------------------------------------------------------
// The auth service and the backend record what they saw, by the probe's X-Probe.

/** Probe id -> how many subrequests carried it. */
const authAsked = new Map<string, number>();
/** Probe id -> the X-Auth-User the backend got ('(absent)' without one). */
const backendUser = new Map<string, string>();

function probeId(req: http.IncomingMessage): string | null {
  const id = req.headers['x-probe'];
  return typeof id === 'string' ? id : null;
}

/** `/auth/<alice>/<bob>/<carol>/<anon>`, each `<status><extra>`: the answer for the caller's user. */
function authHandler(): http.RequestListener {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      const id = probeId(req);
      if (id !== null) authAsked.set(id, (authAsked.get(id) ?? 0) + 1);
      const parts = new URL(req.url ?? '/', 'http://a').pathname.split('/');
      const user = identity(req.headers);
      const spec = /^(\d{3})([a-zA-Z]?)$/.exec(parts[2 + USERS.indexOf(user)] ?? '') ?? ['', '500', ''];
      const status = Number(spec[1]);
      const headers: Record<string, string | string[]> = { 'content-length': '0' };
      if (status < 300) headers['x-auth-user'] = user;
      if (status === 302) headers.location = 'https://login.test/';
      if (status === 401) headers['www-authenticate'] = `Bearer realm="${user}"`;
      const extra = spec[2] as Extra;
      if (extra !== '') Object.assign(headers, EXTRA_HEADERS[extra]);
      res.writeHead(status, headers);
      res.end();
    });
  };
}

function backendHandler(id: string): http.RequestListener {
  if (id === 'auth') return authHandler();
  return (req, res) => {
    req.resume();
    const probe = probeId(req);
    const user = req.headers['x-auth-user'];
    if (probe !== null) backendUser.set(probe, typeof user === 'string' ? user : '(absent)');
    res.writeHead(200, { 'content-length': '2' });
    res.end('ok');
  };
}

// ---------------------------------------------------------------------------------------------
// Cases.

interface Req {
  /** The client: 127.0.0.2<from>. */
  from: number;
  cred: Cred;
  /** Host a (as configured, upper-case, or with a trailing dot) or b. */
  host: 'a' | 'A' | 'a.' | 'b';
  target: string;
  /** The client sends its own X-Auth-User. */
  forge: boolean;
}

interface Case {
  key: string;
  duration: string;
  responseHeaders: boolean;
  method: 'GET' | 'POST' | null;
  answers: Record<User, Answer>;
  requests: Req[];
}

const KEY_VARIABLES = [
  '$remote_user',
  '$http_authorization',
  '$cookie_x',
  '$host',
  '$request_uri',
  '$arg_x',
] as const;
// "5m" alone: 200 301 302.
const DURATIONS = ['200 202 401 5m', '200 1m', '401 30s', '5m'] as const;
const TARGETS = ['/', '/x?x=1', '/x?x=2', '/api/y', '/api/y?x=1'] as const;
const CLIENT_VARIABLE = /\$(remote_user|http_authorization|cookie_x|arg_x)/;

function authPath(case_: Case): string {
  const a = case_.answers;
  const spec = (u: User) => `${a[u].status}${a[u].extra}`;
  return `/auth/${spec('alice')}/${spec('bob')}/${spec('carol')}/${spec('anon')}`;
}

function describeCase(c: Case): string {
  const a = c.answers;
  const answers = USERS.map((u) => `${u} ${a[u].status}${a[u].extra}`).join(', ');
  const method = c.method === null ? '' : `, auth-method ${c.method}`;
  const headers = c.responseHeaders ? ', auth-response-headers X-Auth-User' : '';
  return `auth-cache-key ${JSON.stringify(c.key)}, auth-cache-duration ${JSON.stringify(c.duration)}${method}${headers}; auth answers: ${answers}`;
}

function describeReq(r: Req): string {
  const forged = r.forge ? ' + forged X-Auth-User' : '';
  return `${r.cred} from 127.0.0.2${r.from} to ${r.host}:${r.target}${forged}`;
}

// ---------------------------------------------------------------------------------------------
// ingress-nginx's servers for a case, and keepip's Ingresses.

const PATHS = ['/', '/api'] as const;

/** buildAuthLocation: `/_external-auth-<base64url(path), no padding>-<pathType>`. */
function authLocationPath(path: string): string {
  return `/_external-auth-${Buffer.from(path).toString('base64url')}-Prefix`;
}

function authUrl(c: Case, authPort: number): string {
  return `http://127.0.0.1:${authPort}${authPath(c)}`;
}

interface Rendering {
  gen: number;
  authPort: number;
  backendPort: number;
}

function nginxAuthLocation(c: Case, host: string, path: string, r: Rendering): string {
  return ingressNginxAuthLocation({
    path: authLocationPath(path),
    authUrl: authUrl(c, r.authPort),
    method: c.method,
    cache: { host, key: c.key, durations: c.duration.split(',') },
  });
}

function nginxLocation(c: Case, path: string, r: Rendering): string {
  const lines = [
    `auth_request ${authLocationPath(path)};`,
    'auth_request_set $auth_cookie $upstream_http_set_cookie;',
    'add_header Set-Cookie $auth_cookie;',
    // add_header here hides the http level's X-Gen (the bench's generation mark): repeated.
    `add_header X-Gen "${r.gen}" always;`,
    'proxy_set_header Host $host;',
  ];
  if (c.responseHeaders)
    lines.push(
      'auth_request_set $authHeader0 $upstream_http_x_auth_user;',
      "proxy_set_header 'X-Auth-User' $authHeader0;",
    );
  lines.push(`proxy_pass http://127.0.0.1:${r.backendPort};`);
  const where = path === '/' ? '/' : `${path}/`;
  return `  location ${where} {\n    ${lines.join('\n    ')}\n  }`;
}

function nginxServer(c: Case, host: string, port: number, r: Rendering): string {
  return [
    `server { listen 127.0.0.1:${port}; server_name ${host};`,
    '  set $pass_access_scheme $scheme;',
    ...PATHS.flatMap((p) => [nginxAuthLocation(c, host, p, r), nginxLocation(c, p, r)]),
    '}',
  ].join('\n');
}

function annotationsOf(c: Case, authPort: number): Record<string, string> {
  const a: Record<string, string> = {
    'auth-url': authUrl(c, authPort),
    'auth-cache-key': c.key,
    'auth-cache-duration': c.duration,
  };
  if (c.method !== null) a['auth-method'] = c.method;
  if (c.responseHeaders) a['auth-response-headers'] = 'X-Auth-User';
  return a;
}

function globalConfigMap(c: Case, authPort: number): Record<string, string> {
  const data: Record<string, string> = {
    'global-auth-url': authUrl(c, authPort),
    'global-auth-cache-key': c.key,
    'global-auth-cache-duration': c.duration,
  };
  if (c.method !== null) data['global-auth-method'] = c.method;
  if (c.responseHeaders) data['global-auth-response-headers'] = 'X-Auth-User';
  return data;
}

// ---------------------------------------------------------------------------------------------
// Probes.

interface Probe {
  from: string;
  target: string;
  lines: string[];
}

interface Outcome {
  gen: string | null;
  status: number;
  fields: Record<string, string>;
}

let probeCounter = 0;

function headerValues(head: string, name: string): string {
  const values = head
    .split('\r\n')
    .filter((line) => line.toLowerCase().startsWith(`${name}:`))
    .map((line) => line.slice(name.length + 1).trim());
  return values.length === 0 ? '(absent)' : values.join(' | ');
}

/** The answer to `probe`, whether the auth service was asked for it, what the backend got. */
async function send(port: number, probe: Probe, host: string): Promise<Outcome> {
  const id = `q${++probeCounter}`;
  const head = [
    `GET ${probe.target} HTTP/1.1`,
    `Host: ${host}`,
    `X-Probe: ${id}`,
    ...probe.lines,
    'Connection: close',
    '',
    '',
  ].join('\r\n');
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: probe.from });
  let raw: Buffer;
  try {
    conn.socket.write(head);
    raw = await conn.until((received) => received.includes('\r\n\r\n'), 10_000);
  } catch {
    raw = conn.received();
  } finally {
    conn.destroy();
  }
  const text = raw.toString('latin1');
  const responseHead = text.slice(0, Math.max(text.indexOf('\r\n\r\n'), 0) + 2);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(responseHead)?.[1] ?? 0);
  const gen = /\r\nx-gen: (\d+)/i.exec(responseHead)?.[1] ?? null;
  const fields = {
    status: String(status),
    'auth asked': String(authAsked.get(id) ?? 0),
    'backend x-auth-user': backendUser.get(id) ?? '(not reached)',
    'client www-authenticate': headerValues(responseHead, 'www-authenticate'),
    'client set-cookie': headerValues(responseHead, 'set-cookie'),
  };
  authAsked.delete(id);
  backendUser.delete(id);
  return { gen, status, fields };
}

function probeOf(r: Req): Probe {
  return {
    from: `127.0.0.2${r.from}`,
    target: r.target,
    lines: [...CREDS[r.cred], ...(r.forge ? ['X-Auth-User: mallory'] : [])],
  };
}

// ---------------------------------------------------------------------------------------------
// Judging.

type Bench = Differential<Probe, Outcome> & {
  gen: number;
  /** The hosts of the configured cases: the check's host -> its hosts a and b in this generation. */
  hosts: Map<string, { a: string; b: string }>;
};

interface Step {
  c: Case;
  index: number;
  req: Req;
  ngx: Outcome;
  kip: Outcome;
}

interface Allowed {
  name: string;
  when: (step: Step) => boolean;
  reason: string;
}

const asked = (o: Outcome) => o.fields['auth asked'] !== '0';

/** Credentials whose Authorization is Basic with a user nginx's ngx_decode_base64 reads ($remote_user). */
const BASIC_USER: readonly Cred[] = [
  'alice',
  'alice wrong password',
  'alice junk after padding',
  'alice lower-case scheme',
  'alice without padding',
];

/**
 * Whether the key names something of the client and all of it is empty for `req`: keepip then neither
 * answers from its cache nor keeps the answer (a cookie spelling whose `$cookie_x` is in doubt counts as
 * empty: that only makes keepip's asking more expected, never an allow).
 */
function credentialsEmpty(c: Case, req: Req): boolean {
  const empty: Record<string, boolean> = {
    $remote_user: !BASIC_USER.includes(req.cred),
    $http_authorization: !CREDS[req.cred].some((line) => line.startsWith('Authorization:')),
    $cookie_x: !['carol', 'carol and a second x', 'carol second cookie', 'carol on a second line'].includes(
      req.cred,
    ),
    $arg_x: !/[?&]x=[^&]/.test(req.target),
  };
  const named = Object.keys(empty).filter((name) => c.key.includes(name));
  return named.length > 0 && named.every((name) => empty[name]);
}

/**
 * Differences keepip may show, each stricter than nginx or documented, and checked to be still seen
 * (the ALLOWED test): a difference one of them covers ends its sequence without failing.
 */
const ALLOWED: Allowed[] = [
  {
    name: 'empty-credentials',
    when: ({ c, req, kip, ngx }) => credentialsEmpty(c, req) && asked(kip) && !asked(ngx),
    reason:
      'docs/ingress-nginx-compat.md (auth-cache-key): "A request for which every such variable of the key is empty is neither answered from the cache nor kept in it (nginx keeps it under the empty key …)": keepip asks the auth service where nginx answers from the entry every client without credentials shares (stricter)',
  },
  {
    name: 'arg-in-key',
    when: ({ c, kip, ngx }) => c.key.includes('$arg_x') && asked(kip) && !asked(ngx),
    reason:
      "nginx's auth_request subrequest has no arguments of its own (ngx_http_subrequest gets args NULL), so in ingress-nginx's auth location $arg_x (and $args) is empty: a key with $arg_x is one entry for every argument, and the next request rides on the first's answer. keepip expands the client's argument: a finer key, so it asks the auth service where nginx answers from another request's entry (stricter; not in the docs)",
  },
  {
    name: 'nginx-1.23-header-order',
    when: ({ c, kip, ngx }) =>
      USERS.some((u) => c.answers[u].extra === 'E' || c.answers[u].extra === 'F') &&
      !asked(kip) &&
      asked(ngx),
    reason:
      'docs/ingress-nginx-compat.md: "the answer\'s own X-Accel-Expires, then Cache-Control s-maxage/max-age, then Expires set the time". nginx 1.22 lets an earlier header close the cache for good (a past Expires before max-age=600; no-store before X-Accel-Expires: 600); nginx 1.23.0 made the order irrelevant (commit 8df3ad13c "Upstream: fixed X-Accel-Expires/Cache-Control/Expires handling", ticket #964), and ingress-nginx ships nginx 1.27.1 (images/nginx/rootfs/build.sh): keepip keeps the answer as that nginx does, for the time the auth service itself gave',
  },
];

/** The step's differing fields, with why keepip is less safe where it is; null when they agree. */
function differenceOf({ ngx, kip }: Step): string | null {
  const lines: string[] = [];
  for (const field of Object.keys(ngx.fields)) {
    const [n, k] = [ngx.fields[field], kip.fields[field]];
    if (n === k) continue;
    let unsafe = '';
    if (field === 'backend x-auth-user' && n === '(not reached)')
      unsafe = `keepip let in a request nginx refused${asked(kip) ? '' : ', from its cache'}`;
    else if (field === 'backend x-auth-user' && k !== '(not reached)')
      unsafe = `keepip passed an identity nginx did not${asked(kip) ? '' : ', from its cache'}`;
    lines.push(`      ${field}: nginx ${n}, keepip ${k}${unsafe === '' ? '' : `  <-- LESS SAFE: ${unsafe}`}`);
  }
  return lines.length === 0 ? null : lines.join('\n');
}

/** Counts of what nginx answered in the generated run, so the run is not vacuous. */
const seenKinds = new Map<string, number>();
let comparedSteps = 0;
let plannedSteps = 0;

function noteKind(ngx: Outcome): void {
  const status = ngx.fields.status;
  const kind = `${asked(ngx) ? 'asked' : 'cached'} ${status}`;
  seenKinds.set(kind, (seenKinds.get(kind) ?? 0) + 1);
  const user = ngx.fields['backend x-auth-user'];
  if (!asked(ngx) && user !== '(absent)' && user !== '(not reached)' && user !== 'mallory')
    seenKinds.set('cached identity', (seenKinds.get('cached identity') ?? 0) + 1);
}

interface SequenceResult {
  /** The first difference no ALLOWED entry covers, described; null: none. */
  difference: string | null;
  /** The ALLOWED entry that ended the comparison, and at which request. */
  allowed: { name: string; index: number } | null;
  compared: number;
  /** Whether nginx asked the auth service, request by request (up to where the comparison ended). */
  nginxAsked: boolean[];
}

function hostName(bench: Bench, host: string, which: Req['host']): string {
  const names = bench.hosts.get(host);
  assert.ok(names !== undefined, `no configured case on ${host}`);
  if (which === 'b') return names.b;
  return which === 'A' ? names.a.toUpperCase() : which === 'a.' ? `${names.a}.` : names.a;
}

/** Runs the case's requests in order against both, up to the first difference. */
async function runSequence(bench: Bench, c: Case, host: string): Promise<SequenceResult> {
  plannedSteps += c.requests.length;
  const nginxAsked: boolean[] = [];
  for (const [index, req] of c.requests.entries()) {
    const probe = probeOf(req);
    const name = hostName(bench, host, req.host);
    const [ngx, kip] = await Promise.all([bench.askNginx(probe, name), bench.askKeepip(probe, name)]);
    const step: Step = { c, index, req, ngx, kip };
    noteKind(ngx);
    nginxAsked.push(asked(ngx));
    const diff = differenceOf(step);
    if (diff === null) {
      comparedSteps++;
      continue;
    }
    const allowed = ALLOWED.find((a) => a.when(step));
    if (allowed !== undefined) {
      return { difference: null, allowed: { name: allowed.name, index }, compared: index, nginxAsked };
    }
    const before = c.requests
      .slice(0, index)
      .map((r, i) => `    ${i + 1}. ${describeReq(r)}: the same answer`)
      .join('\n');
    return {
      difference: `${describeCase(c)}\n${before}${before === '' ? '' : '\n'}    ${index + 1}. ${describeReq(req)}:\n${diff}`,
      allowed: null,
      compared: index,
      nginxAsked,
    };
  }
  return { difference: null, allowed: null, compared: c.requests.length, nginxAsked };
}

// ---------------------------------------------------------------------------------------------
// Configuring both.

/** keepip's topology: case i's Ingresses `c<i>-a` and `c<i>-b` on its two hosts, both paths. */
function topologyFor(
  bench: Bench,
  cases: readonly Case[],
  hosts: readonly string[],
  global: boolean,
): Topology {
  const authPort = bench.backends.get('auth')!;
  const objects: K8sObject[] = [
    ...serviceWithEndpoints({ name: 'svc-p0', ports: [bench.backends.get('p0')!] }),
  ];
  if (global) objects.push(controllerConfigMap(globalConfigMap(cases[0]!, authPort)));
  cases.forEach((c, i) => {
    const names = bench.hosts.get(hosts[i]!)!;
    for (const which of ['a', 'b'] as const)
      objects.push(
        ingress({
          name: `c${i}-${which}`,
          host: names[which],
          annotations: global ? {} : annotationsOf(c, authPort),
          paths: PATHS.map((path) => ({ path, service: 'svc-p0', port: 80 })),
        }),
      );
  });
  return topologyOf(objects);
}

/**
 * Configures case i on fresh hosts `a.g<gen>.<hosts[i]>` and `b.g<gen>.<hosts[i]>`: nginx's key has no
 * auth-url, and neither cache forgets across reloads, so a host is never used by two generations.
 */
async function configure(
  bench: Bench,
  cases: readonly Case[],
  hosts: readonly string[],
  global = false,
): Promise<void> {
  const gen = ++bench.gen;
  bench.hosts.clear();
  for (const host of hosts) bench.hosts.set(host, { a: `a.g${gen}.${host}`, b: `b.g${gen}.${host}` });
  const r: Rendering = {
    gen,
    authPort: bench.backends.get('auth')!,
    backendPort: bench.backends.get('p0')!,
  };
  const topology = topologyFor(bench, cases, hosts, global);
  // AUTH_CACHE_SHARED: warned exactly for the keys that name nothing of the client.
  if (!global)
    cases.forEach((c, i) => {
      const warned = topology.issues.some(
        (issue) => issue.code === 'AUTH_CACHE_SHARED' && issue.message.includes(`c${i}-a`),
      );
      assert.equal(
        warned,
        !CLIENT_VARIABLE.test(c.key),
        `AUTH_CACHE_SHARED for auth-cache-key ${JSON.stringify(c.key)}`,
      );
    });
  await bench.configure(
    (port) => [
      `proxy_cache_path ${bench.nginx.dir}/auth-cache levels=1:2 keys_zone=auth_cache:10m max_size=128m inactive=30m use_temp_path=off;`,
      ...cases.flatMap((c, i) => {
        const names = bench.hosts.get(hosts[i]!)!;
        return [nginxServer(c, names.a, port, r), nginxServer(c, names.b, port, r)];
      }),
    ],
    topology,
  );
}

// ---------------------------------------------------------------------------------------------
// Generated cases.

function weighted<T>(...entries: [number, T][]): fc.Arbitrary<T> {
  return fc.oneof(...entries.map(([weight, value]) => ({ weight, arbitrary: fc.constant(value) })));
}

function answerArb(usual: Status): fc.Arbitrary<Answer> {
  return fc.record({
    status: fc.oneof(
      { weight: 3, arbitrary: fc.constant(usual) },
      { weight: 2, arbitrary: fc.constantFrom<Status>(200, 202, 302, 401, 403, 500) },
    ),
    extra: fc.oneof(
      { weight: 5, arbitrary: fc.constant<Extra>('') },
      { weight: 4, arbitrary: fc.constantFrom<Extra>(...EXTRAS) },
    ),
  });
}

// The usual credentials often, so that answers are asked again; each near miss now and then.
const credArb: fc.Arbitrary<Cred> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Cred>('alice', 'none', 'bob', 'carol') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      ...(Object.keys(CREDS) as Cred[]).filter((c) => !['alice', 'none', 'bob', 'carol'].includes(c)),
    ),
  },
);

const reqArb: fc.Arbitrary<Req> = fc.record({
  from: fc.integer({ min: 1, max: 4 }),
  cred: credArb,
  host: weighted<Req['host']>([5, 'a'], [1, 'A'], [1, 'a.'], [2, 'b']),
  target: fc.oneof(
    { weight: 3, arbitrary: fc.constant<string>('/') },
    { weight: 2, arbitrary: fc.constantFrom(...TARGETS) },
  ),
  forge: fc.boolean(),
});

const keyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KEY_VARIABLES).map((v) => v as string) },
  {
    weight: 2,
    arbitrary: fc
      .uniqueArray(fc.constantFrom(...KEY_VARIABLES), { minLength: 2, maxLength: 2 })
      .map((vs) => vs.join('')),
  },
  { weight: 1, arbitrary: fc.constant('static') },
);

const caseArb: fc.Arbitrary<Case> = fc.record({
  key: keyArb,
  duration: fc.constantFrom(...DURATIONS),
  responseHeaders: fc.boolean(),
  method: weighted<Case['method']>([2, null], [1, 'GET'], [1, 'POST']),
  answers: fc.record({
    alice: answerArb(200),
    bob: answerArb(200),
    carol: answerArb(200),
    anon: answerArb(401),
  }),
  requests: fc.array(reqArb, { minLength: 5, maxLength: 10 }),
});

// ---------------------------------------------------------------------------------------------
// Fixed cases.

const req = (cred: Cred, from = 1, host: Req['host'] = 'a', target = '/'): Req => ({
  from,
  cred,
  host,
  target,
  forge: false,
});

function fixed(features: Partial<Case>): Case {
  return {
    key: '$http_authorization',
    duration: '200 202 401 5m',
    responseHeaders: true,
    method: null,
    answers: {
      alice: { status: 200, extra: '' },
      bob: { status: 200, extra: '' },
      carol: { status: 200, extra: '' },
      anon: { status: 401, extra: '' },
    },
    requests: [],
    ...features,
  };
}

/**
 * Parity with nginx that the docs claim, each shown by a sequence, with the requests nginx asks the
 * auth service for (T) or answers from its cache (F), so that each claim is shown by nginx itself.
 */
const PARITY: { name: string; c: Case; asks: string }[] = [
  {
    name: "a key naming nothing of the client: the next client rides on the first one's 200, identity included, as in nginx (documented, AUTH_CACHE_SHARED)",
    c: fixed({
      key: 'static',
      requests: [req('alice', 1), req('none', 2), req('bob', 3, 'b'), req('none', 4, 'b')],
    }),
    asks: 'TFTF',
  },
  {
    name: 'two hosts and two locations with the same key text and auth-url keep apart; the same credential is answered from the cache, with its identity',
    c: fixed({
      key: '$remote_user$http_authorization',
      requests: [
        req('alice', 1, 'a', '/'),
        req('alice', 2, 'a', '/x?x=1'),
        req('alice', 3, 'A', '/'),
        req('alice', 4, 'b', '/'),
        req('alice', 1, 'a', '/api/y'),
        req('alice wrong password', 2, 'a', '/'),
        req('bob', 3, 'a', '/'),
        req('bob', 4, 'b', '/api/y'),
      ],
    }),
    asks: 'TFFTTTTT',
  },
  {
    name: "a cached 401 locks out the next client with the same wrong credentials; a 403 and a 500 are not cached unless listed or the answer says so (max-age), and that 403 is shared by the cookie spellings nginx's $cookie_x reads alike",
    c: fixed({
      key: '$http_authorization$cookie_x',
      answers: {
        alice: { status: 403, extra: '' },
        bob: { status: 500, extra: '' },
        carol: { status: 403, extra: 'm' },
        anon: { status: 401, extra: '' },
      },
      requests: [
        req('alice wrong password', 1),
        req('alice wrong password', 2),
        req('bob', 3),
        req('bob', 4),
        req('alice', 1),
        req('alice', 2),
        req('carol', 3),
        req('carol second cookie', 4),
        req('carol upper-case name', 1),
        req('carol on a second line', 2),
      ],
    }),
    asks: 'TFTTTTTFFT',
  },
  {
    name: 'auth-method POST and "401 30s": a 200 is not kept, a 401 is, and the cookie spellings nginx\'s $cookie_x reads alike share it',
    c: fixed({
      key: '$cookie_x',
      duration: '401 30s',
      method: 'POST',
      answers: {
        alice: { status: 200, extra: '' },
        bob: { status: 200, extra: '' },
        carol: { status: 401, extra: '' },
        anon: { status: 401, extra: '' },
      },
      requests: [
        req('alice', 1),
        req('alice', 2),
        req('carol', 3),
        req('carol and a second x', 4),
        req('bob', 1),
      ],
    }),
    asks: 'TTTFT',
  },
];

/**
 * One case per header that keeps an answer out of the cache, and three that do not (none, max-age=600,
 * s-maxage=600 with max-age=0):
 * alice's 200, then two anonymous requests (that would ride on it), then alice again. The Vary fields
 * but `*` are not here: nginx keys the entry by them (the FOUND cases).
 */
const KEEP_OUT: { extra: Extra; kept: boolean; c: Case }[] = (
  ['', 'm', 'S', 'c', 'n', 'o', 'p', 'z', 'v', 'x', 'e'] as Extra[]
).map((extra) => ({
  extra,
  kept: extra === '' || extra === 'm' || extra === 'S',
  c: fixed({
    key: 'static',
    answers: {
      alice: { status: 200, extra },
      bob: { status: 200, extra: '' },
      carol: { status: 200, extra: '' },
      anon: { status: 401, extra },
    },
    requests: [req('alice', 1), req('none', 2), req('none', 3), req('alice', 4)],
  }),
}));

/** The sequence each ALLOWED entry is seen in, and at which request. */
const ALLOWED_CASES: { name: string; index: number; c: Case }[] = [
  {
    name: 'empty-credentials',
    index: 1,
    c: fixed({ key: '$http_authorization', requests: [req('carol', 1), req('none', 2)] }),
  },
  {
    name: 'arg-in-key',
    index: 1,
    c: fixed({ key: '$arg_x', requests: [req('alice', 1, 'a', '/x?x=1'), req('none', 2, 'a', '/x?x=2')] }),
  },
  ...(['E', 'F'] as const).map((extra) => ({
    name: 'nginx-1.23-header-order',
    index: 1,
    c: fixed({
      answers: { ...fixed({}).answers, alice: { status: 200 as const, extra } },
      requests: [req('alice', 1), req('alice', 2)],
    }),
  })),
];

/**
 * What this differential found, since mended; each test asserts nginx's (safe) answer. It was:
 * - Vary: nginx (since 1.7.7) keeps an answer with `Vary: <fields>` for the values of those request
 *   fields (ngx_http_file_cache_vary) and asks again for other values; keepip's authCacheTtl
 *   (src/gateway/access/external-auth.ts) honoured only a lone `Vary: *` and served the answer to any
 *   request with the same key, so an auth service that reads a session cookie and says `Vary: Cookie`
 *   (Django's does) lets every client without that cookie in under the key `$http_authorization`.
 * - Repeated lines: nginx reads each Cache-Control, Vary and X-Accel-Expires line as it comes; Node
 *   joins repeated lines with ", " (res.headers), and authCacheTtl read the joined text: the first
 *   max-age of "max-age=600, max-age=0", "Accept, *" that is not "*", "0, 600" that is no number.
 * - $remote_user: parseBasicCredentials (src/gateway/access/basic-auth.ts) decoded with Buffer.from,
 *   which takes base64 of 4n+1 characters (nginx's ngx_decode_base64 refuses it: no user) and refused
 *   bytes after the padding (nginx stops at the first "=": a user): each way the key differs from
 *   nginx's, and the request rides on another client's cached answer.
 */
const FOUND: { name: string; c: Case }[] = [
  {
    name: "an auth answer with Vary: Cookie is not served to a request whose Cookie differs (nginx's proxy cache keys it by the Vary fields)",
    c: fixed({
      key: '$http_authorization',
      answers: {
        alice: { status: 200, extra: '' },
        bob: { status: 200, extra: '' },
        carol: { status: 200, extra: 'k' },
        anon: { status: 401, extra: '' },
      },
      requests: [req('carol', 1), req('none', 2)],
    }),
  },
  {
    name: "an auth answer with Vary: Authorization is not served to a request with other credentials: bob's 403 stays bob's, never alice's cached 200",
    c: fixed({
      key: '$cookie_x',
      answers: {
        alice: { status: 200, extra: 'a' },
        bob: { status: 403, extra: '' },
        carol: { status: 200, extra: '' },
        anon: { status: 401, extra: '' },
      },
      requests: [req('alice', 1), req('bob', 2)],
    }),
  },
  {
    name: "auth-cache-key $remote_user: Basic credentials whose base64 nginx refuses (4n+1 characters) are no user, so they never ride on alice's cached 200",
    c: fixed({ key: '$remote_user', requests: [req('alice', 1), req('alice base64 4n+1', 2)] }),
  },
  ...(
    [
      ['M', 'Cache-Control: max-age=600 then a second line Cache-Control: max-age=0'],
      ['V', 'Vary: Accept then a second line Vary: *'],
      ['X', 'X-Accel-Expires: 0 then a second line X-Accel-Expires: 600'],
    ] as const
  ).map(([extra, text]) => ({
    name: `an auth answer with ${text} is not cached, as nginx reads each line: bob never rides on alice's 200`,
    c: fixed({
      key: '$cookie_x',
      answers: {
        ...fixed({}).answers,
        alice: { status: 200 as const, extra },
        bob: { status: 403 as const, extra: '' as const },
      },
      requests: [req('alice', 1), req('bob', 2)],
    }),
  })),
  {
    name: 'auth-cache-key $remote_user: Basic credentials with bytes after the padding are user alice as nginx reads them, so they never ride on the cached 200 of a client without Basic credentials',
    c: fixed({
      key: '$remote_user',
      requests: [req('bob', 1), req('alice junk after padding', 2)],
    }),
  },
];

const GLOBAL_CASE = fixed({
  key: '$http_authorization',
  duration: '200 1m',
  method: 'GET',
  requests: [
    req('alice', 1, 'a', '/'),
    req('alice', 2, 'a', '/'),
    req('bob', 3, 'a', '/'),
    req('alice', 4, 'b', '/'),
    req('none', 1, 'b', '/'),
    req('alice', 2, 'a', '/api/y'),
    req('bob', 3, 'a', '/x?x=1'),
  ],
});

// ---------------------------------------------------------------------------------------------

describe("auth-cache-key against nginx's proxy cache in ingress-nginx's auth location (real nginx 1.22)", () => {
  let bench: Bench;
  const fixedCases = [
    ...PARITY.map((p) => p.c),
    ...KEEP_OUT.map((k) => k.c),
    ...ALLOWED_CASES.map((a) => a.c),
    ...FOUND.map((f) => f.c),
  ];
  const fixedHost = (c: Case) => `f${fixedCases.indexOf(c)}.test`;

  before(async () => {
    const differential = await startDifferential<Probe, Outcome>({
      ids: ['p0', 'auth'],
      handler: backendHandler,
      send,
      genProbe: { from: '127.0.0.1', target: '/__gen', lines: [] },
    });
    bench = Object.assign(differential, { gen: 0, hosts: new Map<string, { a: string; b: string }>() });
    // The fixed cases, all at once (one reload).
    await configure(bench, fixedCases, fixedCases.map(fixedHost));
  });

  after(async () => {
    await bench?.close();
  });

  for (const parity of PARITY) {
    it(parity.name, async () => {
      const result = await runSequence(bench, parity.c, fixedHost(parity.c));
      assert.equal(result.difference, null, result.difference ?? '');
      assert.equal(result.allowed, null);
      assert.equal(
        result.nginxAsked.map((a) => (a ? 'T' : 'F')).join(''),
        parity.asks,
        'what nginx asked for',
      );
    });
  }

  it('Set-Cookie, no-store, no-cache, private, max-age=0, Vary: *, X-Accel-Expires: 0, a past Expires keep an answer out of the cache as in nginx; max-age=600 and s-maxage=600 keep it', async () => {
    const results = await Promise.all(KEEP_OUT.map(({ c }) => runSequence(bench, c, fixedHost(c))));
    const differences = results.flatMap((r) => (r.difference === null ? [] : [r.difference]));
    assert.deepEqual(differences, []);
    // nginx itself does what the docs say (so the comparison means something): kept, only alice's
    // first request asks; kept out, every request does.
    assert.deepEqual(
      results.map((r, i) => ({ extra: KEEP_OUT[i]!.extra, allowed: r.allowed, asked: r.nginxAsked })),
      KEEP_OUT.map(({ extra, kept }) => ({
        extra,
        allowed: null,
        asked: kept ? [true, false, false, false] : [true, true, true, true],
      })),
    );
  });

  it('each ALLOWED difference is still what is seen, where it is expected', async () => {
    for (const expected of ALLOWED_CASES) {
      const result = await runSequence(bench, expected.c, fixedHost(expected.c));
      assert.equal(result.difference, null, result.difference ?? '');
      assert.deepEqual(result.allowed, { name: expected.name, index: expected.index }, expected.name);
    }
    assert.deepEqual(
      ALLOWED.map((a) => a.name).sort(),
      [...new Set(ALLOWED_CASES.map((a) => a.name))].sort(),
      'every ALLOWED entry has its case',
    );
  });

  for (const found of FOUND) {
    it(found.name, async () => {
      const result = await runSequence(bench, found.c, fixedHost(found.c));
      assert.equal(result.difference, null, result.difference ?? '');
    });
  }

  it('global-auth-url with global-auth-cache-key / -duration: cached per host and location as the annotations', async () => {
    await configure(bench, [GLOBAL_CASE], ['global.test'], true);
    const result = await runSequence(bench, GLOBAL_CASE, 'global.test');
    assert.equal(result.difference, null, result.difference ?? '');
    assert.equal(result.allowed, null);
    // Asked: alice, bob, alice on host b, anyone on b, alice on /api; from the cache: alice again, bob again.
    assert.equal(result.nginxAsked.map((a) => (a ? 'T' : 'F')).join(''), 'TFTTTTF', 'what nginx asked for');
  });

  it('generated keys, durations and auth answers, request sequences from several clients: the same answers, the same asks, the same identities', async () => {
    seenKinds.clear();
    comparedSteps = 0;
    plannedSteps = 0;
    await checkGenerated<Case>({
      arb: caseArb,
      runs: Number(process.env.AUTH_CACHE_RUNS ?? 48),
      seedVariable: 'AUTH_CACHE_SEED',
      defaultSeed: 20261208,
      configure: (cases, hosts) => configure(bench, cases, hosts),
      differences: async (c, host) => {
        const result = await runSequence(bench, c, host);
        return result.difference === null ? [] : [result.difference];
      },
      assertAlone: async (c) => {
        await configure(bench, [c], ['h.test']);
        const result = await runSequence(bench, c, 'h.test');
        assert.equal(result.difference, null, result.difference ?? '');
      },
      describe: describeCase,
      shrinkTimeLimitMs: 2_000,
    });
    for (const kind of [
      'asked 200',
      'asked 401',
      'asked 403',
      'asked 500',
      'cached 200',
      'cached 401',
      'cached identity',
    ])
      assert.ok(
        (seenKinds.get(kind) ?? 0) > 0,
        `nginx never answered "${kind}" in the run: ${JSON.stringify([...seenKinds])}`,
      );
    assert.ok(
      comparedSteps >= plannedSteps / 2,
      `only ${comparedSteps} of ${plannedSteps} requests compared before an allowed difference`,
    );
  });
});
