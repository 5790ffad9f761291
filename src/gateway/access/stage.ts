// The access stage of a location with rate limits or auth, in nginx's phase order:
//   a location ingress-nginx would deny (unusable auth config): 503;
//   preaccess: limit_req (limit-rps, limit-rpm), then limit_conn (limit-connections), keyed by the
//     resolved client address, limit-allowlist exempt: limit-req-status-code / limit-conn-status-code;
//   access: the source-range verdict, basic auth, external auth, combined by `satisfy`:
//     all: the first refusal answers (403, 401, the auth service's 401/403, 500);
//     any: an allowlist match or a passed auth admits; otherwise 401 if any check said 401, else 403.
//     block-cidrs and denylist matches always refuse (keepip: deny beats satisfy any, too).
//   A final 401 with auth-signin becomes a 302 to the sign-in URL (nginx's error_page 401).
// The caller gets true (admitted now), false (answered), or 'pending' (basic auth's hash or the auth
// subrequest is running): then it is resumed through `resume` or answered through `respond`.
import { createHash } from 'node:crypto';
import type { LocationAccessModel } from '../../config/model.ts';
import { clientVariablesOf } from '../../config/nginx-variables.ts';
import type { AccessDecision } from '../../net/access-policy.ts';
import { CidrSet } from '../../net/cidr-set.ts';
import { requestContext } from '../error-log.ts';
import type { Exchange, GatewayRequest, HandlerContext } from '../exchange.ts';
import { shownClient } from '../request-log.ts';
import { basicChallenge, checkBasicAuth } from './basic-auth.ts';
import {
  AuthAnswerCache,
  buildSubrequest,
  authCacheTtl,
  cacheTimes,
  type ExternalAuthOutcome,
  interpretAnswer,
  sendSubrequest,
  signinLocation,
} from './external-auth.ts';
import { expandVariables, type RequestVars } from './nginx-vars.ts';
import { type PasswordVerifier, sharedPasswordVerifier } from './password-verifier.ts';
import {
  type ConnectionLimit,
  checkLimits,
  type LimiterFailure,
  type LimiterStore,
  type LimitVerdict,
  MemoryLimiterStore,
  type RequestLimit,
  type SharedLimiter,
} from './rate-limit.ts';
import type { AccessState } from './state.ts';

/** State that outlives snapshots: limiter buckets, the password pool, cached auth answers. */
export interface AccessRuntime {
  limiter: LimiterStore;
  /** The primary's store when this process is a worker of `--workers N`: asked instead of `limiter`. */
  shared: SharedLimiter | null;
  verifier: PasswordVerifier;
  authCache: AuthAnswerCache;
}

const runtimes = new WeakMap<object, AccessRuntime>();
let processLimiter: SharedLimiter | null = null;

/**
 * Makes every gateway of this process count its limits in `limiter` (a worker process of
 * `--workers N` asks its primary; src/workers/gateway-worker.ts calls this before it serves).
 */
export function useSharedLimiter(limiter: SharedLimiter | null): void {
  processLimiter = limiter;
}

/** The runtime of one gateway (keyed by its handler context, which lives as long as the gateway). */
export function accessRuntime(ctx: object): AccessRuntime {
  let runtime = runtimes.get(ctx);
  if (runtime === undefined) {
    runtime = {
      limiter: new MemoryLimiterStore(),
      shared: processLimiter,
      verifier: sharedPasswordVerifier(),
      authCache: new AuthAnswerCache(),
    };
    runtimes.set(ctx, runtime);
  }
  return runtime;
}

interface CompiledAccess {
  limits: RequestLimit[];
  connection: ConnectionLimit | null;
  exempt: CidrSet | null;
  cacheTimes: Map<number, number> | null;
  /** auth-cache-key's variables that tell clients apart, as `${name}` (empty: the key names none). */
  cacheClientVariables: readonly string[];
}

const compiled = new WeakMap<LocationAccessModel, CompiledAccess>();

