// The Kubernetes API at the edge: @kubernetes/client-node loads the kubeconfig (a file, $KUBECONFIG,
// or the in-cluster service account) and authenticates requests. Watch streams are read here, line by
// line, as client-go reads them: a line that is not JSON or one over 16 MiB ends the stream with an
// error (the reflector resumes from the last resourceVersion, so the event comes again), where
// client-node's Watch drops the first without a word and buffers the second without bound.
// Everything else here turns HTTP outcomes into values (`ApiResult`) for the pure modules above.
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { type Dispatcher, fetch } from 'undici';
import type { ApiError, ApiResult, ListPage, ListWatcher, WatchEnd, WatchHandlers } from './reflector.ts';
import type { KubeObject } from './resources.ts';

export interface KubeClient {
  /** The API server URL, for start-up lines. */
  readonly server: string;
  request(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<ApiResult<KubeObject>>;
  listWatcher(path: string, query: Record<string, string>): ListWatcher;
}

export interface KubeConfigSource {
  kubeconfig: string | null;
  apiserverHost: string | null;
  certificateAuthority: string | null;
}

/** ingress-nginx's order: --kubeconfig, else $KUBECONFIG, else in-cluster; --apiserver-host overrides the server. */
export function loadKubeConfig(source: KubeConfigSource, env: NodeJS.ProcessEnv): KubeConfig {
  const kc = new KubeConfig();
  if (source.kubeconfig !== null) kc.loadFromFile(source.kubeconfig);
  else if (env.KUBECONFIG) kc.loadFromDefault();
  else if (source.apiserverHost !== null) {
    kc.loadFromClusterAndUser(
      {
        name: 'apiserver-host',
        server: source.apiserverHost,
        skipTLSVerify: false,
        ...(source.certificateAuthority ? { caFile: source.certificateAuthority } : {}),
      },
      { name: 'apiserver-host' },
    );
  } else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) kc.loadFromCluster();
  else
    throw new Error(
      'no API server: give --kubeconfig or --apiserver-host, set $KUBECONFIG, or run in a cluster',
    );
  if (source.apiserverHost !== null && (source.kubeconfig !== null || env.KUBECONFIG)) {
    // --certificate-authority replaces the kubeconfig's CA for that server, as ingress-nginx's client.
    const ca = source.certificateAuthority;
    const withCa = (c: KubeConfig['clusters'][number]) =>
      ca ? { ...c, caFile: ca, caData: undefined, skipTLSVerify: false } : c;
    kc.loadFromOptions({
      clusters: kc.clusters.map((c) => withCa({ ...c, server: source.apiserverHost! })),
      contexts: kc.contexts,
      users: kc.users,
      currentContext: kc.currentContext,
    });
  }
  // A plain-HTTP server has no TLS to verify; client-node refuses it unless told so (kubectl does not).
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.server.startsWith('http:') ? { ...c, skipTLSVerify: true } : c)),
    contexts: kc.contexts,
    users: kc.users,
    currentContext: kc.currentContext,
  });
  return kc;
}

const METHODS = {
  GET: HttpMethod.GET,
  POST: HttpMethod.POST,
  PUT: HttpMethod.PUT,
  PATCH: HttpMethod.PATCH,
  DELETE: HttpMethod.DELETE,
} as const;

/** A request's failure as a value; the message names the request and the API's own reason. */
function statusError(
  method: string,
  path: string,
  status: number,
  body: unknown,
  retryAfter: string | null = null,
): ApiError {
  const b = (body ?? {}) as { message?: unknown; reason?: unknown };
  const detail = typeof b.message === 'string' ? b.message : typeof b.reason === 'string' ? b.reason : '';
  const error: ApiError = {
    code: 'KUBE_API_STATUS',
    status,
    message: `${method} ${path}: HTTP ${status}${detail ? ` (${detail})` : ''}`,
  };
  const waitMs = retryAfterMs(status, retryAfter);
  if (waitMs !== null) error.retryAfterMs = waitMs;
  return error;
}

/** The longest Retry-After honoured: a server that asks for more is asked again after this. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * The wait a 429 or 503 asks for in seconds (API Priority and Fairness sends it), as client-go honours
 * it; null without one.
 */
function retryAfterMs(status: number, header: string | null): number | null {
  if ((status !== 429 && status !== 503) || header === null || !/^\s*\d{1,6}\s*$/.test(header)) return null;
  return Math.min(Number(header) * 1000, MAX_RETRY_AFTER_MS);
}

type Request = KubeClient['request'];

/** A request's headers with client-node's authentication, and the one connection pool for all. */
type Authenticate = (
  url: string,
  method: keyof typeof METHODS,
) => Promise<{ headers: Record<string, string>; dispatcher: Dispatcher | undefined }>;

