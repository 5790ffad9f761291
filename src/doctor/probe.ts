// `keepip doctor --probe`: the socket edge. Sends one request per local source address to a chain whose
// backend is keepip whoami and reads back the address that reached the backend.
import http from 'node:http';
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
  timeoutMs?: number;
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
    const done = (result: Omit<ProbeResult, 'from'>) => {
      if (settled) return;
      settled = true;
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
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= 1024 * 1024) chunks.push(chunk); // whoami answers are small; cap what we keep
        });
        res.on('end', () => {
          const status = res.statusCode ?? null;
          const json = String(res.headers['content-type'] ?? '').includes('application/json');
          const view =
            status !== null && status < 300 && json
              ? backendView(Buffer.concat(chunks).toString('utf8'))
              : { backendSaw: null, source: null };
          done({
            status,
            error: null,
            ...view,
            matches: view.backendSaw === null ? null : view.backendSaw === local,
          });
        });
        res.on('error', (err: NodeJS.ErrnoException) =>
          done({
            status: res.statusCode ?? null,
            error: err.code ?? 'EPROBE',
            backendSaw: null,
            source: null,
            matches: null,
          }),
        );
      },
    );
    req.on('socket', (socket) => {
      socket.on('connect', () => {
        local = canonicalIp((socket.address() as AddressInfo).address ?? '') ?? local;
      });
    });
    req.setTimeout(options.timeoutMs ?? 5_000, () => {
      req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A socket closed without any response is what a gateway that wants a PROXY header does (G3).
      const code =
        err.code === 'ECONNRESET' && err.message === 'socket hang up'
          ? 'CLOSED_WITHOUT_RESPONSE'
          : (err.code ?? 'EPROBE');
      done({ status: null, error: code, backendSaw: null, source: null, matches: null });
    });
    req.end();
  });
}

/** Probes sequentially (one connection at a time keeps the chain's logs readable). */
export async function runProbes(options: ProbeOptions): Promise<ProbeResult[]> {
  const url = new URL(options.url);
  const results: ProbeResult[] = [];
  const sources = options.from.length > 0 ? options.from : [null];
  for (const from of sources) results.push(await probeOne(url, from, options));
  return results;
}