function compile(model: LocationAccessModel): CompiledAccess {
  let c = compiled.get(model);
  if (c !== undefined) return c;
  const limits: RequestLimit[] = [];
  const rl = model.rateLimit;
  if (rl !== null && rl.rps > 0)
    limits.push({ zone: `${rl.zone} rps`, perSecond: rl.rps * 1000, burst: rl.rps * rl.burstMultiplier });
  if (rl !== null && rl.rpm > 0)
    limits.push({
      zone: `${rl.zone} rpm`,
      perSecond: (rl.rpm * 1000) / 60,
      burst: rl.rpm * rl.burstMultiplier,
    });
  let exempt: CidrSet | null = null;
  if (rl?.exempt?.valid && rl.exempt.cidrs.length > 0) {
    const built = CidrSet.build(rl.exempt.cidrs);
    if (built.ok) exempt = built.set;
  }
  const ext = model.externalAuth;
  const connection = rl !== null && rl.connections > 0 ? { zone: rl.zone, limit: rl.connections } : null;
  c = {
    limits,
    connection,
    exempt,
    cacheTimes: ext?.cacheKey ? cacheTimes(ext.cacheDurations) : null,
    cacheClientVariables: ext?.cacheKey ? clientVariablesOf(ext.cacheKey).map((name) => `\${${name}}`) : [],
  };
  compiled.set(model, c);
  return c;
}

export interface AccessCall {
  ctx: HandlerContext;
  ex: Exchange;
  req: GatewayRequest;
  model: LocationAccessModel;
  verdict: AccessDecision;
  vars: RequestVars;
  /** X-Forwarded-For for the auth service. */
  forwardedFor: string;
  trustedHop: boolean;
  clientCertHeaders: Readonly<Record<string, string>> | null;
  timeouts: { connectMs: number; readMs: number };
  /** The 403/503 of a source-range verdict, with its log line (admission.ts). */
  refuseByVerdict(verdict: AccessDecision): void;
  respond(status: number, headers: Record<string, string | string[]> | null): void;
  resume(): void;
}

interface Failure {
  status: number;
  rule: string;
  log: string | null;
  /**
   * What the dashboard's record says of it: no user name (its list is not redacted, and whether a
   * name exists is not for it to tell) and no auth URL (which may carry credentials).
   */
  detail: string;
  wwwAuthenticate: string[];
  cookies: string[];
}

/** An access refusal's error-log line, at error as nginx writes its access-phase refusals. */
function logError(call: AccessCall, message: string): void {
  const { ex } = call;
  const context = {
    client: shownClient(ex.client),
    server: ex.serverName,
    request: ex.requestLine,
    host: ex.rawHost,
  };
  call.ctx.errorLog.write('error', ex.conn.id, message + requestContext(context));
}

/**
 * The verdict of a stage after the source lists (a limit, authentication): what the dashboard shows
 * as the rule that let the request in or turned it away, in place of the source lists' verdict.
 */
function decidedBy(call: AccessCall, outcome: 'allow' | 'deny', rule: string, detail: string): void {
  call.ex.verdict = { outcome, rule, entry: null, detail };
}

function stateOf(ex: Exchange): AccessState {
  ex.access ??= { release: null, upstreamHeaders: null, cookies: null, alwaysSetCookie: false };
  return ex.access;
}

/**
 * Preaccess: the request and connection limits. False when the request was answered; 'pending'
 * when a shared limiter (the primary of `--workers N`) answers later: then the stage goes on from
 * `afterLimits`, resuming or answering the request itself.
 */
function enforceLimits(call: AccessCall, runtime: AccessRuntime, c: CompiledAccess): boolean | 'pending' {
  if (call.model.rateLimit === null || (c.limits.length === 0 && c.connection === null)) return true;
  if (c.exempt !== null && call.ex.client !== '' && c.exempt.has(call.ex.client)) return true;
  const key = limitKey(call);
  // nginx does not account a request whose key is empty (a header the key names is missing).
  if (key === '') return true;
  const shared = runtime.shared;
  if (shared === null) {
    const verdict = checkLimits(runtime.limiter, c.limits, c.connection, key, performance.now());
    const slot = verdict === 'admitted' ? c.connection : null;
    return limitAnswer(call, verdict, slot === null ? null : releaseOf(runtime.limiter, slot.zone, key));
  }
  shared.check(c.limits, c.connection, key, (verdict, release) => {
    if (!limitAnswer(call, verdict, release)) return;
    if (afterLimits(call, runtime, c) === true) call.resume();
  });
  return 'pending';
}

/** A key kept by its SHA-256 (base64): a fixed size whatever the client sent. */
function digestOf(key: string): string {
  return createHash('sha256').update(key).digest('base64');
}

/** Keys longer than this are kept as their SHA-256: a zone holds at most 65,536 of them. */
const MAX_KEY_LENGTH = 64;

