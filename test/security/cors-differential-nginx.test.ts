// enable-cors and cors-*: keepip against real nginx 1.22 configured the way ingress-nginx renders the
// same annotations. The model of ingress-nginx (the mirror's HEAD, /work/.mirror/kubernetes+ingress-nginx):
//   - internal/ingress/annotations/cors/main.go Parse, transcribed in ingressNginxCors: the whole
//     cors-allow-origin value checked (spaces removed) by corsOriginRegexValidator, `*` when it fails
//     or is absent or empty; then split on `,`, trimmed, `*` alone wins, entries corsOriginRegex refuses
//     skipped; cors-allow-methods / -headers / -expose-headers checked by their regexes (the
//     annotation validator on the value without spaces, then Parse on the trimmed value), else their
//     defaults; cors-allow-credentials strconv.ParseBool (invalid: true); cors-max-age strconv.Atoi
//     (invalid: 1728000).
//   - internal/ingress/controller/template/template.go buildCorsOriginRegex / buildOriginRegex,
//     transcribed in corsOriginRegexLine: `*` alone is `set $http_origin *; set $cors 'true';`, else
//     `if ($http_origin ~* ((<QuoteMeta(origin), its first \* as [A-Za-z0-9\-]+>)|…)$ ) { set $cors
//     'true'; }`: case-insensitive, anchored only at the end.
//   - rootfs/etc/nginx/template/nginx.tmpl "CORS" (lines ~872-905): `if ($request_method = 'OPTIONS')
//     { set $cors ${cors}options; }`, then `$cors = "true"` sets the headers (more_set_headers) and
//     `$cors = "trueoptions"` sets them and `return 204`.
// This nginx has no headers-more module. more_set_headers replaces the backend's header of that name on
// every answer (any status) and leaves it alone when it is not run; that is rendered here as: the
// CORS `if`s `set $cors_<h>` to the value, `proxy_hide_header` for the six Access-Control-* names, and
// at the http level `add_header <name> $kx_<h> always`, where the map `$kx_<h>` is `$cors_<h>` when set
// and else the backend's own header (`$upstream_http_*`): the same answer as more_set_headers gives.
// The 204's Content-Type/Content-Length (also more_set_headers) are not compared.
//
// Compared, per request: status, every Access-Control-* header (all of its lines, exact values), Vary,
// and whether the backend was reached (X-Loc). keepip allowing an Origin nginx refuses, echoing an
// Origin nginx would not, `*` with credentials where nginx does not, letting the backend's own
// Access-Control-Allow-Origin through where nginx replaces it, or proxying a preflight nginx answers
// itself is a FINDING (the test asserts nginx's answer and fails). keepip stricter, or documented in
// docs/ingress-nginx-compat.md, is in the ALLOWED table (with the reason) and passes. Met as parity,
// not findings: with `*` and credentials on both send Allow-Origin `*` with Allow-Credentials `true`
// (browsers refuse that pair), and neither adds `Vary: Origin` to an echoed Origin.
//
// Generated cases (fast-check; the bench of test/helpers/nginx-differential.ts: one batch, the first
// differing case shrunk). CORS_SEED=<n> (or `random`) explores other cases; the default seed is fixed.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { mapLimited } from '../helpers/concurrency.ts';
import {
  atoi,
  GO,
  normalizeString,
  PATTERN,
  parseBool,
  regex,
  V,
  type Validator,
} from '../helpers/go-annotation-validators.ts';
import { goTrimSpace } from '../helpers/go-net.ts';
import { rawExchange } from '../helpers/net.ts';
import {
  casesTopology,
  checkGenerated,
  type Differential,
  SINGLE_HOST,
  startDifferential,
} from '../helpers/nginx-differential.ts';

const RUNS = 12;

/** cors-* annotation values as written on the Ingress; undefined: absent. */
interface Case {
  origin?: string | undefined;
  methods?: string | undefined;
  headers?: string | undefined;
  credentials?: string | undefined;
  expose?: string | undefined;
  maxAge?: string | undefined;
}

// ---------------------------------------------------------------------------------------------
// ingress-nginx: internal/ingress/annotations/cors/main.go Parse, and parser.ValidateRegex /
// parseString (normalizeString: TrimSpace; empty is an error). Its Validators (corsOriginRegexValidator,
// corsMethodsRegex, corsExposeHeadersRegex, parser.HeadersVariable; Go's `\s` is [\t\n\f\r ]),
// normalizeString, strconv.ParseBool and Atoi are test/helpers/go-annotation-validators.ts's, and
// strings.TrimSpace (unicode.IsSpace) go-net's goTrimSpace: test/k8s/go-reference.test.ts holds them
// against Go's own answers.

