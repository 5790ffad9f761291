// ConfigMap keys and annotations that take a SCALAR (a time, a size, a count, a status, a word), keepip
// against REAL nginx 1.22 fed the lines ingress-nginx renders for them (mirror
// /work/.mirror/kubernetes+ingress-nginx/repo, HEAD dbb11b92d: rootfs/etc/nginx/template/nginx.tmpl,
// internal/ingress/controller/config/config.go, template/configmap.go, annotations/*).
//
// How ingress-nginx turns a value into a line (transcribed below, the only model of ingress-nginx here):
// - the controller ConfigMap is decoded by mapstructure v1.5.0 WeaklyTypedInput (configmap.go:454-468):
//   an `int` field is strconv.ParseInt(s, 0, 64) ("" is 0; `010` is 8, `0x10` 16, `1_0` 10), a `string`
//   field is taken as written, a bool is ParseBool; a value that fails keeps the field's default
//   (config.go:751+ NewDefault). proxy-stream-responses is strconv.Atoi (configmap.go:356-364),
//   worker-processes "auto" is the CPU count (configmap.go:378-385), max-worker-connections 0 is
//   3/4 of the open-file limit (controller/nginx.go:550-554);
// - an annotation goes through parser.checkAnnotation (validators.go:207-251: "" is never validated;
//   a refused value is a ValidationError) then GetIntAnnotation (strconv.Atoi: `010` is 10) or
//   GetStringAnnotation (normalizeString: each line trimmed); on an error the parser keeps its default
//   (proxy/main.go Parse: the ConfigMap's), except limit-rps/-rpm/-connections, whose ValidationError keeps
//   the Ingress out (ratelimit/main.go:201-212);
// - the template writes strings raw (`worker_shutdown_timeout {{ … }} ;`, `keepalive_time {{ … }};`,
//   `client_header_buffer_size {{ … }};`…), ints with their unit (`keepalive_timeout {{ }}s;`,
//   `proxy_read_timeout {{ }}s;`), client_max_body_size / a location's client_body_buffer_size only
//   when isValidByteSize accepts the trimmed value (template.go:1014-1038; else no line: nginx's own
//   1m / the http level's), limit_req/limit_conn/limit_rate only for values above 0 (template.go:820-910,
//   burst = rps × limit-burst-multiplier), http2_max_requests only above 0, upstream keepalive lines
//   only with upstream-keepalive-connections above 0.
// nginx decides the rest: every distinct rendered line goes through `nginx -t` (one config holds many
// units, one `server`/`location`/`upstream`/stream `server` each, http-level lines in a server of their
// own; a refused line is named by its line number, or, for an error nginx reports at the end of the
// http block or when it cannot map memory, found by halving), and nginx's warnings
// (`http2_max_requests` is obsolete: ignored) are read too. Lines of one nginx reader (the msec, sec,
// size, offset, num slots; `Spec.family`) share their verdict on an argument, checked on a sample of
// each directive: each refused line is an nginx -t run of its own, and this keeps them near 180. What an accepted line means (ms,
// bytes, counts) is nginx's ngx_parse_time / ngx_parse_size / ngx_parse_offset / ngx_atoi (release-1.22.1
// src/core/ngx_parse.c, transcribed): that model is checked against `nginx -t` on every line (accept and
// refuse must agree) and, for times, against a running nginx's own reading (`expires <time>` answers
// `Cache-Control: max-age=<seconds>`). One running nginx and in-process keepip gateways then check a
// value of the keys whose effect is cheap to observe end to end (413, 408/closed, 504, Connection: close,
// GOAWAY, gzip, the backend's connections): real requests, the same answer expected from both.
//
// Verdicts (keepip: the real loader, topologyOf, its settings/location models and issues):
//   nginx refuses the configuration (ingress-nginx keeps the previous one): keepip reports the key and
//     keeps the default, or denies = equal; keepip applies a LONGER deadline / LARGER limit than the
//     default = FINDING (applies-what-nginx-refuses); anything else = a difference the ALLOWED/COMPAT table
//     must explain;
//   ingress-nginx denies (the Ingress is not served): keepip denies = equal, else FINDING;
//   nginx applies X: keepip applies X = equal; keepip applies more than X (longer, larger, unlimited) =
//     FINDING (more-open-than-nginx), even with a warning; less = a difference ALLOWED/COMPAT explain.
// Every ALLOWED row (acceptable: documented, or decided by configmap-validation-ingress-nginx's own
// ALLOWED table) and COMPAT row (a compatibility difference reported, never more open) names a fixed
// value whose observation (nginx, keepip) it states, so the tables cannot rot; an unexplained
// difference fails.
//
// Found here, OPEN (session 28's closing note): keepip more open than nginx. Each FINDING_GROUP and E2E
// case marked FINDING is pinned as still seen (as the ALLOWED rows are), so fixing one fails its pin:
// then turn it back into the check that nothing is more open (count 0; keepip answers as nginx).
// - time-syntax: worker-shutdown-timeout, proxy-stream-timeout, proxy-stream-next-upstream-timeout "1y",
//   "1M", "1h 30m", "30m1h" (ssl-session-timeout "1h 30m", "30m1h"): nginx refuses the configuration,
//   keepip applies a year, a month, 90 minutes, silently (upstream-keepalive-time too: COMPAT, it has
//   no client side);
// - backend-deadline-zero: proxy-connect/read/send-timeout "0": nginx 504 at once, keepip no deadline
//   (end to end: a backend that never answers);
// - size-annotation-whitespace: annotation proxy-body-size "1 m" (nginx 1m, keepip the ConfigMap's 2m:
//   end to end, 1.5 MB is 413 in nginx, 200 in keepip) and "445M\t" (refused by ingress-nginx, taken by
//   keepip), client-body-buffer-size the same;
// - zero-bytes-no-limit: proxy-body-size "0b" (ConfigMap or annotation): no line in ingress-nginx
//   (nginx's 1m), no limit in keepip (end to end: 1.5 MB is 413 in nginx, 200 in keepip);
// - keep-alive-requests-zero: "0" keeps no connection alive in nginx, 1000 requests in keepip;
// - http2-max-requests-obsolete: nginx ignores http2_max_requests (GOAWAY after keepalive_requests),
//   keepip serves http2-max-requests streams (end to end: 2 streams, 5 streams);
// - header-buffers-below-1k: large-client-header-buffers "4 512": 4 8k in keepip.
// The JS model of configmap-validation-ingress-nginx.test.ts against nginx: MODEL_DISAGREEMENTS.
// Not covered: brotli-level / brotli-min-length (this nginx has no brotli module), ssl-ciphers /
// ssl-protocols / ssl-ecdh-curve (lists, checked by tls-params-differential-nginx), hsts-max-age (a
// header value nginx does not read), otel-* and upstream-hash-by-subset-size (Lua, not nginx lines),
// http-redirect-code and the redirect codes (Go keeps them in range before rendering), auth-keepalive*
// (keepip accepts and ignores them: annotation-validation ALLOWED).
//
// Claims checked (docs/ingress-nginx-compat.md, ConfigMap and annotation rows):
//   proxy-body-size "`^\d+[bkmg]?$`, case-insensitive | request body limit (413); `0` means no limit";
//   proxy-*-timeout "whole seconds ... `"30s"` is not accepted (ingress-nginx reads an integer)";
//   client-header-timeout / client-body-timeout "whole seconds (1–86400) ... `0` is refused with a warning";
//   keep-alive "whole seconds (0–86400) ... `0` disables keep-alive";
//   keep-alive-requests, http2-max-requests "1000, 0 (keep-alive-requests applies) | requests per
//   connection: on HTTP/1.1 the answer to the last one says `connection: close` ...; on HTTP/2 streams,
//   then GOAWAY";
//   worker-shutdown-timeout "An nginx time; anything else is 240s, with a warning";
//   proxy-stream-timeout "An nginx time above 0; anything else is 600s, with a warning";
//   upstream-keepalive-time "keepalive_time (an nginx time ...)";
//   large-client-header-buffers "4 8k", client-header-buffer-size "A size from 1k to 1m; anything else
//   keeps 1k, with a warning"; client-body-buffer-size "digits and an optional `k` or `m`";
//   gzip-level "level 1-9 ... A bad level or length keeps the default with a warning";
//   limit-req-status-code, limit-conn-status-code "the status of a refused request (400-599)";
//   limit-rps/-rpm/-connections "A value that is not a whole number (`1.5`) denies the Ingress's locations";
//   ssl-session-timeout "(an nginx time, 1s to 7d). A bad value keeps 10m with a warning";
//   max-worker-connections "`0` is no limit (nginx would take max-worker-open-files)".
//
// SCALARS_SEED=<n>|random and SCALARS_RUNS=<n> change the generated values (defaults: a fixed seed, 6).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type {
  ConfigIssue,
  GatewaySettings,
  LocationModel,
  Topology,
  VirtualHostModel,
} from '../../src/config/model.ts';
import { BACKEND_DEADLINE_AT_ONCE_MS } from '../../src/k8s/annotations.ts';
import http from '../../src/node-http.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  opaqueSecret,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type Blackhole, startBlackhole } from '../helpers/blackhole.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { count, type Findings, note, show } from '../helpers/findings.ts';
import { atoi, GO, int, normalizeString, options, regex } from '../helpers/go-annotation-validators.ts';
import {
  BOOL_VALUES,
  INT_VALUES as CONFIGMAP_INT_VALUES,
  goBool,
  goParseInt0,
} from '../helpers/go-configmap.ts';
import { goTrimSpace } from '../helpers/go-net.ts';
import { framedResponses, listenTracked, openRaw } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { requireBinary } from '../helpers/process.ts';

const chosenSeed = process.env.SCALARS_SEED;
const SEED = chosenSeed === 'random' ? Date.now() % 2 ** 31 : Number(chosenSeed ?? 20261207);
const RUNS = Number(process.env.SCALARS_RUNS ?? 6);
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const PREFIX = 'nginx.ingress.kubernetes.io/';

// ---------------------------------------------------------------------------------------------
// Go: strings.TrimSpace (go-net's goTrimSpace), mapstructure's strconv.ParseInt(s, 0, 64) and
// ParseBool (go-configmap's goParseInt0, goBool), strconv.Atoi, parser.normalizeString and the annotation
// validators (validators.go:58 SizeRegex with ValidateRegex's removeSpace and :84 MaliciousRegex, :143
// ValidateOptions, :167 ValidateInt) of go-annotation-validators (test/helpers/; go-reference holds them
// against Go's own answers); the template's isValidByteSize (template.go:1014-1038) transcribed here.

/** go-configmap's goBool (mapstructure's decodeBool: ParseBool, "" false), null where the default stays. */
function decodeBool(value: string): boolean | null {
  const b = goBool(value, true);
  return b === goBool(value, false) ? b : null;
}

const sizeValidator = regex(GO.SizeRegex, true);
/** template.go:1014-1038. */
function isValidByteSize(value: string, isOffset: boolean): boolean {
  const s = goTrimSpace(value);
  return s !== '' && (isOffset ? /^\d+[kKmMgG]?$/ : /^\d+[kKmM]?$/).test(s);
}

/** How ingress-nginx reads one value: the token it writes, its default, no line, or a refused Ingress. */
type GoRead =
  | { kind: 'token'; token: string }
  | { kind: 'default' }
  | { kind: 'unset' }
  | { kind: 'denied'; why: string };

const token = (t: string | bigint): GoRead => ({ kind: 'token', token: String(t) });
const DEFAULT: GoRead = { kind: 'default' };
const UNSET: GoRead = { kind: 'unset' };

/** A ConfigMap `int` field (mapstructure). */
const cmInt = (value: string): GoRead => {
  const n = goParseInt0(value);
  return n === null ? DEFAULT : token(n);
};
/** A ConfigMap `string` field (mapstructure): as written. */
const cmString = (value: string): GoRead => token(value);
/** An annotation read by GetIntAnnotation (ValidateInt, then Atoi); `refused` is its ValidationError. */
function annInt(value: string, refused: GoRead = DEFAULT): GoRead {
  if (value !== '' && !int(value)) return refused;
  const n = atoi(value);
  return n === null ? DEFAULT : token(n);
}

// ---------------------------------------------------------------------------------------------
// nginx 1.22's readers of an accepted argument (release-1.22.1 src/core/ngx_parse.c, ngx_string.c),
// transcribed for the NUMBERS only: whether a line is accepted is nginx -t's answer, and the self-check
// test holds this model to it. BigInt: nginx computes in 64 bits.

const NGX_MAX = 2n ** 63n - 1n;

function ngxAtoi(text: string): bigint | null {
  if (!/^[0-9]+$/.test(text)) return null;
  const n = BigInt(text);
  return n > NGX_MAX ? null : n;
}

/** ngx_parse_time: y M w d h m s ms, in that order, each once; a bare number is seconds. */
function ngxParseTime(text: string, isSec: boolean): bigint | null {
  const steps = ['start', 'y', 'M', 'w', 'd', 'h', 'm', 's', 'ms', 'last'];
  const scales: Record<string, bigint> = {
    y: 31_536_000n,
    M: 2_592_000n,
    w: 604_800n,
    d: 86_400n,
    h: 3_600n,
    m: 60n,
    s: 1n,
    ms: 1n,
    last: 1n,
  };
  let step = isSec ? 0 : 2;
  let value = 0n;
  let total = 0n;
  let valid = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c >= '0' && c <= '9') {
      value = value * 10n + BigInt(c);
      if (value > NGX_MAX) return null;
      valid = true;
      i++;
      continue;
    }
    i++;
    let unit: string;
    if (c === 'm' && text[i] === 's') {
      if (isSec || step >= 8) return null;
      i++;
      unit = 'ms';
    } else if (c === ' ') {
      if (step >= 7) return null;
      unit = 'last';
    } else if ('yMwdhms'.includes(c)) {
      unit = c;
      const at = steps.indexOf(unit);
      if (unit === 'y' ? step > 0 : step >= at) return null;
    } else return null;
    step = steps.indexOf(unit);
    let scale = scales[unit]!;
    let max = NGX_MAX / scale;
    if (unit !== 'ms' && !isSec) {
      scale *= 1000n;
      max /= 1000n;
    }
    if (value > max) return null;
    value *= scale;
    if (total > NGX_MAX - value) return null;
    total += value;
    value = 0n;
    while (text[i] === ' ') i++;
  }
  if (!valid) return null;
  if (!isSec) {
    if (value > NGX_MAX / 1000n) return null;
    value *= 1000n;
  }
  return total > NGX_MAX - value ? null : total + value;
}

/** ngx_parse_size (k, m) and ngx_parse_offset (k, m, g). */
function ngxParseSize(text: string, units: 'km' | 'kmg'): bigint | null {
  if (text === '') return null;
  // nginx compares bytes: K or k, M or m (G or g); not the Kelvin sign, which toLowerCase makes a k.
  const last = text[text.length - 1]!;
  const unit = /^[KkMmGg]$/.test(last) ? last.toLowerCase() : '';
  const scale = { k: 1024n, m: 1024n ** 2n, g: 1024n ** 3n }[unit];
  const digits = scale !== undefined && units.includes(unit) ? text.slice(0, -1) : text;
  const s = digits === text ? 1n : scale!;
  const n = ngxAtoi(digits);
  if (n === null || n > NGX_MAX / s) return null;
  return n * s;
}

/** The words nginx makes of an argument list (its tokenizer: spaces, tabs, line breaks). */
const words = (text: string) => text.split(/[ \t\r\n]+/).filter((w) => w !== '');

/** A value nginx or keepip applies: a number (ms, bytes, a count…), or a pair (count, size). */
type Value = number | readonly [number, number];
const NO_LIMIT = Number.POSITIVE_INFINITY;
/** What nginx -t cannot allocate on any machine this runs on (a shared zone, a connection cache). */
const MEMORY = 2 ** 40;
const num = (n: bigint | null): number | null => (n === null ? null : Number(n));

/** One argument read by `parse`, or null when the line has another number of arguments. */
function one<T>(text: string, parse: (w: string) => T | null): T | null {
  const w = words(text);
  return w.length === 1 ? parse(w[0]!) : null;
}
const msec = (t: string) => num(one(t, (w) => ngxParseTime(w, false)));
const sec = (t: string) => {
  const s = one(t, (w) => ngxParseTime(w, true));
  return s === null ? null : Number(s) * 1000;
};
const size = (t: string) => num(one(t, (w) => ngxParseSize(w, 'km')));
const offset = (t: string) => num(one(t, (w) => ngxParseSize(w, 'kmg')));
const atoiArg = (t: string) => num(one(t, ngxAtoi));
const bounded = (min: number, max: number) => (t: string) => {
  const n = atoiArg(t);
  return n !== null && n >= min && n <= max ? n : null;
};

// ---------------------------------------------------------------------------------------------
// The keys. Each: how Go reads a value, the line(s) ingress-nginx writes for a token, what nginx
// makes of an accepted token, and what keepip applies.

