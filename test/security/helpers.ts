// Pieces of the security-invariants suite: topologies from inline YAML through the real loader and
// translator, an in-process gateway on 127.0.0.1:0, a tap that records every byte the gateway sends
// upstream, raw HTTP exchanges (with or without a PROXY header) and metric reads.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, Server } from 'node:http';
import http from '../../src/node-http.ts';
import net from 'node:net';
import type { Topology } from '../../src/config/model.ts';
import { gatewaySources } from '../../src/dashboard/attach.ts';
import { createDecisionLog, type DecisionLog } from '../../src/gateway/decision-log.ts';
import { type RunningDashboard, startDashboard } from '../../src/dashboard/server.ts';
import { type GatewayOptions, type RunningGateway, startGateway } from '../../src/gateway/gateway.ts';
import { parseManifestText } from '../../src/k8s/load.ts';
import { buildTopology, deepFreeze } from '../../src/k8s/translate.ts';
import { type MemorySink, memorySink, testCertificate } from '../fixtures/gateway/harness.ts';
import { rawExchange } from '../helpers/net.ts';

/** The topology of a YAML stream, issues included, exactly as `keepip gateway -f` would build it. */
export function topologyFromYaml(yaml: string): Topology {
  const loaded = parseManifestText(yaml, 'invariants.yaml');
  const topology = buildTopology(loaded.objects);
  return deepFreeze({ ...topology, issues: [...loaded.issues, ...topology.issues] });
}

export function configMapYaml(data: Record<string, string>): string {
  const entries = Object.entries(data).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
  return [
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}',
    entries.length === 0 ? 'data: {}' : 'data:',
    ...entries,
    '---',
  ].join('\n');
}

/** A Service on port 80 whose endpoints are 127.0.0.1 at `port` (each of them, round robin from the first). */
export function serviceYaml(name: string, port: number | readonly number[]): string {
  const subsets = [port]
    .flat()
    .map((p) => `  - addresses: [{ip: 127.0.0.1}]\n    ports: [{name: http, port: ${p}}]`);
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: ${name}, namespace: default}
subsets:
${subsets.join('\n')}
---`;
}

/** An Ingress for the default server: `path` (Prefix) to `service`:80; annotations get the nginx prefix. */
export function ingressYaml(
  name: string,
  path: string,
  service: string,
  annotations: Record<string, string> = {},
) {
  const lines = Object.entries(annotations).map(
    ([k, v]) => `    nginx.ingress.kubernetes.io/${k}: ${JSON.stringify(v)}`,
  );
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${name}
  namespace: default
  annotations:${lines.length === 0 ? ' {}' : `\n${lines.join('\n')}`}
spec:
  ingressClassName: nginx
  rules:
    - http:
        paths:
          - path: ${path}
            pathType: Prefix
            backend: {service: {name: ${service}, port: {number: 80}}}
---`;
}

export interface SecurityGateway {
  gateway: RunningGateway;
  port: number;
  access: MemorySink;
  errors: MemorySink;
  close(): Promise<void>;
}

export async function startSecurityGateway(
  topology: Topology,
  options: Partial<GatewayOptions> = {},
): Promise<SecurityGateway> {
  const access = memorySink();
  const errors = memorySink();
  const gateway = await startGateway({
    topology,
    http: { host: '127.0.0.1', port: 0 },
    accessLog: access,
    errorLog: errors,
    defaultCertificate: await testCertificate(),
    drainTimeoutMs: 1_000,
    ...options,
  });
  return { gateway, port: gateway.httpAddress?.port ?? 0, access, errors, close: () => gateway.close() };
}

export interface DashboardGateway {
  gw: SecurityGateway;
  log: DecisionLog;
  board: RunningDashboard;
}

/** A security gateway with the dashboard on 127.0.0.1:0 (no token), its decision log fed as --dashboard feeds it. */
export async function startDashboardGateway(
  topology: Topology,
  options: Partial<GatewayOptions> = {},
): Promise<DashboardGateway> {
  const log = createDecisionLog();
  const gw = await startSecurityGateway(topology, { ...options, decisions: log.sink });
  const board = await startDashboard({
    listen: { host: '127.0.0.1', port: 0 },
    token: null,
    decisions: log,
    sources: gatewaySources(gw.gateway),
  });
  return { gw, log, board };
}