/** client-node's authentication per request (tokens are re-read as they rotate) over one pool. */
function createAuthenticator(kc: KubeConfig): Authenticate {
  // One dispatcher (connection pool) for all requests; client-node builds a new one per call.
  let dispatcher: Dispatcher | undefined;
  let dispatcherReady = false;
  return async (url, method) => {
    const ctx = new RequestContext(url, METHODS[method]);
    await kc.applySecurityAuthentication(ctx);
    if (!dispatcherReady) {
      dispatcher = ctx.getDispatcher() as Dispatcher | undefined;
      dispatcherReady = true;
    }
    return { headers: ctx.getHeaders() as unknown as Record<string, string>, dispatcher };
  };
}

function createRequester(authenticate: Authenticate, server: string, requestTimeoutMs: number): Request {
  return async (method, path, body, contentType) => {
    const url = `${server}${path}`;
    let response: Awaited<ReturnType<typeof fetch>>;
    let text: string;
    try {
      const auth = await authenticate(url, method);
      const dispatcher = auth.dispatcher;
      const headers: Record<string, string> = { ...auth.headers, accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = contentType ?? 'application/json';
      response = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(dispatcher ? { dispatcher } : {}),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      text = await response.text();
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      return {
        ok: false,
        error: { code: 'KUBE_API_UNREACHABLE', status: null, message: `${method} ${path}: ${why}` },
      };
    }
    return decodeResponse(method, path, response.status, text, response.headers.get('retry-after'));
  };
}

function decodeResponse(
  method: string,
  path: string,
  status: number,
  text: string,
  retryAfter: string | null = null,
): ApiResult<KubeObject> {
  let parsed: unknown = null;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (status < 200 || status > 299)
    return { ok: false, error: statusError(method, path, status, parsed, retryAfter) };
  if (parsed === null || typeof parsed !== 'object') {
    return {
      ok: false,
      error: { code: 'KUBE_API_BAD_RESPONSE', status, message: `${method} ${path}: not JSON` },
    };
  }
  return { ok: true, value: parsed as KubeObject };
}

async function listPage(
  request: Request,
  path: string,
  query: Record<string, string>,
  continueToken: string | null,
  paged: boolean,
): Promise<ApiResult<ListPage>> {
  const params = new URLSearchParams(paged ? { ...query, limit: '500' } : query);
  if (continueToken) params.set('continue', continueToken);
  const result = await request('GET', `${path}?${params}`);
  if (!result.ok) return result;
  const body = result.value as {
    items?: unknown;
    metadata?: { resourceVersion?: unknown; continue?: unknown };
  };
  if (!Array.isArray(body.items)) {
    return {
      ok: false,
      error: { code: 'KUBE_API_BAD_RESPONSE', status: 200, message: `GET ${path}: no items` },
    };
  }
  const meta = body.metadata ?? {};
  return {
    ok: true,
    value: {
      items: body.items.filter((i): i is KubeObject => typeof i === 'object' && i !== null),
      resourceVersion: typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '',
      continue: typeof meta.continue === 'string' ? meta.continue : null,
    },
  };
}

/** client-go's cap on one object: a watch line past it ends the stream. */
const MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024;

interface WatchSpec {
  authenticate: Authenticate;
  server: string;
  path: string;
  query: Record<string, string>;
  resourceVersion: string;
  /** How long the server may take to answer the watch. */
  answerTimeoutMs: number;
  /** How long an answered stream may stay silent: longer than the API server's bookmark cadence. */
  silenceTimeoutMs: number;
}

/**
 * The silence an answered watch may keep: kube-apiserver's watch cache sends a BOOKMARK to every
 * watcher about once a minute (defaultBookmarkFrequency) and keeps about 75 s of history. A shorter
 * bound (this was the 30 s request timeout) cut a quiet resource's watch before any bookmark came, so
 * it resumed from its list's resourceVersion each time and met 410 Gone (a full relist) once the
 * history moved past it. Past this, the connection is taken for dead.
 */
const WATCH_SILENCE_MS = 150_000;

/** One watch stream, its outcomes as WatchHandlers calls: `end` once, nothing after stop(). */
function watchStream(spec: WatchSpec, handlers: WatchHandlers): { stop(): void } {
  const abort = new AbortController();
  let ended = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const end = (outcome: WatchEnd) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    abort.abort();
    if (!stopped) handlers.end(outcome);
  };
  let limit = spec.answerTimeoutMs;
  const quiet = () => {
    clearTimeout(timer);
    timer = setTimeout(() => end({ kind: 'timeout' }), limit);
    timer.unref();
  };
  const answered = () => {
    limit = spec.silenceTimeoutMs;
    quiet();
  };
  quiet();
  readWatch(spec, handlers, abort.signal, quiet, answered).then(end, (error: unknown) =>
    end(watchEnd(spec.path, error)),
  );
  return {
    stop() {
      stopped = true;
      end({ kind: 'closed' });
    },
  };
}

