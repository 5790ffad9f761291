// A request body read whole before the backend is contacted (proxy-request-buffering on, nginx's and
// ingress-nginx's default): up to client-body-buffer-size in memory, the rest in a temporary file, so
// that the backend never holds a connection open for a slow client's upload and a retry can send the
// body again (buffered-proxy.ts does both).
//
// Bounds: the body size limit (proxy-body-size) is checked as bytes arrive; the client's deadline
// (client_body_timeout) is the engines' (the read rejects with it); the memory of all buffered bodies
// together is capped (`memoryBytes`): a body that does not fit in what is left goes to a file, so a
// flood of uploads costs disk up to their size limit, never memory beyond the cap.
//
// A temporary file is created with mode 0600 and O_EXCL (no symlink or existing file is followed) and
// unlinked at once, as nginx does with its client body files: the name is gone before a byte is
// written, so no exit path (a crash or SIGKILL included) leaves a file behind, and the descriptor,
// closed by release(), is the only handle on the data.
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The default cap on the memory of all buffered bodies together. */
export const DEFAULT_BODY_MEMORY_BYTES = 64 * 1024 * 1024;

/** The piece a body is read back from its file in. */
const READ_PIECE = 64 * 1024;

export interface BodyBufferOptions {
  /** Where bodies larger than their memory share go; default os.tmpdir() ($TMPDIR). */
  tempDir?: string | undefined;
  /** The memory all buffered bodies may hold together; default 64 MiB. */
  memoryBytes?: number | undefined;
  /** Told the usage whenever it changes, and each body read whole (the gateway's metrics). */
  observer?: BodyBufferObserver | undefined;
}

export interface BodyBufferObserver {
  bodyBufferUsage(memoryBytes: number, files: number, fileBytes: number): void;
  bodyBuffered(where: 'memory' | 'file'): void;
}

/** One gateway's buffered bodies: where files go, and the memory they hold together. */
export class BodyBuffers {
  readonly tempDir: string;
  readonly memoryLimit: number;
  readonly observer: BodyBufferObserver | null;
  /** Body bytes held in memory now, across requests. */
  memoryInUse = 0;
  /** Temporary files open now (each already unlinked), and the body bytes written to them. */
  filesOpen = 0;
  fileBytes = 0;

  constructor(options: BodyBufferOptions = {}) {
    this.tempDir = options.tempDir ?? tmpdir();
    this.memoryLimit = options.memoryBytes ?? DEFAULT_BODY_MEMORY_BYTES;
    this.observer = options.observer ?? null;
  }

  /** Takes `bytes` from the memory cap; false when they do not fit. */
  reserve(bytes: number): boolean {
    if (this.memoryInUse + bytes > this.memoryLimit) return false;
    this.#count(bytes, 0, 0);
    return true;
  }

  free(bytes: number): void {
    if (bytes !== 0) this.#count(-bytes, 0, 0);
  }

  opened(): void {
    this.#count(0, 1, 0);
  }

  /** `bytes` more written to a file (negative: a file of that many closed). */
  wrote(bytes: number): void {
    if (bytes !== 0) this.#count(0, 0, bytes);
  }

  closed(bytes: number): void {
    this.#count(0, -1, -bytes);
  }

  #count(bytes: number, files: number, fileBytes: number): void {
    this.memoryInUse += bytes;
    this.filesOpen += files;
    this.fileBytes += fileBytes;
    this.observer?.bodyBufferUsage(this.memoryInUse, this.filesOpen, this.fileBytes);
  }
}

let processBuffers: BodyBuffers | null = null;
/** The buffers of a pipeline that was given none: os.tmpdir() and the default cap. */
export function defaultBodyBuffers(): BodyBuffers {
  processBuffers ??= new BodyBuffers();
  return processBuffers;
}

/** A body read whole: read it (again) from the start with chunks(); release() frees it. */
export interface BufferedBody {
  readonly length: number;
  chunks(): AsyncIterable<Buffer>;
  /** Frees the memory and closes the file; idempotent. */
  release(): void;
}

