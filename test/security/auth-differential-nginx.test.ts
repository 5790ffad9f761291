// External auth (auth-url and its companions) in keepip against real nginx 1.22 configured the way
// ingress-nginx's template renders the same annotations (rootfs/etc/nginx/template/nginx.tmpl, the
// mirror's HEAD): an internal `location = /_external-auth-<base64url(path)>-<pathType>` that proxies to
// the auth-url (no body, Content-Length "", X-Original-URL, X-Original-Method, X-Sent-From, X-Real-IP,
// X-Forwarded-For, X-Auth-Request-Redirect, with auth-method also X-Original-URI and X-Scheme, the
// auth-proxy-set-headers), and in the location `auth_request`, `auth_request_set $auth_cookie
// $upstream_http_set_cookie`, `add_header Set-Cookie $auth_cookie [always]`, one `auth_request_set
// $authHeaderN` + `proxy_set_header` per auth-response-headers name, and with auth-signin `error_page 401
// = @<sha1>` whose named location answers `return 302 <buildAuthSignURL>` with the cookie.
//
// Modelled apart from the template: ingress-nginx's `set_escape_uri $escaped_request_uri $request_uri`
// (ngx_set_misc, not built into this nginx) is a `map $request_uri` with the probes' targets escaped as
// set_escape_uri does (everything but ALPHA DIGIT - . _ ~ as %XX); `auth-keepalive` is left out (it
// switches ingress-nginx to a Lua subrequest); the ConfigMap's global-auth-url has a fixed case of its own.
//
// Each generated case is one host: an Ingress on `/` with a chosen set of auth annotations (maybe an
// allowlist, maybe `satisfy: any`), maybe a second Ingress on `/pub` without auth, and an auth service
// whose answers the case chooses (the auth-url's path names them: one for requests with credentials, one
// without). Probes: GET with and without credentials (a cookie, a bearer token), with a query string,
// with forged X-Original-*/X-Auth-Request-Redirect/X-Forwarded-*/auth-response-headers, from the
// allowlisted and another 127.x address, a POST with a body. Compared: the client's status, Location,
// WWW-Authenticate, Set-Cookie; which backend was reached and what it saw (the auth-response-headers, the
// forwarding headers, the body); what the auth service saw (method, target, Host, the headers ingress-nginx
// sets, the forgeable ones, the body). A difference where keepip is less safe is a finding (the test
// asserts nginx's answer); a stricter or documented one is in ALLOWED with its reason.
// AUTH_SEED=<n> (or `random`) explores other cases; the default seed is fixed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { controllerConfigMap, type K8sObject } from '../fixtures/gateway/manifests.ts';
import { openRaw } from '../helpers/net.ts';
import { ingressNginxAuthLocation } from '../helpers/nginx-auth.ts';
import {
  type CaseIngress,
  casesTopology,
  checkGenerated,
  type Differential,
  SINGLE_HOST,
  startDifferential,
} from '../helpers/nginx-differential.ts';

/** The allowlist's only address; STRANGER is outside it. */
const ALLOWED = '127.0.0.50';
const STRANGER = '127.0.0.51';
const STATUSES = [200, 201, 204, 301, 302, 400, 401, 403, 404, 500, 503] as const;
type Status = (typeof STATUSES)[number];
/**
 * What an auth answer carries besides its status: L a Location, W a WWW-Authenticate, C a Set-Cookie,
 * H the auth-response-headers (X-Auth-User, X-Auth-Email), B a body.
 */
type Flag = 'L' | 'W' | 'C' | 'H' | 'B';
const FLAGS: Flag[] = ['L', 'W', 'C', 'H', 'B'];
const SIGNINS = [
  'https://login.test/start',
  'https://login.test/start?app=$host',
  'https://login.test/start?rd=https://fixed.test/',
] as const;
const RESPONSE_HEADERS = ['X-Auth-User', 'X-Auth-Email'] as const;
const PROXY_SET_HEADERS = { 'X-Extra': 'fixed', 'X-Auth-Host': '$host' };

interface AnswerSpec {
  status: Status;
  flags: Flag[];
}