/** Reads the stream's lines into events until it ends; resolves with how it ended. */
async function readWatch(
  spec: WatchSpec,
  handlers: WatchHandlers,
  signal: AbortSignal,
  heard: () => void,
  answered: () => void,
): Promise<WatchEnd> {
  // client-go asks the server to end each watch after 5-10 minutes, so they spread out.
  const timeoutSeconds = String(300 + Math.floor(Math.random() * 300));
  // watch=true as client-go sends it (the API server also takes watch=1; servers written against
  // client-go's traffic may take only this spelling).
  const params = new URLSearchParams({
    ...spec.query,
    watch: 'true',
    resourceVersion: spec.resourceVersion,
    allowWatchBookmarks: 'true',
    timeoutSeconds,
  });
  const url = `${spec.server}${spec.path}?${params}`;
  const { headers, dispatcher } = await spec.authenticate(url, 'GET');
  const response = await fetch(url, { headers, signal, ...(dispatcher ? { dispatcher } : {}) });
  if (response.status !== 200) {
    const text = await response.text().catch(() => '');
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const retryAfter = response.headers.get('retry-after');
    return {
      kind: 'error',
      error: statusError('GET', `${spec.path} (watch)`, response.status, body, retryAfter),
    };
  }
  // Stopped meanwhile: nothing more reaches the handlers (the lines of a chunk read before included).
  if (signal.aborted) return { kind: 'closed' };
  handlers.open();
  answered();
  const lines = new LineSplitter(MAX_WATCH_LINE_BYTES);
  for await (const chunk of response.body ?? []) {
    heard();
    for (const line of lines.push(chunk as Uint8Array)) {
      if (signal.aborted) return { kind: 'closed' };
      const failure = deliver(spec.path, line, handlers);
      if (failure !== null) return failure;
    }
    if (lines.overflowed) return badWatch(spec.path, "a line over 16 MiB (client-go's limit for an object)");
  }
  return { kind: 'closed' };
}

/** One line of the stream as an event; a line that is not a JSON event ends the stream. */
function deliver(path: string, line: string, handlers: WatchHandlers): WatchEnd | null {
  if (line.trim() === '') return null;
  let event: { type?: unknown; object?: unknown };
  try {
    event = JSON.parse(line) as typeof event;
  } catch {
    return badWatch(path, 'an event that is not JSON (a malformed line)');
  }
  if (typeof event?.type !== 'string' || typeof event.object !== 'object' || event.object === null)
    return badWatch(path, 'an event without a type and an object');
  handlers.event({ type: event.type, object: event.object as KubeObject });
  return null;
}

function badWatch(path: string, what: string): WatchEnd {
  return {
    kind: 'error',
    error: {
      code: 'KUBE_API_BAD_RESPONSE',
      status: 200,
      message: `GET ${path} (watch): ${what}; resuming from the last resourceVersion`,
    },
  };
}

/** Splits bytes into UTF-8 lines; past `limit` bytes without a newline it stops and says so. */
class LineSplitter {
  readonly #limit: number;
  /** The bytes of a line not ended yet: kept as pieces, joined once (a long line costs its length once). */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  overflowed = false;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.#pending.push(chunk.subarray(start, nl));
      lines.push(Buffer.concat(this.#pending).toString('utf8'));
      this.#pending = [];
      this.#pendingBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.#pending.push(chunk.subarray(start));
      this.#pendingBytes += chunk.length - start;
      if (this.#pendingBytes > this.#limit) this.overflowed = true;
    }
    return lines;
  }
}

export function createKubeClient(kc: KubeConfig, requestTimeoutMs = 30_000): KubeClient {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const server = cluster.server.replace(/\/+$/, '');
  const authenticate = createAuthenticator(kc);
  const request = createRequester(authenticate, server, requestTimeoutMs);
  return {
    server,
    request,
    listWatcher: (path, query) => ({
      list: (continueToken, paged = true) => listPage(request, path, query, continueToken, paged),
      watch: (resourceVersion, handlers) =>
        watchStream(
          {
            authenticate,
            server,
            path,
            query,
            resourceVersion,
            answerTimeoutMs: requestTimeoutMs,
            silenceTimeoutMs: Math.max(requestTimeoutMs, WATCH_SILENCE_MS),
          },
          handlers,
        ),
    }),
  };
}

function watchEnd(path: string, error: unknown): WatchEnd {
  if (error === null || error === undefined) return { kind: 'closed' };
  const e = error as { name?: string; message?: string; cause?: { code?: string } };
  if (e.name === 'AbortError') return { kind: 'closed' };
  return {
    kind: 'error',
    error: {
      code: 'KUBE_API_UNREACHABLE',
      status: null,
      message: `GET ${path} (watch): ${e.cause?.code ?? e.message ?? String(error)}`,
    },
  };
}
