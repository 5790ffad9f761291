// use-gzip / enable-brotli: the response compressed on its way to the client, on nginx's terms
// (ngx_http_gzip_filter_module and ngx_http_gzip_ok, with ingress-nginx's gzip_proxied any,
// gzip_vary on, gzip_http_version 1.1): only 200, 403 and 404; only the types listed (text/html
// always); not below the minimum length when the backend says its length; not when the backend
// already encoded it; not 204/304, which have no body (HEAD gets the head a GET gets, without the
// body). `Vary: Accept-Encoding` goes on
// every response of a compressible type, compressed or not. Brotli, when on and accepted, comes first,
// as the brotli module runs before gzip. Each piece the backend sends is flushed at once (ingress-nginx
// proxies with buffering off, and nginx flushes gzip then), with backpressure both ways.
import zlib from 'node:zlib';
import type { CompressionCodecModel, CompressionModel } from '../config/model.ts';
import { compileMap, type MapMatcher, readMapKey } from '../config/nginx-map.ts';
import { type GatewayRequest, type GatewayResponse, hideHeadFields } from './exchange.ts';
import { headerText } from './header-value.ts';

type Headers = Record<string, string | number | string[]>;
type Encoding = 'gzip' | 'br';

const COMPRESSIBLE_STATUSES = new Set([200, 403, 404]);
const disableMatchers = new WeakMap<CompressionModel, MapMatcher>();

/** Whether `codec` takes this response by its type and declared length (nginx's header filter checks). */
function takes(codec: CompressionCodecModel | null, headers: Headers): boolean {
  if (codec === null) return false;
  const length = headerText(headers['content-length']);
  if (length !== undefined && Number(length) < codec.minLength) return false;
  if (codec.types.includes('*')) return true;
  const type = mimeType(headerText(headers['content-type']) ?? '');
  return type === 'text/html' || codec.types.includes(type);
}

/**
 * The type gzip_types compares, as nginx's ngx_http_upstream_copy_content_type sets it apart: the value
 * before a `;` that spaces and `charset=` follow, else the whole value (`text/plain; format=flowed` is
 * no `text/plain`), lower-cased.
 */
function mimeType(contentType: string): string {
  for (let at = contentType.indexOf(';'); at !== -1; at = contentType.indexOf(';', at + 1)) {
    let p = at + 1;
    while (contentType.charCodeAt(p) === 0x20) p++;
    if (contentType.slice(p, p + 8).toLowerCase() === 'charset=')
      return contentType.slice(0, at).toLowerCase();
  }
  return contentType.toLowerCase();
}

/** nginx's ngx_http_gzip_quantity: `q=` 0 to 1 with at most three decimals; 0 when not a quantity. */
function quantity(text: string): number {
  const m = /^([01])(?:\.(\d{0,3}))?$/.exec(text);
  if (m === null) return 0;
  const q = Number(m[1]) * 1000 + Number((m[2] ?? '').padEnd(3, '0'));
  return q > 1000 ? 0 : q;
}

/** Whether Accept-Encoding takes `coding` with a quantity above 0 (nginx's ngx_http_gzip_accept_encoding). */
export function acceptsCoding(acceptEncoding: string | undefined, coding: string): boolean {
  if (acceptEncoding === undefined) return false;
  for (const item of acceptEncoding.toLowerCase().split(',')) {
    const [name, ...params] = item.split(';').map((part) => part.trim());
    if (name !== coding) continue;
    // nginx takes a bare coding, or one whose first parameter is `q=` with a quantity above 0; any
    // other parameter (`level=1`, `q`, `q =0`) declines it rather than guessing.
    const first = params[0];
    if (first === undefined || (first === '' && params.length === 1)) return true;
    return first.startsWith('q=') && quantity(first.slice(2)) > 0;
  }
  return false;
}