interface Case {
  /** The answer to a subrequest that carries credentials (session cookie or bearer token). */
  pass: AnswerSpec;
  /** The answer to one without. */
  fail: AnswerSpec;
  method: 'GET' | 'POST' | null;
  /** The auth-url carries `?u=$request_uri`. */
  urlVariable: boolean;
  signin: (typeof SIGNINS)[number] | null;
  redirectParam: 'next' | null;
  responseHeaders: (typeof RESPONSE_HEADERS)[number][];
  /** auth-request-redirect `https://app.test/after?x=1` (no variables: ingress-nginx's URLIsValidRegex; else X-Auth-Request-Redirect is $request_uri). */
  requestRedirect: boolean;
  alwaysSetCookie: boolean;
  proxySetHeaders: boolean;
  allow: boolean;
  any: boolean;
  /** A second Ingress on `/pub`, without auth (backend p1). */
  pub: boolean;
}

function specText(a: AnswerSpec): string {
  return `${a.status}${a.flags.join('')}`;
}

function authUrl(c: Case, authPort: number): string {
  const base = `http://127.0.0.1:${authPort}/auth/${specText(c.pass)}/${specText(c.fail)}`;
  return c.urlVariable ? `${base}?u=$request_uri` : base;
}

// ---------------------------------------------------------------------------------------------
// What the auth service and the backends saw, by the probe's X-Probe.

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The body's length, and how it was framed. */
  body: string;
}

const authSeen = new Map<string, Seen>();
const backendSeen = new Map<string, Seen & { id: string }>();

