// Error pages, rate limits and auth-cache keys over HTTP/2: keepip's gateway against nginx 1.22
// (`listen … ssl http2` with ALPN h2, cleartext `http2` with prior knowledge, and a plain HTTP/1.1
// listener for the cross-protocol cases) configured as ingress-nginx renders the same Ingresses. Driven
// by node:http2, raw frames (test/helpers/h2-raw.ts) for what node:http2 will not send, curl --http2
// (libcurl's nghttp2) for error pages and nghttp for several streams against a rate limit. The
// HTTP/1.1 cases of custom-errors-, limits- and auth-cache-differential-nginx and the h2 cases of
// h2-features-differential-nginx are not redone here.
//
// Claims (docs/gateway.md "HTTP/2"): "Every stream is adapted to the same request and response the
// HTTP/1.1 engine produces … and runs through the same pipeline, stage by stage: the connection's PROXY
// header is the client of every stream on it; … allow/deny lists, limits, auth and redirects are
// decided per stream". docs/gateway.md "Request handling": "Limits (`limit-rps`, `limit-rpm`,
// `limit-connections`) key on the resolved client address … Refusals: `limit-req-status-code` /
// `limit-conn-status-code` (503)". docs/ingress-nginx-compat.md: limit-rps / limit-rpm "nginx's
// `limit_req` with `nodelay`: a leaky bucket per client address …, burst N × `limit-burst-multiplier`,
// so burst + 1 requests pass at once"; limit-allowlist "clients never limited"; custom-http-errors /
// disable-proxy-intercept-errors "an answer with a listed status (the backend's, unless
// disable-proxy-intercept-errors; the gateway's own 502/503/504; the location's refusals: allow/deny
// 403, …, limits …) is replaced by the error backend's answer to `/` (the method kept) with X-Code,
// X-Format, X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port, X-Request-ID:
// the client gets the error backend's status"; auth-cache-key "answers cached per host, location,
// auth-url … and key … An answer with `Vary` holds only for requests whose named headers, as the auth
// service got them, are the same (nginx keeps one variant per value, keepip the latest)"; and
// docs/gateway.md "A field nginx takes once only (Authorization, …) sent twice is a 400 over both
// protocols".
//
// What is compared per request: the status, whether the backend / error backend / auth service was
// reached and what it saw (X-Code, X-Format, X-Original-URI, X-Namespace… for the error backend; the
// identity for the backend behind auth). A client admitted over HTTP/2 where nginx (or keepip over
// HTTP/1.1) refuses, a rate limit that counts a connection instead of its streams, or an auth-cache hit
// for another client is a FINDING (the test asserts nginx's answer); documented or stricter differences
// are in ALLOWED, each checked to still be what is seen. None was found: every case below agrees with
// nginx, or differs only as ALLOWED says.
//
// Cases: error pages over h2 and h2c (listed/unlisted backend statuses, HEAD, POST with and without a
// length, the allowlist's 403, the gateway's own 502, two accept fields, forged X-Code/X-Namespace…),
// through curl, mixed on one connection, with disable-proxy-intercept-errors and a listed 429, and the
// 413 of a body without length; limit-rpm over one connection, h2c, several connections, HTTP/1.1 and
// h2 together, two sources, limit-allowlist, nghttp, limit-rps's burst, the default 503, X-Forwarded-For
// per stream from a trusted proxy, PROXY-protocol clients over several connections of one load
// balancer, cancelled streams, the other streams of a connection while one is refused; auth-cache-key
// $cookie_session with cookie crumbs, $http_authorization with two (or an upper-case) authorization
// fields, an auth answer with Vary: Cookie, each across h2, h2c and HTTP/1.1. Sources: distinct 127.x
// addresses per case, so the buckets and cache entries of one case never meet another's.
//
// nginx renderings: the auth location is test/helpers/nginx-auth.ts's (shared); the CUSTOM_ERRORS named
// location and the location's proxy headers are a copy of the minimum of
// custom-errors-differential-nginx.test.ts's (namedLocation, LOCATION_HEADERS, $req_id's map); the
// limit zones (geo allowlist → map → limit_req_zone, `limit_req … nodelay`) as
// limits-differential-nginx.test.ts renders them; the auth server's location as
// auth-cache-differential-nginx.test.ts's (nginxLocation). Everything is started once (describe + before).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, RequestListener, Server, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { request, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  type Frame,
  frame,
  H2_ERROR,
  headerBlock,
  responseStatus,
  rstPayload,
} from '../helpers/h2-raw.ts';
import { ingressNginxAuthLocation } from '../helpers/nginx-auth.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { type SecurityGateway, startSecurityGateway } from './helpers.ts';
import { LOCATION_HEADERS, namedLocation } from '../helpers/nginx-custom-errors.ts';

const WAIT_MS = 10_000;
const ERROR_CODES = [403, 404, 500, 502, 503];
const ERR_UPSTREAM = 'custom-default-backend-default-svc-err';
const RPM_ALLOWLIST = '127.0.60.0/24';
/** proxy-real-ip-cidr of the second keepip (and nginx's set_real_ip_from on xff.test). */
const TRUSTED_PROXIES = '127.0.99.0/24';
/** The load balancers whose PROXY header names the client (use-proxy-protocol, pp.test). */
const LOAD_BALANCERS = '127.0.98.0/24';

// ---------------------------------------------------------------------------------------------
// Backends: the application (`/s/<code>` answers that status with what must never leak once
// intercepted, `/hold/<id>` parks until released, anything else echoes), the error backend (answers
// X-Code's status, as ingress-nginx's custom-error-pages does), one that closes every connection, the
// auth service. Each records what it got under the client's x-probe.