/** Where a rendered line goes (an `http`-level line is given the unit's own server: the same parser). */
type Ctx = 'main' | 'events' | 'http' | 'zone' | 'server' | 'location' | 'upstream' | 'stream' | 'udp';
interface Part {
  ctx: Ctx;
  text: string;
}

interface KeepipView {
  settings: GatewaySettings;
  loc: LocationModel | undefined;
  host: VirtualHostModel | undefined;
  issues: readonly ConfigIssue[];
}

interface KeepipRead {
  v: Value;
  /** A warning or error names the key. */
  reported: boolean;
  /** The locations answer 503 (or the Ingress is not served). */
  denied: boolean;
}

interface Spec {
  key: string;
  source: 'configmap' | 'annotation';
  /** The template line(s) and the Go that reads the value. */
  where: string;
  values: () => readonly string[];
  /** Other keys the key needs to be read or written at all (use-gzip for gzip-level…). */
  context?: Record<string, string>;
  go(value: string): GoRead;
  /** The token ingress-nginx writes when Go keeps its default. */
  defaultToken: string;
  render(token: string): Part[];
  /** What nginx applies for an accepted token (null: the model says nginx refuses it). */
  meaning(token: string, ignored: boolean): Value | null;
  /** What nginx applies without a line. */
  unset?: Value;
  keepip(view: KeepipView): Value;
  /** 'larger': a larger value holds more (a longer deadline, a larger limit); 'neutral': no side. */
  open: 'larger' | 'neutral';
  /** Read alone: keepip (or Go) reads it together with another key of the batch. */
  alone?: true;
  /** nginx -t allocates what the line asks for (a connection cache, a shared zone): a config of its own. */
  heavy?: (token: string) => boolean;
  /** The nginx function that reads the (one) argument: lines of one family share verdicts. */
  family?: 'msec' | 'sec' | 'size' | 'offset' | 'num' | 'status';
}

const line =
  (ctx: Ctx, directive: string, after = ';') =>
  (t: string): Part[] => [{ ctx, text: `${directive} ${t}${after}` }];
const withUnit =
  (ctx: Ctx, directive: string, unit: string) =>
  (t: string): Part[] => [{ ctx, text: `${directive} ${t}${unit};` }];
/** A Go int written with a unit: the number nginx reads, its unit fixed. */
const secondsMeaning = (t: string) => msec(`${t}s`);

const s = (v: KeepipView) => v.settings;

// Value lists: those of the two tests this one checks the nginx side of (configmap-validation's
// INT_VALUES and proxy-body-size list, annotation-validation's proxy-connect-timeout and proxy-body-size
// values), then values of each form, then generated ones.
const INT_VALUES = [
  // test/k8s/configmap-validation-ingress-nginx.test.ts's (test/helpers/go-configmap.ts)
  ...CONFIGMAP_INT_VALUES,
  // test/k8s/annotation-validation-ingress-nginx.test.ts proxy-connect-timeout
  '5',
  '-1',
  '1.5',
  // Go's other literal forms, a large one nginx still takes, the int64 edge
  '0o17',
  '0b11',
  '0X1F',
  '1000000',
  '9223372036854775807',
  '-0',
];
const TIME_VALUES = [
  '240s',
  '5s',
  '0',
  '5',
  '1m',
  '1h',
  '1d',
  '1w',
  '1M',
  '1y',
  '500ms',
  '1h30m',
  '1h 30m',
  '30m1h',
  '5s ',
  ' 5s',
  '2m\t',
  '5S',
  '-5s',
  '1.5s',
  '',
  '5s;',
  '5s\u00a0',
  '99999999999999999999',
  '9223372036854775807ms',
  '106751991167d',
];
const SIZE_VALUES = [
  // configmap-validation's proxy-body-size list
  '8m',
  '8M',
  '1g',
  '0',
  '100',
  '08m',
  ' 8m',
  '8m ',
  '8b',
  '',
  '8 m',
  '+8m',
  '-1',
  '1.5m',
  '8mb',
  '99999999999999g',
  // annotation-validation's proxy-body-size list
  '1 m',
  ' 0',
  '5g ',
  '1t',
  // a tab around it (ingress-nginx's validator removes spaces only); no bytes, with a unit
  '\t1k',
  '0b',
  // the Kelvin sign: a k to Go's (?i), not to the template's isValidByteSize nor to nginx
  '8\u212a',
  // sizes of each unit, nginx's edges
  '1K',
  '16k',
  '1024',
  '2G',
  '8589934591k',
  '9223372036854775807',
];
const BUFFER_VALUES = [
  '4 8k',
  '2 1k',
  '4 8K',
  '8 16k',
  '0 8k',
  '4 0',
  '4',
  '4 8k 1',
  '4  8k',
  ' 4 8k ',
  '4\t8k',
  '-4 8k',
  '4 -8k',
  '4 8m',
  '65 8k',
  '4 100',
  '4 512',
  '4 1024b',
  '',
  '1 1m',
];
/** Whole numbers around the bounds nginx checks (gzip_comp_level 1-9, limit_*_status 400-599). */
const boundedValues = (low: number, high: number) => () => [
  String(low),
  String(high),
  String(low - 1),
  String(high + 1),
  `0${low.toString(8)}`,
  `0${high.toString(8)}`,
  `+${high}`,
  `0x${high.toString(16)}`,
  `${high}`.replace(/^(.)/, '$1_'),
  `-${high}`,
  '',
  ` ${high}`,
  `${high}s`,
  '08',
];

/** Generated values (fixed seed): signs, spaces, Go literal forms, units, overflow. */
function generated<T>(arb: fc.Arbitrary<T>, salt: number): T[] {
  return fc.sample(arb, { seed: SEED + salt, numRuns: RUNS });
}
const pad = fc.constantFrom('', '', '', ' ', '\t');
const genInt = fc
  .tuple(
    pad,
    fc.constantFrom('', '', '', '+', '-'),
    fc.oneof(
      { arbitrary: fc.nat({ max: 700 }).map(String), weight: 4 },
      { arbitrary: fc.nat({ max: 99 }).map((n) => `0${n}`), weight: 2 },
      { arbitrary: fc.nat({ max: 255 }).map((n) => `0x${n.toString(16)}`), weight: 1 },
      { arbitrary: fc.nat({ max: 99 }).map((n) => `1_${n}`), weight: 1 },
      { arbitrary: fc.constantFrom('99999999999999', '18446744073709551616'), weight: 1 },
    ),
    fc.oneof({ arbitrary: fc.constant(''), weight: 6 }, fc.constantFrom('s', 'k', '.0')),
    pad,
  )
  .map((parts) => parts.join(''));
const timeUnit = fc.constantFrom('', 'ms', 's', 'm', 'h', 'd', 'w', 'M', 'y', 'S', 'H');
const genTime = fc
  .tuple(
    pad,
    fc.array(fc.tuple(fc.nat({ max: 90 }), timeUnit), { minLength: 1, maxLength: 3 }),
    fc.constantFrom('', ' '),
  )
  .map(([a, groups, sep]) => `${a}${groups.map(([n, u]) => `${n}${u}`).join(sep)}`);
const genSize = fc
  .tuple(
    pad,
    fc.constantFrom('', '', '', '+', '-'),
    fc.oneof(fc.nat({ max: 600 }), fc.constantFrom(0, 1, 8, 1024)),
    fc.constantFrom('', 'k', 'K', 'm', 'M', 'g', 'G', 'b', 'kb', ' k'),
    pad,
  )
  .map(([a, sign, n, u, b]) => `${a}${sign}${n}${u}${b}`);

const intValues = () => [...INT_VALUES, ...generated(genInt, 1)];
const timeValues = () => [...TIME_VALUES, ...generated(genTime, 2)];
/**
 * Go's white space around a size (isValidByteSize and normalizeString trim unicode.IsSpace: U+0085 and
 * U+3000, not U+FEFF; JavaScript's trim() misses U+0085 and takes U+FEFF). Not in SIZE_VALUES
 * (configmap-validation's list, whose nginxSize model MODEL_DISAGREEMENTS holds to nginx).
 */
const GO_SPACE_SIZES = ['\u30008m', '8m\u0085', '\ufeff8m'];
const sizeValues = () => [...SIZE_VALUES, ...GO_SPACE_SIZES, ...generated(genSize, 3)];
const bufferValues = () => [
  ...BUFFER_VALUES,
  ...generated(
    fc
      .tuple(fc.nat({ max: 70 }), fc.constantFrom(' ', '  ', '\t'), genSize)
      .map(([n, sp, z]) => `${n}${sp}${z}`),
    4,
  ).slice(0, 3),
];
const words_ = (list: string[]) => () => list;

/**
 * The size of a limit zone: ingress-nginx writes 5m (ratelimit/main.go defSharedSize); the size is not
 * what is checked, and nginx -t maps and lays out every zone of a configuration on every run.
 */
const ZONE_SIZE = '32k';
/** limit-rps / -rpm / -connections and the multiplier: the rate (or count) and the burst nginx applies. */
const LIMIT_RPS_CONTEXT = { 'limit-rps': '2' };

/** A ConfigMap int written as `<directive> <n><unit>;` (a deadline). */
function cmSeconds(
  key: string,
  ctx: Ctx,
  directive: string,
  defaultSeconds: number,
  read: (v: KeepipView) => number,
  where: string,
): Spec {
  return {
    key,
    source: 'configmap',
    where,
    values: intValues,
    go: cmInt,
    defaultToken: String(defaultSeconds),
    render: withUnit(ctx, directive, 's'),
    meaning: secondsMeaning,
    keepip: read,
    open: 'larger',
    family: 'msec',
  };
}

/** A ConfigMap int written as `<directive> <n>;`. */
function cmCount(
  key: string,
  ctx: Ctx,
  directive: string,
  defaultN: number,
  read: (v: KeepipView) => number,
  where: string,
  o: {
    meaning?: (t: string) => number | null;
    open?: 'larger' | 'neutral';
    family?: Spec['family'] | null;
  } = {},
): Spec {
  const family = o.family === undefined ? 'num' : o.family;
  return {
    ...(family === null ? {} : { family }),
    key,
    source: 'configmap',
    where,
    values: intValues,
    go: cmInt,
    defaultToken: String(defaultN),
    render: line(ctx, directive),
    meaning: o.meaning ?? atoiArg,
    keepip: read,
    open: o.open ?? 'larger',
  };
}

/** A ConfigMap string written raw as `<directive> <value>;` and read as a time. */
function cmTime(
  key: string,
  ctx: Ctx,
  directive: string,
  defaultToken: string,
  read: (v: KeepipView) => number,
  where: string,
  o: { after?: string; zero?: number; isSec?: boolean; context?: Record<string, string> } = {},
): Spec {
  const parse = o.isSec ? sec : msec;
  return {
    key,
    source: 'configmap',
    where,
    values: timeValues,
    go: cmString,
    defaultToken,
    render: line(ctx, directive, o.after),
    meaning: (t) => {
      const v = parse(t);
      return v === 0 && o.zero !== undefined ? o.zero : v;
    },
    keepip: read,
    open: 'larger',
    family: o.isSec ? 'sec' : 'msec',
    ...(o.context ? { context: o.context } : {}),
  };
}

/** An annotation int written as `<directive> <n>s;` (a location deadline). */
function annSeconds(key: string, directive: string, read: (l: LocationModel) => number, where: string): Spec {
  return {
    key,
    source: 'annotation',
    where,
    values: intValues,
    go: (v) => annInt(v),
    defaultToken: { 'proxy-connect-timeout': '5' }[key] ?? '60',
    render: withUnit('location', directive, 's'),
    meaning: secondsMeaning,
    keepip: (v) => read(v.loc!),
    open: 'larger',
    family: 'msec',
  };
}

/**
 * A ConfigMap bool (mapstructure: ParseBool, "" false, else the default) written `on`/`off`: a line
 * nginx always takes, so Go's reading is nginx's. `open`: the side that lets more through, as 1.
 */
function cmBool(
  key: string,
  ctx: Ctx,
  directive: string,
  goDefault: boolean,
  read: (v: KeepipView) => boolean,
  where: string,
  openWhen: boolean | null,
): Spec {
  const as = (on: boolean) => (openWhen === false ? Number(!on) : Number(on));
  return {
    key,
    source: 'configmap',
    where,
    values: () => BOOL_VALUES,
    go: (v) => {
      const b = decodeBool(v);
      return b === null ? DEFAULT : token(b ? 'on' : 'off');
    },
    defaultToken: goDefault ? 'on' : 'off',
    render: line(ctx, directive),
    meaning: (t) => one(t, (w) => (w === 'on' ? as(true) : w === 'off' ? as(false) : null)),
    keepip: (v) => as(read(v)),
    open: openWhen === null ? 'neutral' : 'larger',
  };
}

/** 0 is no limit (nginx: proxy_next_upstream_tries / _timeout 0, limit_rate 0…). */
const zeroIsNoLimit = (n: number | null) => (n === 0 ? NO_LIMIT : n);
/**
 * keepip's backend deadline "at once" (Node's shortest timer, 1 ms) is nginx's 0, which expires at
 * once (504: checked end to end below). A 0 in keepip's settings would be none (socket.setTimeout(0)
 * turns the timer off): session 28's FINDING backend-deadline-zero.
 */
const keepipDeadline = (ms: number) => (ms === BACKEND_DEADLINE_AT_ONCE_MS ? 0 : ms === 0 ? NO_LIMIT : ms);
const noLimitIfZero = (n: number | undefined) => (n === undefined || n === 0 ? NO_LIMIT : n);

