// `keepip doctor --probe`: the socket edge. Sends one request per local source address to a chain whose
// backend is keepip whoami and reads back the address that reached the backend.
import type { IncomingMessage } from 'node:http';
import http from '../node-http.ts';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { canonicalIp } from '../net/ip.ts';
import type { ProbeResult } from './types.ts';

// Plain data, so it lives with the doctor's types (probe-explain.ts is pure); re-exported for callers.
export type { ProbeResult } from './types.ts';

export interface ProbeOptions {
  url: string;
  /** Local source addresses to send from (e.g. 127.0.20.10); empty: one request from the default address. */
  from: readonly string[];
  /** Host header to send instead of the URL's. */
  host?: string;
  /** The whole probe's deadline, from the request to the answer's last byte (default 5 s). */
  timeoutMs?: number;
}

/** whoami answers are small: a longer body is a target that is not whoami (or one that never stops). */
const MAX_BODY_BYTES = 1024 * 1024;

/** A probe that ended without a whoami answer; `code` is its error. */
function failed(code: string, status: number | null = null): Omit<ProbeResult, 'from'> {
  return { status, error: code, backendSaw: null, source: null, matches: null };
}

interface WhoamiEcho {
  remoteAddress?: unknown;
  headers?: Record<string, unknown>;
}

/** Reads the client address out of a whoami JSON answer. Pure, exported for tests. */
export function backendView(body: string): Pick<ProbeResult, 'backendSaw' | 'source'> {
  let echo: WhoamiEcho;
  try {
    echo = JSON.parse(body) as WhoamiEcho;
  } catch {
    return { backendSaw: null, source: null };
  }
  if (typeof echo !== 'object' || echo === null) return { backendSaw: null, source: null };
  const headers = echo.headers ?? {};
  const realIp = headers['x-real-ip'];
  if (typeof realIp === 'string' && canonicalIp(realIp.trim()) !== null) {
    return { backendSaw: canonicalIp(realIp.trim()), source: 'x-real-ip' };
  }
  const xff = headers['x-forwarded-for'];
  if (typeof xff === 'string') {
    const last = canonicalIp(xff.split(',').at(-1)?.trim() ?? '');
    if (last !== null) return { backendSaw: last, source: 'x-forwarded-for' };
  }
  if (typeof echo.remoteAddress === 'string') {
    const peer = canonicalIp(echo.remoteAddress);
    if (peer !== null) return { backendSaw: peer, source: 'remote-address' };
  }
  return { backendSaw: null, source: null };
}

function probeOne(url: URL, from: string | null, options: ProbeOptions): Promise<ProbeResult> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    let local: string | null = from;
    let answered = false;
    const done = (result: Omit<ProbeResult, 'from'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req.destroy();
      resolve({ from: local, ...result });
    };
    const req = client.request(
      url,
      {
        method: 'GET',
        headers: { accept: 'application/json', ...(options.host ? { host: options.host } : {}) },
        agent: false,
        ...(from !== null ? { localAddress: from } : {}),
        ...(url.protocol === 'https:' ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        answered = true;
        readAnswer(res, () => local, done);
      },
    );
    // One deadline for the whole probe: a target that trickles bytes (or endless 1xx answers) resets
    // an idle timeout for ever.
    const deadline = setTimeout(() => done(failed('ETIMEDOUT')), options.timeoutMs ?? 5_000);
    req.on('socket', (socket) => {
      socket.on('connect', () => {
        local = canonicalIp((socket.address() as AddressInfo).address ?? '') ?? local;
      });
    });
    // A 101 nobody asked for: Node hands over the socket (no longer the request's to close: left
    // open, the process would wait on the target for ever) and emits no response, end or error.
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      done(failed('UNEXPECTED_UPGRADE', res.statusCode ?? null));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A socket closed without any response is what a gateway that wants a PROXY header does (G3).
      const code =
        err.code === 'ECONNRESET' && err.message === 'socket hang up'
          ? 'CLOSED_WITHOUT_RESPONSE'
          : (err.code ?? 'EPROBE');
      done(failed(code));
    });
    // Anything else that ends the request without an answer (no event above) still ends the probe;
    // once an answer has begun, its own events (and close) end it.
    req.on('close', () => {
      if (!answered) done(failed('CLOSED_WITHOUT_RESPONSE'));
    });
    req.end();
  });
}

/** Reads a whoami answer (at most MAX_BODY_BYTES) and what its backend saw. */
function readAnswer(
  res: IncomingMessage,
  localAddress: () => string | null,
  done: (result: Omit<ProbeResult, 'from'>) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) done(failed('RESPONSE_TOO_LARGE', res.statusCode ?? null));
    else chunks.push(chunk);
  });
  res.on('end', () => {
    const status = res.statusCode ?? null;
    const json = String(res.headers['content-type'] ?? '').includes('application/json');
    const view =
      status !== null && status < 300 && json
        ? backendView(Buffer.concat(chunks).toString('utf8'))
        : { backendSaw: null, source: null };
    const matches = view.backendSaw === null ? null : view.backendSaw === localAddress();
    done({ status, error: null, ...view, matches });
  });
  res.on('error', (err: NodeJS.ErrnoException) => done(failed(err.code ?? 'EPROBE', res.statusCode ?? null)));
  // A body cut short without an error event still ends the probe (after 'end' or 'error' this is a no-op).
  res.on('close', () => done(failed('ECONNRESET', res.statusCode ?? null)));
}

/** Probes sequentially (one connection at a time keeps the chain's logs readable). */
export async function runProbes(options: ProbeOptions): Promise<ProbeResult[]> {
  const url = new URL(options.url);
  const results: ProbeResult[] = [];
  const sources = options.from.length > 0 ? options.from : [null];
  for (const from of sources) results.push(await probeOne(url, from, options));
  return results;
}