/** What this response gets: an encoding or none, and whether Vary: Accept-Encoding goes on it. */
export function chooseEncoding(
  model: CompressionModel,
  req: Pick<GatewayRequest, 'method' | 'headers' | 'httpVersion'>,
  status: number,
  headers: Headers,
): { encoding: Encoding | null; vary: boolean } {
  const none = { encoding: null, vary: false };
  if (!COMPRESSIBLE_STATUSES.has(status)) return none;
  if ((headerText(headers['content-encoding']) ?? '') !== '') return none;
  const brotli = takes(model.brotli, headers);
  const gzip = takes(model.gzip, headers);
  if (!brotli && !gzip) return none;
  const accept = headerText(req.headers['accept-encoding']);
  if (brotli && acceptsCoding(accept, 'br')) return { encoding: 'br', vary: true };
  if (!gzip || req.httpVersion === '1.0' || !acceptsCoding(accept, 'gzip'))
    return { encoding: null, vary: true };
  const agent = headerText(req.headers['user-agent']);
  if (agent !== undefined && disabledFor(model).matches(agent)) return { encoding: null, vary: true };
  return { encoding: 'gzip', vary: true };
}

function disabledFor(model: CompressionModel): MapMatcher {
  let matcher = disableMatchers.get(model);
  if (matcher === undefined) {
    matcher = compileMap(model.disable, readMapKey);
    disableMatchers.set(model, matcher);
  }
  return matcher;
}

function withVary(headers: Headers): void {
  const vary = headers.vary;
  if (vary === undefined) headers.vary = 'Accept-Encoding';
  else headers.vary = [...(Array.isArray(vary) ? vary : [String(vary)]), 'Accept-Encoding'];
}

/** The head of a compressed response: nginx drops the length and Accept-Ranges and weakens a strong ETag. */
function encodedHead(headers: Headers, encoding: Encoding): void {
  headers['content-encoding'] = encoding;
  delete headers['content-length'];
  delete headers['accept-ranges'];
  const etag = headerText(headers.etag);
  if (etag !== undefined && !etag.startsWith('W/')) {
    if (etag.startsWith('"')) headers.etag = `W/${etag}`;
    else delete headers.etag;
  }
}

/**
 * zlib's window and memory level for a body of `length` bytes (unknown: -1), as nginx's
 * ngx_http_gzip_filter_memory sizes them: a short body gets a small state (about 256 KiB at most).
 */
export function gzipMemory(length: number): { windowBits: number; memLevel: number } {
  let windowBits = 15;
  let memLevel = 8;
  // zlib's usable window is 262 bytes smaller than its size.
  if (length > 0)
    while (windowBits > 9 && length < 2 ** (windowBits - 1) - 262) {
      windowBits -= 1;
      memLevel -= 1;
    }
  return { windowBits, memLevel: Math.max(1, memLevel) };
}

function encoder(
  encoding: Encoding,
  model: CompressionModel,
  length: number,
): zlib.Gzip | zlib.BrotliCompress {
  if (encoding === 'gzip') return zlib.createGzip({ level: model.gzip?.level ?? 1, ...gzipMemory(length) });
  // ngx_brotli's default window, 512 KiB (brotli's own, 4 MiB, would be per response).
  return zlib.createBrotliCompress({
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: model.brotli?.level ?? 4,
      [zlib.constants.BROTLI_PARAM_LGWIN]: 19,
    },
  });
}

/** A response whose body may be compressed: when it ends, the bytes that went to the client. */
export interface CompressedResponse {
  /** Calls `done` with the body bytes sent once the body is out (at once when nothing was compressed). */
  whenSent(uncompressedBytes: number, done: (bodyBytes: number) => void): void;
}

/** The response's own methods, before this stage wrapped them. */
interface Inner {
  writeHead(status: number, headers: Headers): GatewayResponse;
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
  destroy(): unknown;
}

/** One response's compression: the head decided, the body through the encoder, the bytes counted. */
class ResponseCompressor implements CompressedResponse {
  readonly #inner: Inner;
  readonly #req: GatewayRequest;
  readonly #model: CompressionModel;
  #stream: zlib.Gzip | zlib.BrotliCompress | null = null;
  #sent = 0;
  #finished = false;
  #onFinished: (() => void) | null = null;

