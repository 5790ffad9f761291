// The redirects ingress-nginx answers for TLS and host names, keepip against real nginx 1.22 configured as
// ingress-nginx's template and Lua render them: ssl-redirect (default true on a host with TLS) and
// force-ssl-redirect (lua_ingress.rewrite(): `http-redirect-code` 308 to `https://<best_http_host before
// its first ':'><request_uri without its final '/'>`, `:443` with use-port-in-redirects, the trailing `/`
// kept with preserve-trailing-slash), from-to-www-redirect (a server of its own: ngx_srv_redirect.lua,
// `<scheme>://<host>:<server_port><request_uri without its final '/'>`), permanent-/temporal-redirect
// (`return` in the location, before the Lua rewrite), app-root (the server's `if ($uri = /)`), server-alias,
// use-forwarded-headers (X-Forwarded-Proto / -Port / -Host read by the Lua into $pass_access_scheme,
// $pass_server_port, $best_http_host) and hsts* (lua_ingress.header(): on every https answer of a
// location). nginx 1.22 here has no Lua: each piece of it is written as rewrite-module directives that
// compute the same values (nginxLocation, wwwServer).
//
// Probes go over HTTP and HTTPS with Host variants (upper case, trailing dot, a port, junk after `:`, an
// `@`, none, an absolute-form target naming the host with a foreign Host header), targets with `//evil`,
// `/\evil`, `%0d%0a`, `..`, raw UTF-8, and forged X-Forwarded-* from a trusted (proxy-real-ip-cidr) and an
// untrusted peer. Compared: status, Location (exact, listener ports written as <http>/<https>),
// Strict-Transport-Security, whether the backend was reached. A difference where keepip is less safe
// (an open redirect nginx does not make, a Location on a foreign host, an https -> http downgrade, a
// plain-HTTP request proxied where nginx redirects it to https, a missing HSTS) is reported as such and
// fails; a difference in the ALLOWED table (keepip stricter, or documented) passes, and the table
// entries the runs met are checked to be met.
//
// Generated cases (fast-check, one batch per ConfigMap, the first differing case shrunk on one host: the
// bench of test/helpers/nginx-differential.ts). REDIR_SEED=<n> (or `random`) explores other cases.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import fc from 'fast-check';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { freePort } from '../helpers/net.ts';
import {
  checkGenerated,
  type Differential,
  SINGLE_HOST,
  startDifferential,
} from '../helpers/nginx-differential.ts';
import { makePki, type Pem } from '../helpers/pki.ts';

/** proxy-real-ip-cidr names it: its X-Forwarded-* are believed with use-forwarded-headers. */
const TRUSTED = '127.0.0.70';
/** Not in proxy-real-ip-cidr (ingress-nginx's Lua believes it all the same). */
const UNTRUSTED = '127.0.0.71';
const RUNS = 10;
const REDIRECT_URL = 'https://r.test/moved';

interface Redirect {
  kind: 'permanent' | 'temporal';
  /** The *-redirect-code annotation; 0: none (301 / 302). */
  code: number;
  /** temporal-redirect must be an http(s) URL in ingress-nginx (isValidURL); permanent may be a path. */
  url: typeof REDIRECT_URL | '/moved';
}

interface Case {
  tls: boolean;
  /** The Ingress's host is `www.<base>` (its from-to-www twin `<base>`), else `<base>` (twin `www.<base>`). */
  wwwHost: boolean;
  www: boolean;
  /** The ssl-redirect annotation; null: the ConfigMap's (true). */
  ssl: boolean | null;
  force: boolean;
  redirect: Redirect | null;
  appRoot: boolean;
  preserveSlash: boolean;
  usePort: boolean;
  /** server-alias `a.<base>` (the certificate names it). */
  alias: boolean;
}

/** The ConfigMap of a run (one per batch: it is global). */
interface Settings {
  ufh: boolean;
  /** null: hsts false. */
  hsts: { maxAge: string; sub: boolean; preload: boolean } | null;
}

const DEFAULT_HSTS = { maxAge: '31536000', sub: true, preload: false };

function namesOf(c: Case, base: string) {
  return {
    host: c.wwwHost ? `www.${base}` : base,
    twin: c.wwwHost ? base : `www.${base}`,
    alias: `a.${base}`,
  };
}

