// The headers keepip adds to and removes from responses, against nginx 1.22 with the headers-more module
// configured as ingress-nginx's template renders them (rootfs/etc/nginx/template/nginx.tmpl):
//   http level: `more_set_headers "<k>: <v>"` per add-headers key (Go's %q quoting, no
//   escapeLiteralDollar), `server_tokens off` + `more_clear_headers Server` (unless server-tokens),
//   `proxy_pass_header Server` (allow-backend-server-header), `proxy_hide_header <h>` per hide-headers
//   name; a location: the CORS block, then `more_set_headers "<k>: <v>"` per custom-headers key
//   (escapeLiteralDollar: `$` -> `${literal_dollar}`, then %q); a denied location is `return 503;`.
//   The customheaders parser (internal/ingress/annotations/customheaders/main.go): names
//   ^[a-zA-Z\d\-_]+$, values ^[a-zA-Z\d_ :;.,\\/"'?!(){}\[\]@<>=\-+*#$&`|~^%]+$, the name listed in
//   global-allowed-response-headers (exact case; the list split on "," and trimmed), the ConfigMap
//   found by its `namespace/name` key; anything else denies the location.
// The http-level directives of each ConfigMap ("profile") are written at the server level of that
// profile's servers (one nginx, a port per profile): the same inheritance. HSTS (lua_ingress.lua's
// header filter in ingress-nginx, no Lua here) is a `more_set_headers` of the TLS servers only (over
// plain HTTP the filter leaves a backend's own Strict-Transport-Security alone, so does keepip).
// ingress-nginx's 8181 default backend is `return 404`, the balancer's 503 `return 503`, force-ssl-redirect
// (Lua's rewrite) `return <http-redirect-code> https://$host$request_uri`.
// Seen on nginx 1.22 + headers-more 0.34 (and in its merge_loc_conf): the upper levels' more_set_headers
// run before a location's own, so a location with custom-headers or CORS KEEPS add-headers and the
// later one wins for a name, as keepip does (difference 16's first sentence says nginx loses them; it
// does not); more_set_headers replaces every backend field of that name, whatever its case, with one;
// it applies to every status, the server's own pages included, but a custom-http-errors page comes from
// a named location at the server level, which has add-headers and not the location's custom-headers.
//
// The claims checked (docs/ingress-nginx-compat.md, docs/gateway.md):
//   custom-headers: "its keys and values are response headers of the Ingress's locations, on every
//     response (the gateway's own included), replacing the backend's; values are sent as written. Only
//     names the ConfigMap key `global-allowed-response-headers` lists are allowed: another name, a
//     missing ConfigMap or an invalid name or value denies the locations (503, `ACCESS_CONFIG_DENIED`),
//     as ingress-nginx does"
//   add-headers: "a ConfigMap whose keys and values are headers on every response, the gateway's own
//     included (before custom-headers and CORS, which win); values as their UTF-8 bytes, as nginx, with
//     nginx variables … expanded when each head is written (empty: the field is removed …). A missing
//     ConfigMap, a key that is not a header name or a value with a control byte (HTAB aside): warning,
//     none"
//   hide-headers: "comma-separated header names a backend's response never passes on, beside nginx's
//     own (Date, Server, X-Pad, X-Accel-*), which keepip hides too"
//   server-tokens, allow-backend-server-header: "without server-tokens no answer has a Server header
//     (ingress-nginx clears it); with it, `Server: keepip` (nginx would name itself and its version), or
//     the backend's own with allow-backend-server-header"
//   hsts: "`Strict-Transport-Security: max-age=…[; includeSubDomains][; preload]` on every answer to an
//     HTTPS request, replacing the backend's"
//   difference 16: "keepip sends `add-headers`, then `custom-headers`, then the CORS headers (a later one
//     wins for the same name)"; "a control byte in a variable's value (a `%0D%0A` decoded into `$uri`)
//     goes out as `\xHH` where nginx would write it raw and split the head""
//   README: "no value beyond U+00FF is ever written into a head, where its low byte could be a line feed"
//
// One raw backend answers `/a/<name>` with ANSWERS[name] (its own Server, X-Powered-By twice, X-Pad,
// X-Accel-*, hidden names in other cases, the names add-headers and custom-headers set in another case
// and twice, two Set-Cookie; statuses 200/204/301/304/404/500; HEAD answered without a body) and keeps
// its connections; an error backend answers custom-http-errors' named location. Each HTTP/1.1 probe is
// followed on its connection by `GET /a/second` with `Connection: close`: what the client reads is
// the first answer's header list (names lower-cased, values as sent without the surrounding OWS, each
// occurrence kept, sorted), its body, and whether the second answer starts where the first ends (the
// framing). Not compared: Date's value, Connection / Keep-Alive (connection management,
// keepalive-differential-nginx's subject), and for the pages the servers write themselves (403, 404,
// 413, 503, 301) their body and Content-Length (they name nginx or keepip), whose framing is still
// checked. HTTP/2 probes (TLS, ALPN h2) compare node:http2's raw header list the same way.
// A difference passes only when ALLOWED names it (with its reason and the doc line where there is one)
// and is still seen; keepip sending a header nginx would not, a backend header leaking, a split header
// or broken framing is a finding. Found by this file and fixed (each test says so):
//   - Content-Length in custom-headers (or add-headers) replaced the answer's own Content-Length while
//     the body was sent whole: the next answer on the connection started inside this body (HTTP/1.1),
//     the stream was malformed (HTTP/2). nginx 1.22 breaks it the same way; keepip now leaves it (and
//     the hop-by-hop fields) out of these maps, with a warning.
//   - a custom-http-errors page carried the location's custom-headers; nginx's has add-headers only.
//   - an add-headers value with a character of U+0080..U+00FF (é) was written as one Latin-1 byte;
//     nginx sends the ConfigMap's UTF-8 bytes ("values as written").
//   - one add-headers value beyond U+00FF made keepip drop the whole add-headers map (X-Frame-Options
//     too), with a warning that named another reason.
//   - add-headers values with variables ($req_id, $host, $status…) went out as written; nginx expands
//     them (the template does not escape their `$`, unlike custom-headers'), an empty one removing the
//     field. Now expanded, on the main profile's every probe (X-Add-Var) and the vars profile's.
// RESPHDR_DUMP=1 prints both sides of every probe.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  configMap,
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { listenTracked } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { namedLocation } from '../helpers/nginx-custom-errors.ts';

const DUMP = process.env.RESPHDR_DUMP === '1';
const SAFETY_MS = 15_000;
const CONCURRENCY = 6;
const HEADERS_MORE = 'load_module /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so;';
const HSTS = 'max-age=31536000; includeSubDomains';
/** Refused by the allowlists here: every probe comes from 127.0.0.1. */
const ALLOWED_SOURCE = '127.0.0.200/32';

