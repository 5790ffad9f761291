// enable-cors on locations that also refuse or answer before the backend: keepip against real nginx 1.22
// WITH the headers-more module (more_set_headers, not the add_header emulation of
// cors-differential-nginx.test.ts, whose generated cors-* cases are not redone here), configured as
// ingress-nginx's template renders them (/work/.mirror/kubernetes+ingress-nginx, rootfs/etc/nginx/
// template/nginx.tmpl): in `location <path>` the allow/deny lines, then the "CORS" block (buildCorsOriginRegex's
// `if ($http_origin ~* (…)$) { set $cors 'true'; }`, `if ($request_method = 'OPTIONS') { set $cors
// ${cors}options; }`, `if ($cors = "true") { more_set_headers … }`, `if ($cors = "trueoptions") { …
// return 204; }`), then auth_request / auth_basic, limit_req, client_max_body_size, proxy_intercept_errors
// + error_page, the permanent-redirect `return`, proxy_pass; app-root is the server-level `if ($uri = /)
// { return 302 … }`; the auth-signin named location has the CORS block too; force-ssl-redirect (Lua's
// rewrite_by_lua, which runs after the rewrite module's `if`s and `return`s) is a `return 308
// https://$host$request_uri` after the CORS block on the plain-HTTP server of that host.
//
// The claims checked:
//   docs/ingress-nginx-compat.md, enable-cors: "a request whose Origin is allowed gets
//     Access-Control-Allow-Origin (the Origin, or `*`), -Allow-Credentials, -Allow-Methods, -Allow-Headers,
//     -Expose-Headers and -Max-Age on its response, the gateway's own answers included, replacing the
//     backend's; such a preflight (OPTIONS) is answered 204 by the gateway, before redirects and access
//     rules (nginx's rewrite phase). Other requests, and preflights from other origins, go on unchanged"
//   docs/gateway.md, Request handling: "… app-root) → body size (…413) → the 301 of a path lacking its
//     location's trailing slash → CORS → the location's redirects (permanent-/temporal-redirect,
//     ssl-redirect) → limits (limit-rps, limit-rpm, …) → access rules … combined by `satisfy` with basic
//     auth and external auth → upstream."
//   difference 15: "`cors-allow-origin` is matched whole" (… anchored only at the end there).
//   difference 16: "keepip sends `add-headers`, then `custom-headers`, then the CORS headers (a later one
//     wins for the same name); an error page from the error backend (custom-http-errors) carries
//     `add-headers` (and hsts) only, as nginx's server-level error location."
//
// Per probe (a simple GET, a POST over proxy-body-size, a preflight OPTIONS with Access-Control-Request-
// Method / -Headers), from an allowed Origin, another one, none, and `null`: the status, every
// Access-Control-* line and Vary (names lower-cased, each line kept, sorted), and which of the backend,
// the auth service and the error backend the request reached. keepip granting more than nginx (an
// ACAO where nginx sends none, credentials where nginx has none, a preflight answered where nginx
// refuses it, two ACAO lines) or reaching a service nginx does not reach is a FINDING: the test asserts
// nginx's answer. Differences that are acceptable are in ALLOWED, with the reason, and each must still
// be seen. Content-Type / Content-Length of the 204 are not compared (response-headers-differential-
// nginx.test.ts does).
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import http from '../../src/node-http.ts';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  basicAuthSecret,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  shaPassword,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { ingressNginxAuthLocation } from '../helpers/nginx-auth.ts';
import { namedLocation } from '../helpers/nginx-custom-errors.ts';
import { rawExchange, splitResponse } from '../helpers/net.ts';

const HEADERS_MORE = 'load_module /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so;';
const DEFAULT_METHODS = 'GET, PUT, POST, DELETE, PATCH, OPTIONS';
const DEFAULT_HEADERS =
  'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization';
const MAX_AGE = 1728000;
const ALLOWED_ORIGIN = 'https://app.test';
const ORIGIN_LIST = `${ALLOWED_ORIGIN}, https://*.good.test:8443`;
/** Origins sent by the refusal probes; undefined: no Origin field. */
const ORIGINS: readonly (string | undefined)[] = [ALLOWED_ORIGIN, 'https://evil.test', undefined, 'null'];
/** The limit cases' client: its bucket is emptied first (limit-rpm 1, burst 5: one token a minute). */
const LIMITED_CLIENT = '127.0.0.77';
const SIGNIN = 'https://signin.test/start';