interface Seen {
  backend: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

interface Backends {
  ports: Record<'app' | 'err' | 'dead' | 'auth', number>;
  seen: Map<string, Seen[]>;
  /** Resolves once `/hold/<id>` reached the application (rejects after WAIT_MS). */
  held(id: string): Promise<void>;
  /** Resolves once `/hold/<id>` reached the application; no deadline (for a race with its answer). */
  arrival(id: string): Promise<void>;
  /** Answers every parked request whose id starts with `prefix` (200, `held`). */
  release(prefix: string): void;
  close(): Promise<void>;
}

const ALICE_TOKEN = 'alice-token';
const BOB_TOKEN = 'bob-token';

/** The auth service's reading: Bearer alice/bob, else the first `session=` of the Cookie split at `;`. */
function authIdentity(headers: IncomingHttpHeaders): 'alice' | 'bob' | null {
  if (headers.authorization === 'Bearer alice') return 'alice';
  if (headers.authorization === 'Bearer bob') return 'bob';
  if (headers.authorization !== undefined) return null;
  for (const pair of String(headers.cookie ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== 'session') continue;
    const value = pair.slice(eq + 1).trim();
    return value === ALICE_TOKEN ? 'alice' : value === BOB_TOKEN ? 'bob' : null;
  }
  return null;
}

function backendHandler(id: keyof Backends['ports'], b: HoldState): RequestListener {
  return (req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      const probe = req.headers['x-probe'];
      if (typeof probe === 'string') {
        const list = b.seen.get(probe) ?? [];
        list.push({
          backend: id,
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          bodyBytes: bytes,
        });
        b.seen.set(probe, list);
      }
      if (id === 'dead') {
        req.socket.destroy();
        return;
      }
      if (id === 'err') {
        const code = String(req.headers['x-code'] ?? '');
        const status = /^[45]\d\d$/.test(code) ? Number(code) : 200;
        const body = `err ${code} ${req.headers['x-format'] ?? '-'}`;
        res.writeHead(status, {
          'content-type': 'text/plain',
          'content-length': Buffer.byteLength(body),
          'x-loc': 'err',
        });
        res.end(body);
        return;
      }
      if (id === 'auth') {
        const who = authIdentity(req.headers);
        const headers: Record<string, string> = { 'content-length': '0' };
        if (who !== null) headers['x-auth-user'] = who;
        else headers['www-authenticate'] = 'Bearer realm="h2"';
        if ((req.url ?? '').startsWith('/auth/varycookie')) headers.vary = 'Cookie';
        res.writeHead(who === null ? 401 : 200, headers);
        res.end();
        return;
      }
      const url = req.url ?? '/';
      const code = /^\/s\/(\d{3})/.exec(url)?.[1];
      if (code !== undefined) {
        res.writeHead(Number(code), {
          'content-type': 'text/plain',
          'content-length': 8,
          'set-cookie': 'leak=from-app',
          'x-secret': 's3cr3t',
          'x-loc': 'app',
        });
        res.end('ORIGINAL');
        return;
      }
      const hold = /^\/hold\/([\w-]+)/.exec(url);
      if (hold !== null) {
        res.on('error', () => {});
        b.parked.push([hold[1]!, res]);
        b.heldIds.add(hold[1]!);
        b.waiters.get(hold[1]!)?.();
        return;
      }
      const body = JSON.stringify({
        user: req.headers['x-auth-user'] ?? null,
        realIp: req.headers['x-real-ip'],
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': 'app' });
      res.end(body);
    });
  };
}

interface HoldState {
  seen: Map<string, Seen[]>;
  parked: [string, ServerResponse][];
  heldIds: Set<string>;
  waiters: Map<string, () => void>;
}

async function startBackends(): Promise<Backends> {
  const state: HoldState = { seen: new Map(), parked: [], heldIds: new Set(), waiters: new Map() };
  const servers: Server[] = [];
  const ports = { app: 0, err: 0, dead: 0, auth: 0 };
  for (const id of Object.keys(ports) as (keyof typeof ports)[]) {
    const server = http.createServer(backendHandler(id, state));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports[id] = (server.address() as net.AddressInfo).port;
  }
  const release = (prefix: string) => {
    const keep: [string, ServerResponse][] = [];
    for (const [id, res] of state.parked) {
      if (!id.startsWith(prefix)) {
        keep.push([id, res]);
        continue;
      }
      res.writeHead(200, { 'x-backend': 'app', 'content-length': 4 });
      res.end('held');
    }
    state.parked = keep;
  };
  return {
    ports,
    seen: state.seen,
    held: (id) =>
      state.heldIds.has(id)
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${id} never reached the backend`)), WAIT_MS);
            state.waiters.set(id, () => {
              clearTimeout(timer);
              resolve();
            });
          }),
    arrival: (id) =>
      state.heldIds.has(id)
        ? Promise.resolve()
        : new Promise((resolve) => state.waiters.set(id, () => resolve())),
    release,
    async close() {
      release('');
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// nginx as ingress-nginx renders the Ingresses below.

interface LocationSpec {
  /** `location <where>`. */
  where: string;
  ing: string;
  service: string;
  port: number;
  codes?: number[];
  /** proxy_intercept_errors on (custom-http-errors without disable-proxy-intercept-errors). */
  intercept?: boolean;
  allow?: string;
  /** client_max_body_size (proxy-body-size); default 1m. */
  bodySize?: string;
  /** limit_req zone and burst, with limit_req_status. */
  limit?: { zone: string; burst: number; status: number };
}

function location(l: LocationSpec): string {
  const lines = [
    `set $namespace "default"; set $ingress_name "${l.ing}";`,
    `set $service_name "${l.service}"; set $service_port "80";`,
    'set $best_http_host $http_host;',
    ...(l.allow === undefined ? [] : [`allow ${l.allow};`, 'deny all;']),
    `client_max_body_size ${l.bodySize ?? '1m'};`,
    ...(l.limit === undefined
      ? []
      : [
          `limit_req zone=${l.limit.zone} burst=${l.limit.burst} nodelay;`,
          `limit_req_status ${l.limit.status};`,
        ]),
    ...LOCATION_HEADERS,
    ...(l.intercept === true ? ['proxy_intercept_errors on;'] : []),
    ...(l.codes ?? []).map((code) => `error_page ${code} = @custom_${ERR_UPSTREAM}_${code};`),
    `proxy_pass http://127.0.0.1:${l.port};`,
  ];
  return `  location ${l.where} {\n    ${lines.join('\n    ')}\n  }`;
}

/** ingress-nginx's per-Ingress limit zones: geo allowlist → map → limit_req_zone. */
function limitZone(id: string, rate: string, allowlist: string | null): string {
  return [
    `geo $remote_addr $allowlist_${id} { default 0; ${allowlist === null ? '' : `${allowlist} 1;`} }`,
    `map $allowlist_${id} $limit_${id} { 0 $binary_remote_addr; 1 ""; }`,
    `limit_req_zone $limit_${id} zone=${id}:5m rate=${rate};`,
  ].join('\n');
}

const AUTH_PATH = '/_external-auth-Lw-Prefix';

/** An auth-url server with auth-cache-key (the location as auth-cache-differential-nginx renders it). */
function authServer(listen: string, host: string, key: string, authUrl: string, appPort: number): string {
  const auth = ingressNginxAuthLocation({
    path: AUTH_PATH,
    authUrl,
    method: null,
    cache: { host, key, durations: ['200 202 401 5m'] },
  });
  return `server { ${listen} server_name ${host};
  set $pass_access_scheme $scheme;
${auth}
  location / {
    auth_request ${AUTH_PATH};
    auth_request_set $auth_cookie $upstream_http_set_cookie;
    add_header Set-Cookie $auth_cookie;
    auth_request_set $authHeader0 $upstream_http_x_auth_user;
    proxy_set_header 'X-Auth-User' $authHeader0;
    proxy_set_header Host $host;
    proxy_pass http://127.0.0.1:${appPort};
  }
}`;
}

/** The auth-url of each auth host, and its auth-cache-key. */
const AUTH_HOSTS: Record<string, { key: string; path: string }> = {
  'authc.test': { key: '$cookie_session', path: '/auth/plain' },
  'autha.test': { key: '$http_authorization', path: '/auth/plain' },
  'authv.test': { key: '$http_authorization', path: '/auth/varycookie' },
};

function nginxHttp(dir: string, [tlsPort, plainPort, h1Port, ppPort]: number[], b: Backends): string {
  const listen = `listen 127.0.0.1:${tlsPort} ssl http2; listen 127.0.0.1:${plainPort} http2; listen 127.0.0.1:${h1Port};`;
  const { app, err, dead, auth } = b.ports;
  const named = (codes: number[]) => codes.map((code) => namedLocation(ERR_UPSTREAM, code, err)).join('\n');
  const server = (host: string, body: string) => `server { ${listen} server_name ${host};\n${body}\n}`;
  return `
  ssl_certificate ${dir}/tls.crt;
  ssl_certificate_key ${dir}/tls.key;
  limit_req_status 429;
  map $http_x_request_id $req_id { default $http_x_request_id; "" $request_id; }
  proxy_cache_path ${dir}/auth-cache levels=1:2 keys_zone=auth_cache:10m max_size=128m inactive=30m use_temp_path=off;
  ${limitZone('rpm', '1r/m', RPM_ALLOWLIST)}
  ${limitZone('rps', '1r/s', null)}
  ${limitZone('rawerr', '1r/m', null)}
  ${limitZone('rpm503', '1r/m', null)}
  ${limitZone('xff', '1r/m', null)}
  ${limitZone('pp', '1r/m', null)}
  server { listen 127.0.0.1:${ppPort} ssl http2 proxy_protocol default_server; server_name pp.test;
    set_real_ip_from ${LOAD_BALANCERS}; real_ip_header proxy_protocol;
${location({ where: '/', ing: 'pp', service: 'svc-app', port: app, limit: { zone: 'pp', burst: 5, status: 429 } })}
  }
  server { ${listen.replaceAll(';', ' default_server;')} server_name _; location / { return 404; } }
  ${server(
    'errors.test',
    [
      named(ERROR_CODES),
      location({
        where: '/',
        ing: 'errors',
        service: 'svc-app',
        port: app,
        codes: ERROR_CODES,
        intercept: true,
      }),
      location({
        where: '/dead/',
        ing: 'errors',
        service: 'svc-dead',
        port: dead,
        codes: ERROR_CODES,
        intercept: true,
      }),
      location({
        where: '/private/',
        ing: 'errors-private',
        service: 'svc-app',
        port: app,
        codes: ERROR_CODES,
        intercept: true,
        allow: '10.0.0.0/8',
      }),
    ].join('\n'),
  )}
  ${server(
    'big.test',
    [
      named([413]),
      location({
        where: '/',
        ing: 'big',
        service: 'svc-app',
        port: app,
        codes: [413],
        intercept: true,
        bodySize: '1k',
      }),
    ].join('\n'),
  )}
  ${server(
    'rawerr.test',
    [
      named([404, 429]),
      location({
        where: '/',
        ing: 'rawerr',
        service: 'svc-app',
        port: app,
        codes: [404, 429],
        limit: { zone: 'rawerr', burst: 1, status: 429 },
      }),
    ].join('\n'),
  )}
  ${server('rpm.test', location({ where: '/', ing: 'rpm', service: 'svc-app', port: app, limit: { zone: 'rpm', burst: 5, status: 429 } }))}
  ${server('rps.test', location({ where: '/', ing: 'rps', service: 'svc-app', port: app, limit: { zone: 'rps', burst: 5, status: 429 } }))}
  ${server('rpm503.test', location({ where: '/', ing: 'rpm503', service: 'svc-app', port: app, limit: { zone: 'rpm503', burst: 5, status: 503 } }))}
  ${server(
    'xff.test',
    [
      `  set_real_ip_from ${TRUSTED_PROXIES}; real_ip_header X-Forwarded-For; real_ip_recursive on;`,
      location({
        where: '/',
        ing: 'xff',
        service: 'svc-app',
        port: app,
        allow: '10.0.0.0/8',
        limit: { zone: 'xff', burst: 1, status: 503 },
      }),
    ].join('\n'),
  )}
  ${server('open.test', location({ where: '/', ing: 'open', service: 'svc-app', port: app }))}
  ${Object.entries(AUTH_HOSTS)
    .map(([host, a]) => authServer(listen, host, a.key, `http://127.0.0.1:${auth}${a.path}`, app))
    .join('\n')}`;
}

// ---------------------------------------------------------------------------------------------
// keepip's topology of the same Ingresses.

function keepipObjects(b: Backends, configMap: Record<string, string>): K8sObject[] {
  const route = (
    name: string,
    host: string,
    service: string,
    annotations: Record<string, string>,
    path = '/',
  ) => ingress({ name, host, annotations, paths: [{ path, service, port: 80 }] });
  const errors = { 'custom-http-errors': ERROR_CODES.join(','), 'default-backend': 'svc-err' };
  return [
    controllerConfigMap(configMap),
    ...(['app', 'err', 'dead'] as const).flatMap((id) =>
      serviceWithEndpoints({ name: `svc-${id}`, ports: [b.ports[id]] }),
    ),
    ingress({
      name: 'errors',
      host: 'errors.test',
      annotations: errors,
      paths: [
        { path: '/', service: 'svc-app', port: 80 },
        { path: '/dead', service: 'svc-dead', port: 80 },
      ],
    }),
    route(
      'errors-private',
      'errors.test',
      'svc-app',
      { ...errors, 'whitelist-source-range': '10.0.0.0/8' },
      '/private',
    ),
    route('rawerr', 'rawerr.test', 'svc-app', {
      'custom-http-errors': '404,429',
      'default-backend': 'svc-err',
      'disable-proxy-intercept-errors': 'true',
      'limit-rpm': '1',
      'limit-burst-multiplier': '1',
    }),
    route('big', 'big.test', 'svc-app', {
      'custom-http-errors': '413',
      'default-backend': 'svc-err',
      'proxy-body-size': '1k',
    }),
    route('rpm', 'rpm.test', 'svc-app', { 'limit-rpm': '1', 'limit-allowlist': RPM_ALLOWLIST }),
    route('rps', 'rps.test', 'svc-app', { 'limit-rps': '1' }),
    route('rpm503', 'rpm503.test', 'svc-app', { 'limit-rpm': '1' }),
    route('xff', 'xff.test', 'svc-app', {
      'whitelist-source-range': '10.0.0.0/8',
      'limit-rpm': '1',
      'limit-burst-multiplier': '1',
    }),
    route('open', 'open.test', 'svc-app', {}),
    route('pp', 'pp.test', 'svc-app', { 'limit-rpm': '1' }),
    ...Object.entries(AUTH_HOSTS).map(([host, a]) =>
      route(host.replace('.test', ''), host, 'svc-app', {
        'auth-url': `http://127.0.0.1:${b.ports.auth}${a.path}`,
        'auth-cache-key': a.key,
        'auth-response-headers': 'X-Auth-User',
      }),
    ),
  ];
}

