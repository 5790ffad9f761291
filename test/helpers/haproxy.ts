// HAProxy for interop tests and benchmarks: a config in a fresh temp dir, HAProxy in the foreground
// (`-db`, so `log stdout` works and the PID we hold is the one to stop), ready once every frontend
// port listens, stopped by PID. HAProxy cannot listen on port 0: ask for `freePorts` and the config gets
// them; a start that fails because another program took one meanwhile is retried on new ports. Usage:
//   const hap = await startHaproxy({ freePorts: 1,
//     config: (dir, [port]) => `frontend fe\n  bind 127.0.0.1:${port} accept-proxy\n ...`,
//     waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }] });
//   ...; hap.ports[0]; await hap.waitForLog(/client=127\.0\.0\.77/); await hap.stop();
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withFreePorts } from './net.ts';
import { type Running, requireBinary, start } from './process.ts';

export interface HaproxyOptions {
  /** Everything after the `global` and `defaults` sections (frontends, backends, listens), or a function of the temp dir and the ports. */
  config: string | ((dir: string, ports: number[]) => string);
  /** host:port pairs that must be listening before the promise resolves (no connection is made to them). */
  waitFor: Endpoint[] | ((ports: number[]) => Endpoint[]);
  /** How many free ports (on `portHost`, default 127.0.0.1) to pick for `config` and `waitFor`. */
  freePorts?: number;
  portHost?: string;
  /** Extra lines for the `global` section. `nbthread 1` is always set unless `nbthread` says otherwise. */
  global?: string[];
  /** Extra lines for the `defaults` section (timeouts and `log global` are set already). */
  defaults?: string[];
  nbthread?: number;
  /** Default mode of the `defaults` section. */
  mode?: 'tcp' | 'http';
  timeoutMs?: number;
}

type Endpoint = { host: string; port: number };

export interface RunningHaproxy {
  dir: string;
  /** The ports picked for `freePorts` (empty without). */
  ports: number[];
  configPath: string;
  pid: number;
  process: Running;
  /** Everything HAProxy wrote to stdout/stderr so far: with `log stdout format raw`, the log lines. */
  output(): string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Stops HAProxy by its PID (SIGTERM, SIGKILL after 3 s) and removes the temp dir. */
  stop(): Promise<void>;
}

export function startHaproxy(options: HaproxyOptions): Promise<RunningHaproxy> {
  if (!options.freePorts) return startOnce(options, []);
  return withFreePorts(options.freePorts, options.portHost ?? '127.0.0.1', (ports) =>
    startOnce(options, ports),
  );
}

async function startOnce(options: HaproxyOptions, ports: number[]): Promise<RunningHaproxy> {
  const binary = requireBinary('haproxy');
  const dir = mkdtempSync(join(tmpdir(), 'keepip-haproxy-'));
  const body = typeof options.config === 'function' ? options.config(dir, ports) : options.config;
  const text = [
    'global',
    `  nbthread ${options.nbthread ?? 1}`,
    '  log stdout format raw local0 info',
    ...(options.global ?? []).map((line) => `  ${line}`),
    '',
    'defaults',
    `  mode ${options.mode ?? 'tcp'}`,
    '  log global',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    ...(options.defaults ?? []).map((line) => `  ${line}`),
    '',
    body,
    '',
  ].join('\n');
  const configPath = join(dir, 'haproxy.cfg');
  writeFileSync(configPath, text);
  const running = start(binary, ['-db', '-f', configPath]);
  const stop = async () => {
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const endpoints = typeof options.waitFor === 'function' ? options.waitFor(ports) : options.waitFor;
    await waitForListening(endpoints, running, options.timeoutMs ?? 30_000);
  } catch (error) {
    await stop();
    throw new Error(`HAProxy did not start: ${(error as Error).message}\nconfig:\n${text}`);
  }
  return {
    dir,
    ports,
    configPath,
    pid: running.child.pid!,
    process: running,
    output: running.output,
    waitForLog: (pattern, timeoutMs) => running.waitFor(pattern, timeoutMs),
    stop,
  };
}

/**
 * Resolves once every host:port is in LISTEN state, read from /proc/net/tcp{,6} so that waiting makes
 * no connection (a probe would show up as noise such as `broken header` in a PROXY listener's log).
 * Rejects when `process` exits first or after `timeoutMs`. Shared by the nginx launcher.
 */
export async function waitForListening(
  endpoints: { host: string; port: number }[],
  process: Running,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (process.child.exitCode !== null || process.child.signalCode !== null) {
      throw new Error(`exited early; output:\n${process.output()}`);
    }
    const listening = listeningSockets(endpoints.some(({ host }) => host.includes(':')));
    const missing = endpoints.filter(({ host, port }) => {
      const address = host.includes(':') ? normaliseV6(host) : host === 'localhost' ? '127.0.0.1' : host;
      return !listening.has(`${address}:${port}`) && !listening.has(`${wildcardFor(host)}:${port}`);
    });
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      const names = missing.map(({ host, port }) => `${host}:${port}`).join(', ');
      throw new Error(`nothing listens on ${names} after ${timeoutMs} ms; output:\n${process.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function wildcardFor(host: string): string {
  return host.includes(':') ? '::' : '0.0.0.0';
}

/**
 * "addr:port" of every socket in LISTEN state (IPv6, read only when asked for, in the kernel's expanded
 * form normalised). The files also list every TIME_WAIT socket the suite left, thousands of lines read
 * every 25 ms while a server starts: one regular expression over the text finds the listeners.
 */
function listeningSockets(withV6: boolean): Set<string> {
  const result = new Set<string>();
  const files = withV6 ? PROC_TCP : PROC_TCP.slice(0, 1);
  for (const [file, v6] of files) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    // `sl: local_address rem_address st`, st 0A = TCP_LISTEN.
    for (const [, addrHex, portHex] of text.matchAll(LISTEN_LINE)) {
      const port = Number.parseInt(portHex!, 16);
      result.add(`${v6 ? decodeV6(addrHex!) : decodeV4(addrHex!)}:${port}`);
    }
  }
  return result;
}

const PROC_TCP = [
  ['/proc/net/tcp', false],
  ['/proc/net/tcp6', true],
] as const;
const LISTEN_LINE = /^ *\d+: ([0-9A-F]+):([0-9A-F]+) [0-9A-F]+:[0-9A-F]+ 0A /gm;

// The kernel prints addresses as host-order 32-bit words (little-endian on the machines we run on).
function decodeV4(hex: string): string {
  const bytes = Buffer.from(hex, 'hex').reverse();
  return Array.from(bytes).join('.');
}

function decodeV6(hex: string): string {
  const raw = Buffer.from(hex, 'hex');
  for (let i = 0; i < 16; i += 4) raw.subarray(i, i + 4).reverse();
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(raw.readUInt16BE(i).toString(16));
  return normaliseV6(groups.join(':'));
}

/** RFC 5952 form via the URL parser, so "0:0:0:0:0:0:0:1" and "::1" compare equal. */
function normaliseV6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}