// ---------------------------------------------------------------------------------------------
// ingress-nginx's servers, its Lua written as rewrite-module directives.

function hstsValue(s: Settings): string {
  if (s.hsts === null) return '';
  return `max-age=${s.hsts.maxAge}${s.hsts.sub ? '; includeSubDomains' : ''}${s.hsts.preload ? '; preload' : ''}`;
}

/** lua_ingress.rewrite(): $pass_access_scheme, $best_http_host, and its https redirect. */
function luaRewrite(c: Case, s: Settings): string[] {
  const lines = ['set $pass_access_scheme $scheme;', 'set $best_http_host $http_host;'];
  lines.push('if ($best_http_host = "") { set $best_http_host $host; }');
  if (s.ufh) {
    lines.push(
      'if ($http_x_forwarded_proto != "") { set $pass_access_scheme $http_x_forwarded_proto; }',
      'if ($http_x_forwarded_host ~ "^([^,]+)") { set $best_http_host $1; }',
    );
  }
  // certificate_configured_for_current_request(): the host's certificate names the host and its alias.
  if (!(c.force || (c.tls && c.ssl !== false))) return lines;
  lines.push('set $redir_host ""; if ($best_http_host ~ "^([^:]*)") { set $redir_host $1; }');
  lines.push('set $redir_uri $request_uri;');
  if (!c.preserveSlash) lines.push('if ($request_uri ~ "^(.*)/$") { set $redir_uri $1; }');
  const port = c.usePort ? ':443' : '';
  lines.push(`if ($pass_access_scheme = "http") { return 308 https://$redir_host${port}$redir_uri; }`);
  return lines;
}

function nginxLocation(c: Case, s: Settings, gen: number, backend: number): string {
  const lines = [`add_header X-Gen "${gen}" always;`];
  // lua_ingress.header(): every https answer of the location.
  if (s.hsts !== null) lines.push('add_header Strict-Transport-Security $redir_hsts always;');
  lines.push(`port_in_redirect ${c.usePort ? 'on' : 'off'};`);
  const r = c.redirect;
  if (r !== null) {
    const code = r.kind === 'permanent' ? r.code || 301 : r.code || 302;
    lines.push(`return ${code} ${r.url};`);
  }
  lines.push(...luaRewrite(c, s), `proxy_pass http://127.0.0.1:${backend};`);
  return `  location / {\n    ${lines.join('\n    ')}\n  }`;
}

/** ngx_srv_redirect.lua's server for the www twin. */
function wwwServer(from: string, to: string, s: Settings, ports: readonly number[]): string {
  const lines = [
    `server { listen 127.0.0.1:${ports[0]}; listen 127.0.0.1:${ports[1]} ssl; server_name "${from}";`,
    '  set $w_scheme $scheme; set $w_port $server_port; set $w_uri $request_uri;',
    '  if ($request_uri ~ "^(.*)/$") { set $w_uri $1; }',
  ];
  if (s.ufh) {
    lines.push(
      '  if ($http_x_forwarded_proto != "") { set $w_scheme $http_x_forwarded_proto; }',
      '  if ($http_x_forwarded_port != "") { set $w_port $http_x_forwarded_port; }',
    );
  }
  lines.push(`  return 308 $w_scheme://${to}:$w_port$w_uri;`, '}');
  return lines.join('\n');
}

function nginxServers(
  c: Case,
  base: string,
  s: Settings,
  gen: number,
  ports: readonly number[],
  backend: number,
) {
  const { host, twin, alias } = namesOf(c, base);
  const names = c.alias ? `"${host}" "${alias}"` : `"${host}"`;
  const server = [
    `server { listen 127.0.0.1:${ports[0]}; listen 127.0.0.1:${ports[1]} ssl; server_name ${names};`,
    ...(c.appRoot ? ['  if ($uri = /) { return 302 $scheme://$http_host/app; }'] : []),
    nginxLocation(c, s, gen, backend),
    '}',
  ].join('\n');
  return c.www ? [server, wwwServer(twin, host, s, ports)] : [server];
}

// ---------------------------------------------------------------------------------------------
// The same for keepip.