function record(req: http.IncomingMessage, done: (seen: Seen) => void): void {
  let length = 0;
  req.on('data', (chunk: Buffer) => {
    length += chunk.length;
  });
  req.on('end', () => {
    const framing = req.headers['transfer-encoding'] !== undefined ? 'chunked' : 'length';
    const body =
      length === 0 && req.headers['content-length'] === undefined && framing === 'length'
        ? 'none'
        : `${length} bytes`;
    done({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
  });
}

function parseSpec(text: string): AnswerSpec {
  const m = /^(\d{3})([LWCHB]*)$/.exec(text);
  return { status: Number(m?.[1] ?? 500) as Status, flags: [...(m?.[2] ?? '')] as Flag[] };
}

function credentialed(headers: http.IncomingHttpHeaders): boolean {
  return /(?:^|; )session=good(?:;|$)/.test(headers.cookie ?? '') || headers.authorization === 'Bearer good';
}

/** The auth service: `/auth/<pass>/<fail>` answers the spec the credentials pick. */
function authHandler(): http.RequestListener {
  return (req, res) => {
    record(req, (seen) => {
      const probe = req.headers['x-probe'];
      if (typeof probe === 'string') authSeen.set(probe, seen);
      const parts = new URL(req.url ?? '/', 'http://a').pathname.split('/');
      const spec = parseSpec((credentialed(req.headers) ? parts[2] : parts[3]) ?? '');
      const headers: Record<string, string> = {};
      if (spec.flags.includes('L')) headers.location = 'https://auth.test/login';
      if (spec.flags.includes('W')) headers['www-authenticate'] = 'Bearer realm="auth"';
      if (spec.flags.includes('C')) headers['set-cookie'] = `auth=${spec.status}; Path=/`;
      if (spec.flags.includes('H'))
        Object.assign(headers, { 'x-auth-user': 'alice', 'x-auth-email': 'alice@example.test' });
      const body = spec.flags.includes('B') && spec.status !== 204 ? 'auth service page' : '';
      if (spec.status !== 204) headers['content-length'] = String(body.length);
      res.writeHead(spec.status, headers);
      res.end(body);
    });
  };
}

function backendHandler(id: string): http.RequestListener {
  if (id === 'auth') return authHandler();
  return (req, res) => {
    record(req, (seen) => {
      const probe = req.headers['x-probe'];
      if (typeof probe === 'string') backendSeen.set(probe, { ...seen, id });
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': id.length, 'x-loc': id });
      res.end(id);
    });
  };
}

// ---------------------------------------------------------------------------------------------
// ingress-nginx's server for a case.

/** set_escape_uri (ngx_escape_uri, NGX_ESCAPE_URI_COMPONENT): all but ALPHA DIGIT - . _ ~ as %XX. */
function escapeUriComponent(text: string): string {
  return [...Buffer.from(text, 'latin1')]
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
}

/** ingress-nginx's buildAuthSignURL. */
function buildAuthSignURL(signin: string, param: string | null): string {
  const p = param ?? 'rd';
  const u = new URL(signin.replace('$host', 'HOST'));
  const tail = `${p}=$pass_access_scheme://$http_host$escaped_request_uri`;
  if ([...u.searchParams].length === 0) return `${signin}?${tail}`;
  if ((u.searchParams.get(p) ?? '') !== '') return signin;
  return `${signin}&${tail}`;
}

const AUTH_LOCATION = `/_external-auth-${Buffer.from('/').toString('base64url')}-Prefix`;

function authLocation(c: Case, authPort: number): string {
  return ingressNginxAuthLocation({
    path: AUTH_LOCATION,
    authUrl: authUrl(c, authPort),
    method: c.method,
    ...(c.requestRedirect ? { requestRedirect: 'https://app.test/after?x=1' } : {}),
    ...(c.proxySetHeaders
      ? {
          proxySetHeaders: Object.entries(PROXY_SET_HEADERS)
            .map(([k, v]) => [k, v] as const)
            .sort(),
        }
      : {}),
  });
}

function signinName(c: Case): string {
  return `@${createHash('sha1').update(`/${c.signin}`).digest('hex')}`;
}

/**
 * The backend-facing headers ingress-nginx sets in every location (those compared here; X-Original-URI
 * only with proxy-add-original-uri-header, false by default: the client's passes).
 */
const UPSTREAM_HEADERS = [
  'proxy_set_header Host $host;',
  'proxy_set_header X-Real-IP $remote_addr;',
  'proxy_set_header X-Forwarded-For $remote_addr;',
];

function mainLocation(c: Case, gen: number, backendPort: number): string {
  const lines: string[] = [];
  if (c.allow) lines.push(`allow ${ALLOWED}/32;`, 'deny all;');
  lines.push(
    `auth_request ${AUTH_LOCATION};`,
    'auth_request_set $auth_cookie $upstream_http_set_cookie;',
    `add_header Set-Cookie $auth_cookie${c.alwaysSetCookie ? ' always' : ''};`,
    // add_header here hides the http level's X-Gen (the bench's generation mark): repeated.
    `add_header X-Gen "${gen}" always;`,
    ...UPSTREAM_HEADERS,
  );
  c.responseHeaders.forEach((h, i) => {
    lines.push(
      `auth_request_set $authHeader${i} $upstream_http_${h.toLowerCase().replaceAll('-', '_')};`,
      `proxy_set_header '${h}' $authHeader${i};`,
    );
  });
  if (c.signin !== null) lines.push(`error_page 401 = ${signinName(c)};`);
  if (c.any) lines.push('satisfy any;');
  lines.push(`proxy_pass http://127.0.0.1:${backendPort};`);
  return `  location / {\n    ${lines.join('\n    ')}\n  }`;
}

function nginxServer(c: Case, host: string, port: number, gen: number, ports: ReadonlyMap<string, number>) {
  const parts = [
    `server { listen 127.0.0.1:${port}; server_name ${host};`,
    '  set $pass_access_scheme $scheme;',
    authLocation(c, ports.get('auth')!),
  ];
  if (c.signin !== null)
    parts.push(
      `  location ${signinName(c)} { internal; add_header Set-Cookie $auth_cookie; add_header X-Gen "${gen}" always;` +
        ` return 302 ${buildAuthSignURL(c.signin, c.redirectParam)}; }`,
    );
  if (c.pub) {
    const pub = `${UPSTREAM_HEADERS.join(' ')} proxy_pass http://127.0.0.1:${ports.get('p1')};`;
    parts.push(`  location /pub/ { ${pub} }`, `  location = /pub { ${pub} }`);
  }
  parts.push(mainLocation(c, gen, ports.get('p0')!), '}');
  return parts.join('\n');
}

/** The stand-in for set_escape_uri: the probes' targets, escaped. */
function escapedRequestUriMap(): string {
  const entries = [...new Set(TARGETS)].map((t) => `  "${t}" "${escapeUriComponent(t)}";`);
  return `map $request_uri $escaped_request_uri {\n  default "UNMAPPED";\n${entries.join('\n')}\n}`;
}

// ---------------------------------------------------------------------------------------------
// The same for keepip.

function annotationsOf(c: Case, authPort: number): Record<string, string> {
  const a: Record<string, string> = { 'auth-url': authUrl(c, authPort) };
  if (c.method !== null) a['auth-method'] = c.method;
  if (c.signin !== null) a['auth-signin'] = c.signin;
  if (c.redirectParam !== null) a['auth-signin-redirect-param'] = c.redirectParam;
  if (c.responseHeaders.length > 0) a['auth-response-headers'] = c.responseHeaders.join(',');
  if (c.requestRedirect) a['auth-request-redirect'] = 'https://app.test/after?x=1';
  if (c.alwaysSetCookie) a['auth-always-set-cookie'] = 'true';
  if (c.proxySetHeaders) a['auth-proxy-set-headers'] = 'auth-headers';
  if (c.allow) a['allowlist-source-range'] = `${ALLOWED}/32`;
  if (c.any) a.satisfy = 'any';
  return a;
}

function keepipIngresses(c: Case, authPort: number): CaseIngress[] {
  const out: CaseIngress[] = [
    { annotations: annotationsOf(c, authPort), paths: [{ path: '/', service: 'svc-p0', port: 80 }] },
  ];
  if (c.pub) out.push({ annotations: {}, paths: [{ path: '/pub', service: 'svc-p1', port: 80 }] });
  return out;
}

const AUTH_HEADERS_CONFIGMAP: K8sObject = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'auth-headers', namespace: 'default' },
  data: PROXY_SET_HEADERS,
};

