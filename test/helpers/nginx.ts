// nginx for interop tests and benchmarks: a complete nginx.conf in a fresh temp dir (pid file, error
// log, access log, temp paths all inside it), `daemon off` so the PID we hold is the master, ready once
// every listen port is in LISTEN state, stopped by PID. nginx cannot listen on port 0: ask for
// `freePorts` and the config gets them; a start that fails because another program took one meanwhile
// is retried on new ports. Usage:
//   const ngx = await startNginx({
//     freePorts: 1,
//     http: (dir, [port]) => `log_format ip '$remote_addr'; server { listen 127.0.0.1:${port} proxy_protocol;
//                      access_log ${dir}/access.log ip; location / { return 200 "ok\n"; } }`,
//     waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
//   });
//   ...; ngx.ports[0]; ngx.readFile('access.log'); await ngx.stop();
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForListening } from './haproxy.ts';
import { withFreePorts } from './net.ts';
import { type Running, requireBinary, start } from './process.ts';

export interface NginxOptions {
  /** The body of the `http { }` block (servers, log formats…), or a function of the temp dir and the ports. */
  http?: string | ((dir: string, ports: number[]) => string);
  /** The body of a `stream { }` block, if any (needs the stream module to be built in or loadable). */
  stream?: string | ((dir: string, ports: number[]) => string);
  /** Extra main-context lines, e.g. `load_module …;`. */
  main?: string[];
  /** host:port pairs that must be listening before the promise resolves (no connection is made to them). */
  waitFor: Endpoint[] | ((ports: number[]) => Endpoint[]);
  /** How many free ports (on `portHost`, default 127.0.0.1) to pick for the config and `waitFor`. */
  freePorts?: number;
  portHost?: string;
  workerProcesses?: number;
  timeoutMs?: number;
}

type Endpoint = { host: string; port: number };

export interface RunningNginx {
  dir: string;
  /** The ports picked for `freePorts` (empty without). */
  ports: number[];
  configPath: string;
  /** `${dir}/error.log`: nginx's error log (PROXY `broken header` lines land here). */
  errorLogPath: string;
  /** `${dir}/access.log`: the default access log of the http block (combined format) unless a server overrides it. */
  accessLogPath: string;
  pid: number;
  process: Running;
  /** Reads a file inside the temp dir ('' when it does not exist yet). */
  readFile(name: string): string;
  /** Polls a file inside the temp dir until its content matches `pattern`. */
  waitForFile(name: string, pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Stops nginx by its PID (SIGTERM = fast shutdown, SIGKILL after 3 s) and removes the temp dir. */
  stop(): Promise<void>;
}

export function startNginx(options: NginxOptions): Promise<RunningNginx> {
  if (!options.freePorts) return startOnce(options, []);
  return withFreePorts(options.freePorts, options.portHost ?? '127.0.0.1', (ports) =>
    startOnce(options, ports),
  );
}

/**
 * Resolves once nginx's master has bound every listener and started its workers (its notice line
 * "start worker process"). Something listening on the ports is not enough: another program may hold
 * one of them while nginx retries its bind() for a few seconds and then exits. A failed bind() is
 * thrown as a port clash (withFreePorts then starts again on other ports).
 */
async function waitForOwnListeners(errorLogPath: string, running: Running, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : '';
    const clash = /bind\(\) to \S+ failed \(98: Address already in use\)/.exec(log);
    if (clash !== null) throw new Error(`Address already in use: ${clash[0]}`);
    if (/start worker process/.test(log)) return;
    if (running.child.exitCode !== null || running.child.signalCode !== null)
      throw new Error(`exited before starting its workers; output:\n${running.output()}`);
    if (Date.now() > deadline) throw new Error(`no worker started after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startOnce(options: NginxOptions, ports: number[]): Promise<RunningNginx> {
  const binary = requireBinary('nginx');
  const dir = mkdtempSync(join(tmpdir(), 'keepip-nginx-'));
  const temp = join(dir, 'temp');
  mkdirSync(temp);
  const resolve = (part: string | ((dir: string, ports: number[]) => string) | undefined) =>
    typeof part === 'function' ? part(dir, ports) : (part ?? '');
  const errorLogPath = join(dir, 'error.log');
  const accessLogPath = join(dir, 'access.log');
  // Workers run as the invoking user; as root nginx would switch them to `nobody`, who cannot write
  // into our 0700 temp dir.
  const user = process.getuid?.() === 0 ? ['user root;'] : [];
  const text = [
    ...user,
    ...(options.main ?? []),
    `worker_processes ${options.workerProcesses ?? 1};`,
    'daemon off;',
    'master_process on;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${errorLogPath} info;`,
    'events { worker_connections 4096; }',
    'http {',
    `  access_log ${accessLogPath};`,
    `  client_body_temp_path ${join(temp, 'body')};`,
    `  proxy_temp_path ${join(temp, 'proxy')};`,
    `  fastcgi_temp_path ${join(temp, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(temp, 'uwsgi')};`,
    `  scgi_temp_path ${join(temp, 'scgi')};`,
    resolve(options.http),
    '}',
    ...(options.stream === undefined ? [] : ['stream {', resolve(options.stream), '}']),
    '',
  ].join('\n');
  const configPath = join(dir, 'nginx.conf');
  writeFileSync(configPath, text);
  // -e: the error log before the config is read (the default path may not be writable); -p: prefix.
  const running = start(binary, ['-p', dir, '-e', errorLogPath, '-c', configPath]);
  const stop = async () => {
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const endpoints = typeof options.waitFor === 'function' ? options.waitFor(ports) : options.waitFor;
    await waitForListening(endpoints, running, options.timeoutMs ?? 30_000);
    await waitForOwnListeners(errorLogPath, running, options.timeoutMs ?? 30_000);
  } catch (error) {
    const log = existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : '';
    await stop();
    throw new Error(`nginx did not start: ${(error as Error).message}\nerror.log:\n${log}\nconfig:\n${text}`);
  }
  const readFile = (name: string) => {
    const path = join(dir, name);
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  };
  return {
    dir,
    ports,
    configPath,
    errorLogPath,
    accessLogPath,
    pid: running.child.pid!,
    process: running,
    readFile,
    async waitForFile(name, pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = readFile(name).match(pattern);
        if (match) return match;
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${pattern} in ${name}; content:\n${readFile(name)}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop,
  };
}

/**
 * The http-block text of an HTTP/2 front as ingress-nginx renders one: an upstream to the backend
 * (keepalive 320), a TLS server with http2 and, for h2c with prior knowledge (as keepip's HTTP
 * listener serves it), a plain http2 server, both with the same `location` text. `http` and `tls`
 * are directives for the http block and the TLS server.
 */
export function h2FrontConfig(o: {
  port: number;
  plainPort: number;
  backend: number;
  certDir: string;
  location: string;
  http?: string;
  tls?: string;
}): string {
  return `
  ${o.http ?? ''}
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream upstream_balancer { server 127.0.0.1:${o.backend}; keepalive 320; keepalive_requests 10000; }
  server {
    listen 127.0.0.1:${o.port} ssl http2 default_server;
    server_name _;
    ssl_certificate ${o.certDir}/tls.crt;
    ssl_certificate_key ${o.certDir}/tls.key;
    ${o.tls ?? ''}
    ${o.location}
  }
  # h2c with prior knowledge, as keepip's HTTP listener also serves it.
  server {
    listen 127.0.0.1:${o.plainPort} http2 default_server;
    server_name _;
    ${o.location}
  }`;
}