// ---------------------------------------------------------------------------------------------
// The backends.

/** What the backend adds to every answer: fields nginx hides or replaces, and some it passes. */
const NOISE = [
  'Server: backend/9.9',
  'X-Powered-By: PHP/8.3',
  'x-powered-by: again',
  'X-INTERNAL: secret-1',
  'x-internal: secret-2',
  'X-Pad: avoid browser bug',
  'X-Accel-Expires: 60',
  'X-Accel-Buffering: no',
  'Date: Thu, 01 Jan 1970 00:00:00 GMT',
  'x-shared: from-backend-1',
  'X-SHARED: from-backend-2',
  'X-Custom: from-backend',
  'Access-Control-Allow-Origin: https://backend.test',
  'Strict-Transport-Security: max-age=0',
  'Set-Cookie: a=1; Path=/',
  'Set-Cookie: b=2; HttpOnly',
  'X-Kept: k1',
  'X-Kept: k2',
];

interface BackendAnswer {
  status: string;
  fields: string[];
  body: string;
}

const ANSWERS: Record<string, BackendAnswer> = {
  ok: { status: '200 OK', fields: ['Content-Type: text/plain', ...NOISE], body: 'hello world' },
  s204: { status: '204 No Content', fields: NOISE, body: '' },
  s301: {
    status: '301 Moved Permanently',
    fields: ['Location: http://x.test/next', ...NOISE],
    body: 'moved',
  },
  s404: { status: '404 Not Found', fields: ['Content-Type: text/plain', ...NOISE], body: 'no such page' },
  s500: { status: '500 Internal Server Error', fields: NOISE, body: 'broken' },
  n304: { status: '304 Not Modified', fields: ['ETag: "e1"', ...NOISE], body: '' },
  noserver: { status: '200 OK', fields: ['Content-Type: text/plain', 'X-Kept: k'], body: 'no server' },
  second: { status: '200 OK', fields: ['Content-Type: text/plain'], body: 'second' },
};

/** The custom-http-errors page (the error backend's answer to every request). */
const ERROR_PAGE: BackendAnswer = {
  status: '404 Not Found',
  fields: [
    'Content-Type: text/html',
    'Server: errors/1.0',
    'X-Powered-By: errors',
    'x-shared: from-error-backend',
    'X-Error-Page: yes',
    'Set-Cookie: e=1',
  ],
  body: 'custom error page',
};

function answerBytes(a: BackendAnswer, head: boolean): string {
  const bodyless = a.status.startsWith('204') || a.status.startsWith('304');
  const length = bodyless ? [] : [`Content-Length: ${Buffer.byteLength(a.body)}`];
  const text = `HTTP/1.1 ${a.status}\r\n${[...a.fields, ...length].join('\r\n')}\r\n\r\n`;
  return head || bodyless ? text : text + a.body;
}

interface Backend {
  port: number;
  close(): Promise<void>;
}

/** Answers each request on a kept connection: `/a/<name>` with ANSWERS[name], or `fixed` for all. */
async function startBackend(fixed?: BackendAnswer): Promise<Backend> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        pending = pending.subarray(end + 4 + length);
        const [method = '', target = ''] = head.split(' ');
        const name = /^\/a\/([a-z0-9]+)/.exec(target)?.[1] ?? '';
        const answer = fixed ?? ANSWERS[name] ?? ANSWERS.s404!;
        socket.write(answerBytes(answer, method === 'HEAD'), 'latin1');
      }
    });
  });
  return listenTracked(server);
}

// ---------------------------------------------------------------------------------------------
// The configurations: profiles (a controller ConfigMap each) and their hosts.

interface HostSpec {
  host: string;
  annotations?: Record<string, string>;
  /** The Service of the path: `raw` (the backend) or `empty` (no endpoints). */
  service?: 'raw' | 'empty';
}

interface Profile {
  id: string;
  /** The controller ConfigMap's data (add-headers points at `ingress-nginx/add-<id>` when `add` is set). */
  data: Record<string, string>;
  add?: Record<string, string>;
  tls?: boolean;
  hosts: HostSpec[];
}

/** The custom-headers ConfigMaps (namespace default), by name. */
const CUSTOM: Record<string, Record<string, string>> = {
  'custom-main': {
    'X-Custom': 'c1',
    'X-Shared': 'from-custom',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form, sent as written
    'X-Dollar': 'price $5 ${host} $host $$',
    'X-Quote': `say "hi" 'there' \\ back`,
    'X-Comma': 'a, b,c ;d=e',
    'X-Spaces': '  a  b   c  ',
    X_Under: 'u',
    'X-Punct': '?!(){}[]@<>=-+*#&`|~^%/:.',
  },
  'custom-cl': { 'Content-Length': '3' },
  'custom-te': { 'Transfer-Encoding': 'chunked' },
  'custom-conn': { Connection: 'close' },
  'custom-blank': { 'X-Custom': '   ' },
  'custom-server': { Server: 'edge/1', 'X-Internal': 'from-custom', 'X-Accel-Expires': '5' },
  'custom-cors': { 'Access-Control-Allow-Origin': '*', 'X-Custom': 'cors-custom' },
  'bad-name': { 'X-Custom': 'ok', 'X-Not-Listed': 'v' },
  'bad-case': { 'x-custom': 'v' },
  'bad-utf8': { 'X-Custom': 'caf\u00e9' },
  'bad-crlf': { 'X-Custom': 'a\r\nSet-Cookie: injected=1' },
  'bad-lf': { 'X-Custom': 'a\nSet-Cookie: injected=1' },
  'bad-nul': { 'X-Custom': 'a\u0000b' },
  'bad-tab': { 'X-Custom': 'a\tb' },
  'bad-empty': { 'X-Custom': '' },
  'bad-space-name': { 'X Custom': 'v' },
};

const ALLOWED_NAMES = [
  'X-Custom',
  ' X-Shared',
  'X-Dollar',
  'X-Quote ',
  'X-Comma',
  'X-Spaces',
  'X_Under',
  'X-Punct',
  'Content-Length',
  'Transfer-Encoding',
  'Connection',
  'Access-Control-Allow-Origin',
  'Server',
  'X-Internal',
  'X-Accel-Expires',
].join(',');

const custom = (name: string) => ({ 'custom-headers': `default/${name}` });

