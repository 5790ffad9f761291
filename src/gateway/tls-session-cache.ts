// ssl-session-cache: TLS sessions kept by the gateway, so a TLS 1.2 client that comes back with its
// session id resumes (nginx's `ssl_session_cache shared:SSL:10m`, ingress-nginx's default). Node's TLS
// asks a server object for sessions ('newSession', 'resumeSession'); this is that object for the
// gateway's hand-made TLS sockets (server.ts). At most ssl-session-cache-size bytes of session data,
// least recently used dropped first, each kept for ssl-session-timeout. One cache per process: with
// workers a client resumes when the kernel hands it to the same worker (nginx shares its cache).
// Node looks sessions up by the TLS 1.2 session id only: TLS 1.3 clients resume by tickets alone.
import { EventEmitter } from 'node:events';
import * as asn1js from 'asn1js';
import type { TlsSessionModel } from '../config/model.ts';

/**
 * Whether an OpenSSL session (SSL_SESSION_ASN1, a SEQUENCE) holds the client's certificate ([3] peer):
 * such a session is not kept, as a resumed one would bring the certificate without the chain it was
 * verified with (auth-tls-verify-depth could not be checked again). Unreadable data is not kept either.
 */
function carriesPeerCertificate(data: Buffer): boolean {
  const parsed = asn1js.fromBER(new Uint8Array(data));
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return true;
  return parsed.result.valueBlock.value.some(
    (field) => field.idBlock.tagClass === 3 && field.idBlock.tagNumber === 3,
  );
}

interface Entry {
  data: Buffer;
  expiresAt: number;
}

export class TlsSessionCache extends EventEmitter {
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  #model: () => TlsSessionModel;
  #now: () => number;

  /** `model`: the current snapshot's settings (read at each store, so a reload applies at once). */
  constructor(model: () => TlsSessionModel, now: () => number = Date.now) {
    super();
    this.#model = model;
    this.#now = now;
    this.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
      this.store(id, data);
      done();
    });
    this.on('resumeSession', (id: Buffer, done: (error: Error | null, data: Buffer | null) => void) =>
      done(null, this.lookup(id)),
    );
  }

  /** Session data bytes kept now. */
  get bytes(): number {
    return this.#bytes;
  }

  store(id: Buffer, data: Buffer): void {
    const model = this.#model();
    if (!model.cache || data.length > model.cacheSizeBytes || carriesPeerCertificate(data)) return;
    const key = id.toString('hex');
    this.#drop(key);
    this.#entries.set(key, { data, expiresAt: this.#now() + model.timeoutSeconds * 1000 });
    this.#bytes += data.length;
    // Least recently used first: a Map keeps insertion order, and lookup re-inserts.
    for (const [oldest] of this.#entries) {
      if (this.#bytes <= model.cacheSizeBytes) break;
      this.#drop(oldest);
    }
  }

  lookup(id: Buffer): Buffer | null {
    const key = id.toString('hex');
    const entry = this.#entries.get(key);
    if (entry === undefined) return null;
    this.#drop(key);
    if (!this.#model().cache || entry.expiresAt <= this.#now()) return null;
    this.#entries.set(key, entry);
    this.#bytes += entry.data.length;
    return entry.data;
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= entry.data.length;
  }
}
