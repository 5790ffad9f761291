// Shared pieces of the controller tests: a backend that counts requests, cluster objects for the fake
// API server, an in-process controller whose log lines can be waited on, waits on events, a proxy in
// front of the fake API server that answers some requests itself, and plain HTTP(S) requests.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before } from 'node:test';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { type RunningController, startController } from '../../src/controller/controller.ts';
import { parseControllerFlags } from '../../src/controller/flags.ts';
import type { ClusterObjects, SnapshotOptions } from '../../src/controller/snapshot.ts';
import { createLineSink } from '../../src/gateway/line-sink.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';

export interface Backend {
  port: number;
  hits: number;
  close(): Promise<void>;
}

export async function startBackend(name: string, host = '127.0.0.1'): Promise<Backend> {
  const backend = { port: 0, hits: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    backend.hits++;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${name} ${req.url}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  backend.port = (server.address() as AddressInfo).port;
  backend.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return backend;
}

/** The controller's defaults (ingress-nginx's), for the pure snapshot and admission functions. */
export const DEFAULT_SNAPSHOT_OPTIONS: SnapshotOptions = {
  ingressClass: 'nginx',
  controllerClass: 'k8s.io/ingress-nginx',
  watchIngressWithoutClass: false,
  ingressClassByName: false,
  configMap: null,
  defaultSslCertificate: null,
  defaultBackendService: null,
  annotationsPrefix: 'nginx.ingress.kubernetes.io',
};

/** A cluster with only the nginx IngressClass. */
export const EMPTY_CLUSTER: ClusterObjects = {
  ingresses: [],
  ingressClasses: [ingressClass()],
  services: [],
  endpointSlices: [],
  secrets: [],
  configMaps: [],
  namespaces: null,
};

/**
 * An AdmissionReview v1 of `object` as an Ingress: CREATE in namespace default, unless `request` says
 * otherwise (uid, operation, namespace, name, or a field a test wants wrong).
 */
export function ingressReview(object: unknown, request: Obj = {}): Obj {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'uid-1',
      kind: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress' },
      operation: 'CREATE',
      namespace: 'default',
      object,
      ...request,
    },
  };
}

export function ingressClass(): Obj {
  return { kind: 'IngressClass', metadata: { name: 'nginx' }, spec: { controller: 'k8s.io/ingress-nginx' } };
}

export function service(name: string, ns = 'default'): Obj {
  return {
    kind: 'Service',
    metadata: { namespace: ns, name },
    spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
  };
}

export function endpointSlice(serviceName: string, address: string, port: number, ns = 'default'): Obj {
  return {
    kind: 'EndpointSlice',
    metadata: {
      namespace: ns,
      name: `${serviceName}-abc`,
      labels: { 'kubernetes.io/service-name': serviceName },
    },
    addressType: 'IPv4',
    endpoints: [{ addresses: [address], conditions: { ready: true } }],
    ports: [{ name: 'http', port, protocol: 'TCP' }],
  };
}