// ---------------------------------------------------------------------------------------------
// Probes.

type Cred = 'none' | 'cookie' | 'bearer';
interface Probe {
  target: string;
  from: string;
  method: 'GET' | 'POST';
  cred: Cred;
  forged: boolean;
}

const TARGETS = ['/', '/x/y?q=1&r=%2F', '/submit', '/pub/x', '/__gen'];
const FORGED: Record<string, string> = {
  'X-Original-URL': 'http://evil.test/admin',
  'X-Original-Method': 'DELETE',
  'X-Original-URI': '/admin',
  'X-Auth-Request-Redirect': 'https://evil.test/',
  'X-Forwarded-For': '6.6.6.6',
  'X-Real-IP': '6.6.6.6',
  'X-Forwarded-Host': 'evil.test',
  'X-Forwarded-Uri': '/admin',
  'X-Sent-From': 'evil',
  'X-Scheme': 'https',
  'X-Auth-User': 'mallory',
  'X-Auth-Email': 'mallory@evil.test',
};

function probesFor(c: Case): Probe[] {
  const out: Probe[] = [];
  for (const target of ['/', '/x/y?q=1&r=%2F'])
    for (const cred of ['none', 'cookie', 'bearer'] as const)
      for (const forged of [false, true]) out.push({ target, from: ALLOWED, method: 'GET', cred, forged });
  for (const cred of ['none', 'cookie'] as const) {
    out.push({ target: '/submit', from: ALLOWED, method: 'POST', cred, forged: false });
    if (c.allow) out.push({ target: '/x/y?q=1&r=%2F', from: STRANGER, method: 'GET', cred, forged: true });
  }
  if (c.pub) out.push({ target: '/pub/x', from: ALLOWED, method: 'GET', cred: 'none', forged: true });
  return out;
}

const POST_BODY = 'field=value&secret=body';

function rawRequest(probe: Probe, host: string, id: string): string {
  const lines = [`${probe.method} ${probe.target} HTTP/1.1`, `Host: ${host}`, `X-Probe: ${id}`];
  if (probe.cred === 'cookie') lines.push('Cookie: session=good; theme=dark');
  if (probe.cred === 'bearer') lines.push('Authorization: Bearer good');
  if (probe.forged) for (const [k, v] of Object.entries(FORGED)) lines.push(`${k}: ${v}`);
  if (probe.method === 'POST')
    lines.push('Content-Type: application/x-www-form-urlencoded', `Content-Length: ${POST_BODY.length}`);
  lines.push('Connection: close', '', probe.method === 'POST' ? POST_BODY : '');
  return lines.join('\r\n');
}