const SPECS: Spec[] = [
  // ---- booleans written on/off
  // keepip reads these two together (either passes underscores): never batched.
  {
    ...cmBool(
      'enable-underscores-in-headers',
      'http',
      'underscores_in_headers',
      false,
      (v) => s(v).server?.underscoresInHeaders ?? false,
      'nginx.tmpl:302 `underscores_in_headers {{ on|off }};`, config.go:210 bool',
      true,
    ),
    alone: true,
  },
  {
    ...cmBool(
      'ignore-invalid-headers',
      'http',
      'ignore_invalid_headers',
      true,
      // keepip passes the names nginx would ignore (underscores) when it is false.
      (v) => !(s(v).server?.underscoresInHeaders ?? false),
      'nginx.tmpl:303 `ignore_invalid_headers {{ on|off }};`, config.go:215 bool',
      false,
    ),
    alone: true,
  },
  cmBool(
    'server-tokens',
    'http',
    'server_tokens',
    false,
    (v) => s(v).server?.serverTokens ?? false,
    'nginx.tmpl:338 `server_tokens {{ on|off }};`, config.go:350 bool',
    true,
  ),
  cmBool(
    'ssl-session-tickets',
    'http',
    'ssl_session_tickets',
    false,
    (v) => s(v).tlsSessions?.tickets ?? false,
    'nginx.tmpl:467 `ssl_session_tickets {{ on|off }};`, config.go:385 bool',
    null,
  ),
  cmBool(
    'ssl-reject-handshake',
    'server',
    'ssl_reject_handshake',
    false,
    (v) => s(v).sslRejectHandshake ?? false,
    'nginx.tmpl:924 `ssl_reject_handshake {{ on|off }};`, config.go:406 bool',
    false,
  ),
  cmBool(
    'proxy-stream-next-upstream',
    'stream',
    'proxy_next_upstream',
    true,
    (v) => s(v).stream?.nextUpstream ?? true,
    'nginx.tmpl:788 `proxy_next_upstream {{ on|off }};`, config.go:524 bool',
    null,
  ),
  // ---- main and events context
  cmTime(
    'worker-shutdown-timeout',
    'main',
    'worker_shutdown_timeout',
    '240s',
    (v) => s(v).workerShutdownTimeoutMs,
    'nginx.tmpl:47 `worker_shutdown_timeout {{ }} ;`, config.go:482 string',
    // nginx sets no shutdown timer for 0: the old workers wait for every connection.
    { after: ' ;', zero: NO_LIMIT },
  ),
  {
    key: 'worker-processes',
    source: 'configmap',
    where: 'nginx.tmpl:38 `worker_processes {{ }};`, configmap.go:378-385 ("auto": the CPU count)',
    values: words_([
      'auto',
      '1',
      '2',
      '0',
      '-1',
      '01',
      '+2',
      ' 2',
      '2 ',
      'AUTO',
      'auto ',
      ' auto',
      '1024',
      '1025',
      '',
      '0x2',
      '2 3',
    ]),
    // "auto" alone is the CPU count (the same as nginx's auto); anything else is written as it is.
    go: (v) => (v === 'auto' ? token('auto') : token(v)),
    defaultToken: 'auto',
    render: line('main', 'worker_processes'),
    // 0 stands for auto (one per core) on both sides.
    meaning: (t) => (words(t).length === 1 && words(t)[0] === 'auto' ? 0 : atoiArg(t)),
    keepip: (v) => {
      const w = s(v).workerProcesses;
      return w === undefined || w === 'auto' ? 0 : w;
    },
    open: 'neutral',
  },
  {
    ...cmCount(
      'max-worker-connections',
      'events',
      'worker_connections',
      16384,
      (v) => noLimitIfZero(s(v).maxWorkerConnections),
      'nginx.tmpl:55 `worker_connections {{ }};`, config.go:303 int, nginx.go:537-554 (0: 3/4 of max-worker-open-files)',
      { family: null },
    ),
    // 0 is 3/4 of max-worker-open-files, itself RLIMIT_NOFILE - 1024: 785664 under the usual 1048576.
    go: (v) => {
      const n = goParseInt0(v);
      return n === null ? DEFAULT : token(n === 0n ? 785_664n : n);
    },
  },
  // ---- http context (server-level here: the same parser)
  cmSeconds(
    'keep-alive',
    'http',
    'keepalive_timeout',
    75,
    (v) => s(v).keepAliveTimeoutMs,
    'nginx.tmpl:263 `keepalive_timeout {{ }}s;`, config.go:267 int',
  ),
  cmCount(
    'keep-alive-requests',
    'http',
    'keepalive_requests',
    1000,
    (v) => s(v).keepAliveRequests ?? 1000,
    'nginx.tmpl:264 `keepalive_requests {{ }};`, config.go:271 int',
  ),
  cmSeconds(
    'client-header-timeout',
    'http',
    'client_header_timeout',
    60,
    (v) => s(v).clientHeaderTimeoutMs,
    'nginx.tmpl:271 `client_header_timeout {{ }}s;`, config.go:178 int',
  ),
  cmSeconds(
    'client-body-timeout',
    'http',
    'client_body_timeout',
    60,
    (v) => s(v).clientBodyTimeoutMs,
    'nginx.tmpl:274 `client_body_timeout {{ }}s;`, config.go:186 int',
  ),
  {
    key: 'client-header-buffer-size',
    source: 'configmap',
    family: 'size',
    where: 'nginx.tmpl:270 `client_header_buffer_size {{ }};`, config.go:174 string',
    values: sizeValues,
    go: cmString,
    defaultToken: '1k',
    render: line('http', 'client_header_buffer_size'),
    meaning: size,
    keepip: (v) => s(v).clientHeaderBufferBytes ?? 1024,
    open: 'larger',
  },
  {
    key: 'large-client-header-buffers',
    source: 'configmap',
    where: 'nginx.tmpl:272 `large_client_header_buffers {{ }};`, config.go:277 string',
    values: bufferValues,
    go: cmString,
    defaultToken: '4 8k',
    render: line('http', 'large_client_header_buffers'),
    // ngx_conf_set_bufs_slot: a count (ngx_atoi) and a size (ngx_parse_size); the size at least
    // connection_pool_size (512 on 64-bit), checked when the server is merged.
    meaning: (t) => {
      const w = words(t);
      if (w.length !== 2) return null;
      const [n, z] = [ngxAtoi(w[0]!), ngxParseSize(w[1]!, 'km')];
      if (n === null || n === 0n || z === null || z === 0n || z < 512n) return null;
      return [Number(n), Number(z)];
    },
    keepip: (v) => {
      const b = s(v).largeClientHeaderBuffers ?? { count: 4, sizeBytes: 8192 };
      return [b.count, b.sizeBytes];
    },
    open: 'larger',
  },
  {
    key: 'client-body-buffer-size',
    source: 'configmap',
    family: 'size',
    where: 'nginx.tmpl:273 `client_body_buffer_size {{ }};` (http level, unchecked), config.go:182 string',
    values: sizeValues,
    go: cmString,
    defaultToken: '8k',
    render: line('http', 'client_body_buffer_size'),
    meaning: size,
    keepip: (v) => s(v).clientBodyBufferBytes ?? 8192,
    open: 'larger',
  },
  cmCount(
    'http2-max-concurrent-streams',
    'http',
    'http2_max_concurrent_streams',
    128,
    (v) => s(v).http2?.maxConcurrentStreams ?? 128,
    'nginx.tmpl:289 `http2_max_concurrent_streams {{ }};`, config.go:245 int',
  ),
  {
    key: 'http2-max-requests',
    source: 'configmap',
    where: 'nginx.tmpl:285-287 `http2_max_requests {{ }};` (above 0), config.go:241 int',
    values: intValues,
    go: cmInt,
    defaultToken: '0',
    render: (t) => (BigInt(t) > 0n ? [{ ctx: 'http', text: `http2_max_requests ${t};` }] : []),
    // nginx ≥ 1.19.7 warns the directive obsolete and ignores it: HTTP/2 connections end after
    // keepalive_requests (1000) whatever it says.
    meaning: (t, ignored) => (ignored ? 1000 : atoiArg(t)),
    unset: 1000,
    // keepip falls back to keep-alive-requests: never batched with it.
    alone: true,
    keepip: (v) => s(v).http2?.maxRequests ?? 1000,
    open: 'larger',
  },
  {
    ...cmCount(
      'limit-req-status-code',
      'http',
      'limit_req_status',
      503,
      (v) => s(v).limitReqStatusCode ?? 503,
      'nginx.tmpl:305 `limit_req_status {{ }};`, config.go:677 int',
      { meaning: bounded(400, 599), open: 'neutral', family: 'status' },
    ),
    values: boundedValues(400, 599),
  },
  {
    ...cmCount(
      'limit-conn-status-code',
      'http',
      'limit_conn_status',
      503,
      (v) => s(v).limitConnStatusCode ?? 503,
      'nginx.tmpl:306 `limit_conn_status {{ }};`, config.go:682 int',
      { meaning: bounded(400, 599), open: 'neutral', family: 'status' },
    ),
    values: boundedValues(400, 599),
  },
  {
    ...cmCount(
      'gzip-level',
      'http',
      'gzip_comp_level',
      1,
      (v) => s(v).compression?.gzip?.level ?? 1,
      'nginx.tmpl:322 `gzip_comp_level {{ }};` (with use-gzip), config.go:459 int',
      { meaning: bounded(1, 9), open: 'neutral', family: null },
    ),
    values: boundedValues(1, 9),
    context: { 'use-gzip': 'true' },
  },
  {
    ...cmCount(
      'gzip-min-length',
      'http',
      'gzip_min_length',
      256,
      (v) => s(v).compression?.gzip?.minLength ?? 256,
      'nginx.tmpl:327 `gzip_min_length {{ }};` (with use-gzip), config.go:463 int',
      // gzip_min_length is an ngx_conf_set_size_slot.
      { meaning: size, open: 'neutral', family: 'size' },
    ),
    context: { 'use-gzip': 'true' },
  },
  {
    key: 'syslog-port',
    source: 'configmap',
    where: 'nginx.tmpl:365, 372 `syslog:server={{ host }}:{{ port }}`, config.go:689 int',
    values: intValues,
    context: { 'enable-syslog': 'true', 'syslog-host': '127.0.0.1' },
    go: cmInt,
    defaultToken: '514',
    render: (t) => [
      { ctx: 'http', text: `access_log syslog:server=127.0.0.1:${t};` },
      { ctx: 'http', text: `error_log syslog:server=127.0.0.1:${t} notice;` },
    ],
    // ngx_parse_url: a port of 1-65535.
    meaning: bounded(1, 65535),
    keepip: (v) => s(v).syslog?.port ?? 0,
    open: 'neutral',
  },
  {
    key: 'error-log-level',
    source: 'configmap',
    where: 'nginx.tmpl:374 `error_log {{ path }} {{ level }};`, config.go:224 string',
    values: words_([
      'notice',
      'warn',
      'error',
      'crit',
      'alert',
      'emerg',
      'info',
      'debug',
      ' warn',
      'warn ',
      'WARN',
      'Warn',
      'warning',
      'warn error',
      'error warn',
      '',
      '  ',
      'err',
    ]),
    go: cmString,
    defaultToken: 'notice',
    render: (t) => [{ ctx: 'http', text: `error_log ERRORLOG ${t};` }],
    meaning: (t) => {
      const levels = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug'];
      const w = words(t);
      if (w.length === 0) return 3; // nginx's default level: error
      if (w.length !== 1 || !levels.includes(w[0]!)) return null;
      return levels.indexOf(w[0]!);
    },
    keepip: (v) =>
      ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug'].indexOf(
        s(v).errorLogLevel ?? 'notice',
      ),
    open: 'neutral',
  },
  {
    ...cmTime(
      'ssl-session-timeout',
      'http',
      'ssl_session_timeout',
      '10m',
      (v) => (s(v).tlsSessions?.timeoutSeconds ?? 600) * 1000,
      'nginx.tmpl:463 `ssl_session_timeout {{ }};` (with ssl-session-cache), config.go:395 string',
      { isSec: true },
    ),
  },
  {
    key: 'ssl-session-cache-size',
    source: 'configmap',
    where: 'nginx.tmpl:462 `ssl_session_cache shared:SSL:{{ }};`, config.go:381 string',
    values: () => [
      '10m',
      '1m',
      '32k',
      '31k',
      ' 8m',
      '8m ',
      '1g',
      '',
      '8 m',
      '-1',
      '100m',
      '0',
      '8M',
      '1024k',
      '8589934591k',
      ...generated(genSize, 5).slice(0, 3),
    ],
    go: cmString,
    defaultToken: '10m',
    heavy: (t) => (size(t) ?? 0) > 16 * 1024 * 1024,
    // The zone is named per unit here (nginx refuses one name with two sizes); ingress-nginx's is SSL.
    render: (t) => [{ ctx: 'http', text: `ssl_session_cache shared:ZONE:${t};` }],
    // ngx_http_ssl_session_cache: ngx_parse_size, at least 8 pages (32k).
    // The value is glued to `shared:SSL:` (a space before it is a second argument); nginx -t also maps
    // the zone, which fails beyond the machine's memory (here: a terabyte stands for that).
    meaning: (t) => {
      const w = words(`shared:${t}`);
      const v = w.length === 1 ? num(ngxParseSize(w[0]!.slice('shared:'.length), 'km')) : null;
      return v === null || v < 32768 || v >= MEMORY ? null : v;
    },
    keepip: (v) => s(v).tlsSessions?.cacheSizeBytes ?? 10 * 1024 * 1024,
    open: 'neutral',
  },
  // ---- upstream context (upstream_balancer; written with upstream-keepalive-connections above 0)
  {
    key: 'upstream-keepalive-connections',
    source: 'configmap',
    where: 'nginx.tmpl:534-535 `keepalive {{ }};` (above 0), config.go:497 int',
    values: intValues,
    go: cmInt,
    defaultToken: '320',
    render: (t) => (BigInt(t) > 0n ? [{ ctx: 'upstream', text: `keepalive ${t};` }] : []),
    heavy: (t) => BigInt(t) > 10_000n,
    // nginx allocates a cache entry (152 bytes) per connection at -t: beyond memory it fails.
    meaning: (t) => {
      const n = atoiArg(t);
      return n === null || n * 152 >= MEMORY ? null : n;
    },
    unset: 0,
    keepip: (v) => s(v).upstreamKeepaliveConnections,
    open: 'neutral',
  },
  {
    ...cmSeconds(
      'upstream-keepalive-timeout',
      'upstream',
      'keepalive_timeout',
      60,
      (v) => s(v).upstreamKeepaliveTimeoutMs,
      'nginx.tmpl:537 `keepalive_timeout {{ }}s;`, config.go:505 int',
    ),
    open: 'neutral',
  },
  cmCount(
    'upstream-keepalive-requests',
    'upstream',
    'keepalive_requests',
    10000,
    (v) => s(v).upstreamKeepaliveRequests,
    'nginx.tmpl:538 `keepalive_requests {{ }};`, config.go:510 int',
    { open: 'neutral' },
  ),
  {
    ...cmTime(
      'upstream-keepalive-time',
      'upstream',
      'keepalive_time',
      '1h',
      (v) => s(v).upstreamKeepaliveTimeMs,
      'nginx.tmpl:536 `keepalive_time {{ }};`, config.go:501 string',
    ),
    open: 'neutral',
  },
  // ---- stream context (tcp-services / udp-services)
  cmTime(
    'proxy-stream-timeout',
    'stream',
    'proxy_timeout',
    '600s',
    (v) => s(v).proxyStreamTimeoutMs,
    'nginx.tmpl:787, 819 `proxy_timeout {{ }};`, config.go:519 string',
  ),
  cmTime(
    'proxy-stream-next-upstream-timeout',
    'stream',
    'proxy_next_upstream_timeout',
    '600s',
    (v) => noLimitIfZero(s(v).stream?.nextUpstreamTimeoutMs ?? 600_000),
    'nginx.tmpl:789 `proxy_next_upstream_timeout {{ }};`, config.go:529 string',
    { zero: NO_LIMIT },
  ),
  {
    ...cmCount(
      'proxy-stream-next-upstream-tries',
      'stream',
      'proxy_next_upstream_tries',
      3,
      (v) => {
        const n = s(v).stream?.nextUpstreamTries ?? 3;
        // keepip's 0 is "each endpoint once": never more tries than endpoints, so a bound.
        return n === 0 ? 1e9 : n;
      },
      'nginx.tmpl:790 `proxy_next_upstream_tries {{ }};`, config.go:534 int',
      { meaning: (t) => zeroIsNoLimit(atoiArg(t)) },
    ),
  },
  {
    key: 'proxy-stream-responses',
    source: 'configmap',
    family: 'num',
    where: 'nginx.tmpl:818 `proxy_responses {{ }};`, configmap.go:356-364 strconv.Atoi',
    values: intValues,
    go: (v) => {
      const n = atoi(v);
      return n === null ? DEFAULT : token(n);
    },
    defaultToken: '1',
    render: line('udp', 'proxy_responses'),
    meaning: atoiArg,
    keepip: (v) => s(v).stream?.responses ?? 1,
    open: 'neutral',
  },
  // ---- location context, ConfigMap defaults of the annotations (defaults/main.go)
  {
    key: 'proxy-body-size',
    source: 'configmap',
    family: 'offset',
    where:
      'nginx.tmpl:1271-1273 `client_max_body_size` if isValidByteSize (offset), defaults/main.go:46 string',
    values: sizeValues,
    go: (v) => (isValidByteSize(v, true) ? token(v) : UNSET),
    defaultToken: '1m',
    render: line('location', 'client_max_body_size'),
    meaning: (t) => zeroIsNoLimit(offset(t)),
    unset: 1024 * 1024,
    keepip: (v) => noLimitIfZero(s(v).proxyBodySizeBytes),
    open: 'larger',
  },
  cmSeconds(
    'proxy-connect-timeout',
    'location',
    'proxy_connect_timeout',
    5,
    (v) => keepipDeadline(s(v).proxyConnectTimeoutMs),
    'nginx.tmpl:1333 `proxy_connect_timeout {{ }}s;`, defaults/main.go:51 int',
  ),
  cmSeconds(
    'proxy-read-timeout',
    'location',
    'proxy_read_timeout',
    60,
    (v) => keepipDeadline(s(v).proxyReadTimeoutMs),
    'nginx.tmpl:1335 `proxy_read_timeout {{ }}s;`, defaults/main.go:56 int',
  ),
  cmSeconds(
    'proxy-send-timeout',
    'location',
    'proxy_send_timeout',
    60,
    (v) => keepipDeadline(s(v).proxySendTimeoutMs),
    'nginx.tmpl:1334 `proxy_send_timeout {{ }}s;`, defaults/main.go:61 int',
  ),
  cmCount(
    'proxy-next-upstream-tries',
    'location',
    'proxy_next_upstream_tries',
    3,
    (v) => noLimitIfZero(s(v).nextUpstream?.tries ?? 3),
    'nginx.tmpl:1355 `proxy_next_upstream_tries {{ }};`, defaults/main.go:97 int',
    { meaning: (t) => zeroIsNoLimit(atoiArg(t)) },
  ),
  cmCount(
    'proxy-next-upstream-timeout',
    'location',
    'proxy_next_upstream_timeout',
    0,
    (v) => noLimitIfZero(s(v).nextUpstream?.timeoutMs ?? 0),
    'nginx.tmpl:1354 `proxy_next_upstream_timeout {{ }};` (seconds), defaults/main.go:93 int',
    { meaning: (t) => zeroIsNoLimit(msec(t)), family: 'msec' },
  ),
  {
    key: 'limit-rate',
    source: 'configmap',
    where: 'template.go:903-907 `limit_rate {{ }}k;` (above 0), defaults/main.go:168 int',
    values: intValues,
    go: cmInt,
    defaultToken: '0',
    render: (t) => (BigInt(t) > 0n ? [{ ctx: 'location', text: `limit_rate ${t}k;` }] : []),
    meaning: (t) => size(`${t}k`),
    unset: NO_LIMIT,
    keepip: (v) => (s(v).limitRateKb ? s(v).limitRateKb! * 1024 : NO_LIMIT),
    open: 'larger',
  },
  {
    key: 'limit-rate-after',
    source: 'configmap',
    where: 'template.go:897-901 `limit_rate_after {{ }}k;` (above 0), defaults/main.go:172 int',
    values: intValues,
    go: cmInt,
    defaultToken: '0',
    render: (t) => (BigInt(t) > 0n ? [{ ctx: 'location', text: `limit_rate_after ${t}k;` }] : []),
    meaning: (t) => offset(`${t}k`),
    unset: 0,
    keepip: (v) => (s(v).limitRateAfterKb ?? 0) * 1024,
    open: 'larger',
  },
  {
    key: 'proxy-http-version',
    source: 'configmap',
    where: 'nginx.tmpl:1347 `proxy_http_version {{ }};`, defaults/main.go:180 string',
    values: words_(['1.1', '1.0', ' 1.0', '1.0 ', '2', '1.0.0', '', '1', 'HTTP/1.0', '1.10', '1.0 1.1']),
    go: cmString,
    defaultToken: '1.1',
    render: line('location', 'proxy_http_version'),
    meaning: (t) => one(t, (w) => ({ '1.0': 10, '1.1': 11 })[w] ?? null),
    keepip: (v) => (s(v).proxyHttpVersion === '1.0' ? 10 : 11),
    open: 'neutral',
  },
  {
    key: 'proxy-request-buffering',
    source: 'configmap',
    where: 'nginx.tmpl:1346 `proxy_request_buffering {{ }};`, defaults/main.go:111 string',
    values: words_(['on', 'off', 'ON', 'Off', ' off', 'off ', '', 'yes', '1', 'true']),
    go: cmString,
    defaultToken: 'on',
    render: line('location', 'proxy_request_buffering'),
    // ngx_conf_set_flag_slot compares without case.
    meaning: (t) => one(t, (w) => ({ on: 1, off: 0 })[w.toLowerCase()] ?? null),
    keepip: (v) => (s(v).requestBuffering === false ? 0 : 1),
    open: 'neutral',
  },
  // ---- annotations (one Ingress each; the ConfigMap's defaults unless the context says)
  annSeconds(
    'proxy-connect-timeout',
    'proxy_connect_timeout',
    (l) => keepipDeadline(l.proxyConnectTimeoutMs),
    'nginx.tmpl:1333, proxy/main.go:59 ValidateInt + Atoi',
  ),
  annSeconds(
    'proxy-read-timeout',
    'proxy_read_timeout',
    (l) => keepipDeadline(l.proxyReadTimeoutMs),
    'nginx.tmpl:1335, proxy/main.go:71',
  ),
  annSeconds(
    'proxy-send-timeout',
    'proxy_send_timeout',
    (l) => keepipDeadline(l.proxySendTimeoutMs),
    'nginx.tmpl:1334, proxy/main.go:65',
  ),
  {
    key: 'proxy-body-size',
    source: 'annotation',
    family: 'offset',
    where: 'nginx.tmpl:1271-1273 isValidByteSize, proxy/main.go:109 SizeRegex (spaces removed)',
    values: sizeValues,
    // The ConfigMap's 2m is what a refused annotation falls back to; a value the validator takes
    // but isValidByteSize does not ("1 m", "8b") writes no line at all: nginx's own 1m.
    context: { 'configmap:proxy-body-size': '2m' },
    go: (v) => {
      if (v !== '' && !sizeValidator(v)) return DEFAULT;
      const n = normalizeString(v);
      if (n === '') return DEFAULT;
      return isValidByteSize(n, true) ? token(n) : UNSET;
    },
    defaultToken: '2m',
    render: line('location', 'client_max_body_size'),
    meaning: (t) => zeroIsNoLimit(offset(t)),
    unset: 1024 * 1024,
    keepip: (v) => noLimitIfZero(v.loc!.proxyBodySizeBytes),
    open: 'larger',
  },
  {
    key: 'client-body-buffer-size',
    source: 'annotation',
    family: 'size',
    where: 'nginx.tmpl:1274-1276 isValidByteSize (size), clientbodybuffersize/main.go SizeRegex',
    values: sizeValues,
    context: { 'configmap:client-body-buffer-size': '16k' },
    go: (v) => {
      if (v !== '' && !sizeValidator(v)) return DEFAULT;
      const n = normalizeString(v);
      return n !== '' && isValidByteSize(n, false) ? token(n) : DEFAULT;
    },
    // No line in the location: the http level's client_body_buffer_size, the ConfigMap's 16k.
    defaultToken: '16k',
    render: line('location', 'client_body_buffer_size'),
    meaning: size,
    keepip: (v) => v.loc!.clientBodyBufferBytes ?? 8192,
    open: 'larger',
  },
  ...(['limit-rps', 'limit-rpm'] as const).map(
    (key): Spec => ({
      key,
      source: 'annotation',
      where: `template.go:841-860, 885-895 limit_req_zone rate=N${key === 'limit-rps' ? 'r/s' : 'r/m'} + limit_req burst=N×5 (above 0), ratelimit/main.go:201-207 (ValidationError: the Ingress is refused)`,
      values: intValues,
      go: (v) => annInt(v, { kind: 'denied', why: 'ValidateInt refuses it: the Ingress is not served' }),
      defaultToken: '0',
      render: (t) => {
        const n = BigInt(t);
        if (n <= 0n) return [];
        const unit = key === 'limit-rps' ? 'r/s' : 'r/m';
        return [
          {
            ctx: 'zone',
            text: `limit_req_zone $binary_remote_addr zone=ZONE:${ZONE_SIZE} rate=${t}${unit};`,
          },
          { ctx: 'location', text: `limit_req zone=ZONE burst=${BigInt.asIntN(64, n * 5n)} nodelay;` },
        ];
      },
      // ngx_http_limit_req_zone: rate=N, then ×1000 (per millisecond); limit_req burst above 0.
      meaning: (t) => {
        const n = ngxAtoi(t);
        if (n === null || n === 0n) return null;
        const burst = BigInt.asIntN(64, n * 5n);
        return burst <= 0n ? null : Number(n);
      },
      unset: NO_LIMIT,
      // One refused limit keeps the whole Ingress out in ingress-nginx.
      alone: true,
      keepip: (v) => {
        const rl = v.loc!.access?.rateLimit;
        const n = key === 'limit-rps' ? rl?.rps : rl?.rpm;
        return noLimitIfZero(n);
      },
      open: 'larger',
    }),
  ),
  {
    key: 'limit-connections',
    source: 'annotation',
    where:
      'template.go:831-838, 879-883 limit_conn_zone + `limit_conn <zone> N;` (above 0), ratelimit/main.go:209-212',
    values: intValues,
    go: (v) => annInt(v, { kind: 'denied', why: 'ValidateInt refuses it: the Ingress is not served' }),
    defaultToken: '0',
    render: (t) =>
      BigInt(t) > 0n
        ? [
            { ctx: 'zone', text: `limit_conn_zone $binary_remote_addr zone=ZONE:${ZONE_SIZE};` },
            { ctx: 'location', text: `limit_conn ZONE ${t};` },
          ]
        : [],
    // ngx_http_limit_conn: ngx_atoi, 1-65535.
    meaning: bounded(1, 65535),
    unset: NO_LIMIT,
    alone: true,
    keepip: (v) => noLimitIfZero(v.loc!.access?.rateLimit?.connections),
    open: 'larger',
  },
  {
    key: 'limit-burst-multiplier',
    source: 'annotation',
    where:
      'template.go:885-889 `limit_req … burst={{ rps × multiplier }}`, ratelimit/main.go:214-217 (an error: 5)',
    values: intValues,
    context: LIMIT_RPS_CONTEXT,
    go: (v) => annInt(v),
    defaultToken: '5',
    render: (t) => [
      { ctx: 'zone', text: `limit_req_zone $binary_remote_addr zone=ZONE:${ZONE_SIZE} rate=2r/s;` },
      { ctx: 'location', text: `limit_req zone=ZONE burst=${BigInt.asIntN(64, BigInt(t) * 2n)} nodelay;` },
    ],
    // The burst nginx applies (limit-rps 2 × the multiplier); limit_req refuses a burst of 0 or less.
    meaning: (t) => {
      const burst = BigInt.asIntN(64, BigInt(t) * 2n);
      return burst <= 0n ? null : Number(burst);
    },
    keepip: (v) => 2 * (v.loc!.access?.rateLimit?.burstMultiplier ?? 5),
    open: 'larger',
  },
  ...(['limit-rate', 'limit-rate-after'] as const).map(
    (key): Spec => ({
      key,
      source: 'annotation',
      where: `template.go:897-907 \`${key.replace(/-/g, '_')} {{ }}k;\` (above 0), ratelimit/main.go:190-197 (an error: the ConfigMap's)`,
      values: intValues,
      ...(key === 'limit-rate-after' ? { context: { 'limit-rate': '100' } } : {}),
      go: (v) => annInt(v),
      defaultToken: '0',
      render: (t) => (BigInt(t) > 0n ? [{ ctx: 'location', text: `${key.replace(/-/g, '_')} ${t}k;` }] : []),
      meaning: (t) => (key === 'limit-rate' ? size(`${t}k`) : offset(`${t}k`)),
      unset: key === 'limit-rate' ? NO_LIMIT : 0,
      keepip: (v) => {
        const b = v.loc!.access?.bandwidth;
        if (key === 'limit-rate') return b ? b.rateBytes : NO_LIMIT;
        return b ? b.afterBytes : 0;
      },
      open: 'larger',
    }),
  ),
  {
    key: 'proxy-next-upstream-tries',
    source: 'annotation',
    family: 'num',
    where: 'nginx.tmpl:1355, proxy/main.go:123 ValidateInt + Atoi',
    values: intValues,
    go: (v) => annInt(v),
    defaultToken: '3',
    render: line('location', 'proxy_next_upstream_tries'),
    meaning: (t) => zeroIsNoLimit(atoiArg(t)),
    keepip: (v) => noLimitIfZero(v.loc!.nextUpstream?.tries ?? 3),
    open: 'larger',
  },
  {
    key: 'proxy-next-upstream-timeout',
    source: 'annotation',
    family: 'msec',
    where: 'nginx.tmpl:1354 (seconds), proxy/main.go:129',
    values: intValues,
    go: (v) => annInt(v),
    defaultToken: '0',
    render: line('location', 'proxy_next_upstream_timeout'),
    meaning: (t) => zeroIsNoLimit(msec(t)),
    keepip: (v) => noLimitIfZero(v.loc!.nextUpstream?.timeoutMs ?? 0),
    open: 'larger',
  },
  {
    key: 'proxy-http-version',
    source: 'annotation',
    where: 'nginx.tmpl:1347, proxy/main.go:159 ValidateOptions(1.0, 1.1; trimmed)',
    values: words_([
      '1.1',
      '1.0',
      ' 1.0',
      '1.0 ',
      '2',
      '1.0.0',
      '',
      '1',
      'HTTP/1.0',
      '1.10',
      '\u30001.0',
      '1.0\u0085',
      '\ufeff1.0',
    ]),
    go: (v) => {
      if (v !== '' && !options(['1.0', '1.1'], true, true)(v)) return DEFAULT;
      const n = normalizeString(v);
      return n === '' ? DEFAULT : token(n);
    },
    defaultToken: '1.1',
    render: line('location', 'proxy_http_version'),
    meaning: (t) => one(t, (w) => ({ '1.0': 10, '1.1': 11 })[w] ?? null),
    keepip: (v) => (v.loc!.proxyHttpVersion === '1.0' ? 10 : 11),
    open: 'neutral',
  },
  {
    key: 'proxy-request-buffering',
    source: 'annotation',
    where: 'nginx.tmpl:1346, proxy/main.go:135 ValidateOptions(on, off; trimmed)',
    values: words_([
      'on',
      'off',
      'ON',
      'Off',
      ' off',
      'off ',
      '',
      'yes',
      '1',
      '\u3000off',
      'off\u0085',
      '\ufeffoff',
    ]),
    go: (v) => {
      if (v !== '' && !options(['on', 'off'], true, true)(v)) return DEFAULT;
      const n = normalizeString(v);
      return n === '' ? DEFAULT : token(n);
    },
    defaultToken: 'on',
    render: line('location', 'proxy_request_buffering'),
    meaning: (t) => one(t, (w) => ({ on: 1, off: 0 })[w.toLowerCase()] ?? null),
    keepip: (v) => (v.loc!.requestBuffering === false ? 0 : 1),
    open: 'neutral',
  },
  {
    key: 'auth-tls-verify-depth',
    source: 'annotation',
    family: 'num',
    where: 'nginx.tmpl:938 `ssl_verify_depth {{ }};`, authtls/main.go:182-186 (Atoi; an error or 0: 1)',
    values: intValues,
    context: { 'auth-tls-secret': 'default/ca' },
    go: (v) => {
      const r = annInt(v);
      return r.kind === 'token' && r.token !== '0' ? r : token(1n);
    },
    defaultToken: '1',
    render: line('server', 'ssl_verify_depth'),
    meaning: atoiArg,
    keepip: (v) => v.host?.clientCertificate?.verifyDepth ?? 1,
    open: 'larger',
  },
  {
    key: 'proxy-ssl-verify-depth',
    source: 'annotation',
    family: 'num',
    where:
      'nginx.tmpl:1437 `proxy_ssl_verify_depth {{ }};`, proxyssl/main.go:246-249 (Atoi; an error or 0: 1)',
    values: intValues,
    context: { 'backend-protocol': 'HTTPS', 'proxy-ssl-secret': 'default/ca' },
    go: (v) => {
      const r = annInt(v);
      return r.kind === 'token' && r.token !== '0' ? r : token(1n);
    },
    defaultToken: '1',
    render: line('location', 'proxy_ssl_verify_depth'),
    meaning: atoiArg,
    keepip: (v) => v.loc!.proxySsl?.verifyDepth ?? 1,
    open: 'larger',
  },
];