export function ingress(name: string, host: string, serviceName: string, extra: Obj = {}): Obj {
  return {
    kind: 'Ingress',
    metadata: { namespace: 'default', name, annotations: extra.annotations ?? {} },
    spec: {
      ingressClassName: 'nginx',
      ...(extra.tls ? { tls: extra.tls } : {}),
      rules: [
        {
          host,
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: serviceName, port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  };
}

/** One Ingress web.example.com → Service web → the backend on 127.0.0.1. */
export function seedWeb(api: FakeApiServer, backendPort: number): void {
  api.apply(ingressClass());
  api.apply(service('web'));
  api.apply(endpointSlice('web', '127.0.0.1', backendPort));
  api.apply(ingress('web', 'web.example.com', 'web'));
}

/**
 * Waits on state that events change: `until` checks now and at every `signal()`, which the code that
 * records an event calls right after it (so a check sees the state that event left); deadlines are
 * safety nets.
 */
export interface Waiters {
  signal(): void;
  /**
   * Resolves with the first value of `check()` that is not undefined, checked now and at every signal;
   * rejects with `failure()` after `timeoutMs`.
   */
  until<T>(check: () => T | undefined, timeoutMs: number, failure: () => string): Promise<T>;
}

export function createWaiters(): Waiters {
  const pending = new Set<() => void>();
  return {
    signal() {
      for (const w of [...pending]) w();
    },
    until(check, timeoutMs, failure) {
      return new Promise((resolve, reject) => {
        const attempt = () => {
          const value = check();
          if (value === undefined) return;
          pending.delete(attempt);
          clearTimeout(timer);
          resolve(value);
        };
        const timer = setTimeout(() => {
          pending.delete(attempt);
          reject(new Error(failure()));
        }, timeoutMs);
        pending.add(attempt);
        attempt();
      });
    },
  };
}

export interface TestController {
  running: RunningController;
  lines: string[];
  /** The access log (HTTP requests and tcp-services connections), line by line; waitFor sees each. */
  accessLines: string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when `check()` holds, checked now and after every log line (reloads log one). */
  waitFor(check: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Lines that arrived after `mark`. */
  mark(): number;
  close(): Promise<void>;
}

export async function startTestController(
  api: FakeApiServer,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<TestController> {
  const parsed = parseControllerFlags(
    [
      `--kubeconfig=${api.kubeconfig}`,
      '--bind-address',
      '127.0.0.1',
      '--http-port=0',
      '--https-port=0',
      '--healthz-port=0',
      '--post-shutdown-grace-period=0',
      ...args,
    ],
    { POD_NAMESPACE: 'ingress-nginx', ...env },
  );
  if (parsed.ok !== true) throw new Error(`flags: ${JSON.stringify(parsed)}`);
  const lines: string[] = [];
  const waiters = createWaiters();
  const log = (line: string) => {
    lines.push(line);
    waiters.signal();
  };
  const quiet = createLineSink(new Writable({ write: (_c, _e, cb) => cb() }));
  const accessLines: string[] = [];
  const access = createLineSink(
    new Writable({
      write: (chunk: Buffer, _e, cb) => {
        accessLines.push(
          ...chunk
            .toString()
            .split('\n')
            .filter((l) => l !== ''),
        );
        waiters.signal();
        cb();
      },
    }),
  );
  const running = await startController(parsed.options, {
    env: {},
    log,
    backoff: { initialMs: 20, maxMs: 200 },
    debounce: { quietMs: 20, maxDelayMs: 200 },
    accessLog: access,
    errorLog: quiet,
  });
  let from = 0;
  return {
    running,
    lines,
    accessLines,
    mark: () => {
      from = lines.length;
      return from;
    },
    async waitFor(check, what, timeoutMs = 20_000) {
      await waiters.until(
        () => (check() ? true : undefined),
        timeoutMs,
        () => `${what}: not within ${timeoutMs} ms; lines:\n${lines.join('\n')}`,
      );
    },
    waitForLine(pattern, timeoutMs = 20_000) {
      const start = from;
      return waiters.until(
        () => lines.slice(start).find((l) => pattern.test(l)),
        timeoutMs,
        () => `no log line ${pattern} within ${timeoutMs} ms; lines:\n${lines.join('\n')}`,
      );
    },
    close: () => running.close(),
  };
}

/** What webCluster starts: set in its before(), so read the fields in tests and hooks, not at collection. */
export interface WebCluster<P extends ApiProxy | null = null> {
  api: FakeApiServer;
  /** The backend of seedWeb's Service web. */
  web: Backend;
  ctl: TestController;
  /** What `options.proxy` started, the controller's way to the API server; null without it. */
  proxy: P;
  /** The gateway's ports once it serves; 0 with `awaitServing: false` (and httpsPort without HTTPS). */
  httpPort: number;
  httpsPort: number;
}

export interface WebClusterOptions<P extends ApiProxy | null = null> {
  /** The controller's environment, as startTestController takes it. */
  env?: Record<string, string>;
  /** Runs after seedWeb and before the controller starts: the test's own cluster objects. */
  prepare?: (api: FakeApiServer) => void | Promise<void>;
  /** Runs after `prepare`: a proxy in front of the API server (startApiProxy) that the controller uses. */
  proxy?: (api: FakeApiServer) => Promise<P>;
  /** Wait in before() until the gateway serves (default); false when the test starts with the API down. */
  awaitServing?: boolean;
}

/**
 * Call in a describe body: registers a before() that starts a fake API server seeded with seedWeb, its
 * backend, `options.proxy` if given, and a controller with `flags` (a function for flags computed in
 * before()), and an after() that closes them. The describe's own after() hooks run after this one.
 */
export function webCluster<P extends ApiProxy | null = null>(
  flags: string[] | (() => string[] | Promise<string[]>),
  options: WebClusterOptions<P> = {},
): WebCluster<P> {
  const cluster: Partial<WebCluster<P>> = { httpPort: 0, httpsPort: 0 };
  before(async () => {
    const api = await startFakeApiServer();
    cluster.api = api;
    cluster.web = await startBackend('web');
    seedWeb(api, cluster.web.port);
    await options.prepare?.(api);
    // P is null exactly when there is no options.proxy (its default).
    const proxy = (options.proxy ? await options.proxy(api) : null) as P;
    cluster.proxy = proxy;
    const args = typeof flags === 'function' ? await flags() : flags;
    const target = proxy === null ? api : { ...api, kubeconfig: proxy.kubeconfig };
    const ctl = await startTestController(target, args, options.env);
    cluster.ctl = ctl;
    if (options.awaitServing === false) return;
    const gateway = await ctl.running.serving();
    cluster.httpPort = gateway.httpAddress!.port;
    cluster.httpsPort = gateway.httpsAddress?.port ?? 0;
  });
  after(async () => {
    await cluster.ctl?.close();
    await cluster.proxy?.close();
    await cluster.api?.close();
    await cluster.web?.close();
  });
  return cluster as WebCluster<P>;
}

/** Answers a request to the API proxy itself and returns true, or returns false to have it relayed. */
export type ApiIntercept = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean;

export interface ApiProxy {
  /** The API server's kubeconfig with the proxy as its server, in a fresh temporary directory. */
  kubeconfig: string;
  close(): Promise<void>;
}

/**
 * `req` relayed to the fake API server on `port` with `headers`, its answer streamed back as it comes
 * (watches too); `onStatus` sees the status before it is sent.
 */
export function relayToApi(
  port: number,
  req: IncomingMessage,
  res: ServerResponse,
  headers: IncomingHttpHeaders,
  onStatus: (status: number) => void = () => {},
): void {
  const upstream = http.request(
    { host: '127.0.0.1', port, method: req.method, path: req.url, headers },
    (ures) => {
      const status = ures.statusCode ?? 502;
      onStatus(status);
      res.writeHead(status, ures.headers);
      res.flushHeaders();
      ures.pipe(res);
      res.on('close', () => ures.destroy());
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}

/**
 * An HTTP proxy on 127.0.0.1:0 in front of the fake API server `api`, for a controller that is to see
 * another API server: `intercept` may answer any request itself; the others are relayed to `api` as
 * they stream (watches too), and `onRelayed` sees the status of each relayed answer before it is sent.
 */
export async function startApiProxy(
  api: Pick<FakeApiServer, 'port' | 'url' | 'kubeconfig'>,
  intercept: ApiIntercept,
  onRelayed: (req: IncomingMessage, status: number) => void = () => {},
): Promise<ApiProxy> {
  // The API server's own kubeconfig (its token), to point at the proxy.
  const text = readFileSync(api.kubeconfig, 'utf8');
  const serverLine = `server: ${api.url}\n`;
  if (!text.includes(serverLine)) throw new Error(`no ${serverLine.trim()} in ${api.kubeconfig}`);
  const server = http.createServer((req, res) => {
    if (intercept(req, res, new URL(req.url ?? '/', 'http://proxy'))) return;
    relayToApi(api.port, req, res, req.headers, (status) => onRelayed(req, status));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'keepip-api-proxy-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const port = (server.address() as AddressInfo).port;
  writeFileSync(kubeconfig, text.replace(serverLine, `server: http://127.0.0.1:${port}\n`));
  return {
    kubeconfig,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}

/** The served snapshot has a virtual host `host` (or, with `present` false, no longer has it). */
export function waitForHost(ctl: TestController, host: string, present = true): Promise<void> {
  return ctl.waitFor(
    () =>
      (ctl.running
        .gateway()
        ?.snapshot()
        .topology.gateway.virtualHosts.some((v) => v.host === host) ?? false) === present,
    `host ${host} ${present ? 'served' : 'gone'}`,
  );
}

/** The served snapshot sends Service `name` (namespace default) to an endpoint on `port`. */
export function waitForEndpoint(
  ctl: TestController,
  name: string,
  address: string,
  port: number,
): Promise<void> {
  return ctl.waitFor(
    () =>
      ctl.running
        .gateway()
        ?.snapshot()
        .topology.services.some(
          (s) =>
            s.ref.name === name &&
            Object.values(s.endpoints).some((list) =>
              list.some((e) => e.address === address && e.port === port),
            ),
        ) === true,
    `endpoint ${address}:${port} of ${name} served`,
  );
}

export interface Answer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

export function get(
  port: number,
  host: string,
  path = '/',
  tls = false,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = (tls ? https : http).request(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: { ...headers, host },
        agent: false,
        ...(tls ? { servername: host, rejectUnauthorized: false } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** The certificate a TLS listener presents for `servername`. */
export function peerCertificate(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve(String(cert.subject?.CN ?? ''));
    });
    socket.on('error', reject);
  });
}

export function healthz(port: number): Promise<Answer> {
  return get(port, 'localhost', '/healthz');
}

/**
 * POSTs `body` to the webhook at `port` (TLS, any certificate); `null` sends the headers only, so an
 * answer that comes before the body (413 from Content-Length) can be read.
 */
export function postWebhook(
  port: number,
  body: string | null,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/networking/v1/ingresses',
        rejectUnauthorized: false,
        agent: false,
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    if (body === null) req.flushHeaders();
    else req.end(body);
  });
}

/** A self-signed EC P-256 certificate for `cn` and its key, PEM. */
export async function keyPair(cn: string): Promise<{ cert: string; key: string }> {
  const result = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
  });
  return { cert: result.cert, key: result.private };
}

/** The flags of a validating webhook on 127.0.0.1:0, its certificate and key in a fresh directory. */
export async function webhookFlags(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-webhook-'));
  const pair = await keyPair('webhook');
  writeFileSync(join(dir, 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls.key'), pair.key);
  return [
    '--validating-webhook=127.0.0.1:0',
    `--validating-webhook-certificate=${join(dir, 'tls.crt')}`,
    `--validating-webhook-key=${join(dir, 'tls.key')}`,
  ];
}

/** A kubernetes.io/tls Secret in namespace default (`pair` when given, else a new one for `cn`). */
export async function tlsSecret(
  name: string,
  cn: string,
  pair?: { cert: string; key: string },
): Promise<Obj> {
  const { cert, key } = pair ?? (await keyPair(cn));
  return {
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { namespace: 'default', name },
    data: {
      'tls.crt': Buffer.from(cert).toString('base64'),
      'tls.key': Buffer.from(key).toString('base64'),
    },
  };
}

/** The webhook's answer to one AdmissionReview: status, verdict, denial message and warnings. */
export interface AdmissionAnswer {
  status: number;
  allowed: boolean | null;
  message: string;
  warnings: string[];
}

/** POSTs one AdmissionReview (JSON text) to the webhook on 127.0.0.1:`port`. */
export function postReview(agent: https.Agent, port: number, body: string): Promise<AdmissionAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/networking/v1/ingresses',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let review: Obj | null = null;
          try {
            review = JSON.parse(text) as Obj;
          } catch {}
          const response = review?.response as Obj | undefined;
          resolve({
            status: res.statusCode ?? 0,
            allowed: typeof response?.allowed === 'boolean' ? response.allowed : null,
            message: String(response?.status?.message ?? ''),
            warnings: Array.isArray(response?.warnings) ? response.warnings.map(String) : [],
          });
        });
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end(body);
  });
}
