// Checks basic-auth passwords without letting the hash work starve the event loop:
// - cheap schemes ({SHA}, {SSHA}, {PLAIN}) are checked inline;
// - slow ones (bcrypt: ~1-2 s at cost 14; apr1/MD5-crypt: 1,000 MD5 rounds) run in a small pool of
//   worker threads, at most `workers` at a time, with at most `maxQueued` waiting; beyond that the
//   request is answered 503 at once ('busy') instead of queueing without bound;
// - every result is cached by (user, SHA-256 of hash and password), successes and failures alike,
//   so a client that repeats the same credentials (every browser request does) costs one hash ever,
//   and a flood of one wrong password costs one. The cache is bounded (LRU). A changed Secret has new
//   hashes, hence new keys: stale entries are never consulted.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { isCheapHash, verifyPassword } from './password-hash.ts';

export type VerifyResult = boolean | 'busy';

export interface PasswordVerifierOptions {
  workers?: number;
  maxQueued?: number;
  cacheEntries?: number;
}

export interface VerifierStats {
  /** Hash checks run (cache misses), cheap and slow. */
  computed: number;
  cacheHits: number;
  /** Requests answered 'busy' because the queue was full. */
  refused: number;
  inFlight: number;
  queued: number;
}

interface Pending {
  password: Uint8Array;
  hash: string;
  key: string;
  waiters: ((result: VerifyResult) => void)[];
}

const WORKER_URL = new URL('./password-worker.ts', import.meta.url);

export class PasswordVerifier {
  readonly #cache = new Map<string, boolean>();
  readonly #pending = new Map<string, Pending>();
  readonly #queue: Pending[] = [];
  readonly #idle: Worker[] = [];
  readonly #busy = new Map<number, { worker: Worker; job: Pending }>();
  readonly #workers: Worker[] = [];
  readonly #maxWorkers: number;
  readonly #maxQueued: number;
  readonly #cacheEntries: number;
  #nextId = 0;
  readonly stats: VerifierStats = { computed: 0, cacheHits: 0, refused: 0, inFlight: 0, queued: 0 };

  constructor(options: PasswordVerifierOptions = {}) {
    this.#maxWorkers = Math.max(1, options.workers ?? Math.min(2, availableParallelism()));
    this.#maxQueued = options.maxQueued ?? 256;
    this.#cacheEntries = options.cacheEntries ?? 10_000;
  }

  /** Calls `done` with the result: synchronously for a cached or cheap hash, later for a slow one. */
  verify(user: string, password: Buffer, hash: string, done: (result: VerifyResult) => void): void {
    const key = createHash('sha256')
      .update(user)
      .update('\u0000')
      .update(hash)
      .update('\u0000')
      .update(password)
      .digest('base64');
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.stats.cacheHits += 1;
      this.#remember(key, cached);
      done(cached);
      return;
    }
    if (isCheapHash(hash)) {
      this.stats.computed += 1;
      const ok = verifyPassword(password, hash) === true;
      this.#remember(key, ok);
      done(ok);
      return;
    }
    const same = this.#pending.get(key);
    if (same !== undefined) {
      same.waiters.push(done);
      return;
    }
    if (this.#queue.length >= this.#maxQueued) {
      this.stats.refused += 1;
      done('busy');
      return;
    }
    const job: Pending = { password: new Uint8Array(password), hash, key, waiters: [done] };
    this.#pending.set(key, job);
    this.#queue.push(job);
    this.#pump();
  }

  #remember(key: string, ok: boolean): void {
    this.#cache.delete(key);
    this.#cache.set(key, ok);
    if (this.#cache.size > this.#cacheEntries) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
  }

  #spawn(): Worker {
    const worker = new Worker(WORKER_URL);
    worker.on('message', (message: { id: number; ok: boolean }) =>
      this.#finished(worker, message.id, message.ok),
    );
    worker.on('error', () => this.#lost(worker));
    worker.on('exit', () => this.#lost(worker));
    // Idle workers must not keep a process alive; a busy one does (#pump refs it).
    worker.unref();
    this.#workers.push(worker);
    return worker;
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let worker = this.#idle.pop();
      if (worker === undefined) {
        if (this.#workers.length >= this.#maxWorkers) break;
        worker = this.#spawn();
      }
      const job = this.#queue.shift()!;
      const id = ++this.#nextId;
      this.#busy.set(id, { worker, job });
      worker.ref();
      worker.postMessage({ id, password: job.password, hash: job.hash });
    }
    this.stats.inFlight = this.#busy.size;
    this.stats.queued = this.#queue.length;
  }

  #finished(worker: Worker, id: number, ok: boolean): void {
    const entry = this.#busy.get(id);
    if (entry === undefined) return;
    this.#busy.delete(id);
    this.stats.computed += 1;
    worker.unref();
    this.#idle.push(worker);
    this.#settle(entry.job, ok);
    this.#pump();
  }

  /** A worker died: its job fails (never admits), and a new worker takes the queue. */
  #lost(worker: Worker): void {
    const index = this.#workers.indexOf(worker);
    if (index < 0) return;
    this.#workers.splice(index, 1);
    const idle = this.#idle.indexOf(worker);
    if (idle >= 0) this.#idle.splice(idle, 1);
    for (const [id, entry] of this.#busy) {
      if (entry.worker !== worker) continue;
      this.#busy.delete(id);
      this.#pending.delete(entry.job.key);
      for (const waiter of entry.job.waiters) waiter(false);
    }
    this.#pump();
  }

  #settle(job: Pending, ok: boolean): void {
    this.#pending.delete(job.key);
    this.#remember(job.key, ok);
    for (const waiter of job.waiters) waiter(ok);
  }

  /** Stops the workers (tests; a gateway process just exits, the workers are unref'd). */
  async close(): Promise<void> {
    const workers = this.#workers.splice(0);
    this.#idle.length = 0;
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

let shared: PasswordVerifier | null = null;

/** The process's verifier: one pool for every snapshot, so the cap holds across reloads. */
export function sharedPasswordVerifier(): PasswordVerifier {
  shared ??= new PasswordVerifier();
  return shared;
}