function describeProbe(p: Probe): string {
  const extras = [p.cred === 'none' ? 'no credentials' : `credentials (${p.cred})`];
  if (p.forged) extras.push('forged headers');
  return `${p.method} ${p.target} from ${p.from}, ${extras.join(', ')}`;
}

interface Outcome {
  gen: string | null;
  status: number;
  /** field -> value: what the comparison is on. */
  fields: Record<string, string>;
}

/** The values of `name` in a response head, joined. */
function headerValues(head: string, name: string): string {
  const values = head
    .split('\r\n')
    .slice(1)
    .filter((line) => line.toLowerCase().startsWith(`${name}:`))
    .map((line) => line.slice(name.length + 1).trim());
  return values.length === 0 ? '(absent)' : values.join(' | ');
}

const AUTH_FIELDS = [
  'host',
  'x-original-url',
  'x-original-method',
  'x-original-uri',
  'x-scheme',
  'x-sent-from',
  'x-real-ip',
  'x-forwarded-for',
  'x-auth-request-redirect',
  'x-forwarded-host',
  'x-forwarded-uri',
  'x-forwarded-proto',
  'cookie',
  'authorization',
  'x-auth-user',
  'x-extra',
  'x-auth-host',
  'content-length',
  'transfer-encoding',
];
const BACKEND_FIELDS = [
  'x-auth-user',
  'x-auth-email',
  'x-real-ip',
  'x-forwarded-for',
  'x-original-uri',
  'cookie',
  'authorization',
];

function outcomeOf(raw: Buffer, id: string): Outcome {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? '' : text.slice(0, end + 2);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const gen = /\r\nx-gen: (\d+)/i.exec(head)?.[1] ?? null;
  const fields: Record<string, string> = { 'client status': String(status) };
  for (const name of ['location', 'www-authenticate', 'set-cookie'])
    fields[`client ${name}`] = headerValues(head, name);
  const auth = authSeen.get(id);
  fields['auth called'] = auth === undefined ? 'no' : 'yes';
  if (auth !== undefined) {
    fields['auth method'] = auth.method;
    fields['auth target'] = auth.url;
    fields['auth body'] = auth.body;
    for (const name of AUTH_FIELDS) fields[`auth ${name}`] = String(auth.headers[name] ?? '(absent)');
  }
  const backend = backendSeen.get(id);
  fields.backend = backend?.id ?? 'none';
  if (backend !== undefined) {
    fields['backend body'] = backend.body;
    for (const name of BACKEND_FIELDS)
      fields[`backend ${name}`] = String(backend.headers[name] ?? '(absent)');
  }
  authSeen.delete(id);
  backendSeen.delete(id);
  return { gen, status, fields };
}

let probeCounter = 0;

/** The answer to `probe` and what the auth service and the backends saw of it. */
async function send(port: number, probe: Probe, host: string): Promise<Outcome> {
  const id = `p${++probeCounter}`;
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: probe.from });
  let raw: Buffer;
  try {
    conn.socket.write(rawRequest(probe, host, id));
    raw = await conn.until((received) => received.includes('\r\n\r\n'), 10_000);
  } catch {
    raw = conn.received();
  } finally {
    conn.destroy();
  }
  return outcomeOf(raw, id);
}

// ---------------------------------------------------------------------------------------------
// Judging the answers.

const FORGED_VALUES = Object.values(FORGED);

function forgedIn(value: string | undefined): boolean {
  return value !== undefined && FORGED_VALUES.some((forged) => value.includes(forged));
}

interface Allowed {
  /** The fields it covers. */
  field: RegExp;
  when: (probe: Probe, ngx: string | undefined, kip: string | undefined) => boolean;
  reason: string;
}