/**
 * What the limits key on: the client address, or limit-conn-zone-variable expanded for the request
 * ('' when it expands to nothing). An expanded key is kept as `=key`, or `#` and its SHA-256 when
 * long: a client cannot send the text that names another's hashed key.
 */
function limitKey(call: AccessCall): string {
  const template = call.ex.snap.settings.limitKey;
  if (template === undefined) return call.ex.client === '' ? '-' : call.ex.client;
  const key = expandVariables(template, call.vars);
  if (key === '') return '';
  return key.length <= MAX_KEY_LENGTH ? `=${key}` : `#${digestOf(key)}`;
}

function releaseOf(limiter: LimiterStore, zone: string, key: string): () => void {
  return () => limiter.releaseConnection(zone, key);
}

/** Applies a limiter's verdict: true when admitted (the slot's release kept for the request's end). */
function limitAnswer(
  call: AccessCall,
  verdict: LimitVerdict | LimiterFailure,
  release: (() => void) | null,
): boolean {
  const rl = call.model.rateLimit!;
  const settings = call.ex.snap.settings;
  if (verdict === 'admitted') {
    if (release !== null) stateOf(call.ex).release = release;
    return true;
  }
  if (verdict === 'requests') {
    const which = rl.rps > 0 ? 'limit-rps' : 'limit-rpm';
    call.ctx.metrics.denial(which);
    const line = `limiting requests by zone "${rl.zone}" (nginx.ingress.kubernetes.io/${which})`;
    decidedBy(call, 'deny', which, line);
    logError(call, line);
    call.respond(settings.limitReqStatusCode ?? 503, null);
  } else if (verdict === 'connections') {
    call.ctx.metrics.denial('limit-connections');
    const line = `limiting connections by zone "${rl.zone}" (nginx.ingress.kubernetes.io/limit-connections)`;
    decidedBy(call, 'deny', 'limit-connections', line);
    logError(call, line);
    call.respond(settings.limitConnStatusCode ?? 503, null);
  } else {
    // No answer from the shared store: refused, never let through unlimited.
    call.ctx.metrics.denial('limiter-unavailable');
    const line = `limits of zone "${rl.zone}" not checked: ${verdict.message} [${verdict.code}]`;
    decidedBy(call, 'deny', 'limiter-unavailable', line);
    logError(call, line);
    call.respond(503, null);
  }
  return false;
}

/** The final refusal: a 401 with auth-signin is a 302 to it (nginx's error_page 401 = @signin). */
function refuse(call: AccessCall, failure: Failure): void {
  const { model } = call;
  call.ctx.metrics.denial(failure.rule);
  // A refusal by authentication names it; satisfy any's allowlist miss keeps the lists' own verdict.
  if (failure.rule !== 'allowlist-miss') decidedBy(call, 'deny', failure.rule, failure.detail);
  // nginx's auth_basic writes an unknown user and a password mismatch at error (what fail2ban reads).
  if (failure.log !== null) logError(call, failure.log);
  const ext = model.externalAuth;
  const signin = failure.status === 401 && ext !== null ? signinLocation(ext, call.vars) : null;
  const headers: Record<string, string | string[]> = {};
  if (signin !== null) {
    headers.location = signin;
    if (failure.cookies.length > 0) headers['set-cookie'] = failure.cookies;
    call.respond(302, headers);
    return;
  }
  if (failure.wwwAuthenticate.length > 0) headers['www-authenticate'] = failure.wwwAuthenticate;
  if (ext?.alwaysSetCookie && failure.cookies.length > 0) headers['set-cookie'] = failure.cookies;
  call.respond(failure.status, Object.keys(headers).length > 0 ? headers : null);
}

/**
 * Authentication let the request in where the source lists did not decide it: satisfy any after an
 * allowlist miss, or no source-range rules at all; the record names the authentication then (an
 * allowlist hit under satisfy all keeps its own verdict: both were needed).
 */
function nameAuthPass(call: AccessCall, ipRefused: boolean, rule: 'auth-basic' | 'auth-url'): void {
  if (!ipRefused && call.verdict.rule !== 'no-rules') return;
  decidedBy(
    call,
    'allow',
    rule,
    ipRefused
      ? 'the allowlist missed; authentication passed (satisfy any)'
      : 'no source-range rules; authentication passed',
  );
}