/** A dashboard API answer: 200 and JSON, parsed. */
// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field by each test
export async function dashboardJson(board: RunningDashboard, path: string): Promise<any> {
  const response = await fetch(new URL(path, board.url));
  assert.equal(response.status, 200, path);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/, path);
  return JSON.parse(await response.text());
}

export interface Tap {
  port: number;
  /** Bytes the gateway sent on each upstream connection, in accept order. */
  upstream(): Buffer[];
  /** Whether any upstream connection carried a request line for `path`. */
  saw(path: string): boolean;
  close(): Promise<void>;
}

/** A TCP pass-through in front of `backendPort` that records every byte sent towards the backend. */
export async function startTap(backendPort: number): Promise<Tap> {
  const recorded: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const chunks: Buffer[] = [];
    recorded.push(chunks);
    const backend = net.connect({ host: '127.0.0.1', port: backendPort });
    for (const s of [client, backend]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        backend.destroy();
      });
      s.once('close', () => sockets.delete(s));
    }
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.pipe(backend);
    backend.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const upstream = () => recorded.map((chunks) => Buffer.concat(chunks));
  return {
    port: (server.address() as net.AddressInfo).port,
    upstream,
    saw: (path) => upstream().some((bytes) => bytes.toString('latin1').includes(` ${path} HTTP/1.1\r\n`)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export function httpRequest(path: string, headers: Record<string, string> = {}): string {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  return `GET ${path} HTTP/1.1\r\nHost: app.example.com\r\nAccept: application/json\r\n${extra.join('')}Connection: close\r\n\r\n`;
}

export interface RawReply {
  /** 0 when the gateway answered nothing. */
  status: number;
  raw: Buffer;
  closedByServer: boolean;
  /** The whoami echo, when the request reached the backend. */
  echo: { name: string; url: string; headers: Record<string, string> } | null;
}

/** One connection from `from`: optional PROXY header, then `request`; read until the gateway closes. */
export async function exchange(
  port: number,
  from: string,
  request: string,
  header: Buffer | string = Buffer.alloc(0),
): Promise<RawReply> {
  const payload = Buffer.concat([Buffer.from(header), Buffer.from(request)]);
  const reply = await rawExchange({ host: '127.0.0.1', port, payload, localAddress: from });
  const text = reply.received.toString('utf8');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  let echo: RawReply['echo'] = null;
  if (status?.[1] === '200' && body.startsWith('{')) echo = JSON.parse(body) as RawReply['echo'];
  return {
    status: status ? Number(status[1]) : 0,
    raw: reply.received,
    closedByServer: reply.closedByServer,
    echo,
  };
}

/** The value of one counter series (0 when the series does not exist yet). */
export async function counterValue(
  gateway: RunningGateway,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = await gateway.metrics.registry.getSingleMetric(name)?.get();
  assert.ok(metric, `no metric ${name}`);
  const series = metric.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return series?.value ?? 0;
}

/** A request one of startNamedBackends' backends served. */
export interface SeenRequest {
  backend: string;
  url: string;
  method: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
}

export interface NamedBackends {
  /** Every request served, in order, with the name of the backend that served it. */
  seen: SeenRequest[];
  port(name: string): number;
  close(): Promise<void>;
}

/**
 * One HTTP backend per name on 127.0.0.1:0, answering with its name in x-backend and `<name> <url>`
 * as the body; `status` picks the answer's status (default 200).
 */
export async function startNamedBackends(
  names: readonly string[],
  status: (name: string, url: string) => number = () => 200,
): Promise<NamedBackends> {
  const seen: SeenRequest[] = [];
  const servers = new Map<string, Server>();
  for (const name of names) {
    const server = http.createServer((req, res) => {
      const url = req.url ?? '';
      seen.push({
        backend: name,
        url,
        method: req.method ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
      });
      res.writeHead(status(name, url), { 'content-type': 'text/plain', 'x-backend': name });
      res.end(`${name} ${url}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.set(name, server);
  }
  return {
    seen,
    port: (name) => ((servers.get(name) as Server).address() as net.AddressInfo).port,
    async close() {
      for (const server of servers.values()) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}