/** keepip's stricter or documented answers: a difference these cover is not reported. */
const ALLOWED_DIFFERENCES: Allowed[] = [
  {
    field: /^auth x-forwarded-(host|uri)$/,
    when: (probe, ngx, kip) => probe.forged && forgedIn(ngx) && kip === '(absent)',
    reason:
      "docs/ingress-nginx-compat.md difference 12: the auth subrequest never passes the client's X-Forwarded-Host/-Uri (ingress-nginx passes them from anyone); keepip stricter",
  },
  {
    // Without auth-method ingress-nginx sets neither: nginx passes the client's.
    field: /^auth x-(original-uri|scheme)$/,
    when: (probe, ngx, kip) => probe.forged && forgedIn(ngx) && kip === '(absent)',
    reason:
      'docs/ingress-nginx-compat.md difference 12 ("and the like"): a client\'s X-Original-URI / X-Scheme never reach the auth service (ingress-nginx sets them only with auth-method, else passes the client\'s); keepip stricter',
  },
  {
    field: /^auth (body|content-length)$/,
    when: (_probe, ngx, kip) => (ngx === 'none' && kip === '0 bytes') || (ngx === '(absent)' && kip === '0'),
    reason:
      'an auth-method with a body (POST): nginx sends no Content-Length (proxy_set_header Content-Length ""), keepip `Content-Length: 0`; no body either way',
  },
  {
    field: /^client www-authenticate$/,
    when: (_probe, ngx, kip) => kip === '(absent)' && ngx !== '(absent)',
    reason:
      "auth-signin: nginx's 302 to the sign-in page keeps the auth service's WWW-Authenticate (copied for the 401 before error_page); keepip's 302 has none: a challenge on a redirect means nothing to a client, keepip shows less",
  },
];

function allowed(
  field: string,
  probe: Probe,
  ngx: string | undefined,
  kip: string | undefined,
): Allowed | null {
  return ALLOWED_DIFFERENCES.find((a) => a.field.test(field) && a.when(probe, ngx, kip)) ?? null;
}

/** Why a differing field makes keepip less safe than nginx, or null. */
function lessSafe(field: string, ngx: string | undefined, kip: string | undefined): string | null {
  if (field === 'backend' && kip !== 'none' && ngx === 'none')
    return 'keepip reached a backend nginx refused';
  if (forgedIn(kip) && !forgedIn(ngx)) return 'a forged client header passed where nginx replaced it';
  if (/^client (set-cookie|www-authenticate)$/.test(field) && kip !== '(absent)' && ngx === '(absent)')
    return "keepip passed on the auth service's header where nginx did not";
  return null;
}

/** The differing fields of one probe (null: none, or all allowed). */
function judge(probe: Probe, ngx: Outcome, kip: Outcome): string | null {
  if (ngx.status === 0 || kip.status === 0)
    return `${describeProbe(probe)}: no answer (nginx ${ngx.status}, keepip ${kip.status})`;
  const fields = new Set([...Object.keys(ngx.fields), ...Object.keys(kip.fields)]);
  const lines: string[] = [];
  for (const field of [...fields].sort()) {
    const [n, k] = [ngx.fields[field], kip.fields[field]];
    if (n === k || allowed(field, probe, n, k) !== null) continue;
    const unsafe = lessSafe(field, n, k);
    lines.push(
      `    ${field}: nginx ${n ?? '(not seen)'}, keepip ${k ?? '(not seen)'}${unsafe ? `  <-- LESS SAFE: ${unsafe}` : ''}`,
    );
  }
  return lines.length === 0 ? null : `${describeProbe(probe)}:\n${lines.join('\n')}`;
}

// ---------------------------------------------------------------------------------------------
// Cases.

function sometimes<T>(arb: fc.Arbitrary<T>, absent = 1): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: absent, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

function flag(absent = 1): fc.Arbitrary<boolean> {
  return sometimes(fc.constant(true), absent).map((v) => v === true);
}

function answerArb(statuses: fc.Arbitrary<Status>): fc.Arbitrary<AnswerSpec> {
  return fc.record({ status: statuses, flags: fc.subarray(FLAGS) });
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  pass: answerArb(
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom<Status>(200, 201, 204) },
      { weight: 1, arbitrary: fc.constantFrom(...STATUSES) },
    ),
  ),
  fail: answerArb(
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom<Status>(401, 403) },
      { weight: 1, arbitrary: fc.constantFrom(...STATUSES) },
    ),
  ),
  method: sometimes(fc.constantFrom<'GET' | 'POST'>('GET', 'POST'), 2),
  urlVariable: flag(2),
  signin: sometimes(fc.constantFrom(...SIGNINS)),
  redirectParam: sometimes(fc.constant<'next'>('next'), 2),
  responseHeaders: fc.subarray([...RESPONSE_HEADERS]),
  requestRedirect: flag(2),
  alwaysSetCookie: flag(2),
  proxySetHeaders: flag(2),
  allow: flag(2),
  any: flag(3),
  pub: flag(2),
});

