// Active health checks, the socket edge of target health: a TCP check passes when the connection is
// accepted; an HTTP check passes on a 200-399 status to `GET path`. With PROXY on, every check
// connection starts with a LOCAL header, as an NLB's do (rule A6), so a target that requires the
// header does not log it as broken. Checks come from the LB's source address, as an NLB's come from
// its private addresses.
import net from 'node:net';
import type { HealthCheckModel } from '../config/model.ts';
import { formatHostPort } from '../net/host-port.ts';
import { parseStatusLine } from '../net/http-status-line.ts';
import type { CheckResult } from './health-state.ts';

export interface ProbeSpec {
  protocol: 'tcp' | 'http';
  host: string;
  port: number;
  path: string;
  timeoutMs: number;
  localAddress: string | undefined;
  /** Written first on the check connection (a LOCAL header), or null. */
  header: Buffer | null;
}

const MAX_STATUS_BYTES = 4096;

/** One check. Never rejects: every failure is a result with a reason. */
export function probe(spec: ProbeSpec): Promise<CheckResult> {
  return new Promise((resolve) => {
    let settled = false;
    const socket = net.connect({
      host: spec.host,
      port: spec.port,
      ...(spec.localAddress === undefined ? {} : { localAddress: spec.localAddress }),
    });
    const done = (result: CheckResult, graceful: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (graceful) {
        socket.end();
        // Do not wait for the target's FIN longer than a check may take.
        setTimeout(() => socket.destroy(), spec.timeoutMs).unref();
      } else {
        socket.destroy();
      }
      resolve(result);
    };
    const timer = setTimeout(
      () => done({ ok: false, reason: `timeout after ${spec.timeoutMs} ms` }, false),
      spec.timeoutMs,
    );
    socket.on('error', (error: NodeJS.ErrnoException) =>
      done({ ok: false, reason: error.code ?? error.message }, false),
    );
    socket.on('close', () => done({ ok: false, reason: 'closed before answering' }, false));
    socket.once('connect', () => {
      if (spec.protocol === 'tcp') {
        if (spec.header !== null) socket.write(spec.header);
        done({ ok: true }, true);
        return;
      }
      const hostHeader = formatHostPort(spec.host, spec.port);
      const request = Buffer.from(
        `GET ${spec.path} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: keepip-lb-health-check\r\nConnection: close\r\n\r\n`,
        'latin1',
      );
      socket.write(spec.header === null ? request : Buffer.concat([spec.header, request]));
      let received = '';
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        const lineEnd = received.indexOf('\r\n');
        if (lineEnd < 0) {
          if (received.length > MAX_STATUS_BYTES) done({ ok: false, reason: 'no HTTP status line' }, false);
          return;
        }
        const line = parseStatusLine(received.slice(0, lineEnd));
        if (line === null) {
          done({ ok: false, reason: 'not an HTTP response' }, false);
          return;
        }
        const { status } = line;
        done(status >= 200 && status <= 399 ? { ok: true } : { ok: false, reason: `HTTP ${status}` }, false);
      });
    });
  });
}

/**
 * Checks one target every intervalMs (the first check at once) until the returned function is
 * called. Results go to `onResult`; a check never overlaps the previous one.
 */
export function startHealthChecks(options: {
  check: HealthCheckModel;
  target: { host: string; port: number };
  localAddress: string | undefined;
  header: Buffer | null;
  onResult(result: CheckResult): void;
}): () => void {
  const { check, target } = options;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const spec: ProbeSpec = {
    protocol: check.protocol,
    host: target.host,
    port: check.port === 'traffic-port' ? target.port : check.port,
    path: check.path,
    timeoutMs: check.timeoutMs,
    localAddress: options.localAddress,
    header: options.header,
  };
  const run = async () => {
    timer = null;
    const started = Date.now();
    const result = await probe(spec);
    if (stopped) return;
    options.onResult(result);
    timer = setTimeout(run, Math.max(0, check.intervalMs - (Date.now() - started)));
    timer.unref();
  };
  void run();
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
  };
}