const MAIN: Profile = {
  id: 'main',
  tls: true,
  data: {
    'global-allowed-response-headers': ALLOWED_NAMES,
    'hide-headers': 'X-Internal, x-kept',
    'allow-backend-server-header': 'true',
    'http-redirect-code': '301',
  },
  add: {
    'X-Add': 'add-value',
    'X-Shared': 'from-add',
    'X-Frame-Options': 'SAMEORIGIN',
    'X-Add-Quote': `say "hi", 'twice' \\ back`,
    'X-Add-Var': 'h=$host s=$status m=$request_method',
  },
  hosts: [
    { host: 'plain.test' },
    { host: 'custom.test', annotations: custom('custom-main') },
    { host: 'blank.test', annotations: custom('custom-blank') },
    { host: 'server-custom.test', annotations: custom('custom-server') },
    { host: 'hop-cl.test', annotations: custom('custom-cl') },
    { host: 'hop-te.test', annotations: custom('custom-te') },
    { host: 'hop-conn.test', annotations: custom('custom-conn') },
    {
      host: 'deny.test',
      annotations: { ...custom('custom-main'), 'allowlist-source-range': ALLOWED_SOURCE },
    },
    { host: 'noep.test', annotations: custom('custom-main'), service: 'empty' },
    { host: 'big.test', annotations: { ...custom('custom-main'), 'proxy-body-size': '8' } },
    { host: 'redirect.test', annotations: { ...custom('custom-main'), 'force-ssl-redirect': 'true' } },
    {
      host: 'errors.test',
      annotations: { ...custom('custom-main'), 'custom-http-errors': '404', 'default-backend': 'errsvc' },
    },
    {
      host: 'cors.test',
      annotations: {
        ...custom('custom-cors'),
        'enable-cors': 'true',
        'cors-allow-origin': 'https://app.test',
      },
    },
    ...[
      'bad-name',
      'bad-case',
      'bad-utf8',
      'bad-crlf',
      'bad-lf',
      'bad-nul',
      'bad-tab',
      'bad-empty',
      'bad-space-name',
    ].map((name) => ({ host: `${name}.test`, annotations: custom(name) })),
    { host: 'bad-missing.test', annotations: custom('no-such-configmap') },
    { host: 'bare.test', annotations: { 'custom-headers': 'custom-main' } },
  ],
};

const PROFILES: Profile[] = [
  MAIN,
  {
    id: 'tokens',
    data: { 'server-tokens': 'true' },
    add: { 'X-Var': 'host=$host' },
    hosts: [{ host: 'plain.test' }],
  },
  {
    id: 'backendserver',
    data: { 'server-tokens': 'true', 'allow-backend-server-header': 'true' },
    hosts: [{ host: 'plain.test' }],
  },
  {
    id: 'latin1',
    data: {},
    add: { 'X-Frame-Options': 'DENY', 'X-Latin1': 'caf\u00e9' },
    hosts: [{ host: 'plain.test' }],
  },
  {
    id: 'beyond',
    data: {},
    add: { 'X-Frame-Options': 'DENY', 'X-Arrow': 'a \u2192 b' },
    hosts: [{ host: 'plain.test' }],
  },
  {
    id: 'crlf',
    data: {},
    add: { 'X-Frame-Options': 'DENY', 'X-Split': 'a\r\nSet-Cookie: injected=1' },
    hosts: [{ host: 'plain.test' }],
  },
  {
    id: 'vars',
    data: {},
    add: {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form, expanded by both
      'X-Vars': 'u=$request_uri a=$arg_q p=$http_x_probe sch=$scheme b=${host}x c=$cookie_c',
      'X-Rid': '$req_id',
      // Empty for these probes: the backend's X-Custom is removed, none is sent.
      'X-Custom': '$http_x_absent',
      'X-Uri': '$uri',
    },
    hosts: [{ host: 'plain.test' }],
  },
  {
    id: 'addlength',
    data: {},
    add: { 'X-Frame-Options': 'DENY', 'Content-Length': '3' },
    hosts: [{ host: 'plain.test' }],
  },
];

// ---------------------------------------------------------------------------------------------
// ingress-nginx's rendering for nginx.

/** Go's %q for the strings here: `\` and `"` escaped, \t \r \n and other control bytes as escapes. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Go's sort.Strings order (the template's range over a map). */
const sortedKeys = (o: Record<string, string>) => Object.keys(o).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

const HEADER_NAME = /^[a-zA-Z\d\-_]+$/;
const HEADER_VALUE = /^[a-zA-Z\d_ :;.,\\/"'?!(){}[\]@<>=\-+*#$&`|~^%]+$/;

/** The customheaders parser: the headers, or null when the location is denied. */
function customHeadersOf(annotation: string, allowedList: string): Record<string, string> | null {
  // The store's lister takes `namespace/name` keys only.
  const [ns, name] = annotation.split('/');
  if (ns !== 'default' || name === undefined) return null;
  const data = CUSTOM[name];
  if (data === undefined) return null;
  const allowed = allowedList
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '' && HEADER_NAME.test(h));
  for (const [k, v] of Object.entries(data))
    if (!HEADER_NAME.test(k) || !HEADER_VALUE.test(v) || !allowed.includes(k)) return null;
  return data;
}

/** A profile's http-level directives (written per server). */
function profileLevel(p: Profile): string[] {
  const tokens = p.data['server-tokens'] === 'true';
  const lines = sortedKeys(p.add ?? {}).map((k) => `more_set_headers ${goQuote(`${k}: ${p.add![k]}`)};`);
  lines.push(`server_tokens ${tokens ? 'on' : 'off'};`);
  if (!tokens) lines.push('more_clear_headers Server;');
  if (p.data['allow-backend-server-header'] === 'true') lines.push('proxy_pass_header Server;');
  for (const h of (p.data['hide-headers'] ?? '').split(',').map((x) => x.trim()))
    if (h !== '') lines.push(`proxy_hide_header ${h};`);
  return lines;
}

const CORS_DEFAULTS = {
  methods: 'GET, PUT, POST, DELETE, PATCH, OPTIONS',
  headers:
    'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization',
  maxAge: '1728000',
};

function corsBlock(origin: string): string[] {
  const origins = `((${origin.replace(/[.]/g, '\\.')}))`;
  const common = [
    "more_set_headers 'Access-Control-Allow-Origin: $http_origin';",
    "more_set_headers 'Access-Control-Allow-Credentials: true';",
    `more_set_headers 'Access-Control-Allow-Methods: ${CORS_DEFAULTS.methods}';`,
    `more_set_headers 'Access-Control-Allow-Headers: ${CORS_DEFAULTS.headers}';`,
    `more_set_headers 'Access-Control-Max-Age: ${CORS_DEFAULTS.maxAge}';`,
  ];
  return [
    `if ($http_origin ~* (${origins})$ ) { set $cors 'true'; }`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form
    "if ($request_method = 'OPTIONS') { set $cors ${cors}options; }",
    `if ($cors = "true") { ${common.join(' ')} }`,
    `if ($cors = "trueoptions") { ${common.join(' ')} more_set_headers 'Content-Type: text/plain charset=UTF-8'; more_set_headers 'Content-Length: 0'; return 204; }`,
  ];
}