function annotationsOf(c: Case, base: string): Record<string, string> {
  const a: Record<string, string> = {};
  if (c.ssl !== null) a['ssl-redirect'] = String(c.ssl);
  if (c.force) a['force-ssl-redirect'] = 'true';
  if (c.www) a['from-to-www-redirect'] = 'true';
  if (c.redirect !== null) {
    a[`${c.redirect.kind}-redirect`] = c.redirect.url;
    if (c.redirect.code) a[`${c.redirect.kind}-redirect-code`] = String(c.redirect.code);
  }
  if (c.appRoot) a['app-root'] = '/app';
  if (c.preserveSlash) a['preserve-trailing-slash'] = 'true';
  if (c.usePort) a['use-port-in-redirects'] = 'true';
  if (c.alias) a['server-alias'] = namesOf(c, base).alias;
  return a;
}

function configMapOf(s: Settings): K8sObject {
  const data: Record<string, string> = {
    'use-forwarded-headers': String(s.ufh),
    'proxy-real-ip-cidr': `${TRUSTED}/32`,
  };
  if (s.hsts === null) data.hsts = 'false';
  else {
    Object.assign(data, {
      'hsts-max-age': s.hsts.maxAge,
      'hsts-include-subdomains': String(s.hsts.sub),
      'hsts-preload': String(s.hsts.preload),
    });
  }
  return controllerConfigMap(data);
}

function keepipTopology(
  cases: readonly Case[],
  bases: readonly string[],
  s: Settings,
  pem: Pem,
  port: number,
) {
  const ingresses = cases.map((c, i) =>
    ingress({
      name: `c${i}`,
      host: namesOf(c, bases[i]!).host,
      annotations: annotationsOf(c, bases[i]!),
      paths: [{ path: '/', service: 'svc-b', port: 80 }],
      ...(c.tls ? { tlsSecret: 'tls' } : {}),
    }),
  );
  return topologyOf([
    configMapOf(s),
    tlsSecret('tls', pem.cert, pem.key),
    ...serviceWithEndpoints({ name: 'svc-b', ports: [port] }),
    ...ingresses,
  ]);
}

// ---------------------------------------------------------------------------------------------
// Probes and answers.

type HostForm =
  | 'exact'
  | 'upper'
  | 'dot'
  | 'port'
  | 'junkport'
  | 'portat'
  | 'slash'
  | 'at'
  | 'absent'
  | 'absolute'
  | 'absolute10';
/** The X-Forwarded-* a client sends; a list is that many header lines. */
interface Forged {
  proto?: string | string[];
  port?: string | string[];
  host?: string | string[];
  prefix?: string;
}
interface Probe {
  tls: boolean;
  name: 'host' | 'twin' | 'alias';
  form: HostForm;
  target: string;
  from: string;
  forged: Forged | null;
}

const TARGETS = [
  '/x',
  '/x/',
  '/',
  '//evil.test/',
  '/\\evil.test',
  '/%0d%0aSet-Cookie:%20a=b',
  '/a/../b?next=//evil.test/',
  '/\u00e9t\u00e9?q=\u00fc',
];
const FORMS: HostForm[] = [
  'upper',
  'dot',
  'port',
  'junkport',
  'portat',
  'slash',
  'at',
  'absent',
  'absolute',
  'absolute10',
];
const FORGED: Forged[] = [
  { proto: 'https' },
  { proto: 'http' },
  { proto: 'HTTPS' },
  { proto: 'javascript' },
  { port: '@evil.test' },
  { port: '8443' },
  { host: 'evil.test' },
  { host: 'evil.test, x' },
  { host: 'evil.test:1@x' },
  { prefix: '//evil.test' },
  { proto: 'http', host: 'evil.test' },
  { proto: 'http, https' },
  // Two header lines. ingress-nginx 1.15 runs nginx 1.27, whose $http_x_forwarded_* is every line joined
  // with ", " (since 1.23; 1.22's is the first line): nginx is sent that joined line (rawRequest).
  { proto: ['http', 'https'] },
  { host: ['x', 'evil.test'] },
  { port: ['443', '@evil.test'] },
];