function runBasic(call: AccessCall, runtime: AccessRuntime, next: (failure: Failure | null) => void): void {
  const basic = call.model.basicAuth;
  if (basic === null) {
    next(null);
    return;
  }
  checkBasicAuth(basic, call.req.headers.authorization, runtime.verifier, (outcome) => {
    if (outcome.ok) {
      next(null);
      return;
    }
    const challenge = outcome.status === 401 ? [basicChallenge(basic.realm)] : [];
    next({
      status: outcome.status,
      rule: 'auth-basic',
      log: outcome.user === null ? null : `${outcome.reason} (nginx.ingress.kubernetes.io/auth-type basic)`,
      detail:
        outcome.status === 401
          ? 'basic authentication refused: no credentials, or ones the Secret does not accept'
          : outcome.reason,
      wwwAuthenticate: challenge,
      cookies: [],
    });
  });
}

/**
 * The auth cache's key for the request: its SHA-256, as ingress-nginx keeps a hash of the key (a key
 * of 8 KB tokens would otherwise hold 8 KB per entry); null without auth-cache-key. The auth-url and
 * its method are part of it (ingress-nginx's key has neither): the cache outlives reloads, and an
 * answer of the service a location used to ask must not stand for the one it asks now. Null too when
 * every credential the key names is empty for this request (nginx caches it under the empty key): an
 * allow the auth service gave on something else (a header the key leaves out, a cookie `$cookie_`
 * cannot read) would admit every client without credentials, as the first one's identity.
 */
function authCacheKey(call: AccessCall, c: CompiledAccess): string | null {
  const ext = call.model.externalAuth!;
  if (ext.cacheKey === null) return null;
  if (
    c.cacheClientVariables.length > 0 &&
    c.cacheClientVariables.every((v) => expandVariables(v, call.vars) === '')
  )
    return null;
  const loc = call.ex.route?.location;
  const key = [
    call.ex.serverName,
    loc?.path ?? '',
    loc?.pathType ?? '',
    ext.method ?? '',
    ext.url,
    expandVariables(ext.cacheKey, call.vars),
  ].join('\u0000');
  return digestOf(key);
}

function runExternal(
  call: AccessCall,
  runtime: AccessRuntime,
  c: CompiledAccess,
  next: (failure: Failure | null) => void,
): void {
  const ext = call.model.externalAuth;
  if (ext === null) {
    next(null);
    return;
  }
  const onOutcome = (outcome: ExternalAuthOutcome) => {
    const annotation = ext.global ? 'ConfigMap global-auth-url' : 'nginx.ingress.kubernetes.io/auth-url';
    if (outcome.kind === 'allow') {
      const state = stateOf(call.ex);
      state.upstreamHeaders = { ...state.upstreamHeaders, ...outcome.upstreamHeaders };
      state.cookies = outcome.cookies.length > 0 ? outcome.cookies : null;
      state.alwaysSetCookie = ext.alwaysSetCookie;
      next(null);
      return;
    }
    const failure: Failure = {
      status: outcome.status,
      rule: 'auth-url',
      log: outcome.kind === 'error' ? `${outcome.detail} (${annotation})` : null,
      detail:
        outcome.kind === 'deny'
          ? `the auth service answered ${outcome.status} (${annotation})`
          : `the auth request failed: ${outcome.status} (${annotation})`,
      wwwAuthenticate: outcome.kind === 'deny' ? outcome.wwwAuthenticate : [],
      cookies: outcome.cookies,
    };
    next(failure);
  };
  // Built once, when needed: for the request itself, or for a cached answer that varies (it holds for
  // what the auth service got); a plain cache hit builds nothing.
  let built: ReturnType<typeof buildSubrequest> | null = null;
  const subrequest = () =>
    (built ??= buildSubrequest({
      model: ext,
      vars: call.vars,
      forwardedFor: call.forwardedFor,
      requestId: call.ex.reqId,
      trustedHop: call.trustedHop,
      clientCertHeaders: call.clientCertHeaders,
    }));
  const key = authCacheKey(call, c);
  const now = Date.now();
  const cached = key === null ? null : runtime.authCache.get(key, now, () => subrequest().headers);
  if (cached !== null) {
    onOutcome(interpretAnswer(ext, cached));
    return;
  }
  const sub = subrequest();
  sendSubrequest(sub, call.timeouts.connectMs + call.timeouts.readMs, (answer) => {
    if (key !== null && c.cacheTimes !== null) {
      const now = Date.now();
      const ttl = authCacheTtl(answer, c.cacheTimes, now);
      if (ttl > 0) runtime.authCache.put(key, answer, ttl, now, sub.headers);
    }
    onOutcome(interpretAnswer(ext, answer));
  });
}

