// OCSP stapling for the HTTPS listener (enable-ocsp), as ingress-nginx's certificate.lua: a handshake
// that asks for the certificate status gets the cached response when there is a current one, and never
// waits for the responder: a missing or old one is fetched in the background (one fetch per
// certificate at a time, under a deadline), checked (ocsp.ts), and stapled from the next handshake on.
// A response is stapled until its nextUpdate (3 days when it has none, as ingress-nginx's cache) and
// fetched again from halfway there; a failed fetch is retried after a minute, not on every handshake.
import { createHash, X509Certificate } from 'node:crypto';
import type { ErrorLevel } from './error-log.ts';
import type { OcspError } from './ocsp.ts';

/** ingress-nginx's lua-resty-http timeouts for the responder: connect 1 s, send 1 s, read 2 s. */
const FETCH_DEADLINE_MS = 4_000;
/** certificate.lua caches a response for 3 days (its Lua API cannot read nextUpdate). */
const DEFAULT_LIFETIME_MS = 3 * 24 * 3_600_000;
const RETRY_AFTER_FAILURE_MS = 60_000;
/** Responses are small (a few KiB); more is not an OCSP response. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Certificates remembered (a reload may bring new ones; the oldest go first). */
const MAX_ENTRIES = 1_024;

interface Entry {
  der: Buffer | null;
  /** Stapled while now < expiresAt. */
  expiresAt: number;
  /** Fetched again from then on (a failure: not before). */
  refreshAt: number;
  fetching: boolean;
}

export interface OcspStaplerOptions {
  /** enable-ocsp of the served snapshot, read at each handshake. */
  enabled(): boolean;
  log(level: ErrorLevel, message: string): void;
  now?: () => number;
  /** The POST to the responder (tests may replace it); resolves with the body of a 200. */
  post?: (url: string, body: Buffer) => Promise<Buffer>;
}

export interface OcspStapler {
  /** Node's 'OCSPRequest' listener: answers at once, with the current response or none. */
  onOcspRequest(
    certificate: Buffer,
    issuer: Buffer | null,
    done: (error: Error | null, response?: Buffer) => void,
  ): void;
  /** Resolves when no fetch is running (tests, shutdown). */
  idle(): Promise<void>;
}

export function createOcspStapler(options: OcspStaplerOptions): OcspStapler {
  const now = options.now ?? Date.now;
  const post = options.post ?? postOcspRequest;
  const entries = new Map<string, Entry>();
  const running = new Set<Promise<void>>();

  const refresh = (entry: Entry, certificate: Buffer, issuer: Buffer | null): void => {
    entry.fetching = true;
    const task = fetchChecked(certificate, issuer, post, now)
      // ocsp.ts answers with values; anything thrown still must not reach the process as a rejection.
      .catch(
        (error: Error): Fetched => ({
          ok: false,
          error: { code: 'OCSP_BAD_RESPONSE', message: error.message },
        }),
      )
      .then((result) => {
        const at = now();
        if (result.ok) {
          const expiresAt = Math.min(
            result.nextUpdateMs ?? at + DEFAULT_LIFETIME_MS,
            at + DEFAULT_LIFETIME_MS,
          );
          // Halfway to expiry, never sooner than a failure's retry: no fetch per handshake.
          const refreshAt = Math.max(at + (expiresAt - at) / 2, at + RETRY_AFTER_FAILURE_MS);
          Object.assign(entry, { der: result.der, expiresAt, refreshAt });
          options.log(
            'info',
            `OCSP response for ${subjectOf(certificate)} stapled until ${new Date(expiresAt).toISOString()}`,
          );
        } else {
          entry.refreshAt = at + RETRY_AFTER_FAILURE_MS;
          options.log(
            'error',
            `${result.error.code}: ${result.error.message} (OCSP for ${subjectOf(certificate)}; not stapled, retried in 60 s)`,
          );
        }
      })
      .finally(() => {
        entry.fetching = false;
        running.delete(task);
      });
    running.add(task);
  };

  return {
    onOcspRequest(certificate, issuer, done) {
      if (!options.enabled()) return done(null);
      const key = createHash('sha256').update(certificate).digest('hex');
      let entry = entries.get(key);
      if (entry === undefined) {
        entry = { der: null, expiresAt: 0, refreshAt: 0, fetching: false };
        if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
        entries.set(key, entry);
      }
      const at = now();
      if (!entry.fetching && at >= entry.refreshAt) refresh(entry, certificate, issuer);
      done(null, entry.der !== null && at < entry.expiresAt ? entry.der : undefined);
    },
    async idle() {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}

type Fetched = { ok: true; der: Buffer; nextUpdateMs: number | null } | { ok: false; error: OcspError };

async function fetchChecked(
  certificate: Buffer,
  issuer: Buffer | null,
  post: (url: string, body: Buffer) => Promise<Buffer>,
  now: () => number,
): Promise<Fetched> {
  // Loaded on the first fetch: pkijs costs every gateway start ~80 ms, and only enable-ocsp needs it.
  const { checkOcspResponse, ocspQuery } = await import('./ocsp.ts');
  const query = await ocspQuery(certificate, issuer);
  if (!query.ok) return query;
  let body: Buffer;
  try {
    body = await post(query.value.url, query.value.request);
  } catch (error) {
    return {
      ok: false,
      error: { code: 'OCSP_FETCH_FAILED', message: `${query.value.url}: ${(error as Error).message}` },
    };
  }
  const checked = await checkOcspResponse(body, certificate, issuer as Buffer, now());
  return checked.ok ? { ok: true, ...checked.value } : checked;
}

/** POSTs the request as application/ocsp-request; the body of a 200 (at most 64 KiB), within 4 s. */
async function postOcspRequest(url: string, body: Buffer): Promise<Buffer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
    body,
    redirect: 'error',
    signal: AbortSignal.timeout(FETCH_DEADLINE_MS),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`unexpected OCSP responder status code: ${response.status}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) throw new Error(`the response is larger than ${MAX_RESPONSE_BYTES} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

function subjectOf(certificate: Buffer): string {
  try {
    return new X509Certificate(certificate).subject.replaceAll('\n', ', ');
  } catch {
    return 'a certificate';
  }
}