/** cors/main.go:48 corsOriginRegex: one entry, as Parse checks it after the split. */
const GO_ORIGIN = /^([a-z]+:\/\/(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|\*|null)?$/;
/** cors-allow-headers: validated by ValidateRegex(HeadersVariable, true), then HeadersVariable again. */
const HEADERS: CorsString = { validator: regex(GO.HeadersVariable, true), pattern: GO.HeadersVariable };
const METHODS: CorsString = { validator: V.corsMethods, pattern: PATTERN.corsMethods };
const EXPOSE: CorsString = { validator: V.corsExpose, pattern: PATTERN.corsExpose };
const DEFAULT_METHODS = 'GET, PUT, POST, DELETE, PATCH, OPTIONS';
const DEFAULT_HEADERS =
  'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization';
const DEFAULT_MAX_AGE = 1728000;

interface NgxCors {
  origins: string[];
  methods: string;
  headers: string;
  credentials: boolean;
  expose: string;
  maxAge: number;
  /** corsOriginRegexValidator refused the whole cors-allow-origin value: `*`. */
  wholeRefused: boolean;
}

/** A cors-* string: its annotation Validator, and the pattern Parse tests the value with again. */
interface CorsString {
  validator: Validator;
  pattern: RegExp;
}

/** GetStringAnnotation: the normalized value, or null (an error: refused by the validator, or empty). */
function goString(v: string | undefined, validator: Validator): string | null {
  if (v === undefined) return null;
  if (v !== '' && !validator(v)) return null;
  const s = normalizeString(v);
  return s === '' ? null : s;
}

/** Parse's value of a regex-checked string: the annotation when both checks pass, else `fallback`. */
function goChecked(v: string | undefined, c: CorsString, fallback: string): string {
  const s = goString(v, c.validator);
  return s !== null && c.pattern.test(s) ? s : fallback;
}

/** GetBoolAnnotation: ValidateBool, then strconv.ParseBool; null when absent or refused. */
const goBool = (v: string | undefined): boolean | null => (v === undefined ? null : parseBool(v));

function goOrigins(v: string | undefined): { origins: string[]; wholeRefused: boolean } {
  const value = goString(v, V.corsOrigin);
  if (value === null)
    return { origins: ['*'], wholeRefused: v !== undefined && v !== '' && !V.corsOrigin(v) };
  const origins: string[] = [];
  for (const raw of value.split(',')) {
    const origin = goTrimSpace(raw);
    if (origin === '') continue;
    if (origin === '*') return { origins: ['*'], wholeRefused: false };
    if (GO_ORIGIN.test(origin)) origins.push(origin);
  }
  return { origins, wholeRefused: false };
}

function ingressNginxCors(c: Case): NgxCors {
  const age = c.maxAge === undefined ? null : atoi(c.maxAge);
  return {
    ...goOrigins(c.origin),
    methods: goChecked(c.methods, METHODS, DEFAULT_METHODS),
    headers: goChecked(c.headers, HEADERS, DEFAULT_HEADERS),
    credentials: goBool(c.credentials) ?? true,
    expose: goChecked(c.expose, EXPOSE, ''),
    maxAge: age === null ? DEFAULT_MAX_AGE : Number(age),
  };
}

/** Go's regexp.QuoteMeta: a backslash before each of \.+*?()|[]{}^$. */
function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** template.go buildOriginRegex: quoted, its first `\*` one label. */
function buildOriginRegex(origin: string): string {
  return `(${quoteMeta(origin).replace('\\*', '[A-Za-z0-9\\-]+')})`;
}

/** template.go buildCorsOriginRegex. */
function corsOriginRegexLine(origins: readonly string[]): string {
  if (origins.length === 1 && origins[0] === '*') return "set $http_origin *;\nset $cors 'true';";
  return `if ($http_origin ~* (${origins.map(buildOriginRegex).join('|')})$ ) { set $cors 'true'; }`;
}

/**
 * The Origins nginx's regex accepts (PCRE `~*`: ASCII case folded) and those it would accept if it
 * were anchored at the start too (keepip's).
 */
function originMatchers(origins: readonly string[]): { ngx: RegExp; whole: RegExp } | null {
  if (origins.length === 0 || origins[0] === '*') return null;
  const alternatives = origins.map(buildOriginRegex).join('|');
  return { ngx: new RegExp(`(${alternatives})$`, 'i'), whole: new RegExp(`^(${alternatives})$`, 'i') };
}

// ---------------------------------------------------------------------------------------------
// nginx's configuration.

/** Short names of the six headers: `$cors_<short>` (set by the CORS `if`s), `$kx_<short>` (sent). */
const CORS_HEADERS = [
  ['acao', 'Access-Control-Allow-Origin'],
  ['acac', 'Access-Control-Allow-Credentials'],
  ['acam', 'Access-Control-Allow-Methods'],
  ['acah', 'Access-Control-Allow-Headers'],
  ['aceh', 'Access-Control-Expose-Headers'],
  ['acma', 'Access-Control-Max-Age'],
] as const;

/**
 * http-level directives (more_set_headers rendered with add_header, see the top of the file) and a
 * server that `set`s every `$cors_<h>` so that nginx knows the variables whatever the cases set.
 */
function httpLevel(port: number): string {
  const lines: string[] = [];
  for (const [short, name] of CORS_HEADERS) {
    const upstream = `$upstream_http_${name.toLowerCase().replaceAll('-', '_')}`;
    lines.push(`map $cors_${short} $kx_${short} { "" ${upstream}; default $cors_${short}; }`);
    lines.push(`proxy_hide_header ${name};`, `add_header ${name} $kx_${short} always;`);
  }
  const sets = CORS_HEADERS.map(([short]) => `set $cors_${short} "";`).join(' ');
  lines.push(
    `server { listen 127.0.0.1:${port}; server_name cors-vars.invalid;`,
    `  location / { set $cors ""; ${sets} return 404; } }`,
  );
  return lines.join('\n');
}

/** The template's more_set_headers of the "CORS" block, as `set $cors_<h>` (single-quoted values). */
function corsSets(cfg: NgxCors): string {
  const sets = ['set $cors_acao $http_origin;'];
  if (cfg.credentials) sets.push(`set $cors_acac 'true';`);
  sets.push(`set $cors_acam '${cfg.methods}';`, `set $cors_acah '${cfg.headers}';`);
  if (cfg.expose !== '') sets.push(`set $cors_aceh '${cfg.expose}';`);
  sets.push(`set $cors_acma '${cfg.maxAge}';`);
  return sets.join(' ');
}

/** The server ingress-nginx writes for case `c` on `host` (location `/` with the "CORS" block). */
function nginxServer(c: Case, host: string, port: number, backend: number): string {
  const cfg = ingressNginxCors(c);
  const lines: string[] = [];
  if (cfg.origins.length > 0) lines.push(corsOriginRegexLine(cfg.origins));
  lines.push(
    // nginx's `${cors}`: the variable, then the text `options`.
    `if ($request_method = 'OPTIONS') { set $cors $\{cors}options; }`,
    `if ($cors = "true") { ${corsSets(cfg)} }`,
    `if ($cors = "trueoptions") { ${corsSets(cfg)} return 204; }`,
    `proxy_pass http://127.0.0.1:${backend};`,
  );
  return `server { listen 127.0.0.1:${port}; server_name ${host};\n  location / {\n    ${lines.join('\n    ')}\n  }\n}`;
}

// ---------------------------------------------------------------------------------------------
// keepip's Ingresses.

function annotationsOf(c: Case): Record<string, string> {
  const a: Record<string, string> = { 'enable-cors': 'true' };
  const named: [string, string | undefined][] = [
    ['cors-allow-origin', c.origin],
    ['cors-allow-methods', c.methods],
    ['cors-allow-headers', c.headers],
    ['cors-allow-credentials', c.credentials],
    ['cors-expose-headers', c.expose],
    ['cors-max-age', c.maxAge],
  ];
  for (const [name, value] of named) if (value !== undefined) a[name] = value;
  return a;
}

// ---------------------------------------------------------------------------------------------
// Requests and answers.

type Method = 'GET' | 'POST' | 'PREFLIGHT' | 'OPTIONS';
interface Probe {
  /** PREFLIGHT: OPTIONS with Access-Control-Request-Method; OPTIONS: without. */
  method: Method;
  /** One Origin line each (latin1: a string's char codes are the bytes). */
  origins: string[];
  /** The backend answers with its own Access-Control-* and Vary (BACKEND_CORS). */
  backendCors: boolean;
}

/** What the backend adds when asked (X-Backend-Cors): a header of every name compared. */
const BACKEND_CORS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': 'https://backend.test',
  'access-control-allow-credentials': 'true',
  'access-control-allow-methods': 'BACKEND',
  'access-control-allow-headers': 'X-Backend',
  'access-control-expose-headers': 'X-Backend-Exposed',
  'access-control-max-age': '7',
  vary: 'X-Backend',
};
const COMPARED = [...CORS_HEADERS.map(([, name]) => name.toLowerCase()), 'vary'];