type Proxy = 'nginx' | 'keepip';
const PROXIES: Proxy[] = ['nginx', 'keepip'];

interface Ports {
  tls: number;
  plain: number;
  h1: number;
}

interface Bench {
  backends: Backends;
  nginx: RunningNginx;
  /** ConfigMap limit-req-status-code 429. */
  keepip: SecurityGateway;
  /**
   * The same Ingresses under a ConfigMap with the default limit-req-status-code (503: rpm503.test) and
   * use-forwarded-headers from TRUSTED_PROXIES (xff.test).
   */
  keepip503: SecurityGateway;
  ports: Record<Proxy, Ports>;
  /** keepip503's TLS port, and nginx's (whose rpm503.test location says 503 itself). */
  ports503: Record<Proxy, number>;
  /** Under use-proxy-protocol from LOAD_BALANCERS (pp.test). */
  keepipPP: SecurityGateway;
  /** keepipPP's TLS port, and nginx's `ssl http2 proxy_protocol` one. */
  portsPP: Record<Proxy, number>;
  dir: string;
}

async function startBench(): Promise<Bench> {
  const backends = await startBackends();
  const dir = mkdtempSync(join(tmpdir(), 'keepip-h2pol-'));
  const started: { close(): Promise<void> }[] = [];
  try {
    const pair = await testCertificate();
    writeFileSync(join(dir, 'tls.crt'), pair.cert);
    writeFileSync(join(dir, 'tls.key'), pair.key);
    const nginx = await startNginx({
      freePorts: 4,
      http: (_d, ports) => nginxHttp(dir, ports, backends),
      waitFor: (ports) => ports.map((port) => ({ host: '127.0.0.1', port })),
    });
    started.push({ close: () => nginx.stop() });
    const https = { https: { host: '127.0.0.1', port: 0 } };
    const keepip = await startSecurityGateway(
      topologyOf(keepipObjects(backends, { 'limit-req-status-code': '429' })),
      https,
    );
    started.push(keepip);
    const forwarded = { 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': TRUSTED_PROXIES };
    const keepip503 = await startSecurityGateway(topologyOf(keepipObjects(backends, forwarded)), https);
    started.push(keepip503);
    const pp = {
      'use-proxy-protocol': 'true',
      'proxy-real-ip-cidr': LOAD_BALANCERS,
      'limit-req-status-code': '429',
    };
    const keepipPP = await startSecurityGateway(topologyOf(keepipObjects(backends, pp)), https);
    started.push(keepipPP);
    const tlsOf = (g: SecurityGateway) => g.gateway.httpsAddress?.port ?? 0;
    const [t, p, h, pn] = nginx.ports as [number, number, number, number];
    return {
      backends,
      nginx,
      keepip,
      keepip503,
      ports: {
        nginx: { tls: t, plain: p, h1: h },
        keepip: { tls: tlsOf(keepip), plain: keepip.port, h1: keepip.port },
      },
      ports503: { nginx: t, keepip: tlsOf(keepip503) },
      keepipPP,
      portsPP: { nginx: pn, keepip: tlsOf(keepipPP) },
      dir,
    };
  } catch (error) {
    for (const s of started.reverse()) await s.close();
    await backends.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Clients.

interface Reply {
  /** 0: the stream or the connection was refused (reset, GOAWAY, close) before a status. */
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

interface Ask {
  authority: string;
  path?: string;
  method?: string;
  /** An array value goes out as several fields of that name. */
  headers?: Record<string, string | string[]>;
  body?: string;
}

interface Session {
  session: http2.ClientHttp2Session;
  /** Set once the server sent GOAWAY. */
  goaway: () => boolean;
  close(): void;
}

function connect(port: number, o: { from: string; plain?: boolean; preface?: string }): Promise<Session> {
  const tcp = () => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: o.from });
    // A PROXY header goes before everything else on the connection (written while it connects).
    if (o.preface !== undefined) socket.write(o.preface);
    return socket;
  };
  const session =
    o.plain === true
      ? http2.connect(`http://localhost:${port}`, { createConnection: tcp })
      : http2.connect(`https://localhost:${port}`, {
          createConnection: () =>
            tls.connect({
              socket: tcp(),
              servername: 'localhost',
              ALPNProtocols: ['h2'],
              rejectUnauthorized: false,
            }),
        });
  let goaway = false;
  session.on('goaway', () => {
    goaway = true;
  });
  return new Promise((resolve, reject) => {
    session.once('connect', () => {
      session.off('error', reject);
      session.on('error', () => {});
      resolve({ session, goaway: () => goaway, close: () => session.destroy() });
    });
    session.once('error', reject);
  });
}

function send(s: Session, a: Ask): Promise<Reply> {
  return new Promise((resolve) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = s.session.request({
        ':method': a.method ?? 'GET',
        ':path': a.path ?? '/',
        ':authority': a.authority,
        ...a.headers,
      });
    } catch {
      resolve({ status: 0, headers: {}, body: '' });
      return;
    }
    let headers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => {});
    stream.on('close', () =>
      resolve({ status: Number(headers[':status'] ?? 0), headers, body: Buffer.concat(chunks).toString() }),
    );
    stream.end(a.body);
  });
}