/** Runs the stage; see the module comment for what the result means. */
export function enforceAccess(call: AccessCall): boolean | 'pending' {
  const { model } = call;
  if (model.denied !== null) {
    call.ctx.metrics.denial('access-denied');
    logError(
      call,
      `location denied by its annotations (${model.denied.annotation}: ${model.denied.reason}): failing closed`,
    );
    call.respond(503, null);
    return false;
  }
  const runtime = accessRuntime(call.ctx);
  const c = compile(model);
  const limited = enforceLimits(call, runtime, c);
  if (limited !== true) return limited;
  return afterLimits(call, runtime, c);
}

/** The access phase, after the limits admitted the request. */
function afterLimits(call: AccessCall, runtime: AccessRuntime, c: CompiledAccess): boolean | 'pending' {
  const { model, verdict } = call;
  // As ingress-nginx's `proxy_set_header Authorization ""`: with basic auth the credentials never
  // reach the backend, also when satisfy any lets the allowlist decide.
  if (model.basicAuth !== null) {
    const state = stateOf(call.ex);
    state.upstreamHeaders = { ...state.upstreamHeaders, authorization: '' };
  }
  // Likewise `proxy_set_header <name> $authHeaderN` for auth-response-headers: when satisfy any admits
  // before the subrequest ran, the variables are empty, so the client's own values never pass.
  const ext = model.externalAuth;
  if (ext !== null && ext.responseHeaders.length > 0) {
    const state = stateOf(call.ex);
    const cleared = Object.fromEntries(ext.responseHeaders.map((name) => [name.toLowerCase(), '']));
    state.upstreamHeaders = { ...state.upstreamHeaders, ...cleared };
  }
  const any = model.satisfy === 'any';
  const hasAuth = model.basicAuth !== null || model.externalAuth !== null;
  if (
    verdict.outcome === 'fail-closed' ||
    (verdict.outcome === 'deny' && (!any || !hasAuth || verdict.rule !== 'allowlist-miss'))
  ) {
    call.refuseByVerdict(verdict);
    return false;
  }
  if (any && verdict.outcome === 'allow' && verdict.rule === 'allowlist') return true;
  if (!hasAuth) return true;
  return runAuth(call, runtime, c, any && verdict.outcome === 'deny');
}

function runAuth(
  call: AccessCall,
  runtime: AccessRuntime,
  c: CompiledAccess,
  ipRefused: boolean,
): boolean | 'pending' {
  const any = call.model.satisfy === 'any';
  let inCall = true;
  let result: boolean | 'pending' = 'pending';
  const finish = (admitted: boolean, by?: 'auth-basic' | 'auth-url') => {
    if (admitted && by !== undefined) nameAuthPass(call, ipRefused, by);
    if (inCall) result = admitted;
    else if (admitted) call.resume();
  };
  let recorded: Failure | null = ipRefused
    ? {
        status: 403,
        rule: 'allowlist-miss',
        log: null,
        detail: 'not in the allowlist',
        wwwAuthenticate: [],
        cookies: [],
      }
    : null;
  const fail = (failure: Failure) => {
    refuse(call, failure);
    finish(false);
  };
  // satisfy any: 401 sticks once seen (nginx's r->access_code); other statuses (500, 503) end at once.
  const record = (failure: Failure) => {
    if (recorded === null || recorded.status !== 401) recorded = failure;
    else
      recorded = {
        ...recorded,
        wwwAuthenticate: [...recorded.wwwAuthenticate, ...failure.wwwAuthenticate],
        cookies: failure.cookies,
      };
  };
  const afterExternal = (failure: Failure | null) => {
    // Passed by the auth service (after basic auth under satisfy all; without basic auth it ran alone).
    if (failure === null) return finish(true, call.model.externalAuth !== null ? 'auth-url' : 'auth-basic');
    if (!any || (failure.status !== 401 && failure.status !== 403)) return fail(failure);
    record(failure);
    fail(recorded!);
  };
  runBasic(call, runtime, (failure) => {
    if (failure === null) {
      if (any && call.model.basicAuth !== null) return finish(true, 'auth-basic');
      return runExternal(call, runtime, c, afterExternal);
    }
    if (!any || failure.status !== 401) return fail(failure);
    record(failure);
    if (call.model.externalAuth === null) return fail(recorded!);
    runExternal(call, runtime, c, afterExternal);
  });
  inCall = false;
  return result;
}