export type BodyReadFailure =
  /** More than the body size limit (413). */
  | { code: 'CLIENT_BODY_TOO_LARGE'; received: number }
  /** The engine's client_body_timeout (408). */
  | { code: 'CLIENT_BODY_TIMEOUT'; received: number }
  /** The body broke its framing (400); `message` says how. */
  | { code: 'CLIENT_BODY_INVALID'; received: number; message: string }
  /** The client went away mid-body. */
  | { code: 'CLIENT_CLOSED'; received: number }
  /** The temporary file could not be created or written (500). */
  | { code: 'CLIENT_BODY_BUFFER_FAILED'; received: number; message: string };

export type BodyReadResult = { ok: true; value: BufferedBody } | { ok: false; error: BodyReadFailure };

export interface BodyReadLimits {
  /** proxy-body-size in bytes; 0: none. */
  maxBytes: number;
  /** client-body-buffer-size: what of this body may stay in memory. */
  memoryBytes: number;
  /** Told the file's name when the body goes to a temporary file (nginx's warning line). */
  onSpill?: (path: string) => void;
}

type ErrorWithCode = Error & { code?: string; syscall?: string; path?: string };

/** The body as it is being read: chunks in memory, then (once they no longer fit) a file. */
class BodyBuilder implements BufferedBody {
  readonly #buffers: BodyBuffers;
  readonly #limits: BodyReadLimits;
  #chunks: Buffer[] = [];
  #reserved = 0;
  #file: FileHandle | null = null;
  /** Bytes written to the file (counted in BodyBuffers.fileBytes until it is closed). */
  #written = 0;
  #released = false;
  length = 0;

  constructor(buffers: BodyBuffers, limits: BodyReadLimits) {
    this.#buffers = buffers;
    this.#limits = limits;
  }

  async add(chunk: Buffer): Promise<void> {
    if (
      this.#file === null &&
      this.#reserved + chunk.length <= this.#limits.memoryBytes &&
      this.#buffers.reserve(chunk.length)
    ) {
      // A view into a larger buffer (a socket read holding the head too) would keep all of it alive.
      this.#chunks.push(chunk.byteLength === chunk.buffer.byteLength ? chunk : Buffer.from(chunk));
      this.#reserved += chunk.length;
      this.length += chunk.length;
      return;
    }
    const file = this.#file ?? (await this.#spill());
    await writeAt(file, chunk, this.length);
    this.length += chunk.length;
    this.#wrote(chunk.length);
  }

  #wrote(bytes: number): void {
    if (this.#released) return;
    this.#written += bytes;
    this.#buffers.wrote(bytes);
  }

  /** Opens the temporary file, moves what memory holds into it, and frees that memory. */
  async #spill(): Promise<FileHandle> {
    const path = join(this.#buffers.tempDir, `keepip-body-${randomBytes(8).toString('hex')}`);
    const file = await open(path, 'wx+', 0o600);
    this.#buffers.opened();
    if (this.#released) {
      await this.#closeFile(file, 0);
      throw Object.assign(new Error('released'), { code: 'RELEASED' });
    }
    this.#file = file;
    await unlink(path).catch(() => {});
    this.#limits.onSpill?.(path);
    let at = 0;
    for (const piece of this.#chunks) {
      await writeAt(file, piece, at);
      at += piece.length;
    }
    // Together, so that memory and file never count the same bytes twice.
    this.#dropMemory();
    this.#wrote(at);
    return file;
  }

  #dropMemory(): void {
    this.#buffers.free(this.#reserved);
    this.#reserved = 0;
    this.#chunks = [];
  }

  get inFile(): boolean {
    return this.#file !== null;
  }

  async #closeFile(file: FileHandle, written: number): Promise<void> {
    this.#buffers.closed(written);
    await file.close().catch(() => {});
  }

  /** One piece when the body is in memory (the backend gets it in one write), else pieces of the file. */
  chunks(): AsyncIterable<Buffer> {
    const file = this.#file;
    if (file !== null) return readFile(file, this.length);
    const whole = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.length);
    this.#chunks = [whole];
    return inOnePiece(whole);
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#dropMemory();
    const file = this.#file;
    this.#file = null;
    if (file !== null) void this.#closeFile(file, this.#written);
  }
}