/** One request on a connection of its own. */
async function ask(port: number, a: Ask & { from: string; plain?: boolean }): Promise<Reply> {
  const s = await connect(port, a);
  try {
    return await send(s, a);
  } finally {
    s.close();
  }
}

/** `:status` of stream 1 sent as raw frames (fields node:http2 will not send); 0: reset or closed first. */
async function rawStatus(port: number, from: string, fields: [string, string][]): Promise<number> {
  const flight = frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(fields));
  const raw = await connectRawH2({ port, from, firstFlight: flight });
  try {
    const done = (f: Frame) =>
      (f.streamId === 1 && (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM)) ||
      f.type === FRAME.GOAWAY;
    await raw.waitFrame(done, WAIT_MS).catch(() => null);
    const head = raw.frames.find((f) => f.streamId === 1 && f.type === FRAME.HEADERS);
    return head === undefined ? 0 : responseStatus(head.payload);
  } finally {
    raw.close();
  }
}

/** A command's stdout (it must exit within 15 s). */
function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 15_000 }, (error, stdout) => {
      if (error !== null && stdout === '') reject(error);
      else resolve(stdout);
    });
  });
}

/** curl --http2 over TLS (libcurl's nghttp2): status, lower-cased header lines, body. */
async function curlH2(port: number, from: string, host: string, path: string, args: string[]) {
  const out = await run('curl', [
    '--http2',
    '-sk',
    '--max-time',
    '10',
    '--interface',
    from,
    '--resolve',
    `${host}:${port}:127.0.0.1`,
    '-D',
    '-',
    ...args,
    `https://${host}:${port}${path}`,
  ]);
  const split = out.indexOf('\r\n\r\n');
  const lines = out.slice(0, split).split('\r\n');
  const status = Number(/^HTTP\/2 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  return { status, headers: lines.slice(1).map((l) => l.toLowerCase()), body: out.slice(split + 4) };
}

// ---------------------------------------------------------------------------------------------
// ALLOWED differences (each checked below to still be what is seen).

const ALLOWED = {
  postBody: {
    seen: "a POST whose answer is intercepted: nginx's error backend gets the client's body again (Content-Length and bytes), keepip's gets `/` without a body",
    doc: 'custom-errors-differential-nginx ALLOWED.body (over HTTP/1.1 the same); docs/ingress-nginx-compat.md custom-http-errors: "replaced by the error backend\'s answer to `/` (the method kept)": the error backend gets none of the client\'s form data (stricter)',
  },
  emptyLength: {
    seen: 'the error backend of a POST whose body nginx did not keep (a 413): nginx sends no Content-Length, keepip `Content-Length: 0`; neither sends a byte of the body',
    doc: 'docs/ingress-nginx-compat.md custom-http-errors: "the error backend\'s answer to `/` (the method kept)"; an explicit empty length on a POST means the same empty body',
  },
  rapidReset: {
    seen: "limit-rpm 1 (burst 5): six streams opened and reset in one read, then six more: nginx's limit_req counts the reset ones (it runs as each HEADERS frame is read) and refuses all six that follow, none reaching the backend; keepip never admits the reset ones into the pipeline and serves the six that follow. Each lets the client's bucket bring burst + 1 requests to the backend, no more",
    doc: 'docs/gateway.md "HTTP/2 limits": "New streams are handed to the pipeline only after the read that brought them is processed, so a stream the client resets in the same read never reaches routing or a backend"; a stream cancelled once it reached the backend is counted by both (the same test)',
  },
  acceptFields: {
    seen: 'two accept fields: nginx 1.22\'s X-Format ($http_accept) is the first field, keepip\'s both joined with ", "',
    doc: 'nginx 1.23.0 joins repeated fields in $http_<name> with ", " (ngx_http_variable_unknown_header), and ingress-nginx ships nginx 1.27.1: keepip sends what ingress-nginx\'s nginx sends; X-Format only picks the page\'s format',
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Error pages: what the client and the error backend get, per probe.

/** What the client sends in every error-page probe: none may reach an error backend as the gateway's value. */
const FORGED: Record<string, string> = {
  'x-code': '299',
  'x-original-uri': '/forged',
  'x-namespace': 'forged-ns',
  'x-ingress-name': 'forged-ing',
  'x-service-name': 'forged-svc',
  'x-service-port': '6666',
  'x-format': 'text/forged',
  'x-forwarded-for': '6.6.6.6',
};

const ERROR_NAMES = [
  'x-code',
  'x-format',
  'x-original-uri',
  'x-namespace',
  'x-ingress-name',
  'x-service-name',
  'x-service-port',
  'x-forwarded-for',
  'host',
  'content-length',
] as const;

let probeCounter = 0;
const newProbe = (what: string) => `${what}-${++probeCounter}`;

/** What one probe showed: the client's answer, what each backend saw, in one comparable text. */
function view(b: Backends, probe: string, reply: { status: number; body: string; leak: boolean }): string {
  const seen = b.seen.get(probe) ?? [];
  const body = reply.body.startsWith('{')
    ? 'echo'
    : reply.body.includes('<title>')
      ? 'nginx-page'
      : reply.body;
  const lines = [`status=${reply.status} body=${JSON.stringify(body)} leak=${reply.leak}`];
  for (const s of seen) {
    if (s.backend !== 'err') {
      lines.push(`  ${s.backend} ${s.method} ${s.url}`);
      continue;
    }
    const fields = ERROR_NAMES.map((n) => `${n}=${s.headers[n] ?? '-'}`);
    const rid = s.headers['x-request-id'];
    fields.push(`x-request-id=${rid === undefined ? '-' : rid === `rid-${probe}` ? 'client' : 'generated'}`);
    lines.push(`  err ${s.method} ${s.url} ${fields.join(' ')} body=${s.bodyBytes}`);
  }
  return lines.join('\n');
}

interface ErrorProbe {
  name: string;
  path: string;
  method?: string;
  body?: string;
  /** The client's X-Request-ID (else none: nginx and keepip generate one). */
  requestId?: boolean;
  accept?: string | string[];
}

const ERROR_PROBES: ErrorProbe[] = [
  { name: 'backend 404 (listed)', path: '/s/404', accept: 'application/json', requestId: true },
  { name: 'backend 500 with arguments', path: '/s/500?q=1&r=%0d%0aX-Injected:%20yes', accept: 'text/html' },
  { name: 'backend 410 (not listed)', path: '/s/410' },
  { name: 'backend 200', path: '/s/200' },
  { name: 'HEAD, backend 503', path: '/s/503', method: 'HEAD', accept: 'text/html' },
  {
    name: 'POST with Content-Length, backend 500',
    path: '/s/500',
    method: 'POST',
    body: 'a=secret-form-body',
  },
  { name: 'POST without Content-Length, backend 404', path: '/s/404', method: 'POST', body: 'streamed-body' },
  { name: 'the allowlist 403', path: '/private/x', accept: 'application/json' },
  { name: "the gateway's own 502 (backend closes)", path: '/dead/x', accept: 'text/plain' },
  { name: 'two accept fields', path: '/s/404', accept: ['text/html', 'application/json'] },
];

function errorHeaders(p: ErrorProbe, probe: string, withLength: boolean): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = { 'x-probe': probe, ...FORGED };
  if (p.accept !== undefined) headers.accept = p.accept;
  if (p.requestId === true) headers['x-request-id'] = `rid-${probe}`;
  if (p.body !== undefined && withLength) headers['content-length'] = String(Buffer.byteLength(p.body));
  return headers;
}

/** keepip's view with the ALLOWED differences from nginx's set aside; the entries used are added to `met`. */
function normalise(ngx: string, kip: string, met: Set<keyof typeof ALLOWED>): string {
  let out = kip;
  const ngxBody = /content-length=(\d+) x-request-id=(\w+) body=(\d+)$/m.exec(ngx);
  if (ngxBody !== null && ngxBody[3] !== '0') {
    const replaced = out.replace(
      /content-length=(?:0|-) x-request-id=(\w+) body=0$/m,
      (_m, rid: string) => `content-length=${ngxBody[1]} x-request-id=${rid} body=${ngxBody[3]}`,
    );
    if (replaced !== out) met.add('postBody');
    out = replaced;
  }
  if (/content-length=- x-request-id=\w+ body=0$/m.test(ngx)) {
    const replaced = out.replace(/content-length=0 (x-request-id=\w+ body=0)$/m, 'content-length=- $1');
    if (replaced !== out) met.add('emptyLength');
    out = replaced;
  }
  const joined = /x-format=([^ ]+), ([^ ]+) /.exec(out);
  if (joined !== null && ngx.includes(`x-format=${joined[1]} `)) {
    out = out.replace(`x-format=${joined[1]}, ${joined[2]} `, `x-format=${joined[1]} `);
    out = out.replace(`err 404 ${joined[1]}, ${joined[2]}`, `err 404 ${joined[1]}`);
    met.add('acceptFields');
  }
  return out;
}

/** The error-page probe over node:http2 on `s` (a stream of that connection). */
async function errorProbe(b: Backends, s: Session, p: ErrorProbe): Promise<string> {
  const probe = newProbe('e');
  const r = await send(s, {
    authority: 'errors.test',
    path: p.path,
    method: p.method,
    headers: errorHeaders(p, probe, p.name.includes('with Content-Length')),
    body: p.body,
  });
  const leak = r.headers['set-cookie'] !== undefined || r.headers['x-secret'] !== undefined;
  return view(b, probe, { status: r.status, body: r.body, leak });
}

// ---------------------------------------------------------------------------------------------
// Rate limits: a stream is "admitted" when the application answered it (x-backend), else refused.

interface Tally {
  admitted: number;
  refused: number[];
}

function tally(replies: readonly Reply[]): Tally {
  const admitted = replies.filter((r) => r.status === 200 && r.headers['x-backend'] === 'app').length;
  const refused = replies.filter((r) => r.headers['x-backend'] !== 'app').map((r) => r.status);
  return { admitted, refused: refused.sort() };
}

/** `n` streams at once on one connection from `from`. */
async function streamsAtOnce(port: number, from: string, authority: string, n: number, plain = false) {
  const s = await connect(port, { from, plain });
  try {
    return await Promise.all(
      Array.from({ length: n }, (_, i) =>
        send(s, { authority, path: `/n/${i}`, headers: { 'x-probe': `${from}-${i}` } }),
      ),
    );
  } finally {
    s.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Auth cache: per request, the status, whether the auth service was asked, the identity the backend got.

interface AuthStep {
  /** The client: 127.0.70.<from>. */
  from: number;
  via: 'h2' | 'h2c' | 'h1' | 'raw';
  cookie?: string | string[];
  authorization?: string | string[];
  /** Raw frames: the fields after the pseudo-headers and x-probe. */
  fields?: [string, string][];
  /** What nginx is expected to do: T (asks the auth service) or F (answers from its cache) or - (neither). */
  nginx: 'T' | 'F' | '-';
}

async function authStep(bench: Bench, x: Proxy, host: string, step: AuthStep): Promise<string> {
  const probe = newProbe('a');
  const from = `127.0.70.${step.from}`;
  const ports = bench.ports[x];
  const headers: Record<string, string | string[]> = { 'x-probe': probe };
  if (step.cookie !== undefined) headers.cookie = step.cookie;
  if (step.authorization !== undefined) headers.authorization = step.authorization;
  let status: number;
  if (step.via === 'raw') {
    const fields: [string, string][] = [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', host],
      [':path', '/'],
      ['x-probe', probe],
      ...(step.fields ?? []),
    ];
    status = await rawStatus(ports.tls, from, fields);
  } else if (step.via === 'h1') {
    const r = await request(ports.h1, { from, host, path: '/', headers: headers as Record<string, string> });
    status = r.status;
  } else {
    const port = step.via === 'h2c' ? ports.plain : ports.tls;
    status = (await ask(port, { from, plain: step.via === 'h2c', authority: host, headers })).status;
  }
  const seen = bench.backends.seen.get(probe) ?? [];
  const asked = seen.filter((s) => s.backend === 'auth').length;
  const app = seen.find((s) => s.backend === 'app');
  const user = app === undefined ? '(not reached)' : String(app.headers['x-auth-user'] ?? '(none)');
  return `status=${status} asked=${asked} user=${user}`;
}

function describeStep(s: AuthStep): string {
  const what = s.fields ?? { cookie: s.cookie, authorization: s.authorization };
  return `${s.via} from 127.0.70.${s.from} ${JSON.stringify(what)}`;
}

/** Runs the steps in order against both; the differences (none expected) and nginx's asks. */
async function authSequence(bench: Bench, host: string, steps: readonly AuthStep[]) {
  const diffs: string[] = [];
  const asks: string[] = [];
  for (const step of steps) {
    const [ngx, kip] = await Promise.all(PROXIES.map((x) => authStep(bench, x, host, step)));
    const answered = /^status=(200|401) /.test(ngx!);
    asks.push(/ asked=0 /.test(ngx!) ? (answered ? 'F' : '-') : 'T');
    if (ngx !== kip) {
      const unsafe = /user=(?!\(not reached\))/.test(kip!) && /user=\(not reached\)/.test(ngx!);
      diffs.push(
        `${describeStep(step)}: nginx ${ngx}, keepip ${kip}${unsafe ? '  <-- FINDING: keepip admitted' : ''}`,
      );
    }
  }
  return { diffs, asks: asks.join('') };
}

// ---------------------------------------------------------------------------------------------

describe('error pages, rate limits and auth-cache keys over HTTP/2: keepip against nginx 1.22 (ingress-nginx rendering)', () => {
  let bench: Bench;
  before(async () => {
    bench = await startBench();
  });
  after(async () => {
    await bench?.keepip.close();
    await bench?.keepip503.close();
    await bench?.keepipPP.close();
    await bench?.nginx.stop();
    await bench?.backends.close();
    if (bench !== undefined) rmSync(bench.dir, { recursive: true, force: true });
  });

  it('custom-http-errors over h2 and h2c: the client and the error backend get what nginx gives them (X-Code, X-Format, X-Original-URI, X-Namespace…, HEAD, POST, 403, 502)', async () => {
    const met = new Set<keyof typeof ALLOWED>();
    const diffs: string[] = [];
    for (const plain of [false, true])
      for (const p of ERROR_PROBES) {
        const [ngx, kip] = await Promise.all(
          PROXIES.map(async (x) => {
            const s = await connect(plain ? bench.ports[x].plain : bench.ports[x].tls, {
              from: '127.0.40.1',
              plain,
            });
            try {
              return await errorProbe(bench.backends, s, p);
            } finally {
              s.close();
            }
          }),
        );
        const kipSeen = normalise(ngx!, kip!, met);
        if (kipSeen !== ngx)
          diffs.push(`${plain ? 'h2c' : 'h2'} ${p.name}:\n nginx:\n${ngx}\n keepip:\n${kip}`);
        // An answer the error backend replaced shows nothing of the original; no forged value passes as the gateway's.
        if (/\n {2}err /.test(kip!))
          assert.match(kip!, /^status=\d+ body="(?!ORIGINAL)[^"]*" leak=false/, p.name);
        for (const [name, value] of Object.entries(FORGED))
          assert.ok(
            !kip!.includes(`${name}=${value}`),
            `${p.name}: forged ${name} reached the error backend`,
          );
      }
    assert.deepEqual(diffs, []);
    assert.deepEqual([...met].sort(), ['acceptFields', 'postBody'], 'the ALLOWED entries still seen');
  });

  it('curl --http2 (a non-Node client): the error page, its HEAD and its format as nginx', async () => {
    for (const [args, path] of [
      [['-H', 'accept: application/json'], '/s/404'],
      [['-I', '-o', '/dev/null', '-H', 'accept: text/html'], '/s/503'],
      [[], '/private/y'],
    ] as const) {
      const [ngx, kip] = await Promise.all(
        PROXIES.map((x) => curlH2(bench.ports[x].tls, '127.0.41.1', 'errors.test', path, [...args])),
      );
      assert.equal(kip!.status, ngx!.status, `${path} ${args.join(' ')}`);
      assert.equal(kip!.body, ngx!.body, `${path} ${args.join(' ')}`);
      assert.ok(!kip!.headers.some((h) => h.startsWith('set-cookie: leak')), path);
    }
    const json = await curlH2(bench.ports.keepip.tls, '127.0.41.1', 'errors.test', '/s/404', [
      '-H',
      'accept: application/json',
    ]);
    assert.equal(json.status, 404);
    assert.equal(json.body, 'err 404 application/json');
  });

  it("several streams on one connection: a backend error, the gateway's 502 and a 403 between successes leave the connection serving, as nginx", async () => {
    for (const plain of [false, true]) {
      const views: Record<Proxy, string[]> = { nginx: [], keepip: [] };
      await Promise.all(
        PROXIES.map(async (x) => {
          const s = await connect(plain ? bench.ports[x].plain : bench.ports[x].tls, {
            from: '127.0.42.1',
            plain,
          });
          try {
            const ok = { name: 'ok', path: '/s/200' };
            views[x].push(await errorProbe(bench.backends, s, ok));
            views[x].push(await errorProbe(bench.backends, s, { name: 'echo', path: '/' }));
            // Four at once on the connection: two answers of the backend (one listed), its failure, a refusal.
            const together: ErrorProbe[] = [
              { name: '500', path: '/s/500', accept: 'a/b' },
              { name: 'dead', path: '/dead/z' },
              { name: '403', path: '/private/z' },
              { name: 'echo', path: '/x' },
            ];
            views[x].push(...(await Promise.all(together.map((p) => errorProbe(bench.backends, s, p)))));
            views[x].push(await errorProbe(bench.backends, s, ok));
            views[x].push(`goaway=${s.goaway()}`);
          } finally {
            s.close();
          }
        }),
      );
      assert.deepEqual(views.keepip, views.nginx, plain ? 'h2c' : 'h2');
      assert.equal(views.nginx.at(-1), 'goaway=false');
    }
  });

  it("disable-proxy-intercept-errors over h2: the backend's listed 404 passes, the limit's own 429 (listed) still goes to the error backend, as nginx", async () => {
    const views: Record<Proxy, string[]> = { nginx: [], keepip: [] };
    await Promise.all(
      PROXIES.map(async (x) => {
        const s = await connect(bench.ports[x].tls, { from: '127.0.57.1' });
        try {
          const rawerr = async (path: string, method = 'GET') => {
            const probe = newProbe('r');
            const r = await send(s, {
              authority: 'rawerr.test',
              path,
              method,
              headers: { 'x-probe': probe, accept: 'x/y' },
            });
            return view(bench.backends, probe, {
              status: r.status,
              body: r.body,
              leak: r.headers['x-secret'] !== undefined,
            });
          };
          // limit-rpm 1 with limit-burst-multiplier 1: two streams pass, then 429.
          views[x].push(
            await rawerr('/s/404'),
            await rawerr('/'),
            await rawerr('/s/404'),
            await rawerr('/', 'HEAD'),
          );
        } finally {
          s.close();
        }
      }),
    );
    assert.deepEqual(views.keepip, views.nginx);
    assert.match(views.nginx[0]!, /^status=404 body="ORIGINAL" leak=true/);
    assert.match(views.nginx[2]!, /^status=429 body="err 429 x\/y"[\s\S]* err GET \/ x-code=429 /);
    assert.match(views.nginx[3]!, /^status=429 body="" [\s\S]* err HEAD \/ x-code=429 /);
  });

  it("proxy-body-size's 413 listed, over h2 and h2c: a body without Content-Length that grows past it goes to the error backend, the connection serves on", async () => {
    const met = new Set<keyof typeof ALLOWED>();
    for (const plain of [false, true]) {
      const [ngx, kip] = await Promise.all(
        PROXIES.map(async (x) => {
          const s = await connect(plain ? bench.ports[x].plain : bench.ports[x].tls, {
            from: '127.0.43.1',
            plain,
          });
          try {
            const probe = newProbe('b');
            const r = await send(s, {
              authority: 'big.test',
              path: '/up?a=1',
              method: 'POST',
              headers: { 'x-probe': probe, accept: 'text/html' },
              body: 'x'.repeat(3000),
            });
            const next = await send(s, { authority: 'big.test', path: '/after' });
            const shown = view(bench.backends, probe, { status: r.status, body: r.body, leak: false });
            return `${shown}\nnext=${next.status}`;
          } finally {
            s.close();
          }
        }),
      );
      assert.match(
        ngx!,
        /^status=413 body="err 413 text\/html" leak=false\n {2}err POST \/\?a=1 x-code=413 [^\n]*\nnext=200$/,
      );
      assert.equal(normalise(ngx!, kip!, met), ngx, plain ? 'h2c' : 'h2');
    }
    // The application never saw the request (only the error backend did), and keepip's error backend
    // gets an empty POST with Content-Length: 0 where nginx's gets no length: each still seen.
    assert.deepEqual([...met].sort(), ['emptyLength']);
  });

  it('limit-rpm counts every stream: one connection, h2c, several connections, HTTP/1.1 and h2 together, two sources, the allowlist', async () => {
    const cases: { name: string; run: (x: Proxy) => Promise<Reply[][]>; admitted: number[] }[] = [
      {
        name: '10 streams on one TLS connection',
        run: async (x) => [await streamsAtOnce(bench.ports[x].tls, '127.0.51.1', 'rpm.test', 10)],
        admitted: [6],
      },
      {
        name: '10 streams on one h2c connection',
        run: async (x) => [await streamsAtOnce(bench.ports[x].plain, '127.0.52.1', 'rpm.test', 10, true)],
        admitted: [6],
      },
      {
        name: 'three connections of 4 streams from one source, at once',
        run: async (x) => [
          (
            await Promise.all(
              [1, 2, 3].map(() => streamsAtOnce(bench.ports[x].tls, '127.0.53.1', 'rpm.test', 4)),
            )
          ).flat(),
        ],
        admitted: [6],
      },
      {
        name: '3 HTTP/1.1 requests, then 6 streams from the same source',
        run: async (x) => {
          const h1: Reply[] = [];
          for (let i = 0; i < 3; i++) {
            const r = await request(bench.ports[x].h1, {
              from: '127.0.54.1',
              host: 'rpm.test',
              path: `/h1/${i}`,
            });
            h1.push({ status: r.status, headers: r.headers as http2.IncomingHttpHeaders, body: r.body });
          }
          return [[...h1, ...(await streamsAtOnce(bench.ports[x].tls, '127.0.54.1', 'rpm.test', 6))]];
        },
        admitted: [6],
      },
      {
        name: 'two sources of 7 streams each: a bucket each',
        run: (x) =>
          Promise.all(
            ['127.0.55.1', '127.0.55.2'].map((from) =>
              streamsAtOnce(bench.ports[x].tls, from, 'rpm.test', 7),
            ),
          ),
        admitted: [6, 6],
      },
      {
        name: 'limit-allowlist: 10 streams, none limited',
        run: async (x) => [await streamsAtOnce(bench.ports[x].tls, '127.0.60.7', 'rpm.test', 10)],
        admitted: [10],
      },
    ];
    for (const c of cases) {
      const [ngx, kip] = await Promise.all(PROXIES.map((x) => c.run(x)));
      const [n, k] = [ngx!.map(tally), kip!.map(tally)];
      assert.deepEqual(
        n.map((t) => t.admitted),
        c.admitted,
        `nginx: ${c.name}`,
      );
      assert.deepEqual(k, n, `keepip against nginx: ${c.name}`);
      for (const t of k)
        assert.ok(
          t.refused.every((s) => s === 429),
          `${c.name}: ${t.refused}`,
        );
    }
  });

  it('limit-rpm through nghttp (9 streams of one connection): 6 answered by the backend, 3 refused with 429', async () => {
    const statuses = async (x: Proxy) => {
      const out = await run('nghttp', [
        '-v',
        '-n',
        '-t',
        '10',
        '-m',
        '9',
        '-H',
        ':authority: rpm.test',
        `https://127.0.0.1:${bench.ports[x].tls}/ng`,
      ]);
      return [...out.matchAll(/recv \(stream_id=\d+\) :status: (\d{3})/g)].map((m) => m[1]!).sort();
    };
    const [ngx, kip] = await Promise.all(PROXIES.map(statuses));
    assert.deepEqual(ngx, [...Array(6).fill('200'), ...Array(3).fill('429')]);
    assert.deepEqual(kip, ngx);
  });

  it('limit-rps 1 (burst 5): 10 streams at once pass 6 (and one more per second elapsed) on both', async () => {
    const [ngx, kip] = await Promise.all(
      PROXIES.map(async (x) => {
        const started = performance.now();
        const replies = await streamsAtOnce(bench.ports[x].tls, '127.0.58.1', 'rps.test', 10);
        return { t: tally(replies), seconds: Math.floor((performance.now() - started) / 1000) };
      }),
    );
    for (const [x, r] of [
      ['nginx', ngx!],
      ['keepip', kip!],
    ] as const) {
      assert.ok(r.t.admitted >= 6 && r.t.admitted <= 6 + r.seconds, `${x}: ${JSON.stringify(r)}`);
      assert.ok(
        r.t.refused.every((s) => s === 429),
        `${x}: ${r.t.refused}`,
      );
    }
  });

  it('limit-req-status-code default (503): the refused streams of one connection are 503, as nginx', async () => {
    const [ngx, kip] = await Promise.all(
      PROXIES.map(async (x) => tally(await streamsAtOnce(bench.ports503[x], '127.0.59.1', 'rpm503.test', 8))),
    );
    assert.deepEqual(ngx, { admitted: 6, refused: [503, 503] });
    assert.deepEqual(kip, ngx);
  });

  it('X-Forwarded-For per stream from a trusted proxy: each stream is its own client for the allowlist and for limit-rpm, as nginx', async () => {
    const outcome = async (x: Proxy) => {
      const s = await connect(bench.ports503[x], { from: '127.0.99.1' });
      const claim = async (client: string, i: number) => {
        const r = await send(s, {
          authority: 'xff.test',
          path: `/c/${i}`,
          headers: { 'x-forwarded-for': `198.51.100.7, ${client}` },
        });
        return r.headers['x-backend'] === 'app' ? `${r.status} ${JSON.parse(r.body).realIp}` : `${r.status}`;
      };
      try {
        const out: string[] = [];
        // limit-rpm 1 with limit-burst-multiplier 1: two per client.
        for (const [i, client] of ['10.1.1.1', '203.0.113.9', '10.1.1.1', '10.1.1.1', '10.2.2.2'].entries())
          out.push(await claim(client, i));
        const together = await Promise.all([5, 6, 7].map((i) => claim('10.3.3.3', i)));
        out.push(together.sort().join(' | '));
        return [...out, `goaway=${s.goaway()}`];
      } finally {
        s.close();
      }
    };
    const [ngx, kip] = await Promise.all(PROXIES.map(outcome));
    assert.deepEqual(ngx, [
      '200 10.1.1.1',
      '403',
      '200 10.1.1.1',
      '503',
      '200 10.2.2.2',
      '200 10.3.3.3 | 200 10.3.3.3 | 503',
      'goaway=false',
    ]);
    assert.deepEqual(kip, ngx);
  });

  it("behind a PROXY load balancer: the PROXY header names the client of every stream; limit-rpm counts each client's streams over all its connections", async () => {
    const outcome = async (x: Proxy) => {
      // Three connections from one load balancer: two for client 10.5.5.5, one for 10.6.6.6.
      const clients = ['10.5.5.5', '10.5.5.5', '10.6.6.6'];
      const replies = await Promise.all(
        clients.map(async (client, c) => {
          const preface = `PROXY TCP4 ${client} 10.0.0.1 ${40000 + c} 443\r\n`;
          const s = await connect(bench.portsPP[x], { from: '127.0.98.1', preface });
          try {
            return await Promise.all(
              [0, 1, 2, 3].map((i) => send(s, { authority: 'pp.test', path: `/pp/${c}/${i}` })),
            );
          } finally {
            s.close();
          }
        }),
      );
      const byClient = (client: string) => tally(replies.filter((_, c) => clients[c] === client).flat());
      const realIps = new Set(
        replies.flat().flatMap((r) => (r.headers['x-backend'] === 'app' ? [JSON.parse(r.body).realIp] : [])),
      );
      return { a: byClient('10.5.5.5'), b: byClient('10.6.6.6'), realIps: [...realIps].sort() };
    };
    const [ngx, kip] = await Promise.all(PROXIES.map(outcome));
    assert.deepEqual(ngx, {
      a: { admitted: 6, refused: [429, 429] },
      b: { admitted: 4, refused: [] },
      realIps: ['10.5.5.5', '10.6.6.6'],
    });
    assert.deepEqual(kip, ngx);
  });

  it('limit-rpm and streams the client cancels: one cancelled once it reached the backend still counts; one reset in the read that opened it never reaches a backend (ALLOWED)', async () => {
    // Cancelled after dispatch (node:http2): six held streams take the bucket, the client cancels them,
    // six more streams are all refused by both.
    const cancelled = async (x: Proxy) => {
      const s = await connect(bench.ports[x].tls, { from: '127.0.62.1' });
      try {
        const streams = Array.from({ length: 6 }, (_, i) => {
          const stream = s.session.request({ ':path': `/hold/rd${x}${i}`, ':authority': 'rpm.test' });
          stream.on('error', () => {});
          stream.end();
          return stream;
        });
        await Promise.all(streams.map((_, i) => bench.backends.held(`rd${x}${i}`)));
        for (const stream of streams) stream.close(http2.constants.NGHTTP2_CANCEL);
        const more = await Promise.all(
          Array.from({ length: 6 }, (_, i) => send(s, { authority: 'rpm.test', path: `/rd/${i}` })),
        );
        return tally(more);
      } finally {
        bench.backends.release(`rd${x}`);
        s.close();
      }
    };
    const [ngx, kip] = await Promise.all(PROXIES.map(cancelled));
    assert.deepEqual(ngx, { admitted: 0, refused: Array(6).fill(429) });
    assert.deepEqual(kip, ngx);

    // ALLOWED.rapidReset: six HEADERS + RST_STREAM pairs and six more HEADERS in one write (one TLS
    // record, so one read). What reached the backend is counted per proxy.
    const flightOf = (x: Proxy) => {
      const frames: Buffer[] = [];
      for (let i = 0; i < 12; i++) {
        const id = 1 + 2 * i;
        const fields: [string, string][] = [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', 'rpm.test'],
          [':path', `/rr/${i}`],
          ['x-probe', `rr-${x}-${i}`],
        ];
        frames.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock(fields)));
        if (i < 6) frames.push(frame(FRAME.RST_STREAM, 0, id, rstPayload(H2_ERROR.CANCEL)));
      }
      return Buffer.concat(frames);
    };
    const reached = async (x: Proxy) => {
      const raw = await connectRawH2({
        port: bench.ports[x].tls,
        from: '127.0.61.1',
        firstFlight: flightOf(x),
      });
      try {
        for (let i = 6; i < 12; i++) {
          const id = 1 + 2 * i;
          const answered = (f: Frame) =>
            f.streamId === id && (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM);
          await raw.waitFrame(answered, WAIT_MS);
        }
      } finally {
        raw.close();
      }
      const hit = (i: number) => bench.backends.seen.has(`rr-${x}-${i}`);
      return { reset: [0, 1, 2, 3, 4, 5].filter(hit).length, after: [6, 7, 8, 9, 10, 11].filter(hit).length };
    };
    const [ngxRr, kipRr] = await Promise.all(PROXIES.map(reached));
    // nginx may have passed a reset request on before the RST_STREAM was read (a connect that completes
    // at once); the six that follow are refused either way.
    assert.equal(ngxRr!.after, 0, ALLOWED.rapidReset.seen);
    for (const r of [ngxRr!, kipRr!])
      assert.ok(r.reset + r.after <= 6, `at most burst + 1: ${JSON.stringify(r)}`);
    assert.deepEqual(kipRr, { reset: 0, after: 6 }, ALLOWED.rapidReset.seen);
  });

  it('a refused stream leaves its connection alone: the admitted streams still in flight finish, the next stream is served, no GOAWAY', async () => {
    const outcome = async (x: Proxy) => {
      const s = await connect(bench.ports[x].tls, { from: '127.0.56.1' });
      try {
        const ids = Array.from({ length: 6 }, (_, i) => `g${x}${i}`);
        const held = ids.map((id) => send(s, { authority: 'rpm.test', path: `/hold/${id}` }));
        await Promise.all(ids.map((id) => bench.backends.held(id)));
        // The bucket is full; these two are refused while the six are held at the backend.
        // Admitted, one would be held too: whichever comes first, its answer or its arrival, tells.
        const refused = await Promise.all(
          [1, 2].map((i) =>
            Promise.race([
              send(s, { authority: 'rpm.test', path: `/hold/g${x}x${i}` }),
              bench.backends
                .arrival(`g${x}x${i}`)
                .then((): Reply => ({ status: -1, headers: {}, body: 'admitted' })),
            ]),
          ),
        );
        bench.backends.release(`g${x}`);
        const finished = await Promise.all(held);
        const next = await send(s, { authority: 'open.test', path: '/after' });
        return {
          refused: refused.map((r) => r.status),
          finished: finished.map((r) => `${r.status} ${r.body}`),
          next: next.status,
          goaway: s.goaway(),
        };
      } finally {
        bench.backends.release(`g${x}`);
        s.close();
      }
    };
    const [ngx, kip] = await Promise.all(PROXIES.map(outcome));
    assert.deepEqual(ngx, {
      refused: [429, 429],
      finished: Array(6).fill('200 held'),
      next: 200,
      goaway: false,
    });
    assert.deepEqual(kip, ngx);
  });

  it("auth-cache-key $cookie_session over h2: cookie crumbs read as nginx joins them; no client rides another's cached allow", async () => {
    const steps: AuthStep[] = [
      { from: 1, via: 'h2', cookie: ['a=1', `session=${ALICE_TOKEN}`], nginx: 'T' },
      { from: 2, via: 'h2c', cookie: `session=${ALICE_TOKEN}; b=2`, nginx: 'F' },
      { from: 3, via: 'h1', cookie: `session=${ALICE_TOKEN}`, nginx: 'F' },
      { from: 4, via: 'h2', cookie: ['session=mallory', `session=${ALICE_TOKEN}`], nginx: 'T' },
      { from: 5, via: 'h2', cookie: ['session=mallory', 'x=1'], nginx: 'F' },
      { from: 6, via: 'h2', cookie: [`session=${BOB_TOKEN}`], nginx: 'T' },
      { from: 7, via: 'h2', cookie: ['x=1', `session=${BOB_TOKEN}`, `session=${ALICE_TOKEN}`], nginx: 'F' },
      { from: 8, via: 'h2', cookie: ['Session=other'], nginx: 'T' },
      { from: 9, via: 'h2', cookie: [`session=${ALICE_TOKEN}x`], nginx: 'T' },
    ];
    const { diffs, asks } = await authSequence(bench, 'authc.test', steps);
    assert.deepEqual(diffs, []);
    assert.equal(asks, steps.map((s) => s.nginx).join(''), 'what nginx asked for');
  });

  it('auth-cache-key $http_authorization over h2: two authorization fields are 400 before the cache, an upper-case name resets the stream, as nginx', async () => {
    const steps: AuthStep[] = [
      { from: 11, via: 'h2', authorization: 'Bearer alice', nginx: 'T' },
      { from: 12, via: 'h1', authorization: 'Bearer alice', nginx: 'F' },
      {
        from: 13,
        via: 'raw',
        fields: [
          ['authorization', 'Bearer mallory'],
          ['authorization', 'Bearer alice'],
        ],
        nginx: '-',
      },
      {
        from: 14,
        via: 'raw',
        fields: [
          ['authorization', 'Bearer alice'],
          ['authorization', 'Bearer mallory'],
        ],
        nginx: '-',
      },
      {
        from: 15,
        via: 'raw',
        fields: [
          ['authorization', ''],
          ['authorization', 'Bearer alice'],
        ],
        nginx: '-',
      },
      // An upper-case name is malformed in HTTP/2: both reset the stream (nghttp2 refuses upper-case
      // names outright, whatever node:http2's callback for other invalid fields does).
      {
        from: 20,
        via: 'raw',
        fields: [
          ['authorization', 'Bearer mallory'],
          ['Authorization', 'Bearer alice'],
        ],
        nginx: '-',
      },
      { from: 21, via: 'raw', fields: [['Authorization', 'Bearer alice']], nginx: '-' },
      // A wrong token's 401 is kept for the next client with it (a request without any credential the
      // key names is never cached by keepip: auth-flows-attack and auth-cache-differential test that).
      { from: 16, via: 'h2', authorization: 'Bearer nobody', nginx: 'T' },
      { from: 17, via: 'h2c', authorization: 'Bearer nobody', nginx: 'F' },
      { from: 18, via: 'h2c', authorization: 'Bearer bob', nginx: 'T' },
      { from: 19, via: 'h2', authorization: 'Bearer bob', cookie: ['a=1', 'b=2'], nginx: 'F' },
    ];
    const { diffs, asks } = await authSequence(bench, 'autha.test', steps);
    assert.deepEqual(diffs, []);
    assert.equal(asks, steps.map((s) => s.nginx).join(''), 'what nginx asked for');
  });

  it('auth answers with Vary: Cookie over h2: crumbs and one line of the same cookies are one variant, other cookies ask again, as nginx', async () => {
    const steps: AuthStep[] = [
      { from: 31, via: 'h2', authorization: 'Bearer alice', cookie: ['x=1', 'y=2'], nginx: 'T' },
      { from: 32, via: 'h2', authorization: 'Bearer alice', cookie: 'x=1; y=2', nginx: 'F' },
      { from: 33, via: 'h1', authorization: 'Bearer alice', cookie: 'x=1; y=2', nginx: 'F' },
      { from: 34, via: 'h2', authorization: 'Bearer alice', cookie: ['x=1'], nginx: 'T' },
      { from: 35, via: 'h2c', authorization: 'Bearer bob', cookie: ['x=1', 'y=2'], nginx: 'T' },
      { from: 36, via: 'h2', authorization: 'Bearer nobody', cookie: ['x=1', 'y=2'], nginx: 'T' },
      { from: 37, via: 'h2', authorization: 'Bearer nobody', cookie: ['x=1', 'y=2'], nginx: 'F' },
    ];
    const { diffs, asks } = await authSequence(bench, 'authv.test', steps);
    assert.deepEqual(diffs, []);
    assert.equal(asks, steps.map((s) => s.nginx).join(''), 'what nginx asked for');
  });
});
