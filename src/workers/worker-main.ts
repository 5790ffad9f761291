// The entry point of a worker process (forked by pool.ts). It serves what the primary hands it in
// `init` (gateway-worker.ts or lb-worker.ts), answers the primary's calls, and leaves the signals to
// the primary: a Ctrl-C reaches the whole process group, but only the primary decides to drain, so a
// worker never dies half-way through its requests. When the primary is gone (its IPC channel
// closes) the worker drains and exits on its own.
import type { CallMessage, FromWorker, InitMessage, ServedRole, ToWorker } from './protocol.ts';

// SIGUSR1 too: without a listener Node opens its inspector on 127.0.0.1:9229, where any local process
// could run code in the worker (a `kill -USR1` to the process group for a log reopen reaches it).
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1'] as const) process.on(signal, () => {});

let served: ServedRole | null = null;
let draining: Promise<void> | null = null;

function send(message: FromWorker, then?: () => void): void {
  if (!process.connected || process.send === undefined) {
    then?.();
    return;
  }
  process.send(message, undefined, {}, () => then?.());
}

function drain(): Promise<void> {
  draining ??= (served?.drain() ?? Promise.resolve()).catch(() => {});
  return draining;
}

/** The served role's metrics after its drain; null when it has none or they cannot be read. */
async function finalMetrics(): Promise<unknown> {
  try {
    return (await served?.methods.metrics?.(null)) ?? null;
  } catch {
    return null;
  }
}

async function init(message: InitMessage): Promise<void> {
  try {
    const role =
      message.role === 'gateway' ? await import('./gateway-worker.ts') : await import('./lb-worker.ts');
    const post = (topic: string, value: unknown) => send({ kind: 'event', topic, value });
    served = await role.serve(message.payload as never, message.slot, post);
    send({ kind: 'ready', info: served.info });
  } catch (error) {
    send({ kind: 'init-failed', message: (error as Error).message }, () => process.exit(1));
  }
}

async function answer(message: CallMessage): Promise<void> {
  // The pool's watchdog (watchdog.ts): answered here, so that only a wedged loop misses it.
  if (message.method === 'ping') {
    send({ kind: 'reply', id: message.id, ok: true, value: null });
    return;
  }
  if (message.method === 'drain') {
    await drain();
    // The answer carries what it counted last, so that the pod's /metrics keeps it after this exit.
    const last = await finalMetrics();
    send({ kind: 'reply', id: message.id, ok: true, value: last }, () => process.exit(0));
    return;
  }
  const method = served?.methods[message.method];
  try {
    if (method === undefined) throw new Error(`unknown call ${message.method}`);
    const value = await method(message.arg);
    send({ kind: 'reply', id: message.id, ok: true, value });
  } catch (error) {
    send({ kind: 'reply', id: message.id, ok: false, message: (error as Error).message });
  }
}

process.on('message', (message: ToWorker) => {
  if (message.kind === 'init') void init(message);
  else void answer(message);
});
process.on('disconnect', () => {
  void drain().then(() => process.exit(0));
});
