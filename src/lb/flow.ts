// One client connection and its own upstream connection (never shared: invariant 6, a PROXY header
// is never sent on a connection that carries more than one client). Bytes are copied unchanged in
// both directions with backpressure, half-closes are passed on, resets are passed on as resets, and a
// flow idle in both directions for idleTimeoutMs is reset, as an NLB does.
//
// Memory per flow is bounded: upstream -> client reads into one buffer owned by the flow (8 KiB,
// growing once to 64 KiB when a read fills it) and stops reading while a write still holds it;
// client -> upstream pauses the client as soon as the upstream's write buffer is full.
// Measured on loopback (docs/lb.md): reading into the flow's own buffer costs ~40% less CPU per byte
// than Node's per-read allocations, so the direction we can control uses it. Accepted sockets cannot
// take `onread`, so client -> upstream uses ordinary 'data' events.
import net from 'node:net';

export interface FlowCounters {
  bytesToTarget: number;
  bytesToClient: number;
}

export type FlowEndReason =
  | 'closed'
  | 'client-reset'
  | 'target-reset'
  | 'connect-failed'
  | 'idle'
  | 'aborted';

export interface FlowSpec {
  client: net.Socket;
  target: { host: string; port: number };
  localAddress: string | undefined;
  /** Written first, in the same write as any client bytes that arrived while connecting. */
  header: Buffer | null;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  counters: FlowCounters;
  onConnected(flow: Flow): void;
  onConnectError(flow: Flow, error: NodeJS.ErrnoException): void;
  onEnd(flow: Flow, reason: FlowEndReason): void;
}

export interface Flow {
  readonly target: { host: string; port: number };
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Resets both sides (deregistration delay expired, shutdown). */
  abort(): void;
}

const SMALL_READ = 8 * 1024;
const LARGE_READ = 64 * 1024;

export function startFlow(spec: FlowSpec): Flow {
  const { client, counters } = spec;
  let readBuffer = Buffer.allocUnsafe(SMALL_READ);
  let large = false;
  let waitingForClientWrite = false;
  let ended = false;
  let endReason: FlowEndReason = 'closed';
  let clientClosed = false;
  let upstreamClosed = false;

  const afterClientWrite = () => {
    if (waitingForClientWrite) {
      waitingForClientWrite = false;
      upstream.resume();
    }
  };

  const upstream = net.connect({
    host: spec.target.host,
    port: spec.target.port,
    ...(spec.localAddress === undefined ? {} : { localAddress: spec.localAddress }),
    allowHalfOpen: true,
    noDelay: true,
    onread: {
      // Called after every read: the buffer the next read goes into.
      buffer: () => readBuffer,
      callback(nread: number, buf: Uint8Array): boolean {
        counters.bytesToClient += nread;
        client.write(buf.subarray(0, nread), afterClientWrite);
        if (nread === buf.length && !large) {
          large = true;
          // The old buffer may still be held by that write; the next read goes into a new one.
          readBuffer = Buffer.allocUnsafe(LARGE_READ);
        }
        // Written synchronously: the buffer is free again. Otherwise the pending write holds it.
        if (client.writableLength === 0) return true;
        waitingForClientWrite = true;
        return false;
      },
    },
  });

  const flow: Flow = {
    target: spec.target,
    client,
    upstream,
    abort() {
      finish('aborted');
      reset(client);
      reset(upstream);
    },
  };

  const finish = (reason: FlowEndReason) => {
    if (endReason === 'closed') endReason = reason;
  };
  const maybeEnd = () => {
    if (clientClosed && upstreamClosed && !ended) {
      ended = true;
      spec.onEnd(flow, endReason);
    }
  };

  // The header goes out as soon as the upstream connects (server-speaks-first protocols work), and
  // client bytes that arrived meanwhile ride in the same writev.
  if (spec.header !== null) {
    upstream.cork();
    upstream.write(spec.header);
  }
  const connectTimer = setTimeout(() => {
    finish('connect-failed');
    spec.onConnectError(flow, Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
    reset(client);
    upstream.destroy();
  }, spec.connectTimeoutMs);
  upstream.once('connect', () => {
    clearTimeout(connectTimer);
    if (spec.header !== null) upstream.uncork();
    upstream.setTimeout(spec.idleTimeoutMs);
    spec.onConnected(flow);
  });

  client.on('data', (chunk: Buffer) => {
    counters.bytesToTarget += chunk.length;
    if (!upstream.write(chunk)) client.pause();
  });
  upstream.on('drain', () => client.resume());
  client.on('end', () => upstream.end());
  upstream.on('end', () => client.end());

  const onIdle = () => {
    finish('idle');
    reset(client);
    reset(upstream);
  };
  client.setTimeout(spec.idleTimeoutMs);
  client.on('timeout', onIdle);
  upstream.on('timeout', onIdle);

  client.on('error', () => {
    finish('client-reset');
    reset(upstream);
  });
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    if (upstream.connecting || error.syscall === 'connect') {
      clearTimeout(connectTimer);
      finish('connect-failed');
      spec.onConnectError(flow, error);
    } else {
      finish('target-reset');
    }
    reset(client);
  });
  client.on('close', () => {
    clientClosed = true;
    // A client gone without a graceful half-close leaves nobody to read the target's answer.
    if (!upstream.destroyed && client.readableEnded === false) reset(upstream);
    maybeEnd();
  });
  upstream.on('close', () => {
    clearTimeout(connectTimer);
    upstreamClosed = true;
    if (!client.destroyed && upstream.readableEnded === false) reset(client);
    maybeEnd();
  });
  return flow;
}

/** Close with RST (as an NLB does on resets and idle timeouts); plain destroy where that is impossible. */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