function nginxLocation(p: Profile, h: HostSpec, errPort: number): string[] {
  const a = h.annotations ?? {};
  const lines: string[] = [];
  const named: string[] = [];
  const annotation = a['custom-headers'];
  const headers =
    annotation === undefined
      ? {}
      : customHeadersOf(annotation, p.data['global-allowed-response-headers'] ?? '');
  if (headers === null) return ['  location / {', '    return 503;', '  }'];
  if (a['allowlist-source-range'] !== undefined)
    lines.push(`allow ${a['allowlist-source-range']};`, 'deny all;');
  if (a['enable-cors'] === 'true') lines.push(...corsBlock(a['cors-allow-origin'] ?? '*'));
  lines.push(`client_max_body_size ${a['proxy-body-size'] ?? '1m'};`);
  if (a['force-ssl-redirect'] === 'true') {
    // lua_ingress.lua's rewrite: https://<host><request_uri>, http-redirect-code.
    const code = p.data['http-redirect-code'] ?? '308';
    lines.push(`if ($scheme = http) { return ${code} https://$host$request_uri; }`);
  }
  if (a['custom-http-errors'] !== undefined) {
    const upstream = `custom-default-backend-default-${a['default-backend']}`;
    lines.push('proxy_intercept_errors on;');
    for (const code of a['custom-http-errors'].split(',')) {
      lines.push(`error_page ${code} = @custom_${upstream}_${code};`);
      named.push(namedLocation(upstream, Number(code), errPort));
    }
  }
  // escapeLiteralDollar, then quote.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form
  const literalDollar = '${literal_dollar}';
  for (const k of sortedKeys(headers))
    lines.push(`more_set_headers ${goQuote(`${k}: ${headers[k]!}`.replaceAll('$', literalDollar))};`);
  lines.push(h.service === 'empty' ? 'return 503;' : 'proxy_pass http://raw_backend;');
  return [...named, '  location / {', ...lines.map((l) => `    ${l}`), '  }'];
}

function nginxServers(p: Profile, plain: number, tlsPort: number | null, errPort: number): string[] {
  const level = profileLevel(p);
  // A plain server and, for a TLS profile, a TLS one (lua_ingress.lua's header filter: HSTS on https).
  const server = (name: string, extra: string, body: string[]) =>
    [
      [`listen 127.0.0.1:${plain}${extra};`],
      ...(tlsPort === null
        ? []
        : [
            [
              `listen 127.0.0.1:${tlsPort} ssl http2${extra};`,
              `more_set_headers "Strict-Transport-Security: ${HSTS}";`,
            ],
          ]),
    ].map((listen) => ['server {', ...listen, `server_name ${name};`, ...level, ...body, '}'].join('\n  '));
  return [
    ...server('_', ' default_server', ['location / { return 404; }']),
    ...p.hosts.flatMap((h) =>
      server(h.host, '', [
        'set $namespace "default"; set $ingress_name "ing"; set $service_name "raw"; set $service_port "80";',
        'set $best_http_host $http_host;',
        ...nginxLocation(p, h, errPort),
      ]),
    ),
  ];
}