function probesFor(s: Settings): Probe[] {
  const base = { name: 'host' as const, form: 'exact' as HostForm, from: UNTRUSTED, forged: null };
  const out: Probe[] = [];
  for (const tlsOn of [false, true]) {
    for (const target of TARGETS) out.push({ ...base, tls: tlsOn, target });
    for (const form of FORMS) {
      for (const target of ['/x/', '//evil.test/']) out.push({ ...base, tls: tlsOn, form, target });
    }
    for (const name of ['twin', 'alias'] as const) {
      for (const form of ['exact', 'upper', 'junkport'] as const) {
        out.push({ ...base, tls: tlsOn, name, form, target: '/x/' });
      }
    }
    // Without use-forwarded-headers every peer's are ignored: the trusted one's are enough.
    for (const from of s.ufh ? [TRUSTED, UNTRUSTED] : [TRUSTED]) {
      for (const forged of FORGED) {
        out.push({ ...base, tls: tlsOn, from, forged, target: '/x/' });
        out.push({ ...base, tls: tlsOn, name: 'twin', from, forged, target: '/x/' });
      }
    }
  }
  return out;
}

function hostHeader(form: HostForm, name: string): string | null {
  switch (form) {
    case 'exact':
      return name;
    case 'upper':
      return name.toUpperCase();
    case 'dot':
      return `${name}.`;
    case 'port':
      return `${name}:8080`;
    case 'junkport':
      return `${name}:@evil.test`;
    case 'portat':
      return `${name}:80@evil.test`;
    case 'slash':
      return `${name}:80/evil.test`;
    case 'at':
      return `evil.test@${name}`;
    case 'absent':
    case 'absolute10':
      return null;
    case 'absolute':
      return 'evil.test';
  }
}

/** The request; `joined`: the lines of a forged header as one (what nginx >= 1.23 makes of them). */
function rawRequest(probe: Probe, name: string, joined: boolean): Buffer {
  const host = hostHeader(probe.form, name);
  const absolute = probe.form === 'absolute' || probe.form === 'absolute10';
  const target = absolute ? `http://${name}${probe.target}` : probe.target;
  const lines = [`GET ${target} HTTP/${host === null ? '1.0' : '1.1'}`];
  if (host !== null) lines.push(`Host: ${host}`);
  const f = probe.forged ?? {};
  const each = (header: string, v: string | string[] | undefined) => {
    const values = v === undefined ? [] : [v].flat();
    for (const value of joined && values.length > 0 ? [values.join(', ')] : values)
      lines.push(`${header}: ${value}`);
  };
  each('X-Forwarded-Proto', f.proto);
  each('X-Forwarded-Port', f.port);
  each(
    'X-Forwarded-Host',
    typeof f.host === 'string' ? f.host.replace('x', name) : f.host?.map((h) => h.replace(/^x$/, name)),
  );
  each('X-Forwarded-Prefix', f.prefix);
  lines.push('Connection: close', '', '');
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

interface Outcome {
  status: number;
  /** The Location, the listeners' ports written `<http>` / `<https>`. */
  location: string | null;
  sts: string | null;
  /** The backend answered (X-Loc). */
  backend: boolean;
  /** Another header than nginx's and keepip's own (a header injected through the Location). */
  injected: boolean;
  gen: string | null;
}

function outcomeOf(raw: Buffer, ports: { http: number; https: number }): Outcome {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? '' : text.slice(0, end + 2);
  const header = (name: string) => new RegExp(`\\r\\n${name}: ([^\\r]*)`, 'i').exec(head)?.[1] ?? null;
  const location = header('location')
    ?.replaceAll(`:${ports.http}`, ':<http>')
    .replaceAll(`:${ports.https}`, ':<https>');
  return {
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0),
    location: location ?? null,
    sts: header('strict-transport-security'),
    backend: header('x-loc') !== null,
    injected: /\r\nset-cookie:/i.test(head),
    gen: header('x-gen'),
  };
}

/** One client context for every probe: a context made per connection was a tenth of the test's CPU. */
const CLIENT_CONTEXT = tls.createSecureContext();

/** The head of the answer to `raw`, over TLS (SNI `name`) or not, from `from`. */
function exchange(port: number, useTls: boolean, name: string, from: string, raw: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const plain = net.connect({ host: '127.0.0.1', port, localAddress: from });
    const socket = useTls
      ? tls.connect({
          socket: plain,
          servername: name,
          rejectUnauthorized: false,
          secureContext: CLIENT_CONTEXT,
        })
      : plain;
    plain.on('error', () => {});
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    // A safety net only: every answer ends with the head (read below) or a close.
    const timer = setTimeout(done, 20_000);
    socket.once(useTls ? 'secureConnect' : 'connect', () => socket.write(raw));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (Buffer.concat(chunks).includes('\r\n\r\n')) done();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}