  constructor(inner: Inner, req: GatewayRequest, model: CompressionModel) {
    this.#inner = inner;
    this.#req = req;
    this.#model = model;
  }

  writeHead(status: number, given: Headers | undefined): GatewayResponse {
    const headers: Headers = { ...given };
    const choice = chooseEncoding(this.#model, this.#req, status, headers);
    if (choice.vary) withVary(headers);
    if (choice.encoding !== null) {
      const length = Number(headerText(headers['content-length']) ?? -1);
      encodedHead(headers, choice.encoding);
      // HEAD gets the head a GET would (nginx's gzip header filter runs before HEAD drops the body).
      if (this.#req.method !== 'HEAD')
        this.#start(choice.encoding, Number.isSafeInteger(length) ? length : -1);
    }
    return this.#inner.writeHead(status, headers);
  }

  write(chunk: Buffer): boolean {
    const stream = this.#stream;
    if (stream === null) return this.#inner.write(chunk);
    const ok = stream.write(chunk);
    // Each piece goes out at once, as nginx's gzip flushes when proxying unbuffered.
    stream.flush(
      stream instanceof zlib.Gzip ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.BROTLI_OPERATION_FLUSH,
    );
    return ok;
  }

  end(chunk?: Buffer): unknown {
    const stream = this.#stream;
    if (stream === null) return this.#inner.end(chunk);
    if (chunk !== undefined && chunk.length > 0) stream.write(chunk);
    stream.end();
    return undefined;
  }

  /** 'drain' of a compressed body is the encoder's: it drains once the client's socket has. */
  once(event: 'close' | 'drain', listener: () => void): void {
    if (event === 'drain' && this.#stream !== null) this.#stream.once('drain', listener);
    else this.#inner.once(event, listener);
  }

  whenSent(uncompressedBytes: number, done: (bodyBytes: number) => void): void {
    if (this.#stream === null) done(uncompressedBytes);
    else if (this.#finished) done(this.#sent);
    else this.#onFinished = () => done(this.#sent);
  }

  #start(encoding: Encoding, length: number): void {
    const out = encoder(encoding, this.#model, length);
    const inner = this.#inner;
    out.on('data', (piece: Buffer) => {
      this.#sent += piece.length;
      if (!inner.write(piece)) {
        out.pause();
        inner.once('drain', () => out.resume());
      }
    });
    out.once('end', () => {
      inner.end();
      this.#finish();
    });
    out.once('error', () => {
      inner.destroy();
      this.#finish();
    });
    // A client that leaves: the encoder goes with it.
    inner.once('close', () => {
      if (!out.writableFinished || !out.readableEnded) out.destroy();
      this.#finish();
    });
    this.#stream = out;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#onFinished?.();
  }
}

/**
 * Wraps this one response's writeHead, write, end and once('drain') to compress its body when
 * chooseEncoding says so; otherwise it passes through untouched (Vary aside).
 */
export function compressResponse(
  res: GatewayResponse,
  req: GatewayRequest,
  model: CompressionModel,
): CompressedResponse {
  const inner: Inner = {
    writeHead: res.writeHead.bind(res) as Inner['writeHead'],
    write: res.write.bind(res),
    end: res.end.bind(res),
    once: res.once.bind(res),
    destroy: res.destroy.bind(res),
  };
  const compressor = new ResponseCompressor(inner, req, model);
  const wrapped = res as unknown as Record<string, unknown>;
  wrapped.writeHead = (status: number, a?: unknown, b?: unknown) => {
    if (typeof a === 'string') res.statusMessage = a;
    return compressor.writeHead(status, (typeof a === 'string' ? b : a) as Headers | undefined);
  };
  wrapped.write = (chunk: Buffer) => compressor.write(chunk);
  wrapped.end = (chunk?: Buffer) => {
    compressor.end(chunk);
    return res;
  };
  wrapped.once = (event: 'close' | 'drain', listener: () => void) => {
    compressor.once(event, listener);
    return res;
  };
  hideHeadFields(res);
  return compressor;
}