function backendHandler(id: string): http.RequestListener {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      const headers: Record<string, string | number> = { 'content-type': 'text/plain', 'content-length': 1 };
      headers['x-loc'] = id;
      if (req.headers['x-backend-cors'] === '1') Object.assign(headers, BACKEND_CORS);
      res.writeHead(200, headers);
      res.end('b');
    });
  };
}

function requestBytes(probe: Probe, host: string): Buffer {
  const verb = probe.method === 'PREFLIGHT' ? 'OPTIONS' : probe.method;
  const lines = [`${verb} / HTTP/1.1`, `Host: ${host}`];
  for (const origin of probe.origins) lines.push(`Origin: ${origin}`);
  if (probe.method === 'PREFLIGHT') {
    lines.push('Access-Control-Request-Method: PUT', 'Access-Control-Request-Headers: x-custom');
  }
  if (probe.method === 'POST') lines.push('Content-Type: text/plain', 'Content-Length: 2');
  if (probe.backendCors) lines.push('X-Backend-Cors: 1');
  lines.push('Connection: close', '', probe.method === 'POST' ? 'hi' : '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

interface Outcome {
  status: number;
  gen: string | null;
  /** The backend answered (X-Loc). */
  backend: boolean;
  /** COMPARED names -> every line's value, in order. */
  headers: Map<string, string[]>;
}

function outcomeOf(raw: Buffer): Outcome {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const lines = text.slice(0, end < 0 ? text.length : end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers = new Map<string, string[]>();
  let gen: string | null = null;
  let backend = false;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'x-gen') gen = value;
    if (name === 'x-loc') backend = true;
    if (COMPARED.includes(name)) headers.set(name, [...(headers.get(name) ?? []), value]);
  }
  return { status, gen, backend, headers };
}

async function send(port: number, probe: Probe, host: string): Promise<Outcome> {
  const payload = requestBytes(probe, host);
  const { received } = await rawExchange({ host: '127.0.0.1', port, payload, timeoutMs: 10_000 });
  return outcomeOf(received);
}

function describeOutcome(o: Outcome): string {
  const headers = COMPARED.flatMap((name) => (o.headers.get(name) ?? []).map((v) => `${name}: ${v}`));
  return `${o.status}${o.backend ? ' (backend)' : ''} {${headers.join('; ')}}`;
}

function describeProbe(p: Probe): string {
  const origins = p.origins.length === 0 ? 'no Origin' : p.origins.map((o) => JSON.stringify(o)).join(' + ');
  return `${p.method} Origin ${origins}${p.backendCors ? ' (backend sends its own CORS)' : ''}`;
}

// ---------------------------------------------------------------------------------------------
// The judge.

/** How an answer treats the Origin: none, the backend's own, `*`, one echoed value, several lines. */
function corsOf(o: Outcome): string {
  const acao = o.headers.get('access-control-allow-origin') ?? [];
  if (acao.length === 0) return 'none';
  if (acao.length > 1) return `several ${JSON.stringify(acao)}`;
  if (acao[0] === BACKEND_CORS['access-control-allow-origin']) return 'backend';
  return acao[0] === '*' ? '*' : `echo ${acao[0]}`;
}

const granted = (cors: string) => cors !== 'none' && cors !== 'backend';

interface Allowed {
  name: string;
  reason: string;
  applies(cfg: NgxCors, probe: Probe, ngx: Outcome, kip: Outcome, c: Case): boolean;
}

/** What keepip gives where nginx does not apply CORS: nothing of its own, the backend's answer. */
function keepipRefused(probe: Probe, kip: Outcome): boolean {
  return (
    !granted(corsOf(kip)) && (probe.method !== 'PREFLIGHT' && probe.method !== 'OPTIONS' ? true : kip.backend)
  );
}

/** A value written but unreadable for ingress-nginx's validator (its default applies there). */
function unreadable(v: string | undefined, c: CorsString): boolean {
  return v !== undefined && goTrimSpace(v) !== '' && goChecked(v, c, '\u0000') === '\u0000';
}

/** `o` without its Access-Control-Allow-Credentials. */
function withoutCredentials(o: Outcome): Outcome {
  const headers = new Map(o.headers);
  headers.delete('access-control-allow-credentials');
  return { ...o, headers };
}

/** keepip stricter than ingress-nginx, or documented in docs/ingress-nginx-compat.md. */
const ALLOWED: Allowed[] = [
  {
    name: 'unreadable methods or headers allow no origin',
    reason:
      'docs/ingress-nginx-compat.md (cors-*): a cors-allow-methods or cors-allow-headers value that cannot be read allows no origin (fails closed); ingress-nginx grants its defaults, every method and Authorization among the headers',
    applies: (_cfg, probe, ngx, kip, c) =>
      (unreadable(c.methods, METHODS) || unreadable(c.headers, HEADERS)) &&
      granted(corsOf(ngx)) &&
      keepipRefused(probe, kip),
  },
  {
    name: 'unreadable credentials are false',
    reason:
      'docs/ingress-nginx-compat.md (cors-*): a cors-allow-credentials that is not a boolean is false (fails closed); ingress-nginx takes its default, true',
    applies: (_cfg, _probe, ngx, kip, c) =>
      c.credentials !== undefined &&
      goBool(c.credentials) === null &&
      !sameOutcome(ngx, kip) &&
      sameOutcome(withoutCredentials(ngx), kip),
  },
  {
    name: 'origin matched whole',
    reason:
      'docs/ingress-nginx-compat.md difference 15: ingress-nginx anchors its regex only at the end, so an ' +
      'Origin with anything before an allowed one passes there; keepip matches the Origin whole (stricter)',
    applies: (cfg, probe, ngx, kip) => {
      const m = originMatchers(cfg.origins);
      const origin = probe.origins[0];
      return (
        m !== null &&
        probe.origins.length === 1 &&
        origin !== undefined &&
        m.ngx.test(origin) &&
        !m.whole.test(origin) &&
        granted(corsOf(ngx)) &&
        keepipRefused(probe, kip)
      );
    },
  },
  {
    name: 'several Origin lines',
    reason:
      "docs/ingress-nginx-compat.md difference 15: nginx 1.22's $http_origin is the first Origin line, so " +
      'ingress-nginx echoes it; keepip reads the lines joined and grants nothing (stricter: a browser sends one)',
    applies: (cfg, probe, ngx, kip) =>
      cfg.origins[0] !== '*' && probe.origins.length > 1 && granted(corsOf(ngx)) && keepipRefused(probe, kip),
  },
  {
    name: 'whole value refused',
    reason:
      "docs/ingress-nginx-compat.md (cors-allow-origin): a value ingress-nginx's validator refuses as a " +
      'whole is `*` there, every origin; keepip keeps the valid entries (fails closed)',
    applies: (cfg, _probe, ngx, kip) =>
      cfg.wholeRefused && corsOf(ngx) === '*' && !corsOf(kip).startsWith('several') && corsOf(kip) !== '*',
  },
  {
    name: 'Origin with white space around it',
    reason:
      'RFC 9110 5.5: white space (SP, HTAB) around a field value is not part of it; keepip (llhttp) drops ' +
      'it, nginx 1.22 keeps a trailing HTAB in $http_origin, so its regex fails. keepip echoes the ' +
      'trimmed value, exactly an allowed Origin: not less safe',
    applies: (cfg, probe, _ngx, kip) => {
      const m = originMatchers(cfg.origins);
      const origin = probe.origins[0] ?? '';
      const trimmed = origin.replace(/^[\t ]+|[\t ]+$/g, '');
      return (
        m !== null &&
        probe.origins.length === 1 &&
        trimmed !== origin &&
        m.whole.test(trimmed) &&
        corsOf(kip) === `echo ${trimmed}`
      );
    },
  },
];

/** A difference where keepip is less safe than nginx; null when it is not one. */
function findingOf(probe: Probe, ngx: Outcome, kip: Outcome): string | null {
  const [n, k] = [corsOf(ngx), corsOf(kip)];
  const kipCredentials = kip.headers.get('access-control-allow-credentials')?.includes('true') ?? false;
  const ngxCredentials = ngx.headers.get('access-control-allow-credentials')?.includes('true') ?? false;
  if (k.startsWith('several')) return `keepip sends several Access-Control-Allow-Origin lines: ${k}`;
  if (granted(k) && !granted(n)) return `keepip grants the Origin (${k}) where nginx refuses it (${n})`;
  if (k.startsWith('echo') && k !== n) return `keepip echoes an Origin nginx does not (${k}; nginx ${n})`;
  if (k === '*' && kipCredentials && !(n === '*' && ngxCredentials))
    return 'keepip sends Allow-Origin * with Allow-Credentials true where nginx does not';
  if (k === 'backend' && n !== 'backend')
    return "keepip lets the backend's own Access-Control-Allow-Origin through where nginx replaces it";
  if (kip.backend && !ngx.backend && probe.method !== 'GET' && probe.method !== 'POST')
    return 'the preflight reached the backend where nginx answers it itself';
  if (kipCredentials && !ngxCredentials && granted(k))
    return 'keepip allows credentials where nginx does not';
  return null;
}

/** What nginx did with a request, for the check that a run is not vacuous. */
function kindOf(probe: Probe, o: Outcome): string {
  const cors = corsOf(o);
  const kind = cors.startsWith('echo') ? 'echo' : cors;
  if (o.status === 204) return `204 ${kind}`;
  return probe.backendCors && granted(cors) ? `${kind} replacing the backend's` : kind;
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  if (a.status !== b.status || a.backend !== b.backend) return false;
  return COMPARED.every(
    (name) => (a.headers.get(name) ?? []).join('\n') === (b.headers.get(name) ?? []).join('\n'),
  );
}

/**
 * The verdict on one pair of answers: null (the same, or an ALLOWED difference, recorded in `met`), or
 * the difference, `FINDING:` first when keepip is less safe.
 */
function judge(c: Case, probe: Probe, ngx: Outcome, kip: Outcome, met: Set<string>): string | null {
  if (ngx.status === 0 || kip.status === 0) {
    return `${describeProbe(probe)}: no answer (nginx ${describeOutcome(ngx)}, keepip ${describeOutcome(kip)})`;
  }
  met.add(`nginx: ${kindOf(probe, ngx)}`);
  if (sameOutcome(ngx, kip)) return null;
  const cfg = ingressNginxCors(c);
  const allowed = ALLOWED.find((entry) => entry.applies(cfg, probe, ngx, kip, c));
  if (allowed !== undefined) {
    met.add(allowed.name);
    return null;
  }
  const finding = findingOf(probe, ngx, kip);
  const label = finding === null ? 'difference' : `FINDING: ${finding}`;
  return `${label}\n    ${describeProbe(probe)}\n    nginx  ${describeOutcome(ngx)}\n    keepip ${describeOutcome(kip)}`;
}

// ---------------------------------------------------------------------------------------------
// The Origins sent for a case.

/** An allowed entry made concrete: its `*.` label a real one. */
function concrete(entry: string): string {
  return entry.replace('*', 'a1');
}

/** Hostile variants of an allowed Origin. */
function variantsOf(entry: string): string[] {
  const base = concrete(entry);
  const [scheme, rest] = base.split('://') as [string, string];
  const swapped = `${scheme === 'https' ? 'http' : 'https'}://${rest}`;
  const variants = [
    base,
    base.toUpperCase(),
    swapped,
    /:\d+$/.test(rest) ? base.replace(/:\d+$/, '') : `${base}:443`,
    `${base}:8443`,
    `${base}:`,
    `${base}.`,
    `x${base}`,
    `${scheme}://x${rest}`,
    `${scheme}://evil-${rest}`,
    `${base}.evil.test`,
    `${base}@evil.test`,
    `${scheme}://evil.test@${rest}`,
    `${base}/path`,
    `https://evil.test/${base}`,
  ];
  if (entry.includes('*')) {
    variants.push(entry, entry.replace('*.', ''), entry.replace('*', 'a.b'), entry.replace('*', 'a_b'));
    variants.push(entry.replace('*', 'a-b'), entry.replace('*', ''), entry.replace('*', '\xc3\xa9'));
  }
  return variants;
}

/** Origins sent to every case. */
const FIXED_ORIGINS = ['null', '', 'https://evil.test', 'https://EXAMPLE.com', 'https://\xc3\xa9xample.com'];

/** The probes for `c`: each Origin as a preflight and a GET, a few more methods for the first ones. */
function probesFor(c: Case, extra: readonly string[] = []): Probe[] {
  const cfg = ingressNginxCors(c);
  const entries = cfg.origins.filter((o) => o !== '*' && o !== 'null');
  const origins = [...new Set([...entries.flatMap(variantsOf), ...FIXED_ORIGINS, ...extra])];
  const probes: Probe[] = [];
  origins.forEach((origin, i) => {
    probes.push({ method: 'PREFLIGHT', origins: [origin], backendCors: i % 2 === 0 });
    probes.push({ method: 'GET', origins: [origin], backendCors: i % 2 === 1 });
  });
  const first = entries[0] === undefined ? 'https://example.com' : concrete(entries[0]);
  for (const backendCors of [false, true]) {
    probes.push({ method: 'POST', origins: [first], backendCors });
    probes.push({ method: 'OPTIONS', origins: [first], backendCors });
    probes.push({ method: 'GET', origins: [], backendCors });
    probes.push({ method: 'OPTIONS', origins: [], backendCors });
    probes.push({ method: 'PREFLIGHT', origins: [first, 'https://evil.test'], backendCors });
    probes.push({ method: 'GET', origins: ['https://evil.test', first], backendCors });
  }
  return probes;
}

// ---------------------------------------------------------------------------------------------
// Generated cases.

function maybe<T>(...values: T[]): fc.Arbitrary<T | undefined> {
  return fc.constantFrom<T | undefined>(undefined, ...values);
}

/** One cors-allow-origin entry: a scheme, maybe `*.`, a host, maybe a port; or `null`. */
const entryArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 1, arbitrary: fc.constant('null') },
  {
    weight: 6,
    arbitrary: fc
      .record({
        scheme: fc.constantFrom('https', 'http', 'myproto'),
        wild: fc.boolean(),
        host: fc.constantFrom('example.com', 'a.example.com', 'ex-ample.org', 'x1.test'),
        port: fc.constantFrom('', '', ':8443', ':443', ':80'),
      })
      .map(({ scheme, wild, host, port }) => `${scheme}://${wild ? '*.' : ''}${host}${port}`),
  },
);

const originArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 1, arbitrary: maybe('*', '') },
  {
    weight: 5,
    arbitrary: fc
      .tuple(fc.uniqueArray(entryArb, { minLength: 1, maxLength: 3 }), fc.constantFrom(',', ', '))
      .map(([entries, separator]) => entries.join(separator)),
  },
);

const caseArb: fc.Arbitrary<Case> = fc.record({
  origin: originArb,
  methods: maybe('GET, POST', 'PUT,DELETE,OPTIONS', 'get', 'GET;POST', ''),
  headers: maybe('X-Custom, Content-Type', 'X-Requested-With', 'X-A:1', ''),
  credentials: maybe('true', 'false', 'False', '0', 'yes'),
  expose: maybe('X-Total, X-Page', '*', 'X-A;', ''),
  maxAge: maybe('600', '0', '-1', '+5', 'abc', '05'),
});

function describeCase(c: Case): string {
  return `annotations ${JSON.stringify(annotationsOf(c))}\ningress-nginx: ${JSON.stringify(ingressNginxCors(c))}`;
}

// ---------------------------------------------------------------------------------------------
// The bench.

type Bench = Differential<Probe, Outcome> & { met: Set<string> };

async function configure(bench: Bench, cases: readonly Case[], hosts: readonly string[]): Promise<void> {
  const backend = bench.backends.get('b')!;
  await bench.configure(
    (port) => [httpLevel(port), ...cases.map((c, i) => nginxServer(c, hosts[i]!, port, backend))],
    casesTopology({
      cases,
      hosts,
      backends: bench.backends,
      ingressesOf: (c) => [
        { annotations: annotationsOf(c), paths: [{ path: '/', service: 'svc-b', port: 80 }] },
      ],
    }),
  );
}

