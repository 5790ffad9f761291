// keepip as a system under test: manifests for `keepip gateway` generated into the suite's scratch
// directory (an Ingress with the allowlist annotation, the backend's Service + EndpointSlice, the
// controller ConfigMap), and launchers for `keepip gateway` and `keepip lb` by their CLI. A keepip
// that cannot start is an error naming why, never a silently skipped system.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Endpoint } from './ports.ts';
import { type Managed, startProcess } from './supervisor.ts';

export const KEEPIP_BIN = fileURLToPath(new URL('../../bin/keepip', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface GatewayManifestOptions {
  host: string;
  /** The allowlist, in order (rendered as allowlist-source-range). */
  allow: readonly string[];
  backend: Endpoint;
  useProxyProtocol: boolean;
  /** proxy-real-ip-cidr: who may send PROXY headers / forwarded headers. */
  trustedCidrs: readonly string[];
}

/** The upstream name ingress-nginx would give the backend: <namespace>-<service>-<port>. */
export const BENCH_UPSTREAM = 'bench-bench-backend-80';

/** Multi-document YAML for the gateway, in the shape users write for ingress-nginx. */
export function gatewayManifests(options: GatewayManifestOptions): string {
  const docs = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'ingress-nginx-controller', namespace: 'ingress-nginx' },
      data: {
        'use-proxy-protocol': String(options.useProxyProtocol),
        'proxy-real-ip-cidr': options.trustedCidrs.join(','),
        'upstream-keepalive-connections': '320',
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: {
        name: 'bench',
        namespace: 'bench',
        annotations: { 'nginx.ingress.kubernetes.io/allowlist-source-range': options.allow.join(',') },
      },
      spec: {
        ingressClassName: 'nginx',
        rules: [
          {
            host: options.host,
            http: {
              paths: [
                {
                  path: '/',
                  pathType: 'Prefix',
                  backend: { service: { name: 'bench-backend', port: { number: 80 } } },
                },
              ],
            },
          },
        ],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'bench-backend', namespace: 'bench' },
      spec: {
        type: 'ClusterIP',
        ports: [{ name: 'http', port: 80, targetPort: options.backend.port, protocol: 'TCP' }],
      },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'bench-backend-1',
        namespace: 'bench',
        labels: { 'kubernetes.io/service-name': 'bench-backend' },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: options.backend.port, protocol: 'TCP' }],
      endpoints: [{ addresses: [options.backend.host], conditions: { ready: true } }],
    },
  ];
  return docs.map((doc) => stringify(doc, { lineWidth: 0 })).join('---\n');
}

function keepipError(what: string, error: unknown): Error {
  return new Error(
    `KEEPIP_UNAVAILABLE: ${what} could not be started, so it cannot be measured: ${(error as Error).message}`,
  );
}

export async function startKeepipGateway(options: {
  name: string;
  dir: string;
  listen: Endpoint;
  manifests: GatewayManifestOptions;
  timeoutMs?: number;
  openFiles?: number;
  /** --workers (default: one process). */
  workers?: number;
}): Promise<Managed> {
  mkdirSync(options.dir, { recursive: true });
  const manifestDir = join(options.dir, 'manifests');
  mkdirSync(manifestDir, { recursive: true });
  writeFileSync(join(manifestDir, 'bench.yaml'), gatewayManifests(options.manifests));
  const args = [
    KEEPIP_BIN,
    'gateway',
    '-f',
    manifestDir,
    '--http',
    `${options.listen.host}:${options.listen.port}`,
    '--access-log',
    join(options.dir, 'access.log'),
    ...(options.workers ? ['--workers', String(options.workers)] : []),
  ];
  try {
    return await startProcess({
      name: options.name,
      command: process.execPath,
      args,
      cwd: REPO_ROOT,
      listening: [options.listen],
      timeoutMs: options.timeoutMs ?? 30_000,
      ...(options.openFiles ? { openFiles: options.openFiles } : {}),
    });
  } catch (error) {
    throw keepipError(`keepip gateway (${args.slice(1).join(' ')})`, error);
  }
}

export async function startKeepipLb(options: {
  name: string;
  listen: Endpoint;
  target: Endpoint;
  proxyProtocol: 'v1' | 'v2' | null;
  sourceAddress: string;
}): Promise<Managed> {
  const args = [
    KEEPIP_BIN,
    'lb',
    '--listen',
    `${options.listen.host}:${options.listen.port}`,
    '--target',
    `${options.target.host}:${options.target.port}`,
    ...(options.proxyProtocol ? ['--proxy-protocol', options.proxyProtocol] : []),
    '--source-address',
    options.sourceAddress,
  ];
  try {
    return await startProcess({
      name: options.name,
      command: process.execPath,
      args,
      cwd: REPO_ROOT,
      listening: [options.listen],
      timeoutMs: 30_000,
    });
  } catch (error) {
    throw keepipError(`keepip lb (${args.slice(1).join(' ')})`, error);
  }
}
