// The sending side of mirror-target (mirror.ts is the request stage): the copies one gateway process
// has in flight, their bound, their deadlines, their counter (keepip_gateway_mirror_requests_total
// {result}) and their rate-limited error log lines. A copy's answer is read and thrown away.
import type { ClientRequest } from 'node:http';
import http from '../node-http.ts';
import https from 'node:https';
import { Counter, type Registry } from 'prom-client';
import type { MirrorModel } from '../config/model.ts';
import { type ErrorLog, logSafe } from './error-log.ts';

/** Copies in flight per gateway process unless told otherwise. */
export const DEFAULT_MIRROR_IN_FLIGHT = 256;
/** At most one mirror failure line per this many milliseconds; the next one says how many were not logged. */
const LOG_INTERVAL_MS = 1000;

export type MirrorResult = 'answered' | 'failed' | 'dropped' | 'refused';

/** A body that can be read from its start again (request-body-buffer.ts's BufferedBody). */
export interface MirrorBody {
  readonly length: number;
  chunks(): AsyncIterable<Buffer>;
}

/** One copy, ready to send. */
export interface MirrorCall {
  model: MirrorModel;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  connectTimeoutMs: number;
  sendTimeoutMs: number;
  readTimeoutMs: number;
  /** For the error log: the connection and the request's context text. */
  connectionId: number;
  context: string;
}

export interface MirrorsOptions {
  registry: Registry;
  errorLog: ErrorLog;
  maxInFlight?: number | undefined;
}

const METRIC = 'keepip_gateway_mirror_requests_total';

/** The copies one gateway process has in flight, their bound, their counter and their log lines. */
export class Mirrors {
  readonly maxInFlight: number;
  inFlight = 0;
  readonly #requests = new Set<ClientRequest>();
  readonly #counter: Counter<'result'>;
  readonly #errorLog: ErrorLog;
  #loggedAt = Number.NEGATIVE_INFINITY;
  #unlogged = 0;

  constructor(options: MirrorsOptions) {
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MIRROR_IN_FLIGHT;
    this.#errorLog = options.errorLog;
    // One family per registry: gateways sharing a registry share it.
    this.#counter =
      (options.registry.getSingleMetric(METRIC) as Counter<'result'> | undefined) ??
      new Counter({
        name: METRIC,
        help: 'Copies of requests sent to a mirror-target, by result: answered, failed (connect error, deadline, reset), dropped (over the in-flight bound) or refused (the expanded target left its host)',
        labelNames: ['result'] as const,
        registers: [options.registry],
      });
  }

  count(result: MirrorResult): void {
    this.#counter.inc({ result });
  }

  /** A failure line, at most one per LOG_INTERVAL_MS; the next one logged says how many were not. */
  log(connectionId: number, message: string): void {
    const now = performance.now();
    if (now - this.#loggedAt < LOG_INTERVAL_MS) {
      this.#unlogged += 1;
      return;
    }
    const more = this.#unlogged === 0 ? '' : ` (${this.#unlogged} more mirror failures not logged)`;
    this.#loggedAt = now;
    this.#unlogged = 0;
    this.#errorLog.write('error', connectionId, message + more);
  }

  /** Sends `call` (with `body` when given) unless the bound is reached; `done` once the body is no longer read. */
  send(call: MirrorCall, body: MirrorBody | null, done: () => void): void {
    if (this.inFlight >= this.maxInFlight) {
      this.count('dropped');
      this.log(
        call.connectionId,
        `mirror request dropped: ${this.maxInFlight} mirror requests in flight${mirrorContext(call)}`,
      );
      done();
      return;
    }
    this.inFlight += 1;
    let finished = false;
    const finish = (result: MirrorResult, reason: string | null): void => {
      if (finished) return;
      finished = true;
      this.inFlight -= 1;
      this.count(result);
      if (reason !== null)
        this.log(call.connectionId, `mirror request failed: ${reason}${mirrorContext(call)}`);
    };
    const req = startCopy(call, finish);
    if (req === null) {
      done();
      return;
    }
    this.#requests.add(req);
    req.once('close', () => {
      this.#requests.delete(req);
      finish('failed', 'connection closed before the answer');
    });
    writeBody(req, body, done);
  }

  /** Ends every copy in flight (the gateway stops). */
  close(): void {
    for (const req of this.#requests) req.destroy();
  }
}

function mirrorContext(call: MirrorCall): string {
  return `${call.context}, mirror: "${logSafe(call.model.origin + call.path)}"`;
}

/** Opens the copy's request with its deadlines; null when it could not even start (finish told). */
function startCopy(
  call: MirrorCall,
  finish: (result: MirrorResult, reason: string | null) => void,
): ClientRequest | null {
  const { model } = call;
  const total = call.connectTimeoutMs + call.sendTimeoutMs + call.readTimeoutMs;
  let req: ClientRequest;
  try {
    const options = {
      host: model.hostname,
      port: model.port,
      method: call.method,
      path: call.path,
      headers: call.headers,
      setHost: false,
      agent: false,
      // nginx's proxy_ssl_verify is off by default and ingress-nginx's mirror location sets none.
      ...(model.scheme === 'https' ? { rejectUnauthorized: false, servername: sniName(model.hostname) } : {}),
    };
    req = (model.scheme === 'https' ? https : http).request(options);
  } catch (error) {
    finish('failed', (error as Error).message);
    return null;
  }
  const deadline = (what: string) => () => {
    finish('failed', `${what} timed out`);
    req.destroy();
  };
  const overall = setTimeout(deadline('mirror request'), total);
  const connect = setTimeout(deadline('connect()'), call.connectTimeoutMs);
  // The send deadline from the connect until the request is written, then the read deadline.
  let connected = false;
  let written = false;
  const idle = (): void => {
    if (connected) req.setTimeout(written ? call.readTimeoutMs : call.sendTimeoutMs);
  };
  req.on('timeout', () => deadline(written ? 'reading the answer' : 'sending the request')());
  req.once('socket', (socket) => {
    const onConnect = (): void => {
      clearTimeout(connect);
      connected = true;
      idle();
    };
    if (socket.connecting) socket.once('connect', onConnect);
    else onConnect();
  });
  req.once('finish', () => {
    written = true;
    idle();
  });
  req.once('error', (error) => finish('failed', error.message));
  req.once('response', (res) => {
    res.on('error', () => {});
    res.resume();
    res.once('end', () => finish('answered', null));
  });
  req.once('close', () => {
    clearTimeout(overall);
    clearTimeout(connect);
  });
  return req;
}

function sniName(hostname: string): string | undefined {
  return /^[0-9.]+$/.test(hostname) || hostname.includes(':') ? undefined : hostname;
}

/** The body, with backpressure, then the end of the request; `done` once the body is not read any more. */
function writeBody(req: ClientRequest, body: MirrorBody | null, done: () => void): void {
  if (body === null || body.length === 0) {
    req.end();
    done();
    return;
  }
  void (async () => {
    try {
      for await (const chunk of body.chunks()) {
        if (req.destroyed) return;
        if (!req.write(chunk))
          await new Promise<void>((resolve) => {
            req.once('drain', resolve);
            req.once('close', resolve);
          });
      }
      req.end();
    } catch (error) {
      req.destroy(error as Error);
    } finally {
      done();
    }
  })();
}