async function writeAt(file: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await file.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

async function* inOnePiece(whole: Buffer): AsyncGenerator<Buffer> {
  if (whole.length > 0) yield whole;
}

async function* readFile(file: FileHandle, length: number): AsyncGenerator<Buffer> {
  let at = 0;
  while (at < length) {
    // A fresh buffer per piece: the socket may still hold the previous one.
    const piece = Buffer.allocUnsafe(Math.min(READ_PIECE, length - at));
    const { bytesRead } = await file.read(piece, 0, piece.length, at);
    if (bytesRead === 0)
      throw Object.assign(new Error('buffered body file shorter than written'), { code: 'EIO' });
    at += bytesRead;
    yield bytesRead === piece.length ? piece : piece.subarray(0, bytesRead);
  }
}

const CLOSED = Symbol('closed');

/** The next chunk, or CLOSED as soon as `signal` aborts (a pending read of a closed client may never settle). */
function nextOrClosed(
  it: AsyncIterator<Buffer>,
  signal: AbortSignal,
): Promise<IteratorResult<Buffer> | typeof CLOSED> {
  if (signal.aborted) return Promise.resolve(CLOSED);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(CLOSED);
    signal.addEventListener('abort', onAbort, { once: true });
    it.next().then(
      (step) => {
        signal.removeEventListener('abort', onAbort);
        resolve(step);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * A failed read of the client's body: the engines' client_body_timeout, broken framing or an announced
 * size over the limit, else the client went away.
 */
function sourceFailure(error: ErrorWithCode, received: number): BodyReadFailure {
  if (error.code === 'CLIENT_BODY_TIMEOUT') return { code: 'CLIENT_BODY_TIMEOUT', received };
  // Chunk sizes that announce more than the limit (h1-server.ts): refused before the bytes come.
  if (error.code === 'CLIENT_BODY_TOO_LARGE') {
    const announced = (error as { announced?: unknown }).announced;
    return { code: 'CLIENT_BODY_TOO_LARGE', received: typeof announced === 'number' ? announced : received };
  }
  if (error.code === 'CLIENT_BODY_INVALID')
    return { code: 'CLIENT_BODY_INVALID', received, message: error.message };
  return { code: 'CLIENT_CLOSED', received };
}

/** A failed open or write of the temporary file, worded as nginx's `open() "…" failed (28: …)`. */
function fileFailure(error: ErrorWithCode, received: number): BodyReadFailure {
  const what =
    error.path !== undefined ? `${error.syscall ?? 'open'}() "${error.path}"` : 'write to a temporary file';
  return {
    code: 'CLIENT_BODY_BUFFER_FAILED',
    received,
    message: `${what} failed (${error.code ?? error.name}: ${error.message})`,
  };
}

/**
 * Reads `source` to its end within `limits`. `signal` aborts when the client's connection (or stream)
 * closes: the read stops there. Whatever the outcome, nothing stays held: on failure the memory and
 * the file are already released; on success the caller releases the body when it is done with it.
 */
export async function readWholeBody(
  source: AsyncIterable<Buffer>,
  limits: BodyReadLimits,
  buffers: BodyBuffers,
  signal: AbortSignal,
): Promise<BodyReadResult> {
  const body = new BodyBuilder(buffers, limits);
  const it = source[Symbol.asyncIterator]();
  let received = 0;
  for (;;) {
    let step: IteratorResult<Buffer> | typeof CLOSED;
    try {
      step = await nextOrClosed(it, signal);
    } catch (error) {
      return stop(body, null, sourceFailure(error as ErrorWithCode, received));
    }
    // A closed client: its connection is gone, nothing to discard.
    if (step === CLOSED) return stop(body, null, { code: 'CLIENT_CLOSED', received });
    if (step.done) {
      buffers.observer?.bodyBuffered(body.inFile ? 'file' : 'memory');
      return { ok: true, value: body };
    }
    const chunk = step.value;
    received += chunk.length;
    if (limits.maxBytes > 0 && received > limits.maxBytes)
      return stop(body, it, { code: 'CLIENT_BODY_TOO_LARGE', received });
    try {
      await body.add(chunk);
    } catch (error) {
      return stop(body, it, fileFailure(error as ErrorWithCode, received));
    }
  }
}

/** Releases what the body holds; `it`, when given, stops reading (the engine discards the rest). */
function stop(body: BodyBuilder, it: AsyncIterator<Buffer> | null, failure: BodyReadFailure): BodyReadResult {
  body.release();
  it?.return?.()?.catch(() => {});
  return { ok: false, error: failure };
}