function describeCase(c: Case, authPort = 0): string {
  const pub = c.pub ? ' + Ingress /pub (no auth, backend p1)' : '';
  return `Ingress / (backend p0) ${JSON.stringify(annotationsOf(c, authPort))}${pub}\n  auth answers: with credentials ${specText(c.pass)}, without ${specText(c.fail)} (L Location, W WWW-Authenticate, C Set-Cookie, H X-Auth-User/-Email, B body)`;
}

// ---------------------------------------------------------------------------------------------
// The bench.

type Bench = Differential<Probe, Outcome> & { gen: number };

async function configure(
  bench: Bench,
  cases: readonly Case[],
  hosts: readonly string[],
  configMap: Record<string, string> | null = null,
): Promise<void> {
  const { backends } = bench;
  const authPort = backends.get('auth')!;
  // The bench's generation, which configure() increments: the locations' own X-Gen.
  const gen = ++bench.gen;
  const objects = [AUTH_HEADERS_CONFIGMAP, ...(configMap === null ? [] : [controllerConfigMap(configMap)])];
  await bench.configure(
    (port) => [
      escapedRequestUriMap(),
      ...cases.map((c, i) => nginxServer(c, hosts[i]!, port, gen, backends)),
    ],
    casesTopology({
      cases,
      hosts,
      backends,
      ingressesOf: (c) => keepipIngresses(c, authPort),
      objects,
      noService: ['auth'],
    }),
  );
}

/** nginx's answers in the generated batch (`<status> <backend>`, cookies, headers): not vacuous. */
const seen = new Set<string>();

function differences(bench: Bench, c: Case, host: string): Promise<string[]> {
  return bench.disagreements(probesFor(c), host, (probe, ngx, kip) => {
    const f = ngx.fields;
    seen.add(`${f['client status']} ${f.backend}`);
    if (f['client set-cookie'] !== '(absent)') seen.add(`cookie on ${f['client status']}`);
    if (f['backend x-auth-user'] === 'alice') seen.add('auth-response-header');
    if (f['client location']?.startsWith('https://login.test/')) seen.add('sign-in');
    return judge(probe, ngx, kip);
  });
}

function assertExercised(): void {
  for (const kind of [
    '200 p0',
    '401 none',
    '403 none',
    '500 none',
    '200 p1',
    'sign-in',
    'auth-response-header',
    'cookie on 200',
    'cookie on 401',
  ])
    assert.ok(seen.has(kind), `nginx never answered "${kind}" in the batch: ${[...seen].join(', ')}`);
}

function assertNoDifference(bench: Bench, c: Case, diff: readonly string[]): void {
  const shown = diff.length > 8 ? [...diff.slice(0, 8), `… and ${diff.length - 8} more`] : diff;
  assert.equal(diff.length, 0, `${describeCase(c, bench.backends.get('auth'))}\n${shown.join('\n')}`);
}

async function caseDifferences(bench: Bench, c: Case): Promise<string[]> {
  await configure(bench, [c], [SINGLE_HOST]);
  return differences(bench, c, SINGLE_HOST);
}

/** A case without options; `features` override. */
function plain(features: Partial<Case> = {}): Case {
  return {
    pass: { status: 200, flags: ['H', 'C'] },
    fail: { status: 401, flags: ['W', 'C'] },
    method: null,
    urlVariable: false,
    signin: null,
    redirectParam: null,
    responseHeaders: ['X-Auth-User', 'X-Auth-Email'],
    requestRedirect: false,
    alwaysSetCookie: false,
    proxySetHeaders: false,
    allow: false,
    any: false,
    pub: false,
    ...features,
  };
}

const FIXED_CASES: { name: string; c: Case }[] = [
  {
    name: 'auth-url with auth-response-headers: 2xx admits with the headers, 401 refuses with WWW-Authenticate',
    c: plain(),
  },
  {
    name: 'auth-signin: a 401 becomes the 302 to the sign-in URL with rd and the cookie',
    c: plain({ signin: SIGNINS[0], pub: true }),
  },
  {
    name: 'auth-method POST, auth-request-redirect, auth-proxy-set-headers, $request_uri in auth-url',
    c: plain({ method: 'POST', requestRedirect: true, proxySetHeaders: true, urlVariable: true }),
  },
  {
    name: 'auth-always-set-cookie with refusals and unexpected statuses',
    c: plain({ alwaysSetCookie: true, fail: { status: 500, flags: ['C', 'L', 'W'] } }),
  },
  {
    name: 'allowlist with satisfy any: the allowlisted client skips auth, auth-response-headers stay empty',
    c: plain({ allow: true, any: true, fail: { status: 403, flags: ['C', 'H'] } }),
  },
];