function describeProbe(p: Probe): string {
  const forged =
    p.forged === null
      ? ''
      : ` forged ${JSON.stringify(p.forged)} from ${p.from === TRUSTED ? 'trusted' : 'untrusted'}`;
  return `${p.tls ? 'HTTPS' : 'HTTP'} ${p.name} Host:${p.form} ${JSON.stringify(p.target)}${forged}`;
}

function describeOutcome(o: Outcome): string {
  const parts = [`${o.status}`];
  if (o.location !== null) parts.push(`-> ${o.location}`);
  if (o.sts !== null) parts.push(`[sts ${o.sts}]`);
  if (o.backend) parts.push('[backend]');
  if (o.injected) parts.push('[set-cookie injected]');
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------
// Judging a pair of answers.

/** A probe with the name it is sent to resolved for its case. */
type Sent = Probe & { at: string };

/** The host a browser would go to for `location` (resolved against the request), lower case. */
function hostOf(location: string, at: string): string | null {
  try {
    const numeric = location.replace(/<https?>/g, '1');
    return new URL(numeric, `http://${at}/`).hostname.toLowerCase().replace(/\.$/, '');
  } catch {
    return null;
  }
}

/** Why keepip's answer is less safe than nginx's, or null. */
function weakness(c: Case, base: string, p: Sent, ngx: Outcome, kip: Outcome): string | null {
  if (kip.injected && !ngx.injected) return 'a header injected through the Location';
  if (kip.location !== null) {
    const own = new Set([...Object.values(namesOf(c, base)), 'r.test']);
    const kipHost = hostOf(kip.location, p.at);
    const ngxHost = ngx.location === null ? null : hostOf(ngx.location, p.at);
    if (kipHost === null || (!own.has(kipHost) && kipHost !== ngxHost)) {
      return `an open redirect to ${kipHost} (nginx: ${ngxHost ?? 'no redirect'})`;
    }
    // Over plain HTTP an untrusted peer's X-Forwarded-Proto is not believed: http is the truth there.
    const believed = p.tls || p.forged === null || p.from === TRUSTED;
    if (believed && /^http:/i.test(kip.location) && ngx.location !== null && /^https:/i.test(ngx.location)) {
      return 'an https -> http downgrade';
    }
  }
  const toHttps = ngx.location !== null && /^https:/i.test(ngx.location) && ngx.status >= 300;
  if (!p.tls && kip.backend && !ngx.backend && toHttps) {
    return 'a plain-HTTP request proxied where nginx redirects it to https';
  }
  // keepip's own refusals (a 4xx where nginx passed the request on) are judged by ALLOWED.
  if (ngx.sts !== null && kip.sts === null && kip.status < 400) return 'no Strict-Transport-Security';
  return null;
}

interface Allowed {
  reason: string;
  applies(s: Settings, c: Case, p: Sent, ngx: Outcome, kip: Outcome): boolean;
}

/** The differences that are keepip being stricter or documented; `met` counts the runs' uses. */
const ALLOWED: Record<string, Allowed> = {
  'untrusted-forwarded': {
    reason:
      'use-forwarded-headers: keepip believes X-Forwarded-Proto/-Port/-Host only from proxy-real-ip-cidr peers ' +
      "(docs/ingress-nginx-compat.md, ssl-redirect and from-to-www-redirect rows); ingress-nginx's Lua " +
      '(lua_ingress.rewrite, ngx_srv_redirect.lua) reads them from any client, which lets anyone pick the ' +
      'Location of the redirects and turn ssl-redirect off',
    applies: (s, _c, p) => s.ufh && p.forged !== null && p.from === UNTRUSTED,
  },
  'www-scheme': {
    reason:
      "from-to-www-redirect: ngx_srv_redirect.lua writes a trusted X-Forwarded-Proto as the Location's scheme " +
      'whatever it is (`javascript://…`); keepip writes http or https (https for anything but `http`)',
    applies: (s, _c, p) => s.ufh && p.name === 'twin' && p.forged?.proto !== undefined,
  },
  'absolute-form-host': {
    reason:
      'an absolute-form target (`GET http://host/…`) with another Host header: nginx routes by the target ' +
      "but the Lua's $best_http_host is the Host header's (`https://evil.test/…`); keepip names the target's host",
    applies: (_s, _c, p, ngx) => p.form === 'absolute' && ngx.location !== null,
  },
  'host-with-at': {
    reason:
      'a Host with `@` (`evil.test@h.test`): nginx takes it as a name no server has (404 from the default ' +
      'server); keepip refuses it as an invalid Host (400)',
    applies: (_s, _c, p, ngx, kip) =>
      p.form === 'at' && ngx.status === 404 && kip.status === 400 && !kip.backend,
  },
  'raw-non-ascii-target': {
    reason:
      'a request target with raw bytes over 0x7F (unencoded UTF-8): nginx accepts it (and passes it on), ' +
      "keepip's HTTP parser refuses it (400) before any routing",
    applies: (_s, _c, p, _ngx, kip) => /[^\x00-\x7f]/.test(p.target) && kip.status === 400 && !kip.backend,
  },
  'hsts-on-server-answers': {
    reason:
      "hsts: ingress-nginx's header filter is a location's, so the answers of the server level (app-root's " +
      '`if … return 302`) carry no Strict-Transport-Security; keepip sends it on every https answer of a host',
    applies: (_s, _c, p, ngx, kip) =>
      p.tls &&
      ngx.sts === null &&
      kip.sts !== null &&
      ngx.status === kip.status &&
      ngx.location === kip.location,
  },
  'forwarded-port-digits': {
    reason:
      'use-forwarded-headers: a trusted X-Forwarded-Port that is not digits (`@evil.test`, `443, @evil.test`) ' +
      "is not believed: keepip names the listener's port; ingress-nginx's Lua copies it into the Location " +
      '(`http://h.test:@evil.test/x`, evil.test to a browser)',
    applies: (s, _c, p) => {
      const port = p.forged?.port;
      const values = port === undefined ? [] : Array.isArray(port) ? port : [port];
      return s.ufh && p.from === TRUSTED && values.some((v) => !/^\d+$/.test(v));
    },
  },
  'host-port-not-digits': {
    reason:
      'docs/gateway.md (refusals): "a Host whose port is not digits (`app.example:@evil.example`) | 400": nginx cuts ' +
      'the host at `:` and serves it, and its $http_host carries the rest into Locations (app-root echoes ' +
      '`http://h:@evil.test/app`, evil.test to a browser) and to the backend',
    applies: (_s, _c, p, _ngx, kip) =>
      (p.form === 'junkport' || p.form === 'portat') && kip.status === 400 && !kip.backend,
  },
};

type Met = Map<string, string>;

/** What an nginx answer shows, for the check that the runs exercised every feature. */
function featuresOf(o: Outcome): string[] {
  const out: string[] = [];
  if (o.backend) out.push('the backend');
  if (o.sts !== null) out.push('hsts');
  const loc = o.location ?? '';
  if (o.status === 308 && /^https:\/\/[^/:]*(:443)?(\/|$)/.test(loc)) out.push('ssl-redirect');
  if (o.status === 308 && /^https?:\/\/[^/]*:(<https?>|\d+)/.test(loc)) out.push('from-to-www-redirect');
  if (/\/moved$/.test(loc)) out.push(`a ${o.status} redirect`);
  if (o.status === 302 && loc.endsWith('/app')) out.push('app-root');
  return out;
}

/** Every feature the generated runs must have shown in nginx's answers. */
const FEATURES = [
  'the backend',
  'hsts',
  'ssl-redirect',
  'from-to-www-redirect',
  'a 301 redirect',
  'a 308 redirect',
  'a 302 redirect',
  'a 307 redirect',
  'app-root',
];

/** null when the answers agree or differ as ALLOWED says (counted in `met`); else the difference. */
function judge(s: Settings, c: Case, base: string, met: Met, seen: Set<string>) {
  return (p: Sent, ngx: Outcome, kip: Outcome): string | null => {
    for (const feature of featuresOf(ngx)) seen.add(feature);
    if (ngx.status === 0 || kip.status === 0) {
      return `${describeProbe(p)}: no answer (nginx ${describeOutcome(ngx)}, keepip ${describeOutcome(kip)})`;
    }
    const same =
      ngx.status === kip.status &&
      ngx.location === kip.location &&
      ngx.sts === kip.sts &&
      ngx.backend === kip.backend &&
      ngx.injected === kip.injected;
    if (same) return null;
    const diff = `${describeProbe(p)}: nginx ${describeOutcome(ngx)}, keepip ${describeOutcome(kip)}`;
    const weak = weakness(c, base, p, ngx, kip);
    if (weak !== null) return `${diff}  <-- FINDING: ${weak}`;
    const allowed = Object.entries(ALLOWED).find(([, a]) => a.applies(s, c, p, ngx, kip));
    if (allowed === undefined) return diff;
    if (!met.has(allowed[0])) met.set(allowed[0], diff);
    return null;
  };
}

// ---------------------------------------------------------------------------------------------
// The bench: one nginx (HTTP on the bench's port, HTTPS on one more), one keepip.

interface Bench {
  d: Differential<Sent, Outcome>;
  pem: Pem;
  nginxTls: number;
  /** nginx's generation, counted as the bench counts it (its X-Gen, set again in every location). */
  gen: number;
  met: Met;
  /** featuresOf every nginx answer. */
  seen: Set<string>;
}

/** The certificate of every name the cases use: `c<i>.test`, SINGLE_HOST, their www twins and aliases. */
async function certificate(): Promise<Pem> {
  const bases = [...Array.from({ length: RUNS }, (_, i) => `c${i}.test`), SINGLE_HOST];
  const names = bases.flatMap((b) => [b, `www.${b}`, `a.${b}`]);
  const { certs } = await makePki({
    certificates: [
      {
        name: 'cert',
        subject: '/CN=c0.test',
        extensions: `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
      },
    ],
  });
  return certs.cert;
}

async function startBench(): Promise<Bench> {
  const pem = await certificate();
  const nginxTls = await freePort();
  const tlsPorts = new Map<number, number>();
  const send = async (port: number, probe: Sent): Promise<Outcome> => {
    const tlsPort = tlsPorts.get(port)!;
    const request = rawRequest(probe, probe.at, port !== d.gateway.httpPort);
    const raw = await exchange(probe.tls ? tlsPort : port, probe.tls, probe.at, probe.from, request);
    return outcomeOf(raw, { http: port, https: tlsPort });
  };
  const d: Differential<Sent, Outcome> = await startDifferential<Sent, Outcome>({
    ids: ['b'],
    send,
    genProbe: {
      tls: false,
      name: 'host',
      form: 'exact',
      target: '/__gen',
      from: UNTRUSTED,
      forged: null,
      at: 'probe.invalid',
    },
  });
  tlsPorts.set(d.nginx.ports[0]!, nginxTls);
  tlsPorts.set(d.gateway.httpPort, d.gateway.httpsPort);
  writeFileSync(join(d.nginx.dir, 'cert.pem'), pem.cert);
  writeFileSync(join(d.nginx.dir, 'key.pem'), pem.key);
  return { d, pem, nginxTls, gen: 0, met: new Map(), seen: new Set() };
}

async function configure(bench: Bench, s: Settings, cases: readonly Case[], bases: readonly string[]) {
  const { d, nginxTls } = bench;
  const gen = ++bench.gen;
  const backend = d.backends.get('b')!;
  const servers = (port: number) => [
    `ssl_certificate ${join(d.nginx.dir, 'cert.pem')}; ssl_certificate_key ${join(d.nginx.dir, 'key.pem')};`,
    `map $scheme $redir_hsts { https "${hstsValue(s)}"; default ""; }`,
    `server { listen 127.0.0.1:${nginxTls} ssl default_server; server_name _; location / { return 404; } }`,
    ...cases.flatMap((c, i) => nginxServers(c, bases[i]!, s, gen, [port, nginxTls], backend)),
  ];
  await d.configure(servers, keepipTopology(cases, bases, s, bench.pem, backend));
}

function differences(bench: Bench, s: Settings, c: Case, base: string, probes = probesFor(s)) {
  const names = namesOf(c, base);
  const sent = probes.map((p) => ({ ...p, at: names[p.name] }));
  return bench.d.disagreements(sent, base, judge(s, c, base, bench.met, bench.seen));
}

function describeCase(c: Case, s: Settings): string {
  return `ConfigMap ${JSON.stringify(configMapOf(s).data)}; Ingress host ${namesOf(c, SINGLE_HOST).host}${c.tls ? ' (TLS)' : ''} ${JSON.stringify(annotationsOf(c, SINGLE_HOST))}`;
}

function assertNoDifference(c: Case, s: Settings, diff: readonly string[]): void {
  const shown = diff.length > 20 ? [...diff.slice(0, 20), `… and ${diff.length - 20} more`] : diff;
  assert.equal(diff.length, 0, `${describeCase(c, s)}\n${shown.join('\n')}`);
}

async function caseDifferences(bench: Bench, s: Settings, c: Case, probes?: Probe[]): Promise<string[]> {
  await configure(bench, s, [c], [SINGLE_HOST]);
  return differences(bench, s, c, SINGLE_HOST, probes);
}

// ---------------------------------------------------------------------------------------------
// Generated cases.

function sometimes<T>(arb: fc.Arbitrary<T>, absent = 2): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: absent, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

const redirectArb: fc.Arbitrary<Redirect> = fc.oneof(
  fc.record({
    kind: fc.constant('permanent' as const),
    code: fc.constantFrom(0, 301, 308),
    url: fc.constantFrom<Redirect['url']>(REDIRECT_URL, '/moved'),
  }),
  fc.record({
    kind: fc.constant('temporal' as const),
    code: fc.constantFrom(0, 302, 307),
    url: fc.constant(REDIRECT_URL),
  }),
);

const caseArb: fc.Arbitrary<Case> = fc.record({
  tls: fc.boolean(),
  wwwHost: fc.boolean(),
  www: fc.boolean(),
  ssl: fc.constantFrom(null, null, true, false),
  force: sometimes(fc.constant(true)).map((v) => v === true),
  redirect: sometimes(redirectArb, 2),
  appRoot: sometimes(fc.constant(true), 3).map((v) => v === true),
  preserveSlash: sometimes(fc.constant(true)).map((v) => v === true),
  usePort: sometimes(fc.constant(true)).map((v) => v === true),
  alias: fc.boolean(),
});

async function checkRedirects(bench: Bench, s: Settings, defaultSeed: number): Promise<void> {
  await checkGenerated({
    arb: caseArb,
    runs: RUNS,
    seedVariable: 'REDIR_SEED',
    defaultSeed,
    configure: (cases, hosts) => configure(bench, s, cases, hosts),
    differences: (c, host) => differences(bench, s, c, host),
    assertAlone: async (c) => assertNoDifference(c, s, await caseDifferences(bench, s, c)),
    describe: (c) => describeCase(c, s),
    shrinkTimeLimitMs: 15_000,
  });
}

describe('redirects: ssl-redirect, from-to-www, server-alias, forwarded headers and hsts as ingress-nginx (real nginx 1.22)', () => {
  let bench: Bench;

  before(async () => {
    bench = await startBench();
  });

  after(async () => {
    await bench?.d.close();
  });

  it('generated cases, use-forwarded-headers off, default hsts: the same answers', async () => {
    await checkRedirects(bench, { ufh: false, hsts: DEFAULT_HSTS }, 20261207);
  });

  it('generated cases, use-forwarded-headers on (one trusted peer), hsts max-age 600 with preload: the same answers', async () => {
    await checkRedirects(bench, { ufh: true, hsts: { maxAge: '600', sub: false, preload: true } }, 20261208);
  });

  it('hsts off, a TLS host with ssl-redirect, from-to-www and an alias, forwarded headers believed: the same answers, none with Strict-Transport-Security', async () => {
    const s: Settings = { ufh: true, hsts: null };
    const c: Case = {
      ...{ tls: true, wwwHost: false, www: true, ssl: null, force: false, redirect: null },
      ...{ appRoot: false, preserveSlash: false, usePort: true, alias: true },
    };
    const diff = await caseDifferences(bench, s, c);
    assertNoDifference(c, s, diff);
    const kip = await bench.d.askKeepip({ ...probesFor(s)[0]!, tls: true, at: SINGLE_HOST }, SINGLE_HOST);
    assert.equal(kip.sts, null);
  });

  it('the runs exercised every feature, and the allowed differences they met are listed', (t) => {
    for (const [key, example] of bench.met)
      t.diagnostic(`ALLOWED ${key}: ${ALLOWED[key]!.reason}\n  e.g. ${example}`);
    assert.ok(bench.met.has('untrusted-forwarded'), 'the untrusted peer was never told apart');
    const missing = FEATURES.filter((feature) => !bench.seen.has(feature));
    assert.deepEqual(missing, [], `nginx never answered with these: ${[...bench.seen].join(', ')}`);
  });
});