// ---------------------------------------------------------------------------------------------
// The services: one recording server plays the backend (`svc-web`), the auth service (`svc-auth`, by
// its path: /401, /403, /200) and the error backend (`svc-err`, requests with X-Code). Each probe
// carries `?probe=<id>`; `seen` holds `<role>:<id>` for every request that reached it.

const seen = new Set<string>();

function probeId(text: string | undefined): string {
  return /[?&]probe=([a-z0-9-]+)/.exec(text ?? '')?.[1] ?? '?';
}

function serve(req: IncomingMessage, res: ServerResponse) {
  req.resume();
  const url = req.url ?? '/';
  const send = (status: number, headers: Record<string, string | string[]> = {}) => {
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': '2', ...headers });
    res.end('ok');
  };
  if (req.headers['x-code'] !== undefined) {
    seen.add(`error:${probeId(req.headers['x-original-uri'] as string | undefined)}`);
    return send(404, { 'x-error-page': '1' });
  }
  if (req.headers['x-original-url'] !== undefined) {
    seen.add(`auth:${probeId(req.headers['x-original-url'] as string)}`);
    const status = Number(/^\/(\d{3})/.exec(url)?.[1] ?? 500);
    return send(status, status === 401 ? { 'www-authenticate': 'Basic realm="svc"' } : {});
  }
  seen.add(`backend:${probeId(url)}`);
  if (url.startsWith('/notfound')) return send(404);
  if (url.startsWith('/own2'))
    return send(200, {
      'access-control-allow-origin': ['https://one.test', 'https://two.test'],
      'access-control-allow-credentials': ['true', 'true'],
    });
  if (url.startsWith('/own'))
    return send(200, {
      'access-control-allow-origin': 'https://backend-chose.test',
      'access-control-allow-credentials': 'false',
      'access-control-expose-headers': 'X-Backend',
      vary: 'Accept-Encoding',
    });
  return send(200);
}

// ---------------------------------------------------------------------------------------------
// The locations: each on its own host, the same Ingress for keepip and, for nginx, the location
// ingress-nginx renders.

interface Loc {
  host: string;
  /** enable-cors and cors-* beside it (keepip's annotations). */
  annotations: Record<string, string>;
  /** nginx's cors-* values, as ingress-nginx's Parse reads the annotations. */
  cors: { origins: readonly string[]; methods: string; headers: string; credentials: boolean };
  /** Directives before / after the CORS block in nginx's location, and at the server level. */
  pre?: string[];
  post?: string[];
  server?: string[];
  tls?: boolean;
}

const CORS_LIST = {
  origins: ORIGIN_LIST.split(', '),
  methods: DEFAULT_METHODS,
  headers: DEFAULT_HEADERS,
  credentials: true,
};
const corsOn = { 'enable-cors': 'true', 'cors-allow-origin': ORIGIN_LIST };

function authUrl(authPort: number, status: number): string {
  return `http://127.0.0.1:${authPort}/${status}`;
}

const AUTH_PATH = `/_external-auth-${Buffer.from('/').toString('base64url')}-Prefix`;

function authDirectives(authPort: number, status: number): { server: string[]; post: string[] } {
  return {
    server: [ingressNginxAuthLocation({ path: AUTH_PATH, authUrl: authUrl(authPort, status), method: null })],
    post: [
      `auth_request ${AUTH_PATH};`,
      'auth_request_set $auth_cookie $upstream_http_set_cookie;',
      'add_header Set-Cookie $auth_cookie;',
    ],
  };
}