function nginxHttp(dir: string, ports: number[], raw: number, err: number): string {
  return [
    'geo $literal_dollar { default "$"; }',
    'map $http_x_request_id $req_id { default $http_x_request_id; "" $request_id; }',
    'uninitialized_variable_warn off;',
    'keepalive_timeout 75s;',
    `ssl_certificate ${join(dir, 'tls.crt')};`,
    `ssl_certificate_key ${join(dir, 'tls.key')};`,
    'proxy_http_version 1.1;',
    'proxy_set_header Connection "";',
    'proxy_buffering off;',
    `upstream raw_backend { server 127.0.0.1:${raw}; keepalive 320; }`,
    ...PROFILES.flatMap((p, i) => nginxServers(p, ports[i]!, p.tls ? ports[PROFILES.length]! : null, err)),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// keepip's configuration: the same ConfigMaps and Ingresses.

function keepipObjects(p: Profile, raw: number, err: number): K8sObject[] {
  const data = { ...p.data, ...(p.add ? { 'add-headers': `ingress-nginx/add-${p.id}` } : {}) };
  return [
    controllerConfigMap(data),
    ...(p.add ? [configMap(`add-${p.id}`, 'ingress-nginx', p.add)] : []),
    ...Object.entries(CUSTOM).map(([name, d]) => configMap(name, 'default', d)),
    ...serviceWithEndpoints({ name: 'raw', ports: [raw] }),
    ...serviceWithEndpoints({ name: 'errsvc', ports: [err] }),
    ...serviceWithEndpoints({ name: 'empty', ports: [] }),
    ...p.hosts.map((h) =>
      ingress({
        name: h.host.replace('.test', ''),
        host: h.host,
        annotations: h.annotations ?? {},
        paths: [{ path: '/', service: h.service ?? 'raw', port: 80 }],
      }),
    ),
  ];
}

// ---------------------------------------------------------------------------------------------
// The clients and what they read.

interface Seen {
  status: number;
  /** `name: value` (name lower-cased, value without surrounding OWS), every occurrence, sorted. */
  fields: string[];
  body: string;
  /** ok: the pipelined second answer starts where the first ends; closed: the server closed after a whole first answer; broken: neither. */
  framing: 'ok' | 'closed' | 'broken';
  raw: string;
  /** The answer to a HEAD request. */
  head: boolean;
}

interface Probe {
  id: string;
  profile: string;
  host: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** A page the server writes itself: its body and Content-Length are not compared. */
  own?: boolean;
  h2?: boolean;
}

interface Parsed {
  status: number;
  fields: [string, string][];
  body: string;
  end: number;
}

function dechunk(raw: string, at: number): { body: string; end: number } | null {
  let body = '';
  let pos = at;
  for (;;) {
    const eol = raw.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const size = raw.slice(pos, eol).split(';')[0] ?? '';
    if (!/^[0-9a-fA-F]+$/.test(size)) return null;
    const n = Number.parseInt(size, 16);
    if (n === 0) {
      const fin = raw.indexOf('\r\n\r\n', eol);
      return fin < 0 ? null : { body, end: fin + 4 };
    }
    if (raw.length < eol + 4 + n || raw.slice(eol + 2 + n, eol + 4 + n) !== '\r\n') return null;
    body += raw.slice(eol + 2, eol + 2 + n);
    pos = eol + 4 + n;
  }
}

/** One response at `at` as an HTTP/1.1 client reads it; null: not a well-framed response. */
function parseAt(raw: string, at: number, head: boolean, closed: boolean): Parsed | null {
  const headEnd = raw.indexOf('\r\n\r\n', at);
  if (headEnd < 0) return null;
  const [line = '', ...rest] = raw.slice(at, headEnd).split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3}) /.exec(line);
  if (status === null) return null;
  const fields: [string, string][] = [];
  for (const l of rest) {
    const colon = l.indexOf(':');
    if (colon <= 0 || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(l.slice(0, colon))) return null;
    fields.push([l.slice(0, colon).toLowerCase(), l.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')]);
  }
  const code = Number(status[1]);
  const start = headEnd + 4;
  const all = (name: string) => fields.filter(([n]) => n === name).map(([, v]) => v);
  if (head || code === 204 || code === 304 || code < 200)
    return { status: code, fields, body: '', end: start };
  const te = all('transfer-encoding');
  if (te.length > 0) {
    if (te.join(',').toLowerCase() !== 'chunked') return null;
    const chunked = dechunk(raw, start);
    return chunked === null ? null : { status: code, fields, ...chunked };
  }
  const lengths = new Set(all('content-length'));
  if (lengths.size > 1) return null;
  if (lengths.size === 1) {
    const n = Number([...lengths][0]);
    if (!Number.isInteger(n) || raw.length < start + n) return null;
    return { status: code, fields, body: raw.slice(start, start + n), end: start + n };
  }
  return closed ? { status: code, fields, body: raw.slice(start), end: raw.length } : null;
}

function seenOf(raw: string, head: boolean): Seen {
  const first = parseAt(raw, 0, head, true);
  if (first === null) return { status: 0, fields: [], body: '', framing: 'broken', raw, head };
  const base = {
    head,
    status: first.status,
    fields: first.fields.map(([n, v]) => `${n}: ${v}`).sort(),
    body: first.body,
    raw,
  };
  if (first.end === raw.length) {
    const closes = first.fields.some(([n, v]) => n === 'connection' && /\bclose\b/i.test(v));
    return { ...base, framing: closes ? 'closed' : 'broken' };
  }
  const second = parseAt(raw, first.end, false, true);
  return { ...base, framing: second !== null && second.end === raw.length ? 'ok' : 'broken' };
}

/** The probe, then `GET /a/second` with Connection: close, on one connection; all read until the close. */
function askH1(port: number, p: Probe): Promise<Seen> {
  const method = p.method ?? 'GET';
  const body = p.body ?? '';
  const extra = Object.entries(p.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`);
  const length = body === '' ? '' : `Content-Length: ${body.length}\r\n`;
  const request = `${method} ${p.path} HTTP/1.1\r\nHost: ${p.host}\r\n${extra.join('')}${length}\r\n${body}`;
  const second = `GET /a/second HTTP/1.1\r\nHost: ${p.host}\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' });
    const timer = setTimeout(() => socket.destroy(), SAFETY_MS);
    socket.on('connect', () => socket.write(request + second, 'latin1'));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ECONNRESET') reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(seenOf(Buffer.concat(chunks).toString('latin1'), method === 'HEAD'));
    });
  });
}