/**
 * The ConfigMap's global-auth-url with its response headers and sign-in, for an Ingress on `/` without
 * auth-url and one on `/pub` with enable-global-auth "false": nginx's server is the same as for the
 * annotations (the template takes $all.Cfg.GlobalExternalAuth for the location's).
 */
const GLOBAL_CASE = plain({ pub: true, signin: SIGNINS[1], fail: { status: 401, flags: ['W', 'C', 'B'] } });

async function configureGlobal(bench: Bench, c: Case): Promise<void> {
  const { backends } = bench;
  const gen = ++bench.gen;
  const global = {
    'global-auth-url': authUrl(c, backends.get('auth')!),
    'global-auth-response-headers': c.responseHeaders.join(','),
    'global-auth-signin': c.signin ?? '',
  };
  await bench.configure(
    (port) => [escapedRequestUriMap(), nginxServer(c, SINGLE_HOST, port, gen, backends)],
    casesTopology({
      cases: [c],
      hosts: [SINGLE_HOST],
      backends,
      ingressesOf: (): CaseIngress[] => [
        { annotations: {}, paths: [{ path: '/', service: 'svc-p0', port: 80 }] },
        {
          annotations: { 'enable-global-auth': 'false' },
          paths: [{ path: '/pub', service: 'svc-p1', port: 80 }],
        },
      ],
      objects: [controllerConfigMap(global)],
      noService: ['auth'],
    }),
  );
}

/** What this differential found, each in the smallest case that showed it (fixed since). */
const FOUND_CASES: { name: string; c: Case }[] = [
  {
    // nginx's auth_request copies the subrequest's WWW-Authenticate for a 401 only; for a 403 it
    // answers 403 alone. keepip passed the auth service's challenge on a 403 too.
    name: "an auth service's 403 reaches the client without the auth service's WWW-Authenticate, as nginx answers it",
    c: plain({ fail: { status: 403, flags: ['W'] }, responseHeaders: [] }),
  },
];

describe('external auth: keepip answers as ingress-nginx (real nginx 1.22 with auth_request) does', () => {
  let bench: Bench;

  before(async () => {
    const differential = await startDifferential<Probe, Outcome>({
      ids: ['p0', 'p1', 'auth'],
      handler: backendHandler,
      send,
      genProbe: { target: '/__gen', from: '127.0.0.1', method: 'GET', cred: 'none', forged: false },
    });
    bench = Object.assign(differential, { gen: 0 });
  });

  after(async () => {
    await bench?.close();
  });

  for (const fixed of [...FIXED_CASES, ...FOUND_CASES]) {
    it(fixed.name, async () => {
      assertNoDifference(bench, fixed.c, await caseDifferences(bench, fixed.c));
    });
  }

  it("global-auth-url in the ConfigMap: answered as the annotation's auth, and enable-global-auth false leaves an Ingress out", async () => {
    await configureGlobal(bench, GLOBAL_CASE);
    assertNoDifference(bench, GLOBAL_CASE, await differences(bench, GLOBAL_CASE, SINGLE_HOST));
  });

  it('generated auth annotations and auth answers: the same answers, the same requests to the auth service and the backend', async () => {
    await checkGenerated({
      arb: caseArb,
      runs: Number(process.env.AUTH_RUNS ?? 100),
      seedVariable: 'AUTH_SEED',
      defaultSeed: 20261207,
      configure: (cases, hosts) => configure(bench, cases, hosts),
      differences: (c, host) => differences(bench, c, host),
      assertAlone: async (c) => assertNoDifference(bench, c, await caseDifferences(bench, c)),
      describe: (c) => describeCase(c, bench.backends.get('auth')),
      shrinkTimeLimitMs: 20_000,
    });
    assertExercised();
  });
});
