// The systems the HTTP suites put side by side, started the same way in every suite: the nginx
// backend, nginx as an ingress-nginx-style L7 proxy, the naive Node proxy, and keepip's gateway.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BACKEND_BODY, BENCH_HOST, backendServerBlock } from './backend.ts';
import type { HttpTarget } from './http-load.ts';
import { BENCH_UPSTREAM, startKeepipGateway } from './keepip.ts';
import { ingressLikeProxy, startNginx } from './nginx.ts';
import { type Endpoint, freePort } from './ports.ts';
import { type Managed, startProcess } from './supervisor.ts';
import { toolVersions } from './tools.ts';

/** The allowlist of the gateway and chain suites: office ranges, then the loopback client last. */
export const OFFICE_ALLOWLIST = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.1/32'] as const;

export const LOOPBACK = '127.0.0.1';

/** The processes a suite started, stopped together (by PID) when the suite ends. */
export class Started {
  readonly all: Managed[] = [];
  add(managed: Managed): Managed {
    this.all.push(managed);
    return managed;
  }
  async stop(): Promise<void> {
    await Promise.all(this.all.map((managed) => managed.stop()));
  }
}

export async function endpoint(host = LOOPBACK): Promise<Endpoint> {
  return { host, port: await freePort(host) };
}

let versions: ReturnType<typeof toolVersions> | null = null;
export function versionOf(tool: 'nginx' | 'haproxy'): string {
  versions ??= toolVersions();
  return versions[tool];
}

export async function startBackend(
  started: Started,
  dir: string,
): Promise<{ managed: Managed; at: Endpoint }> {
  const at = await endpoint();
  const managed = started.add(
    await startNginx({
      name: 'nginx backend',
      dir: join(dir, 'backend'),
      http: backendServerBlock(at.host, at.port),
      listening: [at],
    }),
  );
  return { managed, at };
}

export async function startNginxProxy(
  started: Started,
  options: {
    name: string;
    dir: string;
    allow: readonly string[];
    upstream: Endpoint;
    proxyProtocolFrom?: string;
    workerConnections?: number;
    /** worker_processes, with `listen … reuseport` as ingress-nginx renders it. */
    workerProcesses?: number;
  },
): Promise<{ managed: Managed; at: Endpoint }> {
  const at = await endpoint();
  const managed = started.add(
    await startNginx({
      name: options.name,
      dir: options.dir,
      http: ingressLikeProxy({
        listen: at,
        serverName: BENCH_HOST,
        allow: options.allow,
        upstream: options.upstream,
        upstreamName: BENCH_UPSTREAM,
        accessLogPath: join(options.dir, 'access.log'),
        ...(options.proxyProtocolFrom ? { proxyProtocolFrom: options.proxyProtocolFrom } : {}),
        ...(options.workerProcesses ? { reusePort: true } : {}),
      }),
      listening: [at],
      ...(options.workerConnections ? { workerConnections: options.workerConnections } : {}),
      ...(options.workerProcesses ? { workerProcesses: options.workerProcesses } : {}),
    }),
  );
  return { managed, at };
}

const NAIVE_PROXY = fileURLToPath(new URL('./naive-proxy.ts', import.meta.url));

export async function startNaive(
  started: Started,
  options: { dir: string; allow: readonly string[]; upstream: Endpoint },
): Promise<{ managed: Managed; at: Endpoint }> {
  const at = await endpoint();
  const allowFile = join(options.dir, 'naive-allow.txt');
  writeFileSync(allowFile, `${options.allow.join('\n')}\n`);
  const managed = started.add(
    await startProcess({
      name: 'naive Node proxy',
      command: process.execPath,
      args: [
        NAIVE_PROXY,
        '--listen',
        `${at.host}:${at.port}`,
        '--upstream',
        `${options.upstream.host}:${options.upstream.port}`,
        '--allow-file',
        allowFile,
      ],
      listening: [at],
    }),
  );
  return { managed, at };
}

/**
 * Starts keepip's gateway; when it cannot start, the error is recorded (it fails the run) and null is
 * returned so the baselines are still measured and reported.
 */
export async function startGatewayOrRecord(
  started: Started,
  errors: string[],
  options: {
    name?: string;
    dir: string;
    allow: readonly string[];
    backend: Endpoint;
    useProxyProtocol?: boolean;
    trustedCidrs?: readonly string[];
    timeoutMs?: number;
    openFiles?: number;
    /** --workers (default: one process). */
    workers?: number;
  },
): Promise<{ managed: Managed; at: Endpoint } | null> {
  const at = await endpoint();
  try {
    const managed = started.add(
      await startKeepipGateway({
        name: options.name ?? 'keepip gateway',
        dir: options.dir,
        listen: at,
        manifests: {
          host: BENCH_HOST,
          allow: options.allow,
          backend: options.backend,
          useProxyProtocol: options.useProxyProtocol ?? false,
          trustedCidrs: options.trustedCidrs ?? ['127.0.0.0/8'],
        },
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        ...(options.openFiles ? { openFiles: options.openFiles } : {}),
        ...(options.workers ? { workers: options.workers } : {}),
      }),
    );
    return { managed, at };
  } catch (error) {
    errors.push((error as Error).message);
    return null;
  }
}

/** A target that loads `at` with the bench Host header and checks the backend's body. */
export function target(
  system: string,
  at: Endpoint,
  measured: readonly Managed[],
  involved: readonly Managed[],
  scenario?: string,
): HttpTarget {
  return {
    system,
    host: at.host,
    port: at.port,
    path: '/',
    hostHeader: BENCH_HOST,
    expectBody: BACKEND_BODY,
    measured,
    involved: [...new Set([...measured, ...involved])],
    ...(scenario ? { scenario } : {}),
  };
}

/** A ratio of two medians, when both exist. */
export function ratioOf(a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0)
    return null;
  return a / b;
}

/**
 * Starts independent systems concurrently (start-up is a good part of a quick run). Unlike
 * Promise.all it waits for every start to settle before throwing the first failure, so nothing is
 * still starting when the suite stops what it started.
 */
export async function startTogether<T extends readonly unknown[]>(
  starts: {
    [K in keyof T]: Promise<T[K]>;
  },
): Promise<T> {
  const settled = await Promise.allSettled(starts as readonly Promise<unknown>[]);
  const failure = settled.find((result) => result.status === 'rejected');
  if (failure) throw failure.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