// ---------------------------------------------------------------------------------------------
// The cases: every (key, value), with what Go makes of it.

interface Case {
  id: number;
  spec: Spec;
  value: string;
  go: GoRead;
  /** The token rendered: Go's, or the default; null when no line is written or the Ingress is refused. */
  token: string | null;
}

/**
 * Around every key's default value, the white space where Go's TrimSpace, nginx's lexer and
 * JavaScript's trim() part ways: U+3000 (Go and JavaScript trim it, nginx does not), U+FEFF (only
 * JavaScript trims it), U+0085 (only Go trims it).
 */
const unicodeSpaced = (spec: Spec) =>
  spec.defaultToken === '' ? [] : ['\u3000', '\ufeff', '\u0085'].map((c) => `${c}${spec.defaultToken}`);

function casesOf(specs: readonly Spec[]): Case[] {
  const out: Case[] = [];
  for (const spec of specs) {
    for (const value of new Set([...spec.values(), ...unicodeSpaced(spec)])) {
      const go = spec.go(value);
      const t = go.kind === 'token' ? go.token : go.kind === 'default' ? spec.defaultToken : null;
      out.push({
        id: out.length,
        spec,
        value,
        go,
        token: t,
      });
    }
  }
  return out;
}

const label = (spec: Spec) => `${spec.source === 'annotation' ? 'annotation ' : ''}${spec.key}`;

// ---------------------------------------------------------------------------------------------
// keepip's side: the real loader, a ConfigMap (or an Ingress) per value, batched where the keys do
// not read each other.

const FAKE_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function splitContext(context: Record<string, string> = {}): {
  data: Record<string, string>;
  annotations: Record<string, string>;
} {
  const data: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(context)) {
    if (k.startsWith('configmap:')) data[k.slice('configmap:'.length)] = v;
    else annotations[k] = v;
  }
  return { data, annotations };
}

interface Observed {
  read: KeepipRead;
  /** keepip's value without the key (the default it falls back to). */
  fallback: Value;
}

const cmField = (key: string) => `data[${JSON.stringify(key)}]`;

/** keepip's reading of every case (and each spec's fallback), batched into few topologies. */
function keepipSide(cases: readonly Case[]): Map<number, Observed> {
  const out = new Map<number, Observed>();
  const groups = new Map<string, Case[]>();
  for (const c of cases) {
    const g = `${c.spec.source}|${c.spec.alone ? c.spec.key : JSON.stringify(c.spec.context ?? {})}`;
    groups.set(g, [...(groups.get(g) ?? []), c]);
  }
  for (const group of groups.values()) {
    const specs = [...new Set(group.map((c) => c.spec))];
    const { data, annotations } = splitContext(specs[0]!.context);
    const byValue = new Map<string, Case[]>();
    for (const c of group) byValue.set(c.value, [...(byValue.get(c.value) ?? []), c]);
    if (specs[0]!.source === 'configmap') {
      const base = view(topologyOf([controllerConfigMap({ ...data, ...annotations })]), undefined);
      const fallback = new Map(specs.map((spec) => [spec, spec.keepip(base)]));
      for (const [value, list] of byValue) {
        const entries = Object.fromEntries(list.map((c) => [c.spec.key, value]));
        const v = view(topologyOf([controllerConfigMap({ ...data, ...annotations, ...entries })]), undefined);
        for (const c of list) {
          const reported = v.issues.some((i) => i.severity !== 'info' && i.field === cmField(c.spec.key));
          out.set(c.id, {
            read: { v: c.spec.keepip(v), reported, denied: false },
            fallback: fallback.get(c.spec)!,
          });
        }
      }
      continue;
    }
    // Annotations: one Ingress per value (and one without), one topology for the group.
    const values = [...byValue.keys()];
    const objects: K8sObject[] = [
      controllerConfigMap(data),
      ...serviceWithEndpoints({ name: 'web', ports: [8080] }),
      opaqueSecret('ca', { 'ca.crt': FAKE_PEM }),
      ingress({
        name: 'base',
        host: 'base.test',
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations,
      }),
      ...values.map((value, i) =>
        ingress({
          name: `v${i}`,
          host: `v${i}.test`,
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { ...annotations, ...Object.fromEntries(specs.map((spec) => [spec.key, value])) },
        }),
      ),
    ];
    const t = topologyOf(objects);
    const base = view(t, 'base');
    const fallback = new Map(specs.map((spec) => [spec, spec.keepip(base)]));
    values.forEach((value, i) => {
      const v = view(t, `v${i}`);
      for (const c of byValue.get(value)!) {
        const field = `"${PREFIX}${c.spec.key}"`;
        const reported = v.issues.some((x) => x.severity !== 'info' && (x.field ?? '').includes(field));
        const denied =
          v.loc === undefined ||
          v.loc.access?.denied?.annotation === PREFIX + c.spec.key ||
          (v.loc.access?.denied != null && reported);
        out.set(c.id, {
          read: { v: v.loc === undefined ? NO_LIMIT : c.spec.keepip(v), reported, denied },
          fallback: fallback.get(c.spec)!,
        });
      }
    });
  }
  return out;
}

