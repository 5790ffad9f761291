// Connecting to one endpoint of several, the next after a failure: nginx's proxy_next_upstream at
// connect time, for connections that are relayed byte for byte once made (tcp-services, ssl-passthrough).
// Each attempt has its own connect deadline; the caller decides whether a failure is worth another.
import net from 'node:net';

export interface DialTarget {
  host: string;
  port: number;
  connectTimeoutMs: number;
  /** Resolves `host` (a Service's name lookup); default the system's. */
  lookup?: net.LookupFunction;
}

export interface DialSpec<T extends DialTarget> {
  /** Where every attempt reads (net.connect's `onread`: the flow's own buffer); default Node's. */
  onread?: net.OnReadOpts;
  /** The target of the next attempt; null when there is none (gaveUp follows). */
  next(): T | null;
  /** After a failed attempt (refused, unreachable, timed out: code ETIMEDOUT): whether to make another. */
  retry(target: T, error: NodeJS.ErrnoException): boolean;
  /** The socket is connected; the caller owns it and must listen for 'error' at once. */
  connected(socket: net.Socket, target: T, connectMs: number): void;
  gaveUp(): void;
}

export interface Dialing {
  /** Stops: the attempt in flight is destroyed and no callback follows. */
  cancel(): void;
}

export function dialInTurn<T extends DialTarget>(spec: DialSpec<T>): Dialing {
  let current: net.Socket | null = null;
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const attempt = (): void => {
    const target = spec.next();
    if (target === null) {
      spec.gaveUp();
      return;
    }
    const started = Date.now();
    const socket = net.connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      ...(target.lookup === undefined ? {} : { lookup: target.lookup }),
      ...(spec.onread === undefined ? {} : { onread: spec.onread }),
    });
    current = socket;
    timer = setTimeout(
      () => socket.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })),
      target.connectTimeoutMs,
    );
    const failed = (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      current = null;
      if (cancelled) return;
      if (spec.retry(target, error)) attempt();
      else spec.gaveUp();
    };
    socket.once('error', failed);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', failed);
      current = null;
      spec.connected(socket, target, Date.now() - started);
    });
  };
  attempt();
  return {
    cancel() {
      cancelled = true;
      clearTimeout(timer);
      current?.destroy();
    },
  };
}
