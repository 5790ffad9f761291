// The systems of the http2 suite, configured alike: nginx with `listen … ssl http2` as ingress-nginx
// renders an Ingress (one worker, the same allowlist, upstream keep-alive, the access log in the
// controller's format; `grpc_pass` for the gRPC host), and keepip gateway on its TLS listener reading
// the equivalent manifests (an Ingress per host, backend-protocol GRPC on the gRPC one). Both present a
// self-signed certificate: h2load does not verify it. Probes check a whole answer over HTTP/2 before
// and after each load (body, and grpc-status in the trailers), as h2load counts only statuses.
import { mkdirSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from 'selfsigned';
import { stringify } from 'yaml';
import { BACKEND_BODY, BENCH_HOST } from './backend.ts';
import { grpcReplyFrame, grpcRequestFrame } from './grpc-backend.ts';
import { KEEPIP_BIN } from './keepip.ts';
import { INGRESS_NGINX_LOG_FORMAT, startNginx } from './nginx.ts';
import type { Endpoint } from './ports.ts';
import { type Managed, startProcess } from './supervisor.ts';
import { endpoint, type Started } from './systems.ts';

export const GRPC_HOST = `grpc.${BENCH_HOST}`;
export const GRPC_PATH = '/keepip.test.Echo/Unary';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GRPC_BACKEND = fileURLToPath(new URL('./grpc-backend.ts', import.meta.url));

export async function writeCertificate(dir: string): Promise<{ cert: string; key: string }> {
  mkdirSync(dir, { recursive: true });
  const made = await generate([{ name: 'commonName', value: BENCH_HOST }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
  });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  writeFileSync(cert, made.cert);
  writeFileSync(key, made.private, { mode: 0o600 });
  return { cert, key };
}

export async function startGrpcBackend(started: Started): Promise<{ managed: Managed; at: Endpoint }> {
  const at = await endpoint();
  const managed = started.add(
    await startProcess({
      name: 'gRPC backend (node:http2)',
      command: process.execPath,
      args: [GRPC_BACKEND, '--listen', `${at.host}:${at.port}`],
      listening: [at],
    }),
  );
  return { managed, at };
}

function locationHeaders(kind: 'proxy' | 'grpc'): string[] {
  const set = kind === 'proxy' ? 'proxy_set_header' : 'grpc_set_header';
  return [
    `    ${set} X-Request-ID $request_id;`,
    `    ${set} X-Real-IP $remote_addr;`,
    `    ${set} X-Forwarded-For $remote_addr;`,
    `    ${set} X-Forwarded-Host $host;`,
    `    ${set} X-Forwarded-Port $server_port;`,
    `    ${set} X-Forwarded-Proto $scheme;`,
    `    ${set} X-Scheme $scheme;`,
  ];
}

/** Two servers on one `listen … ssl http2`: the HTTP host (proxy_pass) and the gRPC host (grpc_pass). */
export function nginxH2Config(options: {
  listen: Endpoint;
  cert: { cert: string; key: string };
  allow: readonly string[];
  httpBackend: Endpoint;
  grpcBackend: Endpoint;
  accessLog: string;
}): string {
  // Listen options (backlog) may be given once per address: on the first server.
  const server = (name: string, upstream: string, kind: 'proxy' | 'grpc') => [
    'server {',
    `  listen ${options.listen.host}:${options.listen.port} ssl http2${kind === 'proxy' ? ' backlog=4096' : ''};`,
    `  server_name ${name};`,
    `  ssl_certificate ${options.cert.cert};`,
    `  ssl_certificate_key ${options.cert.key};`,
    `  access_log ${options.accessLog} upstreaminfo;`,
    // ingress-nginx defaults: keep-alive 75 s and 1,000 requests per connection, 128 streams.
    '  keepalive_timeout 75s;',
    '  keepalive_requests 1000;',
    '  http2_max_concurrent_streams 128;',
    '  location / {',
    `    set $proxy_upstream_name "${upstream}";`,
    '    set $proxy_alternative_upstream_name "";',
    ...options.allow.map((cidr) => `    allow ${cidr};`),
    '    deny all;',
    ...(kind === 'proxy' ? ['    proxy_http_version 1.1;', '    proxy_set_header Connection "";'] : []),
    ...(kind === 'proxy' ? ['    proxy_set_header Host $host;'] : []),
    ...locationHeaders(kind),
    kind === 'proxy' ? `    proxy_pass http://${upstream};` : `    grpc_pass grpc://${upstream};`,
    '  }',
    '}',
  ];
  const upstream = (name: string, at: Endpoint) => [
    `upstream ${name} {`,
    `  server ${at.host}:${at.port};`,
    '  keepalive 320;',
    '  keepalive_requests 10000;',
    '}',
  ];
  return [
    `log_format upstreaminfo '${INGRESS_NGINX_LOG_FORMAT}';`,
    ...upstream('bench-bench-backend-80', options.httpBackend),
    ...upstream('bench-grpc-backend-50051', options.grpcBackend),
    ...server(BENCH_HOST, 'bench-bench-backend-80', 'proxy'),
    ...server(GRPC_HOST, 'bench-grpc-backend-50051', 'grpc'),
  ].join('\n');
}

export async function startNginxH2(
  started: Started,
  options: { dir: string; allow: readonly string[]; httpBackend: Endpoint; grpcBackend: Endpoint },
): Promise<{ managed: Managed; at: Endpoint }> {
  const at = await endpoint();
  const cert = await writeCertificate(join(options.dir, 'tls'));
  const managed = started.add(
    await startNginx({
      name: 'nginx http2',
      dir: options.dir,
      http: nginxH2Config({ ...options, listen: at, cert, accessLog: join(options.dir, 'access.log') }),
      listening: [at],
    }),
  );
  return { managed, at };
}

function service(name: string, at: Endpoint, port: number): Record<string, unknown>[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'bench' },
      spec: { type: 'ClusterIP', ports: [{ name: 'p', port, targetPort: at.port, protocol: 'TCP' }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-1`, namespace: 'bench', labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'p', port: at.port, protocol: 'TCP' }],
      endpoints: [{ addresses: [at.host], conditions: { ready: true } }],
    },
  ];
}

function ingressFor(
  name: string,
  host: string,
  svc: string,
  port: number,
  annotations: Record<string, string>,
) {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: 'bench', annotations },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host,
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend: { service: { name: svc, port: { number: port } } } },
            ],
          },
        },
      ],
    },
  };
}

/** The manifests for keepip: the two hosts with the allowlist, the gRPC one with backend-protocol GRPC. */
export function keepipH2Manifests(
  allow: readonly string[],
  httpBackend: Endpoint,
  grpcBackend: Endpoint,
): string {
  const allowlist = { 'nginx.ingress.kubernetes.io/allowlist-source-range': allow.join(',') };
  const docs = [
    ingressFor('bench', BENCH_HOST, 'bench-backend', 80, allowlist),
    ingressFor('grpc', GRPC_HOST, 'grpc-backend', 50051, {
      ...allowlist,
      'nginx.ingress.kubernetes.io/backend-protocol': 'GRPC',
    }),
    ...service('bench-backend', httpBackend, 80),
    ...service('grpc-backend', grpcBackend, 50051),
  ];
  return docs.map((doc) => stringify(doc, { lineWidth: 0 })).join('---\n');
}

export async function startKeepipH2(
  started: Started,
  options: { dir: string; allow: readonly string[]; httpBackend: Endpoint; grpcBackend: Endpoint },
): Promise<{ managed: Managed; at: Endpoint }> {
  const at = await endpoint();
  const manifests = join(options.dir, 'manifests');
  mkdirSync(manifests, { recursive: true });
  writeFileSync(
    join(manifests, 'bench.yaml'),
    keepipH2Manifests(options.allow, options.httpBackend, options.grpcBackend),
  );
  const args = [
    KEEPIP_BIN,
    'gateway',
    '-f',
    manifests,
    '--https',
    `${at.host}:${at.port}`,
    '--access-log',
    join(options.dir, 'access.log'),
  ];
  try {
    const managed = started.add(
      await startProcess({
        name: 'keepip gateway',
        command: process.execPath,
        args,
        cwd: REPO_ROOT,
        listening: [at],
      }),
    );
    return { managed, at };
  } catch (error) {
    throw new Error(
      `KEEPIP_UNAVAILABLE: keepip gateway (${args.slice(1).join(' ')}) could not be started: ${(error as Error).message}`,
    );
  }
}

/** One request over HTTP/2 checked whole: null when as expected, else what was wrong. */
export function probeH2(at: Endpoint, kind: 'http' | 'grpc'): Promise<string | null> {
  return new Promise((resolve) => {
    const session = http2.connect(`https://${at.host}:${at.port}`, {
      rejectUnauthorized: false,
      servername: kind === 'grpc' ? GRPC_HOST : BENCH_HOST,
    });
    const done = (result: string | null) => {
      session.destroy();
      resolve(result);
    };
    session.on('error', (error) => done(`connection failed: ${error.message}`));
    const timer = setTimeout(() => done('no answer within 10 s'), 10_000);
    const stream = session.request(
      kind === 'grpc'
        ? {
            ':method': 'POST',
            ':path': GRPC_PATH,
            ':authority': GRPC_HOST,
            'content-type': 'application/grpc',
            te: 'trailers',
          }
        : { ':path': '/', ':authority': BENCH_HOST },
    );
    let status = 0;
    let grpcStatus: string | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      grpcStatus = h['grpc-status'] as string | undefined;
    });
    stream.on('trailers', (t) => {
      grpcStatus = t['grpc-status'] as string | undefined;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', (error) => done(`stream failed: ${error.message}`));
    stream.on('end', () => {
      clearTimeout(timer);
      const body = Buffer.concat(chunks);
      if (status !== 200) return done(`status ${status}`);
      if (kind === 'http')
        return done(
          body.toString() === BACKEND_BODY ? null : `wrong body: ${JSON.stringify(body.toString())}`,
        );
      if (grpcStatus !== '0') return done(`grpc-status ${grpcStatus ?? 'missing'}`);
      return done(body.equals(grpcReplyFrame()) ? null : `wrong gRPC reply: ${body.toString('hex')}`);
    });
    stream.end(kind === 'grpc' ? grpcRequestFrame('probe') : undefined);
  });
}
