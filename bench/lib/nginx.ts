// nginx as a system under test: a complete nginx.conf in the suite's scratch directory (pid, logs and
// temp paths inside it), `daemon off` so the PID we hold is the master, stopped by PID.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Endpoint } from './ports.ts';
import { hardOpenFilesLimit, type Managed, startProcess } from './supervisor.ts';
import { requireTool } from './tools.ts';

export interface NginxInstance {
  name: string;
  /** Its own directory inside the suite's tmpDir. */
  dir: string;
  /** The body of the http { } block. */
  http: string;
  listening: readonly Endpoint[];
  workerConnections?: number;
  /** worker_processes (default 1). */
  workerProcesses?: number;
}

export function nginxConfig(instance: NginxInstance): string {
  const temp = join(instance.dir, 'temp');
  const connections = instance.workerConnections ?? 4096;
  return [
    // As root nginx would switch workers to `nobody`, who cannot write into a 0700 scratch dir.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `worker_processes ${instance.workerProcesses ?? 1};`,
    // Never ask for more than the hard limit: without CAP_SYS_RESOURCE setrlimit would fail.
    `worker_rlimit_nofile ${Math.min(connections * 2 + 64, hardOpenFilesLimit())};`,
    'daemon off;',
    'master_process on;',
    `pid ${join(instance.dir, 'nginx.pid')};`,
    `error_log ${join(instance.dir, 'error.log')} warn;`,
    `events { worker_connections ${connections}; multi_accept on; }`,
    'http {',
    `  access_log off;`,
    `  client_body_temp_path ${join(temp, 'body')};`,
    `  proxy_temp_path ${join(temp, 'proxy')};`,
    `  fastcgi_temp_path ${join(temp, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(temp, 'uwsgi')};`,
    `  scgi_temp_path ${join(temp, 'scgi')};`,
    instance.http,
    '}',
    '',
  ].join('\n');
}

export async function startNginx(instance: NginxInstance): Promise<Managed> {
  mkdirSync(join(instance.dir, 'temp'), { recursive: true });
  const configPath = join(instance.dir, 'nginx.conf');
  writeFileSync(configPath, nginxConfig(instance));
  const errorLog = join(instance.dir, 'error.log');
  return startProcess({
    name: instance.name,
    command: requireTool('nginx'),
    args: ['-p', instance.dir, '-e', errorLog, '-c', configPath],
    listening: instance.listening,
    openFiles: (instance.workerConnections ?? 4096) * 2 + 64,
    timeoutMs: 30_000,
  });
}

/** The ingress-nginx default log-format-upstream, with nginx's own variables where ingress-nginx sets Lua ones. */
export const INGRESS_NGINX_LOG_FORMAT =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" ' +
  '"$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] ' +
  '$upstream_addr $upstream_response_length $upstream_response_time $upstream_status $request_id';

export interface IngressLikeProxy {
  listen: Endpoint;
  /** Expect a PROXY protocol header on every connection and take the client address from it. */
  proxyProtocolFrom?: string;
  serverName: string;
  /** `allow` lines in this order, then `deny all` (as ingress-nginx renders an allowlist). */
  allow: readonly string[];
  upstream: Endpoint;
  upstreamName: string;
  accessLogPath: string;
  /** `listen … reuseport`, as ingress-nginx renders it (its reuse-port defaults to true). */
  reusePort?: boolean;
}

/**
 * An L7 proxy configured the way ingress-nginx renders an Ingress with an allowlist: one upstream with
 * keep-alive connections, the allow/deny list in the location, the usual upstream headers, and the
 * access log in the controller's format (unbuffered, as ingress-nginx writes it by default).
 */
export function ingressLikeProxy(proxy: IngressLikeProxy): string {
  const listen = `${proxy.listen.host}:${proxy.listen.port}${proxy.proxyProtocolFrom ? ' proxy_protocol' : ''}${proxy.reusePort ? ' reuseport' : ''}`;
  return [
    `log_format upstreaminfo '${INGRESS_NGINX_LOG_FORMAT}';`,
    `upstream ${proxy.upstreamName} {`,
    `  server ${proxy.upstream.host}:${proxy.upstream.port};`,
    '  keepalive 320;',
    '  keepalive_requests 10000;',
    '}',
    'server {',
    `  listen ${listen} backlog=4096;`,
    `  server_name ${proxy.serverName};`,
    `  access_log ${proxy.accessLogPath} upstreaminfo;`,
    // ingress-nginx defaults: keep-alive 75 s and 1,000 requests per client connection.
    '  keepalive_timeout 75s;',
    '  keepalive_requests 1000;',
    ...(proxy.proxyProtocolFrom
      ? [`  set_real_ip_from ${proxy.proxyProtocolFrom};`, '  real_ip_header proxy_protocol;']
      : []),
    '  location / {',
    `    set $proxy_upstream_name "${proxy.upstreamName}";`,
    '    set $proxy_alternative_upstream_name "";',
    ...proxy.allow.map((cidr) => `    allow ${cidr};`),
    '    deny all;',
    '    proxy_http_version 1.1;',
    '    proxy_set_header Connection "";',
    '    proxy_set_header Host $host;',
    '    proxy_set_header X-Request-ID $request_id;',
    '    proxy_set_header X-Real-IP $remote_addr;',
    '    proxy_set_header X-Forwarded-For $remote_addr;',
    '    proxy_set_header X-Forwarded-Host $host;',
    '    proxy_set_header X-Forwarded-Port $server_port;',
    '    proxy_set_header X-Forwarded-Proto $scheme;',
    '    proxy_set_header X-Scheme $scheme;',
    `    proxy_pass http://${proxy.upstreamName};`,
    '  }',
    '}',
  ].join('\n');
}