/** One stream over TLS (ALPN h2, SNI the host): the raw header list as received. */
function askH2(port: number, p: Probe): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${p.host}:${port}`, {
      createConnection: () =>
        tls.connect({
          socket: net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' }),
          servername: p.host,
          ALPNProtocols: ['h2'],
          rejectUnauthorized: false,
        }),
    });
    const timer = setTimeout(() => session.destroy(), SAFETY_MS);
    const finish = (seen: Seen) => {
      clearTimeout(timer);
      session.close();
      resolve(seen);
    };
    session.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    const stream = session.request({
      ':method': p.method ?? 'GET',
      ':path': p.path,
      ':authority': p.host,
      ...p.headers,
    });
    let fields: string[] = [];
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (_h, _flags, rawHeaders: string[]) => {
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i]!;
        if (name === ':status') status = Number(rawHeaders[i + 1]);
        else fields.push(`${name}: ${rawHeaders[i + 1]}`);
      }
      fields = fields.sort();
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    const done = (framing: Seen['framing']) =>
      finish({
        status,
        fields,
        body: Buffer.concat(chunks).toString('latin1'),
        framing,
        raw: fields.join('\n'),
        head: p.method === 'HEAD',
      });
    stream.on('end', () => done('ok'));
    stream.on('error', () => done('broken'));
    stream.on('close', () => done(stream.rstCode === 0 ? 'ok' : 'broken'));
    stream.end(p.body);
  });
}

// ---------------------------------------------------------------------------------------------
// Judging.

/** What is compared of an answer. */
function comparable(p: Probe, s: Seen): { status: number; fields: string[]; body: string } {
  const fields = s.fields
    .filter((f) => !/^(connection|keep-alive): /.test(f))
    .map((f) => (f.startsWith('date: ') ? 'date: <date>' : f))
    .map((f) => (p.own && f.startsWith('content-length: ') ? 'content-length: <own page>' : f))
    .sort();
  return { status: s.status, fields, body: p.own ? '<own page>' : s.body };
}

interface Allowed {
  id: string;
  /** The probes it covers (ids); each must still show it. */
  probes: readonly string[];
  why: string;
  doc?: string;
  /** Whether the difference is (still) there. */
  seen(ngx: Seen, kip: Seen): boolean;
  /** Both sides with the difference set aside. */
  apply(ngx: Seen, kip: Seen): [Seen, Seen];
}

const without = (s: Seen, re: RegExp): Seen => ({ ...s, fields: s.fields.filter((f) => !re.test(f)) });
const has = (s: Seen, line: string) => s.fields.includes(line);

const replace = (s: Seen, re: RegExp, line: string): Seen => ({
  ...s,
  fields: s.fields.map((f) => (re.test(f) ? line : f)).sort(),
});
/** The first answer's head as sent. */
const firstHead = (s: Seen) => s.raw.slice(0, s.raw.indexOf('\r\n\r\n'));

const ALLOWED: Allowed[] = [
  {
    id: 'server-tokens names keepip',
    probes: ['tokens ok', 'tokens no server', 'tokens 404'],
    why: 'with server-tokens nginx names itself and its version; keepip names itself without one',
    doc: 'docs/gateway.md: "`server-tokens: "true"` sends `Server: keepip` (no version), where nginx sends `nginx/<version>`."',
    seen: (n, k) => has(n, 'server: nginx/1.22.1') && has(k, 'server: keepip'),
    apply: (n, k) => [replace(n, /^server: /, 'server: <token>'), replace(k, /^server: /, 'server: <token>')],
  },
  {
    id: 'no Server of its own with allow-backend-server-header',
    probes: ['backendserver 404'],
    why: "with server-tokens and allow-backend-server-header, nginx's own pages carry `Server: nginx/<version>`, keepip's none (a backend's answer carries the backend's Server on both)",
    doc: 'docs/ingress-nginx-compat.md (server-tokens): "with it, `Server: keepip` (nginx would name itself and its version), or the backend\'s own with allow-backend-server-header"',
    seen: (n, k) => has(n, 'server: nginx/1.22.1') && !k.fields.some((f) => f.startsWith('server: ')),
    apply: (n, k) => [without(n, /^server: /), k],
  },
  {
    id: 'custom-headers by a bare name',
    probes: ['bare name'],
    why: "ingress-nginx's store finds a ConfigMap by its `namespace/name` key only: a bare name is not found and the location is denied (503); keepip reads it in the Ingress's namespace and serves its headers",
    doc: 'docs/ingress-nginx-compat.md (custom-headers): "ConfigMap `name` or `namespace/name` (same namespace)"',
    seen: (n, k) => n.status === 503 && k.status === 200 && has(k, 'x-custom: c1'),
    apply: (_n, k) => [k, k],
  },
  {
    id: 'a custom-headers value of spaces alone',
    probes: ['blank.test ok', 'blank.test 404'],
    why: "headers-more reads a value of spaces alone as 'clear': nginx sends no X-Custom (the backend's removed); keepip replaces the backend's with an empty field. No value reaches the client either way",
    seen: (n, k) => has(k, 'x-custom: ') && !n.fields.some((f) => f.startsWith('x-custom:')),
    apply: (n, k) => [n, without(k, /^x-custom: $/)],
  },
  {
    id: 'custom-headers Connection: close',
    probes: ['hop-conn ok', 'hop-conn HEAD', 'hop-conn 404'],
    why: 'nginx sends its own `Connection: keep-alive` beside the custom `Connection: close` (a client reads "keep-alive, close" and closes) and still reads a pipelined request; keepip leaves a hop-by-hop field of the ConfigMap out (a warning at load) and keeps the connection',
    doc: 'docs/ingress-nginx-compat.md (custom-headers): "Content-Length and hop-by-hop fields (Connection, Transfer-Encoding…) are left out, with a warning"',
    seen: (n, k) =>
      firstHead(n).split('\r\nConnection: ').length === 3 &&
      !has(k, 'connection: close') &&
      k.framing === 'ok',
    apply: (n, k) => [without(n, /^connection: close$/), k],
  },
  {
    id: 'Content-Length in custom-headers or add-headers',
    probes: ['hop-cl ok', 'hop-cl HEAD', 'hop-cl 404', 'h2 hop-cl ok', 'addlength ok', 'addlength 404'],
    why: "nginx sends the ConfigMap's `Content-Length: 3` over a body of another length (the client reads 3 bytes and the rest as the next answer; over HTTP/2 a malformed response); keepip leaves the field out (a warning at load) and frames the answer itself",
    doc: 'docs/ingress-nginx-compat.md (custom-headers, add-headers): "Content-Length and hop-by-hop fields (Connection, Transfer-Encoding…) are left out, with a warning"',
    seen: (n, k) => n.framing === 'broken' && k.framing === 'ok' && !has(k, 'content-length: 3'),
    apply: (_n, k) => [k, k],
  },
  {
    id: 'custom-headers Transfer-Encoding',
    probes: ['hop-te ok', 'hop-te HEAD', 'hop-te 404'],
    why: "nginx sends the custom `Transfer-Encoding: chunked` beside its Content-Length over a body it does not chunk (the client cannot read the answer); keepip leaves the field out and frames the answer itself. Compared: nginx's answer without that line",
    seen: (n, k) =>
      firstHead(n).includes('\r\nTransfer-Encoding: chunked') &&
      !k.fields.some((f) => f.startsWith('transfer-encoding')) &&
      k.framing === 'ok',
    apply: (n, k) => [seenOf(n.raw.replaceAll('Transfer-Encoding: chunked\r\n', ''), n.head), k],
  },
  {
    id: 'a connection-specific field over HTTP/2',
    probes: ['h2 hop-conn ok'],
    why: 'nginx sends the custom `connection: close` over HTTP/2, a malformed response (RFC 9113 8.2.2) node:http2 refuses; keepip leaves it out',
    seen: (n, k) =>
      n.framing === 'broken' && k.framing === 'ok' && !k.fields.some((f) => f.startsWith('connection')),
    apply: (_n, k) => [k, k],
  },
  {
    id: 'an add-headers value with CR LF',
    probes: ['crlf ok', 'crlf 404'],
    why: "the template quotes the value with Go's %q and nginx's configuration parser turns `\\r\\n` back into CR LF: nginx splits the value into a line of its own (Set-Cookie: injected=1); keepip refuses the ConfigMap at load",
    doc: 'docs/ingress-nginx-compat.md (add-headers): "A missing ConfigMap, a key that is not a header name or a value with a control byte (HTAB aside): warning, none"',
    seen: (n, k) =>
      has(n, 'set-cookie: injected=1') &&
      !k.fields.some((f) => /^(x-split|x-frame-options): |^set-cookie: injected/.test(f)),
    apply: (n, k) => [without(n, /^(x-split: a|set-cookie: injected=1|x-frame-options: DENY)$/), k],
  },
  {
    id: 'a drawn $req_id',
    probes: ['vars ok', 'vars 404'],
    why: 'without an X-Request-ID each draws its own 32 hex digits for $req_id; the field is there on both',
    seen: (n, k) => [n, k].every((s) => s.fields.some((f) => /^x-rid: [0-9a-f]{32}$/.test(f))),
    apply: (n, k) => [replace(n, /^x-rid: /, 'x-rid: <drawn>'), replace(k, /^x-rid: /, 'x-rid: <drawn>')],
  },
  {
    id: 'CR LF decoded into $uri',
    probes: ['vars crlf uri'],
    why: 'nginx writes the decoded `%0D%0A` of $uri raw, splitting the head (X-Injected: 1 becomes a field of its own, response splitting); keepip writes each control byte as \\xHH',
    doc: 'docs/ingress-nginx-compat.md, difference 16: "a control byte in a variable\'s value (a `%0D%0A` decoded into `$uri`) goes out as `\\xHH` where nginx would write it raw and split the head"',
    seen: (n, k) =>
      has(n, 'x-injected: 1') &&
      has(k, 'x-uri: /a/ok\\x0D\\x0AX-Injected: 1') &&
      !k.fields.some((f) => f.startsWith('x-injected')),
    apply: (_n, k) => [k, k],
  },
];

interface Bench {
  nginx: RunningNginx;
  gateways: Map<string, TestGateway>;
  raw: Backend;
  err: Backend;
  ngxPorts: Map<string, number>;
  ngxTls: number;
}

async function startBench(): Promise<Bench> {
  const raw = await startBackend();
  const err = await startBackend(ERROR_PAGE);
  const gateways = new Map<string, TestGateway>();
  let nginx: RunningNginx | undefined;
  try {
    const pair = await testCertificate();
    nginx = await startNginx({
      main: [HEADERS_MORE],
      freePorts: PROFILES.length + 1,
      http: (dir, ports) => {
        writeFileSync(join(dir, 'tls.crt'), pair.cert);
        writeFileSync(join(dir, 'tls.key'), pair.key);
        return nginxHttp(dir, ports, raw.port, err.port);
      },
      waitFor: (ports) => ports.map((port) => ({ host: '127.0.0.1', port })),
    });
    for (const p of PROFILES) {
      const topology = topologyOf(keepipObjects(p, raw.port, err.port));
      gateways.set(p.id, await startTestGateway(topology));
    }
    const ngxPorts = new Map(PROFILES.map((p, i) => [p.id, nginx!.ports[i]!] as const));
    return { nginx, gateways, raw, err, ngxPorts, ngxTls: nginx.ports[PROFILES.length]! };
  } catch (error) {
    for (const g of gateways.values()) await g.close();
    await nginx?.stop();
    await raw.close();
    await err.close();
    throw error;
  }
}

async function ask(b: Bench, p: Probe): Promise<[Seen, Seen]> {
  const gw = b.gateways.get(p.profile)!;
  if (p.h2) return Promise.all([askH2(b.ngxTls, p), askH2(gw.httpsPort, p)]);
  return Promise.all([askH1(b.ngxPorts.get(p.profile)!, p), askH1(gw.httpPort, p)]);
}

/** The probes' differences not set aside by ALLOWED, and ALLOWED entries no longer seen. */
async function differences(b: Bench, probes: readonly Probe[]): Promise<string[]> {
  const out: string[] = [];
  await mapLimited(probes, CONCURRENCY, async (p) => {
    let [ngx, kip] = await ask(b, p);
    if (DUMP)
      console.log(`--- ${p.id}\nnginx: ${JSON.stringify(ngx.raw)}\nkeepip: ${JSON.stringify(kip.raw)}`);
    for (const a of ALLOWED.filter((x) => x.probes.includes(p.id))) {
      if (!a.seen(ngx, kip)) out.push(`${p.id}: ALLOWED ${a.id} is no longer seen`);
      [ngx, kip] = a.apply(ngx, kip);
    }
    const n = comparable(p, ngx);
    const k = comparable(p, kip);
    const onlyNginx = n.fields.filter((f) => !k.fields.includes(f));
    const onlyKeepip = k.fields.filter((f) => !n.fields.includes(f));
    const countDiff =
      JSON.stringify(n.fields) !== JSON.stringify(k.fields) && onlyNginx.length + onlyKeepip.length === 0;
    if (n.status !== k.status) out.push(`${p.id}: status nginx ${n.status}, keepip ${k.status}`);
    if (onlyNginx.length > 0) out.push(`${p.id}: only nginx sends ${JSON.stringify(onlyNginx)}`);
    if (onlyKeepip.length > 0) out.push(`${p.id}: only keepip sends ${JSON.stringify(onlyKeepip)}`);
    if (countDiff)
      out.push(
        `${p.id}: repetitions differ: nginx ${JSON.stringify(n.fields)}, keepip ${JSON.stringify(k.fields)}`,
      );
    if (n.body !== k.body)
      out.push(`${p.id}: body nginx ${JSON.stringify(n.body)}, keepip ${JSON.stringify(k.body)}`);
    if (kip.framing === 'broken')
      out.push(`${p.id}: keepip's answers on the connection lose their framing (nginx: ${ngx.framing})`);
    else if (ngx.framing !== kip.framing)
      out.push(`${p.id}: framing nginx ${ngx.framing}, keepip ${kip.framing}`);
  });
  return out.sort();
}

