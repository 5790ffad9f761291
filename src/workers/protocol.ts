// The messages between a primary and its workers (child processes with an IPC channel, serialized
// with the structured clone algorithm). The primary starts a worker with `init` (its role and the
// configuration it serves), then asks it things with `call` (prepare, commit, metrics, stopAccepting,
// drain…); the worker answers `ready` or `init-failed` once, then one `reply` per call, and may post
// `event`s of its own (the dashboard's decision batches) at any time after `ready`.

export type WorkerRole = 'gateway' | 'lb';

/**
 * The file descriptor of a worker's second channel to its primary (a socketpair beside the IPC
 * channel at fd 3), when the pool opens one: the shared limiter's checks travel there.
 */
export const CHANNEL_FD = 4;

export interface InitMessage {
  kind: 'init';
  role: WorkerRole;
  /** 1-based place of this worker in the pool; a restarted worker keeps its slot. */
  slot: number;
  payload: unknown;
}

export interface CallMessage {
  kind: 'call';
  id: number;
  method: string;
  arg: unknown;
}

export type ToWorker = InitMessage | CallMessage;

export type FromWorker =
  | { kind: 'ready'; info: unknown }
  | { kind: 'init-failed'; message: string }
  | { kind: 'reply'; id: number; ok: true; value: unknown }
  | { kind: 'reply'; id: number; ok: false; message: string }
  | { kind: 'event'; topic: string; value: unknown };

/** How a worker's role posts an event to its primary (PoolOptions.onEvent receives it). */
export type PostEvent = (topic: string, value: unknown) => void;

/** What a worker's role module gives the entry point once it serves. */
export interface ServedRole {
  /** Sent to the primary with `ready` (e.g. the addresses it listens on). */
  info: unknown;
  /** The calls it answers, by method name. */
  methods: Readonly<Record<string, (arg: unknown) => unknown>>;
  /** Stops accepting, finishes what is in flight, flushes its logs. */
  drain(): Promise<void>;
}

export function isFromWorker(message: unknown): message is FromWorker {
  const kind = (message as { kind?: unknown } | null)?.kind;
  return kind === 'ready' || kind === 'init-failed' || kind === 'reply' || kind === 'event';
}