function locations(dir: string, authPort: number, errPort: number): Loc[] {
  writeFileSync(join(dir, 'htpasswd'), `user:${shaPassword('pw')}\n`);
  const signin = authDirectives(authPort, 401);
  return [
    { host: 'plain.test', annotations: corsOn, cors: CORS_LIST },
    {
      host: 'star.test',
      annotations: { 'enable-cors': 'true', 'auth-type': 'basic', 'auth-secret': 'basic' },
      cors: { ...CORS_LIST, origins: ['*'] },
      post: [
        `auth_basic "Authentication Required";`,
        `auth_basic_user_file ${dir}/htpasswd;`,
        'proxy_set_header Authorization "";',
      ],
    },
    {
      host: 'basic.test',
      annotations: { ...corsOn, 'auth-type': 'basic', 'auth-secret': 'basic' },
      cors: CORS_LIST,
      post: [
        `auth_basic "Authentication Required";`,
        `auth_basic_user_file ${dir}/htpasswd;`,
        'proxy_set_header Authorization "";',
      ],
    },
    ...[401, 403, 200].map((status) => ({
      host: `auth${status}.test`,
      annotations: { ...corsOn, 'auth-url': authUrl(authPort, status) },
      cors: CORS_LIST,
      ...authDirectives(authPort, status),
    })),
    {
      host: 'signin.test',
      annotations: { ...corsOn, 'auth-url': authUrl(authPort, 401), 'auth-signin': SIGNIN },
      cors: CORS_LIST,
      server: [...signin.server, '@SIGNIN@'],
      post: [...signin.post, 'error_page 401 = @signin;'],
    },
    {
      host: 'deny.test',
      annotations: { ...corsOn, 'allowlist-source-range': '10.0.0.0/8' },
      cors: CORS_LIST,
      pre: ['allow 10.0.0.0/8;', 'deny all;'],
    },
    {
      host: 'limit.test',
      annotations: { ...corsOn, 'limit-rpm': '1' },
      cors: CORS_LIST,
      post: ['limit_req zone=limit_rpm burst=5 nodelay;'],
    },
    {
      host: 'tls.test',
      annotations: { ...corsOn },
      cors: CORS_LIST,
      tls: true,
      post: ['return 308 https://$host$request_uri;'],
    },
    {
      host: 'moved.test',
      annotations: { ...corsOn, 'permanent-redirect': 'https://elsewhere.test/x' },
      cors: CORS_LIST,
      post: ['return 301 https://elsewhere.test/x;'],
    },
    {
      host: 'approot.test',
      annotations: { ...corsOn, 'app-root': '/app' },
      cors: CORS_LIST,
      server: ['if ($uri = /) { return 302 $scheme://$http_host/app; }'],
    },
    {
      host: 'body.test',
      annotations: { ...corsOn, 'proxy-body-size': '10' },
      cors: CORS_LIST,
      post: ['client_max_body_size 10;'],
    },
    {
      host: 'errors.test',
      annotations: { ...corsOn, 'custom-http-errors': '404', 'default-backend': 'svc-err' },
      cors: CORS_LIST,
      server: [namedLocation('default-svc-err-80', 404, errPort)],
      post: ['proxy_intercept_errors on;', 'error_page 404 = @custom_default-svc-err-80_404;'],
    },
    {
      host: 'case.test',
      annotations: {
        ...corsOn,
        'cors-allow-methods': 'get, put ,  post',
        'cors-allow-headers': ' x-custom,Content-Type ',
      },
      // Parse: the methods fail `^([A-Za-z]+,?\s?)+$` on the trimmed value ("put ,"): the default; the
      // headers pass `^[A-Za-z0-9-_, ]*$`: the trimmed value.
      cors: { ...CORS_LIST, methods: DEFAULT_METHODS, headers: 'x-custom,Content-Type' },
    },
    {
      host: 'lower.test',
      annotations: { ...corsOn, 'cors-allow-methods': 'get,put, patch' },
      cors: { ...CORS_LIST, methods: 'get,put, patch' },
    },
    {
      host: 'ports.test',
      annotations: {
        'enable-cors': 'true',
        'cors-allow-origin': 'https://a.test:443, http://b.test, https://*.w.test:8443, https://c.test',
      },
      cors: {
        ...CORS_LIST,
        origins: ['https://a.test:443', 'http://b.test', 'https://*.w.test:8443', 'https://c.test'],
      },
    },
  ];
}

/** Go's regexp.QuoteMeta, then the first `\*` one label (template.go buildOriginRegex). */
function originRegex(origin: string): string {
  return `(${origin.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&').replace('\\*', '[A-Za-z0-9\\-]+')})`;
}