/** The gateway settings, and (for Ingress `name`) its host's first location and its issues. */
function view(t: Topology, name: string | undefined): KeepipView {
  if (name === undefined)
    return { settings: t.gateway.settings, loc: undefined, host: undefined, issues: t.issues };
  const host = t.gateway.virtualHosts.find((h) => h.host === `${name}.test`);
  const issues = t.issues.filter((i) => (i.origin as { name?: string } | undefined)?.name === name);
  return { settings: t.gateway.settings, loc: host?.locations[0], host, issues };
}

// ---------------------------------------------------------------------------------------------
// nginx -t: which rendered units nginx refuses, and which it warns obsolete.

interface Unit {
  id: number;
  parts: Part[];
  /** A directive of the main or events context, which nginx takes once: one unit per config. */
  slot: string | null;
  /** The nginx reader of a one-line unit's argument (Spec.family), and that argument. */
  family: string | null;
  arg: string;
  /** The model's word: accepted (the spec's meaning of the token is a value). */
  modelAccepts: boolean;
  key: string;
  heavy: boolean;
}

function unitsOf(cases: readonly Case[]): { units: Unit[]; unitOf: Map<number, Unit | null> } {
  const byText = new Map<string, Unit>();
  const unitOf = new Map<number, Unit | null>();
  for (const c of cases) {
    const parts = c.token === null ? [] : c.spec.render(c.token);
    if (parts.length === 0) {
      unitOf.set(c.id, null);
      continue;
    }
    const text = JSON.stringify(parts);
    let unit = byText.get(text);
    if (unit === undefined) {
      const once = parts.find((p) => p.ctx === 'main' || p.ctx === 'events');
      const family = parts.length === 1 ? (c.spec.family ?? null) : null;
      unit = {
        id: byText.size,
        parts,
        slot: once ? `${once.ctx}:${words(once.text)[0]}` : null,
        family,
        arg: words(parts[0]!.text.replace(/[ \t\r\n]*;$/, ''))
          .slice(1)
          .join(' '),
        modelAccepts: c.spec.meaning(c.token!, false) !== null,
        key: label(c.spec),
        heavy: c.spec.heavy?.(c.token!) ?? false,
      };
      byText.set(text, unit);
    }
    unitOf.set(c.id, unit);
  }
  return { units: [...byText.values()], unitOf };
}

interface OracleConfig {
  text: string;
  /** The unit of each line (1-based); undefined for the frame. */
  owner: (number | undefined)[];
}

function oracleConfig(dir: string, units: readonly Unit[]): OracleConfig {
  const lines: [string, number | undefined][] = [];
  const add = (text: string, owner?: number) => {
    for (const l of text.split(/\r\n|\n|\r/)) lines.push([l, owner]);
  };
  const partsOf = (u: Unit, ctx: Ctx) =>
    u.parts
      .filter((p) => p.ctx === ctx)
      .map((p) => p.text.replaceAll('ZONE', `z${u.id}`).replaceAll('ERRORLOG', join(dir, `e${u.id}.log`)));
  const stream = units.some((u) => u.parts.some((p) => p.ctx === 'stream' || p.ctx === 'udp'));
  if (stream) add(`load_module ${STREAM_MODULE};`);
  if (process.getuid?.() === 0) add('user root;');
  add(`pid ${join(dir, 'oracle.pid')};`);
  for (const u of units) for (const t of partsOf(u, 'main')) add(t, u.id);
  add('events {');
  for (const u of units) for (const t of partsOf(u, 'events')) add(t, u.id);
  add('}');
  add('http {');
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    add(`${t}_temp_path ${join(dir, t)};`);
  for (const u of units) {
    for (const t of partsOf(u, 'zone')) add(t, u.id);
    if (u.parts.some((p) => p.ctx === 'upstream')) {
      add(`upstream u${u.id} { server 127.0.0.1:1;`, u.id);
      for (const t of partsOf(u, 'upstream')) add(t, u.id);
      add('}', u.id);
    }
    const own = ['http', 'server', 'location'] as const;
    if (u.parts.some((p) => (own as readonly string[]).includes(p.ctx))) {
      add(`server { listen 127.0.0.1:1; server_name u${u.id}.test;`, u.id);
      for (const t of [...partsOf(u, 'http'), ...partsOf(u, 'server')]) add(t, u.id);
      add('location / {', u.id);
      for (const t of partsOf(u, 'location')) add(t, u.id);
      add('} }', u.id);
    }
  }
  add('}');
  if (stream) {
    add('stream {');
    for (const u of units) {
      for (const ctx of ['stream', 'udp'] as const) {
        const body = partsOf(u, ctx);
        if (body.length === 0) continue;
        add(
          `server { listen 127.0.0.1:${20000 + u.id}${ctx === 'udp' ? ' udp' : ''}; proxy_pass 127.0.0.1:1;`,
          u.id,
        );
        for (const t of body) add(t, u.id);
        add('}', u.id);
      }
    }
    add('}');
  }
  return { text: `${lines.map(([l]) => l).join('\n')}\n`, owner: [undefined, ...lines.map(([, o]) => o)] };
}

/**
 * `nginx -t`, run by a shell of our own: forking this test's process (its heap, a hundred megabytes and
 * more) for each run costs several times what nginx does; bash forks small. One shell per worker.
 */
class NginxTester {
  readonly #shell: ChildProcess;
  #out = '';
  readonly #waiting: ((text: string) => void)[] = [];

  constructor() {
    this.#shell = spawn(requireBinary('bash'), ['--norc', '--noprofile'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#shell.stdout!.setEncoding('utf8');
    this.#shell.stdout!.on('data', (chunk: string) => {
      this.#out += chunk;
      for (let end = this.#out.indexOf('\n@@END '); end >= 0; end = this.#out.indexOf('\n@@END ')) {
        const stop = this.#out.indexOf('\n', end + 1);
        if (stop < 0) return;
        const status = this.#out.slice(end + 7, stop);
        const text = this.#out.slice(0, end);
        this.#out = this.#out.slice(stop + 1);
        this.#waiting.shift()?.(status === '0' ? `ok\n${text}` : text);
      }
    });
  }

  /** nginx -t of `file`: 'ok\n' and the warnings, or the error output. */
  test(dir: string, file: string): Promise<string> {
    const q = (x: string) => `'${x.replaceAll("'", "'\\''")}'`;
    const args = ['-t', '-q', '-p', dir, '-e', join(dir, 'oracle-error.log'), '-c', file].map(q).join(' ');
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#shell.stdin!.write(`${q(requireBinary('nginx'))} ${args} 2>&1; s=$?; echo; echo "@@END $s"\n`);
    });
  }

  close(): void {
    this.#shell.stdin!.end();
    if (this.#shell.exitCode === null) this.#shell.kill('SIGKILL');
  }
}

interface Verdicts {
  refused: Map<number, string>;
  /** Units nginx took with a warning that the directive is obsolete (ignored). */
  obsolete: Set<number>;
  runs: number;
}

/** The units of one config nginx refuses: by the line it names, else by halves. */
async function refusedAmong(
  nginx: NginxTester,
  dir: string,
  name: string,
  units: Unit[],
  out: Verdicts,
): Promise<void> {
  if (units.length === 0) return;
  const config = oracleConfig(dir, units);
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, config.text);
  out.runs++;
  const result = await nginx.test(dir, file);
  for (const m of result.matchAll(/\[warn\] (.*) in \S+:(\d+)$/gm)) {
    const owner = config.owner[Number(m[2])];
    if (owner !== undefined && /obsolete/.test(m[1]!)) out.obsolete.add(owner);
  }
  if (result.startsWith('ok\n')) return;
  // [emerg]: the configuration; [alert]: nginx could not make what it asks for (a shared memory zone).
  const emerg = /\[(?:emerg|alert|crit)\] (.*?)(?: in \S+:(\d+))?$/m.exec(result);
  assert.ok(emerg, `nginx -t failed without an [emerg] line:\n${result}`);
  const owner = emerg[2] === undefined ? undefined : config.owner[Number(emerg[2])];
  if (owner !== undefined) {
    out.refused.set(owner, emerg[1]!);
    await refusedAmong(
      nginx,
      dir,
      name,
      units.filter((u) => u.id !== owner),
      out,
    );
    return;
  }
  // Reported at the end of a block (a server merged with an invalid size): halve.
  if (units.length === 1) {
    out.refused.set(units[0]!.id, emerg[1]!);
    return;
  }
  const half = Math.ceil(units.length / 2);
  await refusedAmong(nginx, dir, `${name}a`, units.slice(0, half), out);
  await refusedAmong(nginx, dir, `${name}b`, units.slice(half), out);
}

/**
 * Lines of one nginx reader (ngx_conf_set_msec_slot…) share its verdict on an argument: each argument
 * goes to nginx in one line of the family (not a main-context one, where possible); every other line
 * the model calls valid goes to nginx too, and SAMPLED lines of each directive that the model calls
 * invalid, the check that the sharing holds (the rest take the verdict of their family's line). Each
 * refused line costs an nginx -t run (nginx stops at the first error): this keeps them near 180.
 */
const SAMPLED = 1;

interface Plan {
  tested: Unit[];
  /** Untested unit id → the unit whose verdict it takes. */
  inferred: Map<number, Unit>;
  /** Tested units that are not their argument's first line: they must answer as it does. */
  checks: [Unit, Unit][];
}

function plan(units: readonly Unit[]): Plan {
  const first = new Map<string, Unit>();
  const ordered = [...units].sort((a, b) => Number(a.slot !== null) - Number(b.slot !== null) || a.id - b.id);
  for (const u of ordered) {
    if (u.family === null) continue;
    const k = `${u.family}|${u.arg}`;
    if (!first.has(k)) first.set(k, u);
  }
  const sampled = new Map<string, number>();
  const out: Plan = { tested: [], inferred: new Map(), checks: [] };
  for (const u of units) {
    const rep = u.family === null ? u : first.get(`${u.family}|${u.arg}`)!;
    if (rep === u) {
      out.tested.push(u);
      continue;
    }
    // Once per directive: a ConfigMap key and its annotation write the same line.
    const directive = words(u.parts[0]!.text)[0]!;
    const n = sampled.get(directive) ?? 0;
    if (u.modelAccepts || n < SAMPLED) {
      if (!u.modelAccepts) sampled.set(directive, n + 1);
      out.tested.push(u);
      out.checks.push([u, rep]);
    } else out.inferred.set(u.id, rep);
  }
  return out;
}