// ---------------------------------------------------------------------------------------------

const BACKEND_ANSWERS = ['ok', 's204', 's301', 's404', 's500'] as const;

function backendProbes(host: string): Probe[] {
  return [
    ...BACKEND_ANSWERS.map((a) => ({ id: `${host} ${a}`, profile: 'main', host, path: `/a/${a}` })),
    { id: `${host} HEAD ok`, profile: 'main', host, method: 'HEAD', path: '/a/ok' },
    { id: `${host} n304`, profile: 'main', host, path: '/a/n304', headers: { 'If-None-Match': '"e1"' } },
  ];
}

/** A GET of `path` on `host` of `profile`. */
const get = (id: string, profile: string, host: string, path: string, more: Partial<Probe> = {}): Probe => ({
  id,
  profile,
  host,
  path,
  ...more,
});

const own = { own: true };
const cors = (id: string, origin: string, method = 'GET'): Probe =>
  get(id, 'main', 'cors.test', '/a/ok', {
    method,
    headers: { Origin: origin, ...(method === 'OPTIONS' ? { 'Access-Control-Request-Method': 'PUT' } : {}) },
    own: method === 'OPTIONS',
  });
const pair = (profile: string): Probe[] => [
  get(`${profile} ok`, profile, 'plain.test', '/a/ok'),
  get(`${profile} 404`, profile, 'unknown.test', '/', own),
];