function corsBlock(c: Loc['cors']): string[] {
  const first =
    c.origins.length === 1 && c.origins[0] === '*'
      ? ['set $http_origin *;', "set $cors 'true';"]
      : [`if ($http_origin ~* (${c.origins.map(originRegex).join('|')})$ ) { set $cors 'true'; }`];
  const headers = [
    "more_set_headers 'Access-Control-Allow-Origin: $http_origin';",
    ...(c.credentials ? ["more_set_headers 'Access-Control-Allow-Credentials: true';"] : []),
    `more_set_headers 'Access-Control-Allow-Methods: ${c.methods}';`,
    `more_set_headers 'Access-Control-Allow-Headers: ${c.headers}';`,
    `more_set_headers 'Access-Control-Max-Age: ${MAX_AGE}';`,
  ];
  return [
    ...first,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form
    "if ($request_method = 'OPTIONS') { set $cors ${cors}options; }",
    `if ($cors = "true") { ${headers.join(' ')} }`,
    `if ($cors = "trueoptions") { ${headers.join(' ')} more_set_headers 'Content-Type: text/plain charset=UTF-8'; more_set_headers 'Content-Length: 0'; return 204; }`,
  ];
}

function nginxServer(port: number, webPort: number, loc: Loc): string {
  const cors = corsBlock(loc.cors);
  const server = (loc.server ?? []).map((line) =>
    line === '@SIGNIN@'
      ? `location @signin { internal; add_header Set-Cookie $auth_cookie; ${cors.join(' ')} return 302 ${SIGNIN}?rd=$scheme://$http_host$request_uri; }`
      : line,
  );
  return [
    `server { listen 127.0.0.1:${port}; server_name ${loc.host};`,
    "  set $cors ''; set $namespace default; set $ingress_name ''; set $service_name svc-web; set $service_port 80;",
    '  set $req_id $request_id; set $best_http_host $http_host;',
    ...server,
    '  location / {',
    '    set $proxy_upstream_name "default-svc-web-80";',
    ...(loc.pre ?? []),
    ...cors,
    ...(loc.post ?? []),
    '    proxy_set_header Host $http_host;',
    `    proxy_pass http://127.0.0.1:${webPort};`,
    '  }',
    '}',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Probes and answers.

interface Probe {
  method: 'GET' | 'OPTIONS' | 'POST';
  path: string;
  origin: string | undefined;
  /** A POST body of 100 bytes (over proxy-body-size 10). */
  body?: boolean;
  from?: string;
}

interface Answer {
  status: number;
  /** Access-Control-* and Vary lines, `name: value`, names lower-cased, sorted. */
  cors: string[];
  /** `backend` / `auth` / `error`: the services this probe reached. */
  reached: string[];
}

let probeCount = 0;

async function ask(port: number, side: 'n' | 'k', host: string, p: Probe): Promise<Answer> {
  const id = `${side}${++probeCount}`;
  const sep = p.path.includes('?') ? '&' : '?';
  const lines = [`${p.method} ${p.path}${sep}probe=${id} HTTP/1.1`, `Host: ${host}`, 'Connection: close'];
  if (p.origin !== undefined) lines.push(`Origin: ${p.origin}`);
  if (p.method === 'OPTIONS')
    lines.push(
      'Access-Control-Request-Method: PUT',
      'Access-Control-Request-Headers: x-custom, content-type',
    );
  if (p.body) lines.push('Content-Length: 100');
  const payload = `${lines.join('\r\n')}\r\n\r\n${p.body ? 'x'.repeat(100) : ''}`;
  const { received } = await rawExchange({
    host: '127.0.0.1',
    port,
    payload,
    localAddress: p.from ?? '127.0.0.1',
  });
  const { head } = splitResponse(received);
  const [statusLine, ...fields] = head.split('\r\n');
  const cors = fields
    .map((f) => {
      const colon = f.indexOf(':');
      return `${f.slice(0, colon).toLowerCase()}: ${f.slice(colon + 1).trim()}`;
    })
    .filter((f) => f.startsWith('access-control-') || f.startsWith('vary:'))
    .sort();
  const reached = ['backend', 'auth', 'error'].filter((role) => seen.has(`${role}:${id}`));
  return { status: Number(statusLine!.split(' ')[1]), cors, reached };
}

function describeProbe(host: string, p: Probe): string {
  return `${host} ${p.method}${p.body ? '+body' : ''} ${p.path} Origin=${p.origin ?? '(none)'}`;
}

/**
 * Differences accepted, keyed by describeProbe, with what keepip answers instead of nginx and why.
 * Each must still be seen (the table cannot rot).
 */
const CASE_WHY =
  'difference 19: "an unreadable `cors-allow-methods` or `cors-allow-headers` allows no origin" (with a ' +
  "warning). `get, put ,  post` passes ingress-nginx's annotation validator (spaces removed) but not Parse's " +
  '`^([A-Za-z]+,?\\s?)+$` on the trimmed value, so nginx grants the default methods (DELETE, PATCH among ' +
  'them) to the allowed origin; keepip grants nothing and the preflight goes to the backend (narrower)';
const ALLOWED: Record<string, { keepip: Partial<Answer>; why: string }> = {
  'case.test GET / Origin=https://app.test': { keepip: { cors: [] }, why: CASE_WHY },
  'case.test OPTIONS / Origin=https://app.test': {
    keepip: { status: 200, cors: [], reached: ['backend'] },
    why: CASE_WHY,
  },
};

// ---------------------------------------------------------------------------------------------

describe('enable-cors with headers-more on locations that refuse: keepip against nginx 1.22', () => {
  let nginx: RunningNginx | undefined;
  let gateway: TestGateway | undefined;
  const servers: Server[] = [];
  let ngxPort = 0;
  const seenAllowed = new Set<string>();

  before(async () => {
    const ports: number[] = [];
    for (let i = 0; i < 1; i++) {
      const server = http.createServer(serve);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      ports.push((server.address() as AddressInfo).port);
    }
    const port = ports[0]!;
    let locs: Loc[] = [];
    nginx = await startNginx({
      freePorts: 1,
      main: [HEADERS_MORE],
      http: (dir, [listen]) => {
        locs = locations(dir, port, port);
        return [
          'limit_req_zone $binary_remote_addr zone=limit_rpm:5m rate=1r/m;',
          'limit_req_status 503;',
          `server { listen 127.0.0.1:${listen} default_server; server_name _; location / { return 404; } }`,
          ...locs.map((loc) => nginxServer(listen!, port, loc)),
        ].join('\n');
      },
      waitFor: ([listen]) => [{ host: '127.0.0.1', port: listen! }],
    });
    ngxPort = nginx.ports[0]!;
    const cert = await testCertificate();
    const objects: K8sObject[] = [
      ...['web', 'auth', 'err'].flatMap((name) =>
        serviceWithEndpoints({ name: `svc-${name}`, ports: [port] }),
      ),
      basicAuthSecret('basic', { user: 'pw' }),
      tlsSecret('tls', cert.cert, cert.key),
      ...locs.map((loc, i) =>
        ingress({
          name: `ing${i}`,
          host: loc.host,
          annotations: loc.annotations,
          paths: [{ path: '/', service: 'svc-web', port: 80 }],
          ...(loc.tls ? { tlsSecret: 'tls' } : {}),
        }),
      ),
    ];
    gateway = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gateway?.close();
    await nginx?.stop();
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  /** Each probe to nginx and keepip; the differences not allowed (and the allowed ones seen). */
  async function differences(host: string, probes: readonly Probe[]): Promise<string[]> {
    const out: string[] = [];
    for (const p of probes) {
      const [ngx, kip] = await Promise.all([
        ask(ngxPort, 'n', host, p),
        ask(gateway!.httpPort, 'k', host, p),
      ]);
      const key = describeProbe(host, p);
      // CORS_REFUSALS_DUMP=1 prints every pair (nginx's answer, `=` or keepip's).
      if (process.env.CORS_REFUSALS_DUMP)
        console.log(
          key,
          JSON.stringify(ngx),
          JSON.stringify(kip) === JSON.stringify(ngx) ? '=' : JSON.stringify(kip),
        );
      if (JSON.stringify(ngx) === JSON.stringify(kip)) continue;
      const allowed = ALLOWED[key];
      if (allowed !== undefined && JSON.stringify({ ...ngx, ...allowed.keepip }) === JSON.stringify(kip)) {
        seenAllowed.add(key);
        continue;
      }
      out.push(`${key}\n    nginx:  ${JSON.stringify(ngx)}\n    keepip: ${JSON.stringify(kip)}`);
    }
    return out;
  }

  function refusalProbes(path = '/', extra: Partial<Probe> = {}): Probe[] {
    return ORIGINS.flatMap((origin) => [
      { method: 'GET' as const, path, origin, ...extra },
      { method: 'OPTIONS' as const, path, origin, ...extra },
    ]);
  }

  function assertNone(diffs: string[]): void {
    assert.deepEqual(diffs, [], `keepip differs from nginx + headers-more:\n${diffs.join('\n')}`);
  }

  it('a plain location, a backend 404 and a backend with its own Access-Control-* fields: the same headers, replaced not duplicated', async () => {
    assertNone([
      ...(await differences('plain.test', refusalProbes('/'))),
      ...(await differences('plain.test', refusalProbes('/notfound'))),
      ...(await differences('plain.test', refusalProbes('/own'))),
      ...(await differences('plain.test', refusalProbes('/own2'))),
    ]);
  });

  it('basic auth (401), with a list of origins and with `*`: the same statuses and headers, the preflight answered before auth', async () => {
    assertNone([
      ...(await differences('basic.test', refusalProbes())),
      ...(await differences('star.test', refusalProbes())),
    ]);
  });

  it('auth-url answering 401, 403, 200, and auth-signin: the auth service reached alike, the same headers', async () => {
    assertNone([
      ...(await differences('auth401.test', refusalProbes())),
      ...(await differences('auth403.test', refusalProbes())),
      ...(await differences('auth200.test', refusalProbes())),
      ...(await differences('signin.test', refusalProbes())),
    ]);
  });

  it('an allowlist deny (403) and limit-rpm (503 once the burst is spent): the preflight from an allowed origin is 204, the rest refused alike', async () => {
    // Empty both buckets (1 + burst 5) from the limited client; a 503 proves each is spent.
    for (const port of [ngxPort, gateway!.httpPort]) {
      let status = 0;
      for (let i = 0; i < 20 && status !== 503; i++)
        status = (
          await ask(port, port === ngxPort ? 'n' : 'k', 'limit.test', {
            method: 'GET',
            path: '/',
            origin: undefined,
            from: LIMITED_CLIENT,
          })
        ).status;
      assert.equal(status, 503, `the bucket of port ${port} was never spent`);
    }
    assertNone([
      ...(await differences('deny.test', refusalProbes())),
      ...(await differences('limit.test', refusalProbes('/', { from: LIMITED_CLIENT }))),
    ]);
  });

  it('ssl-redirect (308 over http), permanent-redirect (301) and app-root (302): the same headers on the redirect, the preflight answered as nginx', async () => {
    assertNone([
      ...(await differences('tls.test', refusalProbes())),
      ...(await differences('moved.test', refusalProbes())),
      ...(await differences('approot.test', refusalProbes('/'))),
      ...(await differences('approot.test', refusalProbes('/other'))),
    ]);
  });

  it('proxy-body-size (413) and a custom-http-errors page: the same headers (the error page carries none)', async () => {
    assertNone([
      ...(await differences(
        'body.test',
        refusalProbes('/', { method: 'POST', body: true }).filter((_, i) => i % 2 === 0),
      )),
      ...(await differences(
        'body.test',
        ORIGINS.map((origin) => ({ method: 'OPTIONS' as const, path: '/', origin, body: true })),
      )),
      ...(await differences('errors.test', refusalProbes('/notfound'))),
    ]);
  });

  it('cors-allow-methods / -headers in lower case or with odd spacing: the values nginx sends', async () => {
    assertNone([
      ...(await differences('case.test', refusalProbes())),
      ...(await differences('lower.test', refusalProbes())),
    ]);
  });

  it('cors-allow-origin with ports and a wildcard against origins with and without default ports', async () => {
    const origins = [
      'https://a.test:443',
      'https://a.test',
      'http://b.test',
      'http://b.test:80',
      'https://c.test:443',
      'https://x.w.test:8443',
      'https://x.y.w.test:8443',
      'https://X.W.TEST:8443',
      'https://x.w.test',
      'HTTPS://c.test',
    ];
    assertNone(
      await differences(
        'ports.test',
        origins.flatMap((origin) => [
          { method: 'GET' as const, path: '/', origin },
          { method: 'OPTIONS' as const, path: '/', origin },
        ]),
      ),
    );
  });

  it('every ALLOWED difference is still seen', () => {
    assert.deepEqual([...seenAllowed].sort(), Object.keys(ALLOWED).sort());
  });
});