/** Every unit nginx refuses: batches holding at most one unit of each main/events directive, 4 at once. */
async function nginxVerdicts(units: readonly Unit[]): Promise<Verdicts & { plan: Plan }> {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-scalars-oracle-'));
  try {
    const p = plan(units);
    const slots = new Map<string, Unit[]>();
    for (const u of p.tested) if (u.slot !== null) slots.set(u.slot, [...(slots.get(u.slot) ?? []), u]);
    const width = Math.max(8, ...[...slots.values()].map((l) => l.length));
    const batches: Unit[][] = Array.from({ length: width }, () => []);
    for (const list of slots.values()) for (const [i, u] of list.entries()) batches[i]!.push(u);
    // Lines that make nginx -t map memory (shared zones, connection caches) go apart, the largest alone.
    const shm = (u: Unit) => u.parts.some((x) => /zone=|shared:|^keepalive /.test(x.text));
    const light = p.tested.filter((u) => u.slot === null && !u.heavy && !shm(u));
    for (const [i, u] of light.entries()) batches[i % width]!.push(u);
    const mapped = p.tested.filter((u) => u.slot === null && !u.heavy && shm(u));
    for (let i = 0; i < 4; i++) batches.push(mapped.filter((_, k) => k % 4 === i));
    for (const u of p.tested.filter((x) => x.slot === null && x.heavy)) batches.push([u]);
    const out: Verdicts = { refused: new Map(), obsolete: new Set(), runs: 0 };
    const shells = Array.from({ length: 4 }, () => new NginxTester());
    try {
      let next = 0;
      await Promise.all(
        shells.map(async (nginx) => {
          while (next < batches.length) {
            const i = next++;
            await refusedAmong(nginx, dir, `b${i}`, batches[i]!, out);
          }
        }),
      );
    } finally {
      for (const shell of shells) shell.close();
    }
    for (const [id, rep] of p.inferred) {
      const why = out.refused.get(rep.id);
      if (why !== undefined)
        out.refused.set(id, `${why} (as nginx answered ${JSON.stringify(rep.parts[0]!.text)})`);
    }
    return { ...out, plan: p };
  } finally {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

// ---------------------------------------------------------------------------------------------
// Verdicts.

type NginxSide =
  | { kind: 'refused'; why: string }
  | { kind: 'denied'; why: string }
  | { kind: 'applies'; v: Value; line: boolean };

function nginxSide(c: Case, unit: Unit | null, v: Verdicts): NginxSide {
  if (c.go.kind === 'denied') return { kind: 'denied', why: c.go.why };
  if (unit === null) {
    assert.ok(c.spec.unset !== undefined, `${label(c.spec)}: no line for ${JSON.stringify(c.value)}`);
    return { kind: 'applies', v: c.spec.unset, line: false };
  }
  const why = v.refused.get(unit.id);
  if (why !== undefined) return { kind: 'refused', why };
  const meaning = c.spec.meaning(c.token!, v.obsolete.has(unit.id));
  assert.ok(
    meaning !== null,
    `${label(c.spec)} ${JSON.stringify(c.token)}: accepted by nginx, not by the model`,
  );
  return { kind: 'applies', v: meaning, line: true };
}

const showValue = (v: Value) =>
  typeof v === 'number' ? (v === NO_LIMIT ? 'no limit' : String(v)) : `${v[0]} × ${v[1]}`;
const same = (a: Value, b: Value) => JSON.stringify(a) === JSON.stringify(b);
/** a holds more than b: a larger number, or a larger buffer or more of them. */
function moreOpen(a: Value, b: Value): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a > b;
  const [an, az] = a as readonly [number, number];
  const [bn, bz] = b as readonly [number, number];
  return az > bz || an * az > bn * bz;
}

const FINDING_KINDS = [
  'more-open-than-nginx',
  'applies-what-nginx-refuses',
  'serves-what-ingress-nginx-denies',
] as const;

interface Judged {
  c: Case;
  nginx: NginxSide;
  keepip: KeepipRead;
  fallback: Value;
  /** null: equal. */
  kind: string | null;
}

function judge(c: Case, n: NginxSide, o: Observed): Judged {
  const k = o.read;
  const result = (kind: string | null): Judged => ({ c, nginx: n, keepip: k, fallback: o.fallback, kind });
  const larger = c.spec.open === 'larger';
  if (n.kind === 'denied') return result(k.denied ? null : 'serves-what-ingress-nginx-denies');
  if (n.kind === 'refused') {
    if (k.denied) return result(null);
    if (k.reported && same(k.v, o.fallback)) return result(null);
    if (larger && moreOpen(k.v, o.fallback)) return result('applies-what-nginx-refuses');
    return result(k.reported ? 'refused-reported-other' : 'refused-served-silently');
  }
  if (k.denied) return result('denied-what-nginx-serves');
  if (same(k.v, n.v)) return result(null);
  if (larger && moreOpen(k.v, n.v)) return result('more-open-than-nginx');
  if (!larger) return result(k.reported ? 'differs-reported' : 'differs-silently');
  return result(k.reported ? 'stricter-reported' : 'stricter-silently');
}

function describeCase(j: Judged): string {
  const n = j.nginx;
  const ngx =
    n.kind === 'applies'
      ? `nginx ${showValue(n.v)}${n.line ? ` (${JSON.stringify(j.c.token)})` : ' (no line)'}`
      : n.kind === 'refused'
        ? `nginx refuses ${JSON.stringify(
            j.c.spec
              .render(j.c.token!)
              .map((p) => p.text)
              .join(' '),
          )}: ${n.why}`
        : `ingress-nginx refuses the Ingress`;
  const k = j.keepip;
  const kp = k.denied
    ? 'keepip denies'
    : `keepip ${showValue(k.v)}${k.reported ? ' (reported)' : ' (silently)'}`;
  return `${label(j.c.spec)} ${JSON.stringify(j.c.value)}: ${ngx}; ${kp}`;
}

/** What a table row says was seen: the nginx side and keepip's, in a word each. */
function observation(j: Judged): { nginx: string; keepip: string } {
  const n = j.nginx;
  return {
    nginx: n.kind === 'applies' ? showValue(n.v) : n.kind,
    keepip: j.keepip.denied ? 'denied' : `${showValue(j.keepip.v)}${j.keepip.reported ? ' reported' : ''}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Differences that are not findings: ALLOWED (acceptable, with the reason) and COMPAT (compatibility
// differences reported, never more open). Each row pins one case: what nginx and keepip do with it.

interface Row {
  id: string;
  kinds: readonly string[];
  /** The keys (labels) it covers; '*' all. */
  keys: readonly string[] | '*';
  when?: (j: Judged) => boolean;
  reason: string;
  example: { key: string; value: string; nginx: string; keepip: string };
}

const trimmed = (j: Judged) => j.c.value.trim();
/** A form Go's ParseInt base 0 reads that keepip refuses (0x, 0o, 0b, `_`, -0), reported. */
const goLiteral = (j: Judged) =>
  j.c.spec.source === 'configmap' &&
  j.keepip.reported &&
  (/^[+-]?0[xXoObB]|_/.test(trimmed(j)) || trimmed(j) === '-0');
const MORE = 'more-open-than-nginx';

const ALLOWED: Row[] = [
  {
    id: 'go-literal',
    kinds: [MORE, 'stricter-reported', 'differs-reported'],
    keys: '*',
    when: goLiteral,
    reason:
      "Go's other literal forms (0x10, 0o17, 0b11, 1_0, -0), which mapstructure's ParseInt base 0 reads: keepip refuses them with a warning and keeps the default, as configmap-validation-ingress-nginx.test.ts ALLOWS (no one writes a timeout in hexadecimal)",
    example: { key: 'client-header-timeout', value: '0x10', nginx: '16000', keepip: '60000 reported' },
  },
  {
    id: 'blank',
    kinds: [
      MORE,
      'stricter-silently',
      'stricter-reported',
      'differs-silently',
      'differs-reported',
      'refused-served-silently',
    ],
    keys: '*',
    when: (j) => j.c.spec.source === 'configmap' && trimmed(j) === '',
    reason:
      'a blank value: mapstructure decodes "" as 0 for a number (nginx then has no keep-alive, times out at once, takes no HTTP/2 stream) and ingress-nginx writes "" for a string (nginx refuses the line); keepip reads blank as absent, as configmap-validation-ingress-nginx.test.ts ALLOWS',
    example: { key: 'keep-alive', value: '', nginx: '0', keepip: '75000 reported' },
  },
  {
    id: 'zero-documented',
    kinds: [MORE, 'stricter-silently'],
    keys: [
      'client-header-timeout',
      'client-body-timeout',
      'proxy-stream-timeout',
      'ssl-session-timeout',
      'max-worker-connections',
      'proxy-stream-next-upstream-tries',
      'http2-max-concurrent-streams',
    ],
    when: (j) => trimmed(j) === '0' || (j.nginx.kind === 'applies' && j.nginx.v === 0),
    reason:
      'documented (docs/ingress-nginx-compat.md): client-header/body-timeout "`0` is refused with a warning", proxy-stream-timeout "An nginx time above 0", ssl-session-timeout "1s to 7d", max-worker-connections "`0` is no limit", proxy-stream-next-upstream-tries "Tries `0` (nginx: no limit) is each endpoint once"; http2-max-concurrent-streams 0 makes nginx refuse every stream (configmap-validation ALLOWS it). nginx\'s own 0 ends a client deadline AT ONCE (checked end to end below), not "never", as the doc\'s reason has it',
    example: { key: 'client-header-timeout', value: '0', nginx: '0', keepip: '60000 reported' },
  },
  {
    id: 'beyond-any-limit',
    kinds: [MORE],
    keys: [
      'limit-rate',
      'proxy-next-upstream-timeout',
      'annotation limit-rate',
      'annotation proxy-next-upstream-timeout',
    ],
    when: (j) => j.keepip.reported && j.nginx.kind === 'applies' && (j.nginx.v as number) >= 1e12,
    reason:
      'nginx takes 10^14 bytes a second or 3000 years, which limit nothing; keepip refuses the value with a warning and applies none',
    example: {
      key: 'limit-rate',
      value: '99999999999',
      nginx: '102399999998976',
      keepip: 'no limit reported',
    },
  },
  {
    id: 'header-buffer-range',
    kinds: [MORE],
    keys: ['client-header-buffer-size'],
    when: (j) => j.keepip.reported,
    reason:
      'documented: client-header-buffer-size "A size from 1k to 1m; anything else keeps 1k, with a warning"; a smaller first buffer only sends longer lines to the large buffers in nginx (the limits are large-client-header-buffers\')',
    example: { key: 'client-header-buffer-size', value: '100', nginx: '100', keepip: '1024 reported' },
  },
  {
    id: 'limit-fails-closed',
    kinds: ['denied-what-nginx-serves'],
    keys: ['annotation limit-rps', 'annotation limit-rpm', 'annotation limit-connections'],
    reason:
      "a limit keepip cannot apply (negative, above 10^9, or limit-connections above nginx's 65535) denies the locations (503), as docs/ingress-nginx-compat.md has it for one that is not a whole number; ingress-nginx drops a negative limit (the Ingress served unlimited) and takes a huge one: keepip is the closed one",
    example: { key: 'annotation limit-rps', value: '-5', nginx: 'no limit', keepip: 'denied' },
  },
  {
    id: 'burst-narrow',
    kinds: ['stricter-reported', 'refused-reported-other'],
    keys: ['annotation limit-burst-multiplier'],
    reason:
      'README: "an unreadable CORS or burst value takes the narrow reading, never ingress-nginx\'s wider default": 1 × the limit (warned) where ingress-nginx takes 5, or refuses the configuration for a burst of 0 or less',
    example: { key: 'annotation limit-burst-multiplier', value: '1.5', nginx: '10', keepip: '2 reported' },
  },
  // bytes-suffix (proxy-body-size "8b" was 8 bytes, silently): since session 29 nginx's own 1m with a
  // warning, as the template writes no line for it.
  {
    id: 'range',
    kinds: ['stricter-reported', 'differs-reported'],
    keys: '*',
    when: (j) => j.keepip.reported,
    reason:
      'keepip refuses, with a warning, a value outside the range it takes (a timeout above a day, a buffer above 1m, a count nobody means) and its default applies: it holds less than nginx would, or the key holds nothing a client can use (a backend keep-alive pool, a log level, the worker count)',
    example: { key: 'keep-alive', value: '99999999999', nginx: '99999999999000', keepip: '75000 reported' },
  },
];

const COMPAT: Row[] = [
  // Fixed in session 29 (parseNginxTimeMs is ngx_parse_time on the one argument, blanks as nginx's
  // lexer): unicode-space (`5s\u00a0` taken after JavaScript's trim) and time-syntax-neutral (the
  // FINDING time-syntax's values on upstream-keepalive-time, or no longer than the default).
  // Fixed in session 29 (sizes as ngx_parse_size reads the arguments nginx's lexer makes: src/k8s/
  // values.ts parseNginxBufferSize, src/config/nginx-token.ts nginxArguments): session-cache-size (under
  // 32k, a g unit, a leading space were taken silently) and b-unit (`4 1024b` was 4 × 1024).
  // Fixed in session 29 (src/k8s/access-annotations.ts): burst-zero (limit-burst-multiplier 0 was 5,
  // silently: now the narrow 1 with a warning, the ALLOWED row burst-narrow) and conn-limit-range
  // (limit-connections above 65535 applied: now the locations are denied, as limit-fails-closed).
  {
    id: 'http2-max-requests-obsolete',
    kinds: ['stricter-silently'],
    keys: ['http2-max-requests'],
    reason:
      'nginx 1.22 warns `http2_max_requests` obsolete and ignores it (keepalive_requests, 1000, ends HTTP/2 connections); keepip applies it: fewer requests per connection here (the FINDING is the larger side)',
    example: { key: 'http2-max-requests', value: '5', nginx: '1000', keepip: '5' },
  },
  // Fixed in session 29: stream-responses-atoi (proxy-stream-responses with strconv.Atoi, 010 is 10),
  // http-version-trimmed (the annotation trimmed as ValidateOptions), flag-case (the ConfigMap's
  // proxy-request-buffering read on/off without case, as nginx).
  {
    id: 'shutdown-zero',
    kinds: ['stricter-silently'],
    keys: ['worker-shutdown-timeout'],
    reason:
      'nginx sets no shutdown timer for `worker_shutdown_timeout 0`: old workers wait for every connection; keepip drains for 0 ms',
    example: { key: 'worker-shutdown-timeout', value: '0', nginx: 'no limit', keepip: '0' },
  },
  // validator-whitespace-stricter (an annotation size with a tab around it taken, trimmed): since
  // session 29 refused as ingress-nginx's validator refuses it, the ConfigMap's applies.
];

function rowOf(table: readonly Row[], j: Judged): Row | undefined {
  return table.find(
    (r) =>
      r.kinds.includes(j.kind!) &&
      (r.keys === '*' || r.keys.includes(label(j.c.spec))) &&
      (r.when === undefined || r.when(j)),
  );
}

/** The findings, by cause: what is seen, and where in src the cause is. */
interface FindingGroup {
  id: string;
  kind: (typeof FINDING_KINDS)[number];
  match: (j: Judged) => boolean;
  title: string;
  cause: string;
  /** Fixed: how (its test then asserts none is seen, as the other kinds' test does). */
  fixed?: string;
}

const keyIs =
  (...keys: string[]) =>
  (j: Judged) =>
    keys.includes(label(j.c.spec));

const FINDING_GROUPS: FindingGroup[] = [
  {
    id: 'time-syntax',
    kind: 'applies-what-nginx-refuses',
    match: (j) => j.c.spec.family === 'msec' || j.c.spec.family === 'sec',
    title:
      'worker-shutdown-timeout, proxy-stream-timeout, proxy-stream-next-upstream-timeout, ssl-session-timeout: a time nginx refuses (the configuration is not loaded) is a longer deadline in keepip, silently',
    cause:
      'src/config/duration.ts parseNginxTimeMs (read by src/k8s/scalar-readers.ts readNginxTime and tls-sessions.ts readTimeout): it sums unit groups in any order and repeated (30m1h, 83s33d), takes several words (`1h 30m`: ingress-nginx writes it unquoted, so nginx sees two arguments and refuses the directive) and y and M where nginx reads milliseconds (ngx_parse_time starts those at the month: 1y, 1M refused)',
    fixed:
      'session 29: parseNginxTimeMs is ngx_parse_time step for step (units in decreasing order, y and M only in seconds, int64 bounds) on the one argument ingress-nginx writes (a blank inside is two arguments: refused); a refused time keeps the default, with a warning',
  },
  {
    id: 'backend-deadline-zero',
    kind: 'more-open-than-nginx',
    match: keyIs(
      'proxy-connect-timeout',
      'proxy-read-timeout',
      'proxy-send-timeout',
      'annotation proxy-connect-timeout',
      'annotation proxy-read-timeout',
      'annotation proxy-send-timeout',
    ),
    title:
      'proxy-connect/read/send-timeout "0" (ConfigMap and annotation): nginx answers 504 at once (its timer of 0 expires), keepip waits without a deadline',
    cause:
      'src/k8s/annotations.ts seconds() takes 0 (range 0-86400); the gateway reads 0 as no timer: src/gateway/h1-client.ts:260, 291 (socket.setTimeout(0) disables it), src/gateway/proxy.ts:354 (sendTimeoutMs <= 0: no send timer)',
    fixed:
      "session 29: src/k8s/annotations.ts backendDeadlineMs reads 0 s as Node's shortest timer (1 ms), for the ConfigMap keys and the annotations: a backend that never answers is 504 at once, as in nginx",
  },
  {
    id: 'zero-bytes-no-limit',
    kind: 'more-open-than-nginx',
    match: (j) => /proxy-body-size$/.test(label(j.c.spec)) && /^0+b$/i.test(trimmed(j)),
    title:
      'proxy-body-size "0b" (ConfigMap and annotation): ingress-nginx writes no client_max_body_size (isValidByteSize has no b), so nginx\'s 1m applies; keepip reads 0 bytes, its "no limit": a body of any size',
    cause:
      'src/k8s/values.ts:130 parseNginxSize takes a b suffix, and 0 is "no limit" (src/k8s/annotations.ts readProxyLimitKeys / proxyBodySize); ingress-nginx\'s template only writes sizes isValidByteSize takes (^\\d+[kKmMgG]?$)',
    fixed:
      "session 29: src/k8s/values.ts parseWrittenBodySize: what isValidByteSize would not write ('0b', '8b', '1 m') is nginx's own 1m, with a warning",
  },
  {
    id: 'size-annotation-whitespace',
    kind: 'more-open-than-nginx',
    match: keyIs('annotation proxy-body-size', 'annotation client-body-buffer-size'),
    title:
      'annotation proxy-body-size / client-body-buffer-size: "1 m" writes no line in ingress-nginx (nginx applies its own 1m) where keepip warns and applies the ConfigMap\'s (larger) size; a tab or line break around the size ("445M\\t") is refused by ingress-nginx\'s validator (the ConfigMap\'s size applies) where keepip trims it and applies the size, silently',
    cause:
      "src/k8s/annotations.ts proxyBodySize and src/k8s/body-buffering.ts parseBufferSize: parseNginxSize / SIZE after trim() (src/k8s/values.ts:130) of every white space, where parser.ValidateRegex(SizeRegex, true) removes spaces only, and the template writes client_max_body_size / client_body_buffer_size only when isValidByteSize takes the trimmed value (else no line: nginx's 1m, not the ConfigMap's)",
    fixed:
      "session 29: the annotations go through ingress-nginx's validator first (isIngressNginxAnnotationSize: spaces removed, nothing else), then proxy-body-size through what the template writes (parseWrittenBodySize: else nginx's own 1m)",
  },
  {
    id: 'keep-alive-requests-zero',
    kind: 'more-open-than-nginx',
    match: keyIs('keep-alive-requests'),
    title:
      'keep-alive-requests "0": nginx keeps no connection alive (`keepalive_requests 0`: each response closes its connection); keepip refuses 0 with a warning and keeps 1000',
    cause: 'src/k8s/http2-settings.ts applyHttp2Settings: keep-alive-requests read in [1, 1000000]',
    fixed:
      'session 29: keep-alive-requests is read in [0, 1000000]; 0 ends each connection after its first request',
  },
  {
    id: 'http2-max-requests-obsolete',
    kind: 'more-open-than-nginx',
    match: keyIs('http2-max-requests'),
    title:
      'http2-max-requests above keep-alive-requests: nginx (>= 1.19.7, so ingress-nginx\'s too) warns the directive obsolete and ends an HTTP/2 connection after keepalive_requests; keepip lets it carry http2-max-requests streams (docs/ingress-nginx-compat.md says "0 (keep-alive-requests applies)" as if a set value applied)',
    cause: 'src/k8s/http2-settings.ts applyHttp2Settings: maxRequests = http2-max-requests when set',
    fixed:
      'session 29: src/k8s/http2-settings.ts http2MaxRequests: a lower http2-max-requests is honoured (as ingress-nginx documents it), a higher one is keep-alive-requests (as its nginx does)',
  },
  {
    id: 'header-buffers-below-1k',
    kind: 'more-open-than-nginx',
    match: keyIs('large-client-header-buffers'),
    title:
      'large-client-header-buffers "4 512": nginx takes buffers of 512 bytes (at least connection_pool_size); keepip refuses a size under 1k with a warning and applies 4 8k',
    cause: 'src/k8s/annotations.ts readLargeClientHeaderBuffers: size < 1024 refused',
    fixed:
      'session 29: sizes from 512 (connection_pool_size) are taken, and a head fits as nginx packs it into its buffers (src/gateway/h1-head-buffers.ts; header-buffers-differential-nginx sends random heads to both)',
  },
];

function groupOf(j: Judged): FindingGroup | undefined {
  return FINDING_GROUPS.find((g) => g.kind === j.kind && g.match(j));
}

// ---------------------------------------------------------------------------------------------
// The JavaScript model of test/k8s/configmap-validation-ingress-nginx.test.ts against real nginx
// (copied: a test file cannot be imported without running its tests): INT_KEYS' `nginxMin: 0` ("The
// range nginx accepts for the directive; outside it, nginx -t fails", :393-469) and nginxSize
// (proxy-body-size, :615-621: 'refused' for what is not digits and one of k K m M g G).

const MODEL_INT_KEYS = [
  'proxy-connect-timeout',
  'proxy-read-timeout',
  'client-header-timeout',
  'client-body-timeout',
  'keep-alive',
  'upstream-keepalive-connections',
  'upstream-keepalive-requests',
  'max-worker-connections',
  'http2-max-concurrent-streams',
];

/** configmap-validation-ingress-nginx.test.ts nginxSize, copied. */
function modelNginxSize(value: string): number | 'refused' {
  const w = value.trim().split(/\s+/);
  if (w.length !== 1 || w[0] === '') return 'refused';
  const m = /^([0-9]+)([kKmMgG]?)$/.exec(w[0]!);
  if (!m) return 'refused';
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase()] ?? 1);
}

/** Where that model and nginx disagree (found here, pinned so that the list cannot rot). */
const MODEL_DISAGREEMENTS = [
  // nginxMin: 0 says every n >= 0 is taken: `<n>s` past 2^63 ms is refused (ngx_parse_time)…
  ...[
    'client-body-timeout',
    'client-header-timeout',
    'keep-alive',
    'proxy-connect-timeout',
    'proxy-read-timeout',
  ].map(
    (key) =>
      `configmap-validation-ingress-nginx.test.ts INT_KEYS ${key} nginxMin 0 "9223372036854775807": nginx refuses`,
  ),
  // …and nginx -t cannot allocate a connection cache that large.
  'configmap-validation-ingress-nginx.test.ts INT_KEYS upstream-keepalive-connections nginxMin 0 "99999999999": nginx refuses',
  'configmap-validation-ingress-nginx.test.ts INT_KEYS upstream-keepalive-connections nginxMin 0 "9223372036854775807": nginx refuses',
  // …and a negative count is no line at all (`{{ if gt … 0 }}`), not a refused configuration.
  'configmap-validation-ingress-nginx.test.ts INT_KEYS upstream-keepalive-connections nginxMin 0 "-1": nginx takes (no line)',
  'configmap-validation-ingress-nginx.test.ts INT_KEYS upstream-keepalive-connections nginxMin 0 "-5": nginx takes (no line)',
  // max-worker-connections 0 (and "" and -0) is written as 3/4 of the open-file limit, which nginx takes.
  // nginxSize: a size isValidByteSize refuses is no line (nginx's 1m), not a refused configuration…
  'configmap-validation-ingress-nginx.test.ts nginxSize "": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "+8m": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "0b": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "-1": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "1 m": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "1.5m": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "1t": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "8 m": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "8b": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "8mb": refused, nginx 1048576 (no line)',
  'configmap-validation-ingress-nginx.test.ts nginxSize "8\u212a": refused, nginx 1048576 (no line)',
  // …and a size past off_t is refused by nginx, where the model computes bytes.
  'configmap-validation-ingress-nginx.test.ts nginxSize "99999999999999g": 1.0737418239999893e+23, nginx refuses',
];

function modelDisagreements(judged: readonly Judged[]): string[] {
  const out = new Set<string>();
  for (const j of judged) {
    if (j.c.spec.source !== 'configmap') continue;
    const key = j.c.spec.key;
    if (MODEL_INT_KEYS.includes(key) && j.c.go.kind === 'token' && INT_VALUES.includes(j.c.value)) {
      const n = BigInt(j.c.go.token);
      const model = n >= 0n;
      const nginx = j.nginx.kind === 'applies';
      // max-worker-connections 0 is rendered as the computed count: compare with what Go read.
      if (key === 'max-worker-connections' && goParseInt0(j.c.value) === 0n) continue;
      if (model !== nginx)
        out.add(
          `configmap-validation-ingress-nginx.test.ts INT_KEYS ${key} nginxMin 0 ${JSON.stringify(j.c.value)}: nginx ${nginx ? `takes${j.nginx.kind === 'applies' && !j.nginx.line ? ' (no line)' : ''}` : 'refuses'}`,
        );
    }
    if (key === 'proxy-body-size' && SIZE_VALUES.includes(j.c.value)) {
      const model = modelNginxSize(j.c.value);
      const nginx = j.nginx.kind === 'applies' ? (j.nginx.v as number) : 'refused';
      const modelValue = model === 0 ? NO_LIMIT : model;
      if (modelValue !== nginx && !(model === 'refused' && nginx === 'refused'))
        out.add(
          `configmap-validation-ingress-nginx.test.ts nginxSize ${JSON.stringify(j.c.value)}: ${model}, nginx ${nginx === 'refused' ? 'refuses' : `${nginx}${j.nginx.kind === 'applies' && !j.nginx.line ? ' (no line)' : ''}`}`,
        );
    }
  }
  return [...out].sort();
}

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// nginx -t over every rendered line: started once, first thing, so that it runs while the end-to-end
// part below waits on its deadlines.

interface OracleRun {
  cases: Case[];
  unitOf: Map<number, Unit | null>;
  verdicts: Verdicts & { plan: Plan };
}

let oracleRun: Promise<OracleRun> | undefined;
function oracle(): Promise<OracleRun> {
  oracleRun ??= (async () => {
    assert.ok(existsSync(STREAM_MODULE), `nginx's stream module (${STREAM_MODULE})`);
    const cases = casesOf(SPECS);
    const { units, unitOf } = unitsOf(cases);
    return { cases, unitOf, verdicts: await nginxVerdicts(units) };
  })();
  return oracleRun;
}