/** The probes of each test. */
const PROBES = {
  backend: [
    ...backendProbes('plain.test'),
    ...backendProbes('custom.test'),
    ...['blank.test', 'server-custom.test'].flatMap((host) => [
      get(`${host} ok`, 'main', host, '/a/ok'),
      get(`${host} 404`, 'main', host, '/a/s404'),
    ]),
  ],
  own: [
    get('deny 403', 'main', 'deny.test', '/a/ok', own),
    get('default 404', 'main', 'unknown.test', '/a/ok', own),
    get('noep 503', 'main', 'noep.test', '/a/ok', own),
    get('big 413', 'main', 'big.test', '/a/ok', { method: 'POST', body: 'x'.repeat(64), own: true }),
    get('redirect 301', 'main', 'redirect.test', '/a/ok?q=1', own),
    get('errors ok', 'main', 'errors.test', '/a/ok'),
  ],
  errorPage: [get('errors page', 'main', 'errors.test', '/a/s404')],
  refused: [
    ...MAIN.hosts
      .filter((h) => h.host.startsWith('bad-'))
      .map((h) => get(h.host, 'main', h.host, '/a/ok', own)),
    get('bare name', 'main', 'bare.test', '/a/ok', own),
  ],
  cors: [
    cors('cors allowed origin', 'https://app.test'),
    cors('cors other origin', 'https://evil.test'),
    cors('cors preflight', 'https://app.test', 'OPTIONS'),
  ],
  hopByHop: [
    ...['hop-te', 'hop-conn'].flatMap((h) => [
      get(`${h} ok`, 'main', `${h}.test`, '/a/ok'),
      get(`${h} HEAD`, 'main', `${h}.test`, '/a/ok', { method: 'HEAD' }),
      get(`${h} 404`, 'main', `${h}.test`, '/a/s404'),
    ]),
    get('h2 hop-conn ok', 'main', 'hop-conn.test', '/a/ok', { h2: true }),
  ],
  customLength: [
    get('hop-cl ok', 'main', 'hop-cl.test', '/a/ok'),
    get('hop-cl HEAD', 'main', 'hop-cl.test', '/a/ok', { method: 'HEAD' }),
    get('hop-cl 404', 'main', 'hop-cl.test', '/a/s404'),
    get('h2 hop-cl ok', 'main', 'hop-cl.test', '/a/ok', { h2: true }),
  ],
  addLength: pair('addlength'),
  tokens: ['tokens', 'backendserver'].flatMap((profile) => [
    get(`${profile} ok`, profile, 'plain.test', '/a/ok'),
    get(`${profile} no server`, profile, 'plain.test', '/a/noserver'),
    get(`${profile} 404`, profile, 'unknown.test', '/', own),
  ]),
  crlf: pair('crlf'),
  vars: [
    ...pair('vars'),
    get('vars request', 'vars', 'plain.test', '/a/ok?q=1&r=2', {
      headers: { 'X-Probe': 'p1', 'X-Request-ID': 'rid-1', Cookie: 'c=v; d=w' },
    }),
    get('vars HEAD', 'vars', 'plain.test', '/a/ok?q=', { method: 'HEAD', headers: { 'X-Request-ID': 'r2' } }),
    get('vars backend 404', 'vars', 'plain.test', '/a/s404', { headers: { 'X-Request-ID': 'r3' } }),
    get('vars utf8 uri', 'vars', 'plain.test', '/a/ok/caf%C3%A9', { headers: { 'X-Request-ID': 'r4' } }),
    get('vars crlf uri', 'vars', 'plain.test', '/a/ok%0D%0AX-Injected:%201', {
      headers: { 'X-Request-ID': 'r5' },
    }),
  ],
  latin1: pair('latin1'),
  beyond: pair('beyond'),
  h2: [
    get('h2 plain ok', 'main', 'plain.test', '/a/ok', { h2: true }),
    get('h2 custom ok', 'main', 'custom.test', '/a/ok', { h2: true }),
    get('h2 custom 204', 'main', 'custom.test', '/a/s204', { h2: true }),
    get('h2 custom HEAD', 'main', 'custom.test', '/a/ok', { h2: true, method: 'HEAD' }),
    get('h2 deny 403', 'main', 'deny.test', '/a/ok', { h2: true, own: true }),
    get('h2 default 404', 'main', 'unknown.test', '/a/ok', { h2: true, own: true }),
  ],
} satisfies Record<string, Probe[]>;

describe('response headers (add-headers, custom-headers, hide-headers, server-tokens, HSTS) against nginx 1.22 + headers-more', () => {
  let b: Bench;
  const check = async (probes: readonly Probe[]) => assert.deepEqual(await differences(b, probes), []);

  before(async () => {
    b = await startBench();
  });

  after(async () => {
    if (b === undefined) return;
    for (const g of b.gateways.values()) await g.close();
    await b.nginx.stop();
    await b.raw.close();
    await b.err.close();
  });

  it('backend answers (200, 204, 301, 404, 500, HEAD, 304) through a plain location and through custom-headers ($, quotes, commas, spaces, Server, a hidden name, a blank value): the same header list', () =>
    check(PROBES.backend));

  it("the servers' own answers (403 allowlist, 404 default server, 503 no endpoints, 413, 301 ssl-redirect) carry the same headers", () =>
    check(PROBES.own));

  it("a custom-http-errors page carries the server's headers (add-headers), not the location's custom-headers, as nginx's named error location (found here, fixed)", () =>
    check(PROBES.errorPage));

  it('custom-headers ConfigMaps ingress-nginx refuses (a name not listed or in another case, é, CR LF, LF, NUL, TAB, empty, a space in a name, a missing ConfigMap) deny the location with the same 503', () =>
    check(PROBES.refused));

  it('CORS and custom-headers on one location: CORS wins for its names, the preflight is answered alike', () =>
    check(PROBES.cors));

  it('Transfer-Encoding or Connection in custom-headers never break the framing of an answer', () =>
    check(PROBES.hopByHop));

  it('Content-Length in custom-headers never replaces the answer’s own: left out, the body framed as sent (HTTP/1.1 and HTTP/2; found here, fixed)', () =>
    check(PROBES.customLength));

  it('Content-Length in add-headers never breaks the framing of an answer, proxied or the gateway’s own (found here, fixed)', () =>
    check(PROBES.addLength));

  it('server-tokens on, with and without allow-backend-server-header: Server as nginx sends it', () =>
    check(PROBES.tokens));

  it('an add-headers value with CR LF is never a line of its own', () => check(PROBES.crlf));

  it("add-headers values with variables ($host, $status, $request_uri, $arg_, $http_, $cookie_, braced, $req_id, $uri) expanded when the head is written, an empty one removing the backend's field, as nginx (found here, fixed: they went out as written)", () =>
    check(PROBES.vars));

  it('an add-headers value with é reaches the client as its UTF-8 bytes, as nginx sends it (found here, fixed: it went out as the byte 0xE9)', () =>
    check(PROBES.latin1));

  it('an add-headers value beyond U+00FF goes out as its UTF-8 bytes beside the others, as nginx (found here, fixed: the whole map was dropped)', () =>
    check(PROBES.beyond));

  it('HTTP/2 over TLS: the same header lists, HSTS replacing the backend’s', () => check(PROBES.h2));

  it('every ALLOWED entry names probes of this file (each is checked to be still seen where it is sent)', () => {
    const ids = new Set(Object.values(PROBES).flatMap((list) => list.map((p) => p.id)));
    assert.deepEqual(
      ALLOWED.flatMap((a) => a.probes.filter((id) => !ids.has(id)).map((id) => `${a.id}: ${id}`)),
      [],
    );
  });
});