/** The differences on `host` (where `c` is served), probes sent to both, 16 at a time. */
async function differences(bench: Bench, c: Case, host: string, probes = probesFor(c)): Promise<string[]> {
  const verdicts = await mapLimited(probes, 16, async (probe) => {
    const [ngx, kip] = await Promise.all([bench.askNginx(probe, host), bench.askKeepip(probe, host)]);
    return judge(c, probe, ngx, kip, bench.met);
  });
  return verdicts.filter((v) => v !== null).sort();
}

function assertNoDifference(c: Case, diff: readonly string[]): void {
  const shown = diff.length > 12 ? [...diff.slice(0, 12), `… and ${diff.length - 12} more`] : diff;
  assert.equal(diff.length, 0, `${describeCase(c)}\n${shown.join('\n')}`);
}

async function caseDifferences(bench: Bench, c: Case, extra: readonly string[] = []): Promise<string[]> {
  await configure(bench, [c], [SINGLE_HOST]);
  return differences(bench, c, SINGLE_HOST, probesFor(c, extra));
}

describe('CORS: keepip answers as ingress-nginx (real nginx 1.22) does', () => {
  let bench: Bench;

  before(async () => {
    const differential = await startDifferential<Probe, Outcome>({
      ids: ['b'],
      handler: backendHandler,
      send,
      genProbe: { method: 'GET', origins: [], backendCors: false },
    });
    bench = Object.assign(differential, { met: new Set<string>() });
  });

  after(async () => {
    await bench?.close();
  });

  it('a list with a wildcard, ports and null: hostile Origins get what nginx gives them', async () => {
    const c: Case = {
      origin: 'https://example.com, https://*.example.com, http://a.example.com:8443, null',
      expose: 'X-Total',
      maxAge: '600',
    };
    const long = `https://${'a'.repeat(4000)}.example.com`;
    const extra = [long, `${long}x`, 'https://example.com\t', 'https://example.com, https://evil.test'];
    extra.push('https://example.com\x01', 'https://example.com\x7f', 'https://example.com\xff');
    assertNoDifference(c, await caseDifferences(bench, c, extra));
    // The hostile Origins met what the ALLOWED table excuses: the run is not vacuous.
    assert.ok(bench.met.has('origin matched whole'), [...bench.met].join(', '));
    assert.ok(bench.met.has('several Origin lines'), [...bench.met].join(', '));
    assert.ok(bench.met.has('Origin with white space around it'), [...bench.met].join(', '));
  });

  it('`*`, credentials on and off: every request, the backend’s own headers replaced', async () => {
    for (const credentials of ['true', 'false']) {
      const c: Case = { origin: '*', credentials, methods: 'GET, POST', headers: 'X-Custom' };
      assertNoDifference(c, await caseDifferences(bench, c, ['https://a.example.com']));
    }
  });

  it('cors-* strings as ingress-nginx reads them: lines trimmed, empty is its default', async () => {
    const cases: Case[] = [
      { origin: 'https://a.example.com', headers: '', methods: ' GET, POST ', expose: ' X-Total ' },
      { origin: 'https://a.example.com', headers: '  ', methods: '' },
      // Go's white space (U+3000, U+0085) and U+FEFF are no characters the validators take: refused.
      {
        origin: '\u3000https://a.example.com,https://b.example.com\u0085',
        expose: '\ufeffX-Total',
        credentials: '\u3000false',
      },
      {
        origin: 'https://a.example.com',
        methods: '\u0085GET',
        headers: '\ufeffX-Custom',
        expose: 'X-A\u3000',
      },
    ];
    for (const c of cases) assertNoDifference(c, await caseDifferences(bench, c, ['https://a.example.com']));
  });

  it('unreadable cors-allow-methods / -headers allow no origin, an unreadable cors-allow-credentials is false (fail closed; ingress-nginx takes its wider defaults)', async () => {
    const cases: Case[] = [
      { origin: 'https://a.example.com', methods: 'GET;POST' },
      { origin: 'https://a.example.com', headers: 'X-A;X-B' },
      { origin: 'https://a.example.com', credentials: 'yes' },
    ];
    for (const c of cases) assertNoDifference(c, await caseDifferences(bench, c, ['https://a.example.com']));
    assert.ok(bench.met.has('unreadable methods or headers allow no origin'), [...bench.met].join(', '));
    assert.ok(bench.met.has('unreadable credentials are false'), [...bench.met].join(', '));
  });

  it('regex metacharacters in cors-allow-origin: `.` is a dot; `+`, `?` make ingress-nginx refuse the value', async () => {
    const c: Case = { origin: 'https://a.example.com,https://b+c.example.com,https://d?.example.com' };
    const extra = [
      'https://aXexample.com',
      'https://a.exampleXcom',
      'https://bbc.example.com',
      'https://b+c.example.com',
    ];
    assertNoDifference(c, await caseDifferences(bench, c, extra));
    assert.ok(bench.met.has('whole value refused'), [...bench.met].join(', '));
  });

  it('generated cors-* annotations and Origins: the same answers', async () => {
    await checkGenerated({
      arb: caseArb,
      runs: RUNS,
      seedVariable: 'CORS_SEED',
      defaultSeed: 20260611,
      configure: (cases, hosts) => configure(bench, cases, hosts),
      differences: (c, host) => differences(bench, c, host),
      assertAlone: async (c) => assertNoDifference(c, await caseDifferences(bench, c)),
      describe: describeCase,
      shrinkTimeLimitMs: 3_000,
    });
    // nginx gave every kind of answer somewhere in the batch: the run is not vacuous.
    for (const kind of [
      'none',
      'backend',
      '204 echo',
      '204 *',
      "echo replacing the backend's",
      "* replacing the backend's",
    ])
      assert.ok(bench.met.has(`nginx: ${kind}`), [...bench.met].join(', '));
  });
});