// ---------------------------------------------------------------------------------------------
// End to end: a value of the keys whose effect a request shows cheaply, through one real nginx
// (each case its own listener, configured as ingress-nginx renders the value) and keepip gateways
// (one per ConfigMap), each side with its own backend.

interface Backend {
  port: number;
  /** TCP connections the backend accepted. */
  connections(): number;
  /** Resolves once a request for `path` reached the backend. */
  arrived(path: string): Promise<void>;
  close(): Promise<void>;
}

const HTML = `<p>${'x'.repeat(293)}</p>`;

/** `/hang` never answers; `/html` is 300 bytes of HTML; anything else: the HTTP version it was sent in. */
async function startBackend(): Promise<Backend> {
  let accepted = 0;
  const seen = new Set<string>();
  const waiters = new Map<string, () => void>();
  const server = http.createServer((req, res) => {
    seen.add(req.url ?? '');
    waiters.get(req.url ?? '')?.();
    if (req.url?.startsWith('/hang')) return;
    req.resume();
    req.on('end', () => {
      const html = req.url === '/html';
      const body = html ? HTML : `v${req.httpVersion}`;
      res.writeHead(200, {
        'content-type': html ? 'text/html' : 'text/plain',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
  });
  server.on('connection', () => accepted++);
  const tracked = await listenTracked(server);
  return {
    port: tracked.port,
    connections: () => accepted,
    arrived: (path) =>
      seen.has(path) ? Promise.resolve() : new Promise<void>((resolve) => waiters.set(path, resolve)),
    close: tracked.close,
  };
}

interface Target {
  side: 'nginx' | 'keepip';
  port: number;
  host: string;
  backend: Backend;
}

/** One request on a connection of its own: the status (or how it ended). */
async function statusOf(
  t: Target,
  o: { method?: string; path?: string; body?: Buffer; headers?: Record<string, string> } = {},
) {
  const reply = await request(t.port, { host: t.host, ...o }).catch((e: Error) => ({ status: e.message }));
  return String(reply.status);
}

/** GET `path` on a connection of its own: the status, or `no answer within <s> s` (the connection closed then). */
async function answerWithin(t: Target, path: string, ms: number): Promise<string> {
  const c = await openRaw({ host: '127.0.0.1', port: t.port });
  try {
    c.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`);
    const raw = await c.until((b) => framedResponses(b).length >= 1, ms).catch(() => null);
    return raw === null ? `no answer within ${ms / 1000} s` : String(framedResponses(raw)[0]!.status);
  } finally {
    c.destroy();
  }
}

/** Requests on one connection until the server says close (or closes): `close after <n>`, else `open after 3`. */
async function keptAlive(t: Target): Promise<string> {
  const c = await openRaw({ host: '127.0.0.1', port: t.port });
  try {
    for (let n = 1; n <= 3; n++) {
      c.socket.write(`GET / HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`);
      const raw = await c.until((b) => framedResponses(b).length >= n).catch(() => null);
      if (raw === null) return `closed before answer ${n}`;
      const head = framedResponses(raw)[n - 1]!.head;
      if (/\r\nconnection: *close/i.test(head)) return `close after ${n}`;
    }
    return 'open after 3';
  } finally {
    c.destroy();
  }
}

/** Writes `first`; if the server has closed within `graceMs`, `closed`; else writes `rest`: its status. */
async function survives(t: Target, first: string, rest: string, graceMs: number): Promise<string> {
  const c = await openRaw({ host: '127.0.0.1', port: t.port });
  try {
    c.socket.write(first);
    const closed = await c.whenClosed(graceMs).then(
      () => true,
      () => false,
    );
    if (closed) return 'closed';
    c.socket.write(rest);
    const raw = await c.until((b) => framedResponses(b).length >= 1).catch(() => null);
    return raw === null ? 'closed' : `served ${framedResponses(raw)[0]!.status}`;
  } finally {
    c.destroy();
  }
}

/** Sends `payload` and waits (at most 15 s) for the server to close: `closed`, or what it answered. */
async function closesOn(t: Target, payload: string): Promise<string> {
  const c = await openRaw({ host: '127.0.0.1', port: t.port });
  try {
    c.socket.write(payload);
    await c.whenClosed(15_000);
    return 'closed';
  } catch {
    return 'still open after 15 s';
  } finally {
    c.destroy();
  }
}

/** HTTP/2 with prior knowledge: requests one after another on one connection until one fails (at most 6). */
async function h2Streams(t: Target): Promise<string> {
  const session = http2.connect(`http://127.0.0.1:${t.port}`);
  session.on('error', () => {});
  let ok = 0;
  try {
    for (let i = 0; i < 6; i++) {
      const status = await new Promise<number>((resolve) => {
        try {
          const stream = session.request({ ':path': '/', ':authority': t.host });
          stream.on('response', (h) => resolve(Number(h[':status'])));
          stream.on('error', () => resolve(0));
          stream.on('close', () => resolve(0));
          stream.resume();
          stream.end();
        } catch {
          resolve(0);
        }
      });
      if (status !== 200) break;
      ok++;
    }
    return `${ok} streams`;
  } finally {
    session.destroy();
  }
}

interface E2eCase {
  name: string;
  configMap?: Record<string, string>;
  annotations?: Record<string, string>;
  /** nginx: lines of the case's server (http-level lines are written there), location, upstream. */
  server?: string[];
  location?: string[];
  upstream?: string[];
  zone?: string[];
  http2?: true;
  /** The backend is the blackhole (a connect that never completes). */
  blackhole?: true;
  /** A backend of its own on each side (its connections are counted). */
  ownBackend?: true;
  /** No `keepalive` in the upstream (upstream-keepalive-connections 0). */
  noKeepalive?: true;
  probe(t: Target): Promise<string>;
  /** A difference the tables above explain: what each side answers (pinned). */
  allowed?: { nginx: string; keepip: string; why: string };
  /** A FINDING: keepip must answer as nginx does (it does not, now). */
  finding?: string;
}

const big = (n: number) => Buffer.alloc(n, 'a');
const partialHead = (host: string) => `GET / HTTP/1.1\r\nHost: ${host}\r\n`;

const E2E: E2eCase[] = [
  {
    name: 'annotation proxy-body-size "1k": 1025 bytes',
    annotations: { 'proxy-body-size': '1k' },
    location: ['client_max_body_size 1k;'],
    probe: (t) => statusOf(t, { method: 'POST', body: big(1025) }),
  },
  {
    name: 'proxy-body-size "1k": 1025 bytes',
    configMap: { 'proxy-body-size': '1k' },
    location: ['client_max_body_size 1k;'],
    probe: (t) => statusOf(t, { method: 'POST', body: big(1025) }),
  },
  {
    name: 'proxy-body-size "0b": 1.5 MB',
    configMap: { 'proxy-body-size': '0b' },
    // isValidByteSize refuses "0b": no line, nginx's 1m.
    location: [],
    probe: (t) => statusOf(t, { method: 'POST', body: big(1_500_000) }),
  },
  {
    name: 'annotation proxy-body-size "1 m" over the ConfigMap\'s 2m: 1.5 MB',
    configMap: { 'proxy-body-size': '2m' },
    annotations: { 'proxy-body-size': '1 m' },
    // SizeRegex takes "1m" (spaces removed); isValidByteSize refuses "1 m": no line, nginx's 1m.
    location: [],
    probe: (t) => statusOf(t, { method: 'POST', body: big(1_500_000) }),
  },
  {
    name: 'annotation proxy-body-size "2m\\t" over the ConfigMap\'s 1k: 1500 bytes',
    configMap: { 'proxy-body-size': '1k' },
    annotations: { 'proxy-body-size': '2m\t' },
    // SizeRegex refuses the tab (spaces only are removed): the ConfigMap's 1k is the location's.
    location: ['client_max_body_size 1k;'],
    probe: (t) => statusOf(t, { method: 'POST', body: big(1500) }),
  },
  {
    name: 'keep-alive-requests "2"',
    configMap: { 'keep-alive-requests': '2', 'http2-max-requests': '5' },
    server: ['keepalive_requests 2;', 'http2_max_requests 5;'],
    probe: keptAlive,
  },
  {
    name: 'keep-alive-requests "2" with http2-max-requests "5": HTTP/2 streams on one connection',
    configMap: { 'keep-alive-requests': '2', 'http2-max-requests': '5' },
    server: ['keepalive_requests 2;', 'http2_max_requests 5;'],
    http2: true,
    probe: h2Streams,
  },
  {
    name: 'keep-alive-requests "0"',
    configMap: { 'keep-alive-requests': '0' },
    server: ['keepalive_requests 0;'],
    probe: keptAlive,
  },
  {
    name: 'keep-alive "0"',
    configMap: { 'keep-alive': '0' },
    server: ['keepalive_timeout 0s;'],
    probe: keptAlive,
  },
  {
    name: 'keep-alive "1": an idle connection',
    configMap: { 'keep-alive': '1', 'client-header-timeout': '1', 'client-body-timeout': '1' },
    server: ['keepalive_timeout 1s;', 'client_header_timeout 1s;', 'client_body_timeout 1s;'],
    probe: (t) => closesOn(t, `GET / HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`),
  },
  {
    name: 'client-header-timeout "1": half a head',
    configMap: { 'keep-alive': '1', 'client-header-timeout': '1', 'client-body-timeout': '1' },
    server: ['keepalive_timeout 1s;', 'client_header_timeout 1s;', 'client_body_timeout 1s;'],
    probe: (t) => closesOn(t, partialHead(t.host)),
  },
  {
    name: 'client-body-timeout "1": a body that stops',
    configMap: { 'keep-alive': '1', 'client-header-timeout': '1', 'client-body-timeout': '1' },
    server: ['keepalive_timeout 1s;', 'client_header_timeout 1s;', 'client_body_timeout 1s;'],
    probe: (t) => closesOn(t, `POST / HTTP/1.1\r\nHost: ${t.host}\r\nContent-Length: 10\r\n\r\na`),
  },
  {
    name: 'client-header-timeout "0": half a head, the rest 1.5 s later',
    configMap: { 'client-header-timeout': '0' },
    server: ['client_header_timeout 0s;'],
    probe: (t) => survives(t, partialHead(t.host), '\r\n', 1500),
    allowed: {
      nginx: 'closed',
      keepip: 'served 200',
      why: "ALLOWED zero-documented: nginx's 0 ends the connection at once; keepip refuses 0 (warned) and waits its 60 s",
    },
  },
  {
    name: 'annotation proxy-read-timeout "1": a backend that never answers',
    annotations: { 'proxy-read-timeout': '1' },
    location: ['proxy_read_timeout 1s;'],
    probe: (t) => statusOf(t, { path: '/hang' }),
  },
  {
    name: 'annotation proxy-read-timeout "0": a backend that never answers (5 s at most)',
    annotations: { 'proxy-read-timeout': '0' },
    location: ['proxy_read_timeout 0s;'],
    probe: (t) => answerWithin(t, '/hang', 5000),
  },
  {
    name: 'proxy-send-timeout "0", proxy-read-timeout "0": a backend that never answers (5 s at most)',
    configMap: { 'proxy-send-timeout': '0', 'proxy-read-timeout': '0' },
    location: ['proxy_send_timeout 0s;', 'proxy_read_timeout 0s;'],
    probe: (t) => answerWithin(t, '/hang', 5000),
  },
  {
    name: 'proxy-connect-timeout "0": a backend that never accepts (5 s at most)',
    configMap: { 'proxy-connect-timeout': '0' },
    location: ['proxy_connect_timeout 0s;'],
    blackhole: true,
    probe: (t) => answerWithin(t, '/', 5000),
  },
  {
    name: 'proxy-read-timeout "1": a backend that never answers',
    configMap: { 'proxy-read-timeout': '1' },
    location: ['proxy_read_timeout 1s;'],
    probe: (t) => statusOf(t, { path: '/hang' }),
  },
  {
    name: 'annotation proxy-connect-timeout "1": a backend that never accepts',
    annotations: { 'proxy-connect-timeout': '1' },
    location: ['proxy_connect_timeout 1s;'],
    blackhole: true,
    probe: (t) => statusOf(t),
  },
  {
    name: 'large-client-header-buffers "2 1k": a 1500-byte header line',
    configMap: { 'large-client-header-buffers': '2 1k' },
    server: ['large_client_header_buffers 2 1k;'],
    probe: async (t) => {
      const s = await statusOf(t, { headers: { 'x-long': 'a'.repeat(1500) } });
      // nginx answers 400, keepip 431 (docs/ingress-nginx-compat.md: "nginx answers 414 and 400").
      return ['400', '431'].includes(s) ? 'refused' : s;
    },
  },
  {
    name: 'large-client-header-buffers "4 512": two 600-byte header lines',
    configMap: { 'large-client-header-buffers': '4 512' },
    server: ['large_client_header_buffers 4 512;'],
    probe: async (t) => {
      const s = await statusOf(t, { headers: { 'x-a': 'a'.repeat(600), 'x-b': 'b'.repeat(600) } });
      return ['400', '431'].includes(s) ? 'refused' : s;
    },
  },
  {
    name: 'limit-req-status-code "429", limit-rpm "1", limit-burst-multiplier "1": three requests',
    configMap: { 'limit-req-status-code': '429' },
    annotations: { 'limit-rpm': '1', 'limit-burst-multiplier': '1' },
    zone: ['limit_req_zone $binary_remote_addr zone=ZONE:1m rate=1r/m;'],
    server: ['limit_req_status 429;'],
    location: ['limit_req zone=ZONE burst=1 nodelay;'],
    probe: async (t) => {
      const out: string[] = [];
      for (let i = 0; i < 3; i++) out.push(await statusOf(t));
      return out.join(',');
    },
  },
  {
    name: 'limit-conn-status-code "429", limit-connections "1": a second request while one is in flight',
    configMap: { 'limit-conn-status-code': '429' },
    annotations: { 'limit-connections': '1' },
    zone: ['limit_conn_zone $binary_remote_addr zone=ZONE:1m;'],
    server: ['limit_conn_status 429;'],
    location: ['limit_conn ZONE 1;'],
    ownBackend: true,
    probe: async (t) => {
      const held = await openRaw({ host: '127.0.0.1', port: t.port });
      try {
        held.socket.write(`GET /hang HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`);
        await t.backend.arrived('/hang');
        return await statusOf(t);
      } finally {
        held.destroy();
      }
    },
  },
  {
    name: 'use-gzip with gzip-min-length "0400" (octal 256): a 300-byte page',
    configMap: { 'use-gzip': 'true', 'gzip-min-length': '0400' },
    server: [
      'gzip on;',
      'gzip_comp_level 1;',
      'gzip_http_version 1.1;',
      'gzip_min_length 256;',
      'gzip_types text/html;',
      'gzip_proxied any;',
      'gzip_vary on;',
    ],
    probe: async (t) => {
      const reply = await request(t.port, {
        host: t.host,
        path: '/html',
        headers: { 'accept-encoding': 'gzip' },
      });
      return `${reply.status} ${reply.headers['content-encoding'] ?? 'identity'}`;
    },
  },
  {
    name: 'upstream-keepalive-requests "1": two requests, the backend\'s connections',
    configMap: { 'upstream-keepalive-requests': '1' },
    ownBackend: true,
    upstream: ['keepalive_requests 1;'],
    probe: async (t) => {
      const before = t.backend.connections();
      await statusOf(t);
      await statusOf(t);
      return `${t.backend.connections() - before} backend connections`;
    },
  },
  {
    name: 'upstream-keepalive-connections "0": two requests, the backend\'s connections',
    configMap: { 'upstream-keepalive-connections': '0' },
    // `{{ if gt … 0 }}`: no keepalive line in upstream_balancer.
    noKeepalive: true,
    ownBackend: true,
    probe: async (t) => {
      const before = t.backend.connections();
      await statusOf(t);
      await statusOf(t);
      return `${t.backend.connections() - before} backend connections`;
    },
  },
  {
    name: 'annotation proxy-http-version "1.0": what the backend gets',
    annotations: { 'proxy-http-version': '1.0' },
    location: ['proxy_http_version 1.0;'],
    probe: async (t) => (await request(t.port, { host: t.host })).body,
  },
];

/**
 * The times the transcribed ngx_parse_time takes (in a line of a msec or sec key), without `ms`, which
 * `expires` (seconds) does not read: nginx reads each back as `Cache-Control: max-age=<seconds>`.
 */
function modelTimes(): [string, number][] {
  const out = new Map<string, number>();
  for (const c of casesOf(SPECS)) {
    if ((c.spec.family !== 'msec' && c.spec.family !== 'sec') || c.token === null) continue;
    const parts = c.spec.render(c.token);
    if (parts.length !== 1) continue;
    const arg = words(parts[0]!.text.replace(/[ \t\r\n]*;$/, ''))
      .slice(1)
      .join(' ');
    const ms = (c.spec.family === 'sec' ? sec : msec)(arg);
    if (ms !== null && ms > 0 && ms < 1e12 && !arg.includes('ms')) out.set(arg, ms);
  }
  return [...out];
}

function e2eServer(c: E2eCase, i: number, port: number, backend: number): string {
  const has = (lines: string[] | undefined, directive: string) =>
    (lines ?? []).some((l) => words(l)[0] === directive);
  const location = [
    ...(has(c.location, 'proxy_http_version') ? [] : ['proxy_http_version 1.1;']),
    'proxy_set_header Connection "";',
    'proxy_set_header Host $host;',
    ...(c.location ?? []),
  ];
  return [
    ...(c.zone ?? []).map((l) => l.replaceAll('ZONE', `e${i}`)),
    `upstream e${i} { server 127.0.0.1:${backend};${c.noKeepalive ? '' : ' keepalive 320;'} ${(c.upstream ?? []).join(' ')} }`,
    `server { listen 127.0.0.1:${port}${c.http2 ? ' http2' : ''}; server_name _;`,
    ...(c.server ?? []),
    `  location / { proxy_pass http://e${i}; ${location.map((l) => l.replaceAll('ZONE', `e${i}`)).join(' ')} }`,
    '}',
  ].join('\n');
}

describe('end to end: keepip and nginx answer a request the same for a value of each cheap key', () => {
  const results = new Map<number, { nginx: string; keepip: string }>();
  const expires: { token: string; model: number; seen: string }[] = [];
  const closers: (() => Promise<void> | void)[] = [];

  before(async () => {
    // nginx -t of every line runs meanwhile (its failure is the other describe's to report).
    oracle().catch(() => {});
    const [nginxBackend, keepipBackend] = await Promise.all([startBackend(), startBackend()]);
    closers.push(nginxBackend.close, keepipBackend.close);
    const hole: Blackhole = await startBlackhole();
    closers.push(() => hole.close());
    const own = new Map<number, { nginx: Backend; keepip: Backend }>();
    for (const [i, c] of E2E.entries()) {
      if (!c.ownBackend) continue;
      const pair = { nginx: await startBackend(), keepip: await startBackend() };
      closers.push(pair.nginx.close, pair.keepip.close);
      own.set(i, pair);
    }
    const backendOf = (i: number, side: 'nginx' | 'keepip') =>
      own.get(i)?.[side] ?? (side === 'nginx' ? nginxBackend : keepipBackend);
    const portOf = (i: number, side: 'nginx' | 'keepip') =>
      E2E[i]!.blackhole ? hole.port : backendOf(i, side).port;
    // expires: the times nginx took, read back as max-age (seconds).
    const times = modelTimes();
    const ngx: RunningNginx = await startNginx({
      freePorts: E2E.length + 1,
      http: (_dir, ports) =>
        [
          'access_log off;',
          ...E2E.map((c, i) => e2eServer(c, i, ports[i]!, portOf(i, 'nginx'))),
          `server { listen 127.0.0.1:${ports[E2E.length]}; server_name _;`,
          ...times.map(([token], i) => `  location = /t${i} { expires ${token}; return 204; }`),
          '}',
        ].join('\n'),
      waitFor: (ports) => ports.map((port) => ({ host: '127.0.0.1', port })),
    });
    closers.push(() => ngx.stop());
    // keepip: a gateway per ConfigMap, an Ingress per case (host e<i>.test).
    const byConfigMap = new Map<string, number[]>();
    E2E.forEach((c, i) => {
      const k = JSON.stringify(c.configMap ?? {});
      byConfigMap.set(k, [...(byConfigMap.get(k) ?? []), i]);
    });
    const gateways = new Map<number, TestGateway>();
    await Promise.all(
      [...byConfigMap].map(async ([data, indexes]) => {
        const objects: K8sObject[] = [
          controllerConfigMap(JSON.parse(data) as Record<string, string>),
          ...indexes.flatMap((i) => [
            ...serviceWithEndpoints({ name: `s${i}`, ports: [portOf(i, 'keepip')] }),
            ingress({
              name: `e${i}`,
              host: `e${i}.test`,
              annotations: E2E[i]!.annotations ?? {},
              paths: [{ path: '/', service: `s${i}`, port: 80 }],
            }),
          ]),
        ];
        const topology = topologyOf(objects);
        const gw = await startTestGateway(topology);
        closers.push(() => gw.close());
        for (const i of indexes) gateways.set(i, gw);
      }),
    );
    await Promise.all([
      ...E2E.map(async (c, i) => {
        const host = `e${i}.test`;
        const [n, k] = await Promise.all([
          c.probe({ side: 'nginx', port: ngx.ports[i]!, host, backend: backendOf(i, 'nginx') }),
          c.probe({ side: 'keepip', port: gateways.get(i)!.httpPort, host, backend: backendOf(i, 'keepip') }),
        ]);
        results.set(i, { nginx: n, keepip: k });
      }),
      mapLimited(times, 8, async ([token, ms], i) => {
        const reply = await request(ngx.ports[E2E.length]!, { path: `/t${i}` });
        const seen = /max-age=(\d+)/.exec(String(reply.headers['cache-control'] ?? ''))?.[1] ?? '(none)';
        expires.push({ token, model: ms / 1000, seen });
      }),
    ]);
  });

  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  test('nginx reads each time the transcribed ngx_parse_time takes as it does (`expires <time>`: max-age)', () => {
    const wrong = expires
      .filter((e) => String(e.model) !== e.seen)
      .map((e) => `${JSON.stringify(e.token)}: model ${e.model} s, nginx ${e.seen}`);
    assert.deepEqual(wrong, []);
    assert.ok(expires.length >= 10, `${expires.length} times`);
  });

  E2E.forEach((c, i) => {
    test(`${c.name}${c.finding ? ' [OPEN FINDING]' : c.allowed ? ' [ALLOWED]' : ''}`, () => {
      const r = results.get(i)!;
      if (c.allowed) {
        assert.deepEqual(r, { nginx: c.allowed.nginx, keepip: c.allowed.keepip }, c.allowed.why);
        return;
      }
      // An open finding (session 28's closing note) is pinned as still seen, as the ALLOWED rows are:
      // when it is fixed this fails, and the case goes back to asserting keepip answers as nginx.
      if (c.finding) assert.notEqual(r.keepip, r.nginx, `FINDING ${c.finding} is fixed: drop its [OPEN] pin`);
      else assert.equal(r.keepip, r.nginx, 'keepip answers as nginx');
    });
  });
});

describe('scalar values: keepip against real nginx 1.22 as ingress-nginx renders them', () => {
  const judged: Judged[] = [];
  const findings: Findings = new Map();
  const modelErrors: string[] = [];
  let verdicts: Verdicts & { plan: Plan };

  before(async () => {
    const run = await oracle();
    const { cases, unitOf } = run;
    verdicts = run.verdicts;
    const keepip = keepipSide(cases);
    for (const c of cases) {
      const unit = unitOf.get(c.id)!;
      if (unit !== null && c.token !== null) {
        const accepted = !verdicts.refused.has(unit.id);
        const model = c.spec.meaning(c.token, verdicts.obsolete.has(unit.id)) !== null;
        if (accepted !== model) {
          modelErrors.push(
            `${label(c.spec)} ${JSON.stringify(c.token)}: nginx ${accepted ? 'takes' : `refuses (${verdicts.refused.get(unit.id)})`}, the model ${model ? 'takes' : 'refuses'}`,
          );
          continue;
        }
      }
      const j = judge(c, nginxSide(c, unit, verdicts), keepip.get(c.id)!);
      judged.push(j);
      if (j.kind === null || rowOf(ALLOWED, j) || rowOf(COMPAT, j)) continue;
      note(findings, groupOf(j)?.id ?? j.kind, describeCase(j));
    }
  });

  test("nginx's readers as transcribed (ngx_parse_time, _size, _offset, ngx_atoi, bounds) agree with nginx -t on every line", () => {
    assert.deepEqual(modelErrors, []);
  });

  test('lines of one nginx reader answer as the line their argument was put to nginx in', () => {
    const differ = verdicts.plan.checks
      .filter(([u, rep]) => verdicts.refused.has(u.id) !== verdicts.refused.has(rep.id))
      .map(
        ([u, rep]) =>
          `${u.parts[0]!.text} (${verdicts.refused.get(u.id) ?? 'taken'}) vs ${rep.parts[0]!.text}`,
      );
    assert.deepEqual(differ, []);
    assert.ok(verdicts.plan.checks.length > 20, `${verdicts.plan.checks.length} checks`);
  });

  // Open (session 28's closing note): pinned as still seen; when fixed this fails, and the group is
  // marked `fixed`, which asserts none is seen.
  for (const g of FINDING_GROUPS)
    if (g.fixed)
      test(`found here, fixed: ${g.id}: ${g.title.split(':')[0]} (none more open than nginx)`, () => {
        assert.equal(count(findings, [g.id]), 0, `${g.title}\n${show(findings, [g.id], 20)}`);
      });
    else
      test(`OPEN FINDING ${g.id}: ${g.title.split(':')[0]} (keepip more open than nginx; still seen)`, () => {
        assert.ok(
          count(findings, [g.id]) > 0,
          `FINDING ${g.id} (${g.kind}) is no longer seen: mark it fixed\n${g.title}`,
        );
      });

  test('no other value nginx refuses, or applies smaller, is more open in keepip; none ingress-nginx refuses the Ingress for is served', () => {
    assert.equal(count(findings, FINDING_KINDS), 0, show(findings, FINDING_KINDS, 40));
  });

  test('every other difference is a row of the ALLOWED or COMPAT table', () => {
    const known = new Set<string>([...FINDING_KINDS, ...FINDING_GROUPS.map((g) => g.id)]);
    const unexplained = [...findings.keys()].filter((k) => !known.has(k));
    assert.deepEqual(unexplained, [], `unexplained differences:\n${show(findings, unexplained, 20)}`);
  });

  for (const [name, table] of [
    ['ALLOWED', ALLOWED],
    ['COMPAT', COMPAT],
  ] as const) {
    test(`${name}: each row is still what is seen`, () => {
      const wrong: string[] = [];
      for (const row of table) {
        const j = judged.find((x) => label(x.c.spec) === row.example.key && x.c.value === row.example.value);
        if (j === undefined) {
          wrong.push(`${row.id}: no case ${row.example.key} ${JSON.stringify(row.example.value)}`);
          continue;
        }
        const seen = observation(j);
        if (seen.nginx !== row.example.nginx || seen.keepip !== row.example.keepip)
          wrong.push(
            `${row.id} ${row.example.key} ${JSON.stringify(row.example.value)}: expected nginx ${row.example.nginx}, keepip ${row.example.keepip}; seen nginx ${seen.nginx}, keepip ${seen.keepip}`,
          );
        if (j.kind === null || rowOf(table, j) !== row)
          wrong.push(`${row.id}: its example is judged ${j.kind}`);
      }
      assert.deepEqual(wrong, []);
    });
  }

  test('where the JS model of configmap-validation-ingress-nginx.test.ts disagrees with nginx is the known list', () => {
    assert.deepEqual(modelDisagreements(judged), [...MODEL_DISAGREEMENTS].sort());
  });

  test('the comparison is not vacuous', (t) => {
    const refused = judged.filter((j) => j.nginx.kind === 'refused').length;
    const noLine = judged.filter((j) => j.nginx.kind === 'applies' && !j.nginx.line).length;
    const equal = judged.filter((j) => j.kind === null).length;
    const keys = new Set(judged.map((j) => label(j.c.spec))).size;
    t.diagnostic(
      `seed ${SEED}: ${judged.length} cases over ${keys} keys, ${verdicts.runs} nginx -t runs; nginx refused ${refused}, wrote no line for ${noLine}; equal ${equal}`,
    );
    assert.equal(keys, SPECS.length);
    assert.ok(refused > 50 && noLine > 20 && equal > 300, JSON.stringify({ refused, noLine, equal }));
  });
});
