// The Kubernetes API at the edge: @kubernetes/client-node loads the kubeconfig (a file, $KUBECONFIG,
// or the in-cluster service account) and authenticates requests; its Watch streams watch events.
// Everything else here turns HTTP outcomes into values (`ApiResult`) for the pure modules above.
import { HttpMethod, KubeConfig, RequestContext, Watch } from '@kubernetes/client-node';
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
    kc.loadFromOptions({
      clusters: kc.clusters.map((c) => ({ ...c, server: source.apiserverHost! })),
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
function statusError(method: string, path: string, status: number, body: unknown): ApiError {
  const b = (body ?? {}) as { message?: unknown; reason?: unknown };
  const detail = typeof b.message === 'string' ? b.message : typeof b.reason === 'string' ? b.reason : '';
  return {
    code: 'KUBE_API_STATUS',
    status,
    message: `${method} ${path}: HTTP ${status}${detail ? ` (${detail})` : ''}`,
  };
}

type Request = KubeClient['request'];

/** Requests with client-node's authentication (tokens are re-read as they rotate) over one pool. */
function createRequester(kc: KubeConfig, server: string, requestTimeoutMs: number): Request {
  // One dispatcher (connection pool) for all requests; client-node builds a new one per call.
  let dispatcher: Dispatcher | undefined;
  let dispatcherReady = false;
  const authenticate = async (url: string, method: keyof typeof METHODS) => {
    const ctx = new RequestContext(url, METHODS[method]);
    await kc.applySecurityAuthentication(ctx);
    if (!dispatcherReady) {
      dispatcher = ctx.getDispatcher() as Dispatcher | undefined;
      dispatcherReady = true;
    }
    return ctx.getHeaders() as unknown as Record<string, string>;
  };
  return async (method, path, body, contentType) => {
    const url = `${server}${path}`;
    let response: Awaited<ReturnType<typeof fetch>>;
    let text: string;
    try {
      const headers: Record<string, string> = {
        ...(await authenticate(url, method)),
        accept: 'application/json',
      };
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
    return decodeResponse(method, path, response.status, text);
  };
}

function decodeResponse(method: string, path: string, status: number, text: string): ApiResult<KubeObject> {
  let parsed: unknown = null;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (status < 200 || status > 299) return { ok: false, error: statusError(method, path, status, parsed) };
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

/** One watch stream through client-node's Watch, its outcomes as WatchHandlers calls. */
function watchStream(
  watcher: Watch,
  path: string,
  query: Record<string, string>,
  resourceVersion: string,
  handlers: WatchHandlers,
): { stop(): void } {
  let controller: AbortController | null = null;
  let ended = false;
  let stopped = false;
  const end = (outcome: WatchEnd) => {
    if (ended) return;
    ended = true;
    if (!stopped) handlers.end(outcome);
  };
  // client-go asks the server to end each watch after 5-10 minutes, so they spread out.
  const timeoutSeconds = String(300 + Math.floor(Math.random() * 300));
  watcher
    .watch(
      path,
      // watch=true as client-go sends it (the API server also takes watch=1; servers written against
      // client-go's traffic may take only this spelling).
      { ...query, watch: 'true', resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds },
      (type: string, object: unknown) => {
        if (!stopped && typeof object === 'object' && object !== null)
          handlers.event({ type, object: object as KubeObject });
      },
      (error: unknown) => end(watchEnd(path, error)),
    )
    .then((c) => {
      controller = c;
      if (stopped) c.abort();
      else if (!ended) handlers.open();
    })
    .catch((error: unknown) => end(watchEnd(path, error)));
  return {
    stop() {
      stopped = true;
      controller?.abort();
    },
  };
}

export function createKubeClient(kc: KubeConfig, requestTimeoutMs = 30_000): KubeClient {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const server = cluster.server.replace(/\/+$/, '');
  const request = createRequester(kc, server, requestTimeoutMs);
  const watcher = new Watch(kc);
  return {
    server,
    request,
    listWatcher: (path, query) => ({
      list: (continueToken, paged = true) => listPage(request, path, query, continueToken, paged),
      watch: (resourceVersion, handlers) => watchStream(watcher, path, query, resourceVersion, handlers),
    }),
  };
}

function watchEnd(path: string, error: unknown): WatchEnd {
  if (error === null || error === undefined) return { kind: 'closed' };
  const e = error as { name?: string; statusCode?: number; message?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError') return { kind: 'timeout' };
  if (typeof e.statusCode === 'number') {
    return {
      kind: 'error',
      error: statusError('GET', `${path} (watch)`, e.statusCode, { message: e.message }),
    };
  }
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
